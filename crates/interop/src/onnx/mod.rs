//! An ONNX inference graph of a [`KerasModel`]: one protobuf `ModelProto` (IR version 8,
//! opset 13), the weights stored in the graph as initializers named after the Keras weights
//! (`dense/kernel`, `batch_normalization/moving_mean`, …).
//!
//! The graph reads `input`, float32 `[batch, 28, 28]` for an MLP or `[batch, 28, 28, 1]` for a
//! model that starts with an image layer (pixels / 255, as Keras is fed), and writes
//! `probabilities`, `[batch, 10]`. Dropout is left out (at inference it passes values through).
//!
//! Keras keeps images NHWC, but ONNX's Conv, MaxPool and BatchNormalization take the channels
//! on axis 1 (NCHW). So the first image layer transposes the input to NCHW, the image layers run
//! in NCHW (Conv's kernel is stored `[filters, channels, k, k]`), and a Flatten transposes back
//! to NHWC first, so that the Dense kernel after it sees the features in Keras's order.

pub mod proto;

use fashion_core::model::{Activation, Layer};
use fashion_data::NUM_CLASSES;
use prost::Message;

use crate::layers::{KerasLayer, KerasModel, Weight};
use crate::ExportError;
use proto::{
    AttributeProto, AttributeType, DataType, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};

/// The ONNX operator set the graph's nodes follow.
pub const OPSET: i64 = 13;
/// ONNX's IR version 8 (2021): what onnx ≥ 1.10 and onnxruntime read, and new enough for opset 13.
pub const IR_VERSION: i64 = 8;
pub const PRODUCER: &str = "fashion-gpu";
pub const INPUT: &str = "input";
pub const OUTPUT: &str = "probabilities";
/// The name of the batch dimension, whose size is chosen when the graph runs.
pub const BATCH: &str = "batch";

/// The `.onnx` file of `model`.
pub fn write(model: &KerasModel) -> Result<Vec<u8>, ExportError> {
    Ok(model_proto(model)?.encode_to_vec())
}

/// `model` as an ONNX `ModelProto`.
fn model_proto(model: &KerasModel) -> Result<ModelProto, ExportError> {
    let mut graph = Graph { input_shape: model.input_shape.clone(), ..Graph::default() };
    let mut activations = Activations { tensor: INPUT.to_string(), layout: Layout::Input };
    for layer in &model.layers {
        activations = graph.layer(layer, activations, model.batch_norm_epsilon)?;
    }
    // The last node wrote the probabilities: it is renamed as the graph's output.
    match graph.nodes.last_mut() {
        Some(last) if activations.layout == Layout::Flat && last.output.first() == Some(&activations.tensor) => {
            last.output = vec![OUTPUT.to_string()]
        }
        _ => {
            return Err(ExportError::Write(format!(
                "the `{}` model does not end in {NUM_CLASSES} flat probabilities",
                model.name
            )))
        }
    }
    let float_tensor = |name: &str, dims: Vec<Dimension>| ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    };
    let batch = || Dimension { value: Some(DimensionValue::DimParam(BATCH.to_string())) };
    let size = |n: usize| Dimension { value: Some(DimensionValue::DimValue(n as i64)) };
    let input_dims = std::iter::once(batch()).chain(model.input_shape.iter().map(|&n| size(n))).collect();
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: PRODUCER.to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        doc_string: format!(
            "fashion-gpu's `{}` model: input = Fashion-MNIST pixels / 255, output = the 10 classes' probabilities",
            model.name
        ),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: model.name.clone(),
            initializer: graph.initializers,
            input: vec![float_tensor(INPUT, input_dims)],
            output: vec![float_tensor(OUTPUT, vec![batch(), size(NUM_CLASSES)])],
        }),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
    })
}

/// How the tensor flowing from one layer to the next is laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// The graph's input as Keras is fed it: `[batch, 28, 28]` or `[batch, 28, 28, 1]` (NHWC).
    Input,
    /// An image as ONNX's image operators take it: `[batch, channels, height, width]`.
    Nchw,
    /// `[batch, features]`, features in Keras's (NHWC) order.
    Flat,
}

/// The tensor a layer reads: its name in the graph and its layout.
struct Activations {
    tensor: String,
    layout: Layout,
}

/// The nodes and initializers written so far, and the input's shape (without the batch).
#[derive(Default)]
struct Graph {
    input_shape: Vec<usize>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Graph {
    /// The nodes of one Keras layer reading `x`; what they output.
    fn layer(&mut self, layer: &KerasLayer, x: Activations, epsilon: f32) -> Result<Activations, ExportError> {
        let name = layer.name.as_str();
        match layer.layer {
            Layer::Dense { activation, .. } => {
                let x = self.flat(x, name);
                let kernel = keras_weight(layer, "kernel")?;
                if kernel.shape.len() != 2 {
                    return Err(wrong_shape(layer, kernel, "[inputs, units]"));
                }
                let kernel = self.float_initializer(layer, kernel.name, &kernel.shape, &kernel.values);
                let bias = self.keras_initializer(layer, "bias")?;
                // Gemm computes x · kernel + bias with the kernel as Keras stores it (no transB).
                let y = self.node(name, "Gemm", vec![x, kernel, bias], Vec::new());
                Ok(self.activation(name, activation, Activations { tensor: y, layout: Layout::Flat }))
            }
            Layer::Conv2D { activation, .. } => {
                let x = self.nchw(x, name)?;
                let kernel = keras_weight(layer, "kernel")?;
                let Some((shape, values)) = conv_kernel_to_onnx(kernel) else {
                    return Err(wrong_shape(layer, kernel, "[k, k, channels, filters]"));
                };
                let kernel_shape = vec![shape[2] as i64, shape[3] as i64];
                let kernel = self.float_initializer(layer, kernel.name, &shape, &values);
                let bias = self.keras_initializer(layer, "bias")?;
                let attributes = vec![ints("kernel_shape", kernel_shape), ints("strides", vec![1, 1])];
                let y = self.node(name, "Conv", vec![x, kernel, bias], attributes);
                Ok(self.activation(name, activation, Activations { tensor: y, layout: Layout::Nchw }))
            }
            Layer::MaxPool2D => {
                let x = self.nchw(x, name)?;
                // Keras's MaxPooling2D(2): ONNX's default floor mode drops an odd last row/column too.
                let attributes = vec![ints("kernel_shape", vec![2, 2]), ints("strides", vec![2, 2])];
                let y = self.node(name, "MaxPool", vec![x], attributes);
                Ok(Activations { tensor: y, layout: Layout::Nchw })
            }
            Layer::ZeroPadding2D { padding } => {
                let x = self.nchw(x, name)?;
                let p = padding as i64;
                // Every axis's start (N, C, H, W), then every axis's end.
                let pads = self.int64_initializer(format!("{name}/pads"), vec![0, 0, p, p, 0, 0, p, p]);
                let mode = AttributeProto {
                    name: "mode".to_string(),
                    s: b"constant".to_vec(),
                    r#type: AttributeType::String as i32,
                    ..AttributeProto::default()
                };
                let y = self.node(name, "Pad", vec![x, pads], vec![mode]);
                Ok(Activations { tensor: y, layout: Layout::Nchw })
            }
            Layer::BatchNorm => {
                // ONNX normalises axis 1: an MLP's features, or an image's channels in NCHW.
                let x = match x.layout {
                    Layout::Input => Activations { tensor: self.nchw(x, name)?, layout: Layout::Nchw },
                    Layout::Nchw | Layout::Flat => x,
                };
                let mut inputs = vec![x.tensor];
                for weight in ["gamma", "beta", "moving_mean", "moving_variance"] {
                    inputs.push(self.keras_initializer(layer, weight)?);
                }
                let epsilon = AttributeProto {
                    name: "epsilon".to_string(),
                    f: epsilon,
                    r#type: AttributeType::Float as i32,
                    ..AttributeProto::default()
                };
                let y = self.node(name, "BatchNormalization", inputs, vec![epsilon]);
                Ok(Activations { tensor: y, layout: x.layout })
            }
            Layer::Activation(activation) => Ok(self.activation(name, activation, x)),
            Layer::Flatten => Ok(Activations { tensor: self.flat(x, name), layout: Layout::Flat }),
            Layer::Dropout { .. } => Ok(x),
        }
    }

    /// `x` after the activation of the layer `name` (Softmax over the flat logits).
    fn activation(&mut self, name: &str, activation: Activation, x: Activations) -> Activations {
        match activation {
            Activation::Linear => x,
            Activation::Relu => Activations { tensor: self.node(name, "Relu", vec![x.tensor], Vec::new()), ..x },
            Activation::Softmax => {
                let logits = self.flat(x, name);
                let axis = AttributeProto {
                    name: "axis".to_string(),
                    i: -1,
                    r#type: AttributeType::Int as i32,
                    ..AttributeProto::default()
                };
                Activations { tensor: self.node(name, "Softmax", vec![logits], vec![axis]), layout: Layout::Flat }
            }
        }
    }

    /// `x` as `[batch, features]` in Keras's order: an NCHW image goes back to NHWC first.
    fn flat(&mut self, x: Activations, name: &str) -> String {
        let image = match x.layout {
            Layout::Flat => return x.tensor,
            Layout::Input => x.tensor,
            Layout::Nchw => self.node(name, "Transpose", vec![x.tensor], vec![ints("perm", vec![0, 2, 3, 1])]),
        };
        let axis = AttributeProto {
            name: "axis".to_string(),
            i: 1,
            r#type: AttributeType::Int as i32,
            ..AttributeProto::default()
        };
        self.node(name, "Flatten", vec![image], vec![axis])
    }

    /// `x` as an NCHW image: the graph's NHWC input is transposed once, by the first image layer.
    fn nchw(&mut self, x: Activations, name: &str) -> Result<String, ExportError> {
        match x.layout {
            Layout::Nchw => Ok(x.tensor),
            Layout::Input if self.input_shape.len() == 3 => {
                Ok(self.node(name, "Transpose", vec![x.tensor], vec![ints("perm", vec![0, 3, 1, 2])]))
            }
            Layout::Input | Layout::Flat => Err(ExportError::Write(format!(
                "layer `{name}` needs an image, but its input is already flat: a model's image layers come \
                 first, before any Flatten, Dense or BatchNormalization of the flat pixels"
            ))),
        }
    }

    /// Appends the node `op` of the layer `layer`, named `layer/op`; its output has the same name.
    fn node(&mut self, layer: &str, op: &str, input: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        let name = format!("{layer}/{op}");
        self.nodes.push(NodeProto {
            input,
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.to_string(),
            attribute,
        });
        name
    }

    /// The layer's Keras weight `weight` as an initializer `layer/weight`, as Keras holds it.
    fn keras_initializer(&mut self, layer: &KerasLayer, weight: &str) -> Result<String, ExportError> {
        let weight = keras_weight(layer, weight)?;
        Ok(self.float_initializer(layer, weight.name, &weight.shape, &weight.values))
    }

    /// An initializer `layer/weight` holding `values` of shape `shape`.
    fn float_initializer(&mut self, layer: &KerasLayer, weight: &str, shape: &[usize], values: &[f32]) -> String {
        let name = format!("{}/{weight}", layer.name);
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&n| n as i64).collect(),
            data_type: DataType::Float as i32,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    fn int64_initializer(&mut self, name: String, values: Vec<i64>) -> String {
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: DataType::Int64 as i32,
            name: name.clone(),
            raw_data: values.into_iter().flat_map(i64::to_le_bytes).collect(),
        });
        name
    }
}

/// The layer's weight `name`, its values as many as its shape holds.
fn keras_weight<'a>(layer: &'a KerasLayer, name: &str) -> Result<&'a Weight, ExportError> {
    let weight = layer
        .weights
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| ExportError::Write(format!("layer `{}` has no `{name}` weight", layer.name)))?;
    if weight.values.len() != weight.shape.iter().product::<usize>() {
        return Err(ExportError::Write(format!(
            "layer `{}`: weight `{name}` has shape {:?} but {} values",
            layer.name,
            weight.shape,
            weight.values.len()
        )));
    }
    Ok(weight)
}

fn wrong_shape(layer: &KerasLayer, weight: &Weight, expected: &str) -> ExportError {
    ExportError::Write(format!(
        "layer `{}`: weight `{}` has shape {:?}, but the layer needs {expected}",
        layer.name, weight.name, weight.shape
    ))
}

/// Keras's Conv2D kernel `[kh, kw, channels, filters]` as ONNX's `[filters, channels, kh, kw]`
/// (both convolutions are cross-correlations, so the taps keep their places); `None` unless 4-D.
fn conv_kernel_to_onnx(kernel: &Weight) -> Option<(Vec<usize>, Vec<f32>)> {
    let &[kh, kw, channels, filters] = kernel.shape.as_slice() else { return None };
    let mut values = Vec::with_capacity(kernel.values.len());
    for f in 0..filters {
        for c in 0..channels {
            for i in 0..kh {
                for j in 0..kw {
                    values.push(*kernel.values.get(((i * kw + j) * channels + c) * filters + f)?);
                }
            }
        }
    }
    Some((vec![filters, channels, kh, kw], values))
}

fn ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto { name: name.to_string(), ints, r#type: AttributeType::Ints as i32, ..AttributeProto::default() }
}

#[cfg(test)]
mod tests {
    use fashion_core::ModelSpec;

    use super::*;

    fn numbered(spec: &ModelSpec) -> Vec<f32> {
        (0..spec.total_params()).map(|i| (i % 101) as f32 * 0.01 - 0.5).collect()
    }

    fn keras_model(spec: &ModelSpec) -> KerasModel {
        KerasModel::new(spec, &numbered(spec)).unwrap()
    }

    /// The bytes `write` gives for `model`, read back.
    fn written_graph(model: &KerasModel) -> GraphProto {
        let onnx = ModelProto::decode(write(model).unwrap().as_slice()).unwrap();
        assert_eq!((onnx.ir_version, onnx.producer_name.as_str()), (IR_VERSION, PRODUCER));
        assert_eq!(onnx.opset_import, [OperatorSetIdProto { domain: String::new(), version: OPSET }]);
        onnx.graph.unwrap()
    }

    fn op_types(graph: &GraphProto) -> Vec<&str> {
        graph.node.iter().map(|n| n.op_type.as_str()).collect()
    }

    fn initializer<'a>(graph: &'a GraphProto, name: &str) -> &'a TensorProto {
        graph.initializer.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no initializer {name}"))
    }

    fn floats(tensor: &TensorProto) -> Vec<f32> {
        assert_eq!(tensor.data_type, DataType::Float as i32);
        tensor.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }

    fn dims(value: &ValueInfoProto) -> Vec<DimensionValue> {
        let tensor = value.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
        assert_eq!(tensor.elem_type, DataType::Float as i32);
        tensor.shape.as_ref().unwrap().dim.iter().map(|d| d.value.clone().unwrap()).collect()
    }

    /// Every node reads what the node before it wrote, and the last one writes the output.
    fn assert_one_chain(graph: &GraphProto) {
        let mut previous = INPUT.to_string();
        for node in &graph.node {
            assert_eq!(node.input.first(), Some(&previous), "{}", node.name);
            for weight in node.input.iter().skip(1) {
                assert!(graph.initializer.iter().any(|t| &t.name == weight), "{}: {weight}", node.name);
            }
            previous = node.output[0].clone();
        }
        assert_eq!(previous, OUTPUT);
    }

    #[test]
    fn the_baseline_is_a_flatten_then_gemms() {
        let model = keras_model(&ModelSpec::preset("baseline").unwrap());
        let graph = written_graph(&model);
        assert_eq!(op_types(&graph), ["Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"]);
        assert_one_chain(&graph);
        let shapes: Vec<(&str, &[i64])> = graph.initializer.iter().map(|t| (t.name.as_str(), &t.dims[..])).collect();
        assert_eq!(
            shapes,
            [
                ("dense/kernel", &[784, 256][..]),
                ("dense/bias", &[256]),
                ("dense_1/kernel", &[256, 128]),
                ("dense_1/bias", &[128]),
                ("dense_2/kernel", &[128, 10]),
                ("dense_2/bias", &[10]),
            ]
        );
        assert_eq!(floats(initializer(&graph, "dense_1/kernel")), model.layers[2].weights[0].values);
        let batch = DimensionValue::DimParam(BATCH.to_string());
        assert_eq!(graph.input[0].name, INPUT);
        assert_eq!(dims(&graph.input[0]), [batch.clone(), DimensionValue::DimValue(28), DimensionValue::DimValue(28)]);
        assert_eq!(graph.output[0].name, OUTPUT);
        assert_eq!(dims(&graph.output[0]), [batch, DimensionValue::DimValue(10)]);
    }

    #[test]
    fn batch_norm_keeps_the_moving_statistics_and_kerass_epsilon() {
        let model = keras_model(&ModelSpec::preset("batchnorm").unwrap());
        let graph = written_graph(&model);
        let mut expected = vec!["Flatten"];
        for _ in 0..4 {
            expected.extend(["Gemm", "BatchNormalization", "Relu"]);
        }
        expected.extend(["Gemm", "BatchNormalization", "Softmax"]);
        assert_eq!(op_types(&graph), expected);
        assert_one_chain(&graph);
        let first = &graph.node[2];
        assert_eq!(
            first.input[1..],
            [
                "batch_normalization/gamma",
                "batch_normalization/beta",
                "batch_normalization/moving_mean",
                "batch_normalization/moving_variance"
            ]
        );
        assert_eq!((first.attribute[0].name.as_str(), first.attribute[0].f), ("epsilon", 1e-3));
        assert_eq!(initializer(&graph, "batch_normalization_4/moving_variance").dims, [10]);
        let variance = &model.layers[14].weights[3];
        assert_eq!(floats(initializer(&graph, "batch_normalization_4/moving_variance")), variance.values);
    }

    #[test]
    fn dropout_is_left_out() {
        let graph = written_graph(&keras_model(&ModelSpec::preset("dropout").unwrap()));
        let deep = written_graph(&keras_model(&ModelSpec::preset("deep").unwrap()));
        assert_eq!(op_types(&graph), op_types(&deep));
        assert_one_chain(&graph);
    }

    #[test]
    fn the_cnn_runs_its_image_layers_in_nchw_and_flattens_in_keras_order() {
        let graph = written_graph(&keras_model(&ModelSpec::preset("cnn").unwrap()));
        #[rustfmt::skip]
        let expected = [
            "Transpose", "Pad", "Conv", "Relu", "MaxPool", "Pad", "Conv", "Relu", "MaxPool",
            "Transpose", "Flatten", "Gemm", "Relu", "Gemm", "Softmax",
        ];
        assert_eq!(op_types(&graph), expected);
        assert_one_chain(&graph);
        let perm = |node: &NodeProto| node.attribute[0].ints.clone();
        assert_eq!((perm(&graph.node[0]), perm(&graph.node[9])), (vec![0, 3, 1, 2], vec![0, 2, 3, 1]));
        assert_eq!(initializer(&graph, "conv2d/kernel").dims, [32, 1, 3, 3]);
        assert_eq!(initializer(&graph, "conv2d_1/kernel").dims, [64, 32, 3, 3]);
        assert_eq!(initializer(&graph, "dense/kernel").dims, [7 * 7 * 64, 128]);
        let pads = initializer(&graph, "zero_padding2d/pads");
        assert_eq!((pads.data_type, pads.dims.as_slice()), (DataType::Int64 as i32, &[8][..]));
        let pads: Vec<i64> = pads.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(pads, [0, 0, 1, 1, 0, 0, 1, 1]);
        let dims = dims(&graph.input[0]);
        assert_eq!(
            dims[1..],
            [DimensionValue::DimValue(28), DimensionValue::DimValue(28), DimensionValue::DimValue(1)]
        );
    }

    #[test]
    fn an_odd_model_flattens_before_a_dense_and_normalises_channels() {
        let spec = ModelSpec::parse("odd", "pad:2,conv:8,conv:4,pool,bn,relu,12:linear,bn,relu").unwrap();
        let model = keras_model(&spec);
        let graph = written_graph(&model);
        #[rustfmt::skip]
        let expected = [
            "Transpose", "Pad", "Conv", "Relu", "Conv", "Relu", "MaxPool", "BatchNormalization", "Relu",
            "Transpose", "Flatten", "Gemm", "BatchNormalization", "Relu", "Gemm", "Softmax",
        ];
        assert_eq!(op_types(&graph), expected);
        assert_one_chain(&graph);
        assert_eq!(initializer(&graph, "batch_normalization/gamma").dims, [4]);
        assert_eq!(initializer(&graph, "batch_normalization_1/gamma").dims, [12]);
        // 28 + 4 = 32 → 30 → 28 → 14: 14 × 14 × 4 features in NHWC order.
        assert_eq!(initializer(&graph, "dense/kernel").dims, [14 * 14 * 4, 12]);
        // Keras's kernel[i, j, c, f] is ONNX's [f, c, i, j].
        let keras = &model.layers[2].weights[0];
        assert_eq!(keras.shape, [3, 3, 8, 4]);
        let onnx = floats(initializer(&graph, "conv2d_1/kernel"));
        assert_eq!(initializer(&graph, "conv2d_1/kernel").dims, [4, 8, 3, 3]);
        for (i, j, c, f) in [(0, 0, 0, 0), (2, 1, 5, 3), (1, 2, 7, 0), (2, 2, 7, 3)] {
            assert_eq!(onnx[((f * 8 + c) * 3 + i) * 3 + j], keras.values[((i * 3 + j) * 8 + c) * 4 + f]);
        }
    }

    #[test]
    fn a_broken_model_is_an_error_not_a_panic() {
        let spec = ModelSpec::preset("batchnorm").unwrap();
        let mut no_variance = keras_model(&spec);
        no_variance.layers[2].weights.pop();
        let error = write(&no_variance).unwrap_err().to_string();
        assert!(error.contains("`batch_normalization` has no `moving_variance`"), "{error}");
        let mut short = keras_model(&spec);
        short.layers[1].weights[0].values.pop();
        let error = write(&short).unwrap_err().to_string();
        assert!(error.contains("layer `dense`: weight `kernel` has shape [784, 256] but 200703 values"), "{error}");
        let mut flat_kernel = keras_model(&ModelSpec::preset("cnn").unwrap());
        flat_kernel.layers[1].weights[0].shape = vec![9, 32];
        let error = write(&flat_kernel).unwrap_err().to_string();
        assert!(error.contains("needs [k, k, channels, filters]"), "{error}");
        // The trainer pads pixels normalised as flat features as an image; Keras's Flatten would not.
        let flat_then_image = ModelSpec::parse("m", "bn,pad:1,conv:4,flatten").unwrap();
        let error = write(&keras_model(&flat_then_image)).unwrap_err().to_string();
        assert!(error.contains("`zero_padding2d` needs an image"), "{error}");
        let mut empty = keras_model(&spec);
        empty.layers.clear();
        assert!(write(&empty).unwrap_err().to_string().contains("does not end in 10 flat probabilities"));
    }
}
