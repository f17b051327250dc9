//! Keras's `model.summary()` table of a spec, as TensorFlow 2.1 prints it for a Sequential
//! model (the study's version; `crates/core/tests/fixtures/summaries` holds the expected text).

use std::fmt::Write as _;

use super::{Activation, Layer, ModelSpec, Op};

impl ModelSpec {
    /// TF 2.1's `model.summary()` table: columns ending at 29, 55 and 65, a field cut to its
    /// column, a rule between layers, per-layer counts plain and the totals with separators.
    /// The first line names the model by its preset (Keras would say `sequential`).
    pub fn summary(&self) -> String {
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut keras_name = |base: &'static str, class: &str| {
            let n = counts.entry(base).or_insert(0);
            let name = if *n == 0 { base.to_string() } else { format!("{base}_{n}") };
            *n += 1;
            format!("{name} ({class})")
        };
        let shape = |dims: &[usize]| {
            let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("(None, {})", dims.join(", "))
        };
        let starts_with_image = matches!(self.layers.first(), Some(Layer::Conv2D { .. } | Layer::MaxPool2D));
        let mut rows = Vec::new();
        if !starts_with_image {
            rows.push((keras_name("flatten", "Flatten"), shape(&[self.inputs]), 0));
        }
        // The output of each layer, from the compiled ops (activations and Flatten have none).
        let ops = self.ops();
        let mut next_op = ops.iter();
        let mut current = if starts_with_image {
            let side = (self.inputs as f64).sqrt() as usize;
            vec![side, side, 1]
        } else {
            vec![self.inputs]
        };
        for layer in &self.layers {
            let (name, params) = match *layer {
                Layer::Dense { .. } => (keras_name("dense", "Dense"), 0),
                Layer::Dropout { .. } => (keras_name("dropout", "Dropout"), 0),
                Layer::BatchNorm => (keras_name("batch_normalization", "BatchNormalization"), 0),
                Layer::Activation(Activation::Relu) => (keras_name("re_lu", "ReLU"), 0),
                Layer::Activation(Activation::Softmax) => (keras_name("softmax", "Softmax"), 0),
                Layer::Activation(Activation::Linear) => (keras_name("activation", "Activation"), 0),
                Layer::Conv2D { .. } => (keras_name("conv2d", "Conv2D"), 0),
                Layer::MaxPool2D => (keras_name("max_pooling2d", "MaxPooling2D"), 0),
                Layer::Flatten => (keras_name("flatten", "Flatten"), 0),
            };
            let params = params
                + match layer {
                    Layer::Activation(_) => 0,
                    Layer::Flatten => {
                        current = vec![current.iter().product()];
                        0
                    }
                    _ => match next_op.next() {
                        Some(Op::Dense { layout, .. }) => {
                            current = vec![layout.units];
                            layout.params()
                        }
                        Some(Op::BatchNorm { layout, .. }) => 4 * layout.width,
                        Some(Op::Conv2D { layout, .. }) => {
                            current = vec![layout.out_height(), layout.out_width(), layout.filters];
                            layout.kernel_len() + layout.filters
                        }
                        Some(Op::MaxPool2D { layout }) => {
                            current = vec![layout.out_height(), layout.out_width(), layout.channels];
                            0
                        }
                        Some(Op::Dropout { .. }) | None => 0,
                    },
                };
            rows.push((name, shape(&current), params));
        }
        let layout = self.param_layout();
        let rule = "_".repeat(LINE_LENGTH);
        let double = "=".repeat(LINE_LENGTH);
        let mut out = String::new();
        let _ = writeln!(out, "Model: \"{}\"", self.name);
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, "{}", row(["Layer (type)", "Output Shape", "Param #"]));
        let _ = writeln!(out, "{double}");
        let last = rows.len().saturating_sub(1);
        for (i, (name, shape, params)) in rows.into_iter().enumerate() {
            let _ = writeln!(out, "{}", row([name.as_str(), shape.as_str(), params.to_string().as_str()]));
            let _ = writeln!(out, "{}", if i == last { &double } else { &rule });
        }
        let _ = writeln!(out, "Total params: {}", thousands(layout.total));
        let _ = writeln!(out, "Trainable params: {}", thousands(layout.trainable));
        let _ = writeln!(out, "Non-trainable params: {}", thousands(layout.total - layout.trainable));
        let _ = write!(out, "{rule}");
        out
    }
}

/// TF 2.1's `print_summary` for a Sequential model: 65 characters, columns ending at
/// `int(65 · [.45, .85, 1])`.
const LINE_LENGTH: usize = 65;
const COLUMN_ENDS: [usize; 3] = [29, 55, 65];

/// Keras's `print_row`: each field is appended after turning the line's last character into a
/// space, then the line is cut at the field's column end and padded to it.
fn row(fields: [&str; 3]) -> String {
    let mut line: Vec<char> = Vec::with_capacity(LINE_LENGTH);
    for (i, (field, end)) in fields.into_iter().zip(COLUMN_ENDS).enumerate() {
        if i > 0 {
            line.pop();
            line.push(' ');
        }
        line.extend(field.chars());
        line.truncate(end);
        line.resize(end, ' ');
    }
    line.into_iter().collect()
}

/// `235146` → `235,146`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separates() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn a_row_cuts_each_field_at_its_column_as_keras_does() {
        assert_eq!(
            row(["batch_normalization (BatchNormalization)", "(None, 256)", "1024"]),
            format!("batch_normalization (BatchNo (None, 256){}1024{}", " ".repeat(15), " ".repeat(6))
        );
        // A field that fills its column loses its last character to the next one's space.
        assert_eq!(&row(["x".repeat(29).as_str(), "y", "1"])[..30], format!("{} y", "x".repeat(28)));
        assert_eq!(row(["a", "b", "c"]).len(), LINE_LENGTH);
    }
}
