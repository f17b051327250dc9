//! Keras's `model.summary()` table of a spec.

use std::fmt::Write as _;

use super::{Layer, ModelSpec, Op};

/// One row of the summary: a layer's Keras name and class, its output's dimensions (without the
/// batch), its parameters, and the op that computes it (none for the input's Flatten and
/// activations, which fold into the op before).
struct SummaryRow {
    name: String,
    class: &'static str,
    dims: Vec<usize>,
    params: usize,
    op: Option<usize>,
}

/// One op's output as the summary names it: the Keras layer name (`dense_1`) and its dimensions
/// without the batch (`[h, w, channels]` for images, `[width]` otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpOutput {
    pub name: String,
    pub dims: Vec<usize>,
}

impl ModelSpec {
    /// Every op's output, in op order, named as [`ModelSpec::summary`] names its layer.
    pub fn op_outputs(&self) -> Vec<OpOutput> {
        self.summary_rows()
            .into_iter()
            .filter(|row| row.op.is_some())
            .map(|row| OpOutput { name: row.name, dims: row.dims })
            .collect()
    }

    fn summary_rows(&self) -> Vec<SummaryRow> {
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut keras_name = |base: &'static str, class: &'static str| {
            let n = counts.entry(base).or_insert(0);
            let name = if *n == 0 { base.to_string() } else { format!("{base}_{n}") };
            *n += 1;
            (name, class)
        };
        let starts_with_image = matches!(self.layers.first(), Some(Layer::Conv2D { .. } | Layer::MaxPool2D));
        let mut rows = Vec::new();
        if !starts_with_image {
            let (name, class) = keras_name("flatten", "Flatten");
            rows.push(SummaryRow { name, class, dims: vec![self.inputs], params: 0, op: None });
        }
        // The output of each layer, from the compiled ops (activations and Flatten have none).
        let ops = self.ops();
        let mut next_op = ops.iter().enumerate();
        let mut current = if starts_with_image {
            let side = (self.inputs as f64).sqrt() as usize;
            vec![side, side, 1]
        } else {
            vec![self.inputs]
        };
        for layer in &self.layers {
            let (name, class) = match *layer {
                Layer::Dense { .. } => keras_name("dense", "Dense"),
                Layer::Dropout { .. } => keras_name("dropout", "Dropout"),
                Layer::BatchNorm => keras_name("batch_normalization", "BatchNormalization"),
                Layer::Activation(_) => keras_name("activation", "Activation"),
                Layer::Conv2D { .. } => keras_name("conv2d", "Conv2D"),
                Layer::MaxPool2D => keras_name("max_pooling2d", "MaxPooling2D"),
                Layer::Flatten => keras_name("flatten", "Flatten"),
            };
            let (params, op) = match layer {
                Layer::Activation(_) => (0, None),
                Layer::Flatten => {
                    current = vec![current.iter().product()];
                    (0, None)
                }
                _ => match next_op.next() {
                    Some((i, Op::Dense { layout, .. })) => {
                        current = vec![layout.units];
                        (layout.params(), Some(i))
                    }
                    Some((i, Op::BatchNorm { layout, .. })) => (4 * layout.width, Some(i)),
                    Some((i, Op::Conv2D { layout, .. })) => {
                        current = vec![layout.out_height(), layout.out_width(), layout.filters];
                        (layout.kernel_len() + layout.filters, Some(i))
                    }
                    Some((i, Op::MaxPool2D { layout })) => {
                        current = vec![layout.out_height(), layout.out_width(), layout.channels];
                        (0, Some(i))
                    }
                    Some((i, Op::Dropout { .. })) => (0, Some(i)),
                    None => (0, None),
                },
            };
            rows.push(SummaryRow { name, class, dims: current.clone(), params, op });
        }
        rows
    }

    /// A Keras-style `model.summary()` table.
    pub fn summary(&self) -> String {
        let shape = |dims: &[usize]| {
            let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("(None, {})", dims.join(", "))
        };
        let rows: Vec<(String, String, usize)> = self
            .summary_rows()
            .into_iter()
            .map(|row| (format!("{} ({})", row.name, row.class), shape(&row.dims), row.params))
            .collect();
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
