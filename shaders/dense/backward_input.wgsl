// dense_backward_input: dx = dz · kernelᵀ, times ReLU'(below) when the layer below is a ReLU
// (below = that layer's output; ReLU' is 1 where it is > 0). The kernel is read transposed in
// place: no transpose pass. Each thread computes a 4×4 block of dx; a workgroup covers 32×32.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, relu_below (0/1)
//   2 dz      storage, read   f32[rows, units]   gradient at this layer's pre-activation
//   3 params  storage, read   f32[..]            kernel [inputs, units] at kernel_offset
//   4 below   storage, read   f32[rows, inputs]  output of the layer below
//   5 dx      storage, rw     f32[rows, inputs]  gradient at the layer below's pre-activation
// Dispatch: (ceil(inputs / 32), ceil(rows / 32), 1).

struct Shape { inputs: u32, units: u32, kernel_offset: u32, relu_below: u32 }

// The host sets these to the shape's inputs and units (one pipeline per layer shape): lavapipe
// runs this kernel several times faster with its sizes known at compile time. 0: read `shape`.
override INPUTS: u32 = 0u;
override UNITS: u32 = 0u;

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> dz: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> below: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let inputs = select(shape.inputs, INPUTS, INPUTS != 0u);
    let units = select(shape.units, UNITS, UNITS != 0u);
    let batch_rows = step.rows;
    let k0 = gid.x * 4u;
    let row0 = gid.y * 4u;
    if (row0 >= batch_rows || k0 >= inputs) {
        return;
    }
    let rows = min(vec4<u32>(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4<u32>(batch_rows - 1u)) * units;
    let ks = shape.kernel_offset
        + min(vec4<u32>(k0, k0 + 1u, k0 + 2u, k0 + 3u), vec4<u32>(inputs - 1u)) * units;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var n = 0u; n < units; n = n + 1u) {
        let w = vec4<f32>(params[ks.x + n], params[ks.y + n], params[ks.z + n], params[ks.w + n]);
        acc0 = acc0 + dz[rows.x + n] * w;
        acc1 = acc1 + dz[rows.y + n] * w;
        acc2 = acc2 + dz[rows.z + n] * w;
        acc3 = acc3 + dz[rows.w + n] * w;
    }
    var out = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + i;
        if (row >= batch_rows) {
            break;
        }
        let v = out[i];
        for (var j = 0u; j < 4u; j = j + 1u) {
            let k = k0 + j;
            if (k < inputs) {
                let at = row * inputs + k;
                var g = v[j];
                if (shape.relu_below != 0u && below[at] <= 0.0) {
                    g = 0.0;
                }
                dx[at] = g;
            }
        }
    }
}
