//! Keras's `model.summary()` table of a spec.

use std::fmt::Write as _;

use super::{Layer, ModelSpec, Op};

impl ModelSpec {
    /// A Keras-style `model.summary()` table.
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
                Layer::Activation(_) => (keras_name("activation", "Activation"), 0),
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
        let rule = "_".repeat(70);
        let double = "=".repeat(70);
        let mut out = String::new();
        let _ = writeln!(out, "Model: \"{}\"", self.name);
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, " {:<34}{:<24}{:<10}", "Layer (type)", "Output Shape", "Param #");
        let _ = writeln!(out, "{double}");
        for (name, shape, params) in rows {
            let _ = writeln!(out, " {:<34}{:<24}{:<10}", name, shape, thousands(params));
        }
        let _ = writeln!(out, "{double}");
        let _ = writeln!(out, "Total params: {}", thousands(layout.total));
        let _ = writeln!(out, "Trainable params: {}", thousands(layout.trainable));
        let _ = writeln!(out, "Non-trainable params: {}", thousands(layout.total - layout.trainable));
        let _ = write!(out, "{rule}");
        out
    }
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
}
