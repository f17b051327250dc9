// conv/shape.wgsl: what every conv kernel (conv/*.wgsl) shares; the host prepends it to each.
//   Shape  the layer: input height × width × channels, filters, a kernel_size × kernel_size
//          kernel, the valid output out_height × out_width, where the kernel and bias sit in
//          the parameter buffer, and one field per kernel (0/1):
//            relu         forward: apply ReLU
//            relu_below   backward to the input: mask by ReLU' of the layer below
//            accumulate   weight gradient: add to grads (0 overwrites them)
//            first_row, row_count   the batch rows a weight-gradient dispatch sums
//            positions_per_chunk, chunks   how conv2d_backward_weights_partials splits the
//                                          batch's output positions
// The host sets the override constants to the shape's first seven fields (one pipeline per layer
// shape, natively): lavapipe keeps loops and loads fast only with sizes known at compile time.
// 0 (their default, and always on the web): size() reads them from `shape`.

struct Shape {
    height: u32, width: u32, channels: u32, filters: u32,
    kernel_size: u32, out_height: u32, out_width: u32, kernel_offset: u32,
    bias_offset: u32, relu: u32, relu_below: u32, accumulate: u32,
    first_row: u32, row_count: u32, positions_per_chunk: u32, chunks: u32,
}

override HEIGHT: u32 = 0u;
override WIDTH: u32 = 0u;
override CHANNELS: u32 = 0u;
override FILTERS: u32 = 0u;
override KERNEL_SIZE: u32 = 0u;
override OUT_HEIGHT: u32 = 0u;
override OUT_WIDTH: u32 = 0u;

// A size known at compile time, else the shape's.
fn size(from_shape: u32, constant: u32) -> u32 {
    return select(from_shape, constant, constant != 0u);
}

