//! The `--layers` syntax (also the page's custom models): `256:relu,dropout:0.3,bn,relu,128`.

use fashion_data::{NUM_CLASSES, PIXELS_PER_IMAGE};

use super::{dense, Activation, Layer, ModelError, ModelSpec};

impl ModelSpec {
    /// A custom model from a comma-separated spec: `256:relu,dropout:0.3,bn,relu,128,softmax`.
    /// Tokens: `UNITS[:relu|linear|softmax]` (Dense, ReLU by default), `dropout:RATE`, `bn`
    /// (or `batchnorm`), `relu`, `softmax`, `conv:FILTERS` (3×3, ReLU), `pool` (2×2 max),
    /// `pad:N` (ZeroPadding2D: `pad:1,conv:32` is Keras's `padding="same"`), `flatten`. Without
    /// a final softmax, `10:softmax` is appended.
    pub fn parse(name: &str, layers: &str) -> Result<Self, ModelError> {
        let mut parsed = Vec::new();
        for token in layers.split(',').map(str::trim) {
            let bad = |problem: &str| ModelError::Parse { token: token.to_string(), problem: problem.to_string() };
            let mut parts = token.split(':').map(str::trim);
            let head = parts.next().unwrap_or_default().to_ascii_lowercase();
            let arg = parts.next();
            if parts.next().is_some() {
                return Err(bad("too many `:` parts"));
            }
            let layer = match (head.as_str(), arg) {
                ("", _) => return Err(bad("empty layer; expected e.g. `256:relu`, `dropout:0.3`, `bn`")),
                ("dropout", Some(rate)) => {
                    Layer::Dropout { rate: rate.parse().map_err(|_| bad("the dropout rate is not a number"))? }
                }
                ("dropout", None) => return Err(bad("dropout needs a rate, e.g. `dropout:0.3`")),
                ("bn" | "batchnorm", None) => Layer::BatchNorm,
                ("relu", None) => Layer::Activation(Activation::Relu),
                ("conv", Some(filters)) => Layer::Conv2D {
                    filters: filters.parse().map_err(|_| bad("the number of filters is not a number"))?,
                    kernel_size: 3,
                    activation: Activation::Relu,
                },
                ("pool" | "maxpool", None) => Layer::MaxPool2D,
                ("pad", Some(padding)) => Layer::ZeroPadding2D {
                    padding: padding.parse().map_err(|_| bad("the padding is not a whole number"))?,
                },
                ("pad", None) => return Err(bad("pad needs a width, e.g. `pad:1` before a 3×3 `conv`")),
                ("flatten", None) => Layer::Flatten,
                ("softmax", None) => Layer::Activation(Activation::Softmax),
                (units, activation) if units.chars().all(|c| c.is_ascii_digit()) => {
                    let units = units.parse().map_err(|_| bad("too many units"))?;
                    let activation = match activation.map(str::to_ascii_lowercase).as_deref() {
                        None | Some("relu") => Activation::Relu,
                        Some("linear") | Some("none") => Activation::Linear,
                        Some("softmax") => Activation::Softmax,
                        Some(_) => return Err(bad("unknown activation; use relu, linear or softmax")),
                    };
                    dense(units, activation)
                }
                (units, _) if units.starts_with('-') => return Err(bad("units must be a positive number")),
                _ => {
                    return Err(bad(
                        "unknown layer; expected `UNITS[:relu|linear|softmax]`, `dropout:RATE`, `bn`, `relu`",
                    ))
                }
            };
            parsed.push(layer);
        }
        let ends_in_softmax = matches!(
            parsed.last(),
            Some(Layer::Activation(Activation::Softmax)) | Some(Layer::Dense { activation: Activation::Softmax, .. })
        );
        if !ends_in_softmax {
            parsed.push(dense(NUM_CLASSES, Activation::Softmax));
        }
        ModelSpec::new(name, PIXELS_PER_IMAGE, parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_specs_parse_or_say_what_is_wrong() {
        let spec = ModelSpec::parse("custom", "256:relu, dropout:0.3, 128").unwrap();
        assert_eq!(
            spec.layers,
            vec![
                dense(256, Activation::Relu),
                Layer::Dropout { rate: 0.3 },
                dense(128, Activation::Relu),
                dense(10, Activation::Softmax)
            ]
        );
        let bn = ModelSpec::parse("custom", "64:linear,bn,relu,10:linear,bn,softmax").unwrap();
        assert_eq!(bn.param_layout().total - bn.param_layout().trainable, 2 * 64 + 2 * 10);
        let err = |text: &str| ModelSpec::parse("custom", text).unwrap_err().to_string();
        assert!(err("").contains("empty layer"), "{}", err(""));
        assert!(err("256,conv").contains("unknown layer"), "{}", err("256,conv"));
        assert!(err("0").contains("zero units"), "{}", err("0"));
        assert!(err("-5").contains("positive"), "{}", err("-5"));
        assert!(err("256,dropout:1.5").contains("dropout rate"), "{}", err("256,dropout:1.5"));
        assert!(err("256,dropout:x").contains("not a number"), "{}", err("256,dropout:x"));
        assert!(err("256:tanh").contains("unknown activation"), "{}", err("256:tanh"));
        assert!(err("relu,256").contains("ReLU must follow"), "{}", err("relu,256"));
        assert!(err("256,softmax,128").contains("last layer"), "{}", err("256,softmax,128"));
        assert!(err("256,12:softmax").contains("softmax over 10"), "{}", err("256,12:softmax"));
    }

    #[test]
    fn zero_padding_makes_a_conv_same_and_bad_paddings_are_named() {
        let same = ModelSpec::parse("same", "pad:1,conv:32,bn,pool,flatten").unwrap();
        assert_eq!(same.layers[0], Layer::ZeroPadding2D { padding: 1 });
        let summary = same.summary();
        for row in ["zero_padding2d (ZeroPadding2 (None, 30, 30, 1)", "conv2d (Conv2D)              (None, 28, 28, 32)"]
        {
            assert!(summary.contains(row), "{row}: {summary}");
        }
        // BatchNorm on the conv's image: per channel (4 × 32 parameters, half of them moving).
        assert!(summary.contains("batch_normalization (BatchNo (None, 28, 28, 32)        128"), "{summary}");
        assert!(summary.contains("(None, 6272)"), "{summary}");
        let err = |text: &str| ModelSpec::parse("custom", text).unwrap_err().to_string();
        assert!(err("pad").contains("pad needs a width"), "{}", err("pad"));
        assert!(err("pad:x,conv:4").contains("not a whole number"), "{}", err("pad:x,conv:4"));
        assert!(err("pad:0,conv:4").contains("padding of 1 to 28"), "{}", err("pad:0,conv:4"));
        assert!(err("pad:29,conv:4").contains("padding of 1 to 28"), "{}", err("pad:29,conv:4"));
        assert!(err("64,pad:1").contains("needs an image input"), "{}", err("64,pad:1"));
    }
}
