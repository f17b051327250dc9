//! Keras's `model.summary()` table of a spec, as TensorFlow 2.1 prints it for a Sequential
//! model (the study's version; `crates/core/tests/fixtures/summaries` holds the expected text).

use std::fmt::Write as _;

use super::{Activation, Layer, ModelSpec, Op};

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
        let starts_with_image =
            matches!(self.layers.first(), Some(Layer::Conv2D { .. } | Layer::MaxPool2D | Layer::ZeroPadding2D { .. }));
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
                Layer::Activation(Activation::Relu) => keras_name("re_lu", "ReLU"),
                Layer::Activation(Activation::Softmax) => keras_name("softmax", "Softmax"),
                Layer::Activation(Activation::Linear) => keras_name("activation", "Activation"),
                Layer::Conv2D { .. } => keras_name("conv2d", "Conv2D"),
                Layer::MaxPool2D => keras_name("max_pooling2d", "MaxPooling2D"),
                Layer::ZeroPadding2D { .. } => keras_name("zero_padding2d", "ZeroPadding2D"),
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
                    Some((i, Op::ZeroPad2D { layout })) => {
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

    /// TF 2.1's `model.summary()` table: columns ending at 29, 55 and 65, a field cut to its
    /// column, a rule between layers, per-layer counts plain and the totals with separators.
    /// The first line names the model by its preset (Keras would say `sequential`).
    pub fn summary(&self) -> String {
        let shape = |dims: &[usize]| {
            let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("(None, {})", dims.join(", "))
        };
        let rows = self.summary_rows();
        let layout = self.param_layout();
        let rule = "_".repeat(LINE_LENGTH);
        let double = "=".repeat(LINE_LENGTH);
        let mut out = String::new();
        let _ = writeln!(out, "Model: \"{}\"", self.name);
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, "{}", row(["Layer (type)", "Output Shape", "Param #"]));
        let _ = writeln!(out, "{double}");
        let last = rows.len().saturating_sub(1);
        for (i, r) in rows.into_iter().enumerate() {
            let name = format!("{} ({})", r.name, r.class);
            let _ = writeln!(out, "{}", row([name.as_str(), shape(&r.dims).as_str(), r.params.to_string().as_str()]));
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
