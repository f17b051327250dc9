// dense_forward: y = act(x · kernel + bias), the bias and ReLU fused into the epilogue.
// Register-blocked: each thread computes a 4×4 block of y; a workgroup of 8×8 threads covers 32×32.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, bias_offset, relu (0/1)
//   2 x       storage, read   f32[rows, inputs]
//   3 params  storage, read   f32[..]  kernel [inputs, units] at kernel_offset, bias [units] at bias_offset
//   4 y       storage, rw     f32[rows, units]
// Dispatch: (ceil(units / 32), ceil(rows / 32), 1).

struct Shape { inputs: u32, units: u32, kernel_offset: u32, bias_offset: u32, relu: u32, _p0: u32, _p1: u32, _p2: u32 }

// The host sets these to the shape's inputs and units (one pipeline per layer shape): lavapipe
// runs this kernel several times faster with its sizes known at compile time. 0: read `shape`.
override INPUTS: u32 = 0u;
override UNITS: u32 = 0u;

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let inputs = select(shape.inputs, INPUTS, INPUTS != 0u);
    let units = select(shape.units, UNITS, UNITS != 0u);
    let batch_rows = step.rows;
    let col0 = gid.x * 4u;
    let row0 = gid.y * 4u;
    if (row0 >= batch_rows || col0 >= units) {
        return;
    }
    // Clamp instead of branching in the inner loop: out-of-range lanes compute duplicates
    // that are never stored.
    let rows = min(vec4<u32>(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4<u32>(batch_rows - 1u)) * inputs;
    let cols = min(vec4<u32>(col0, col0 + 1u, col0 + 2u, col0 + 3u), vec4<u32>(units - 1u));
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var w_row = shape.kernel_offset;
    for (var k = 0u; k < inputs; k = k + 1u) {
        let w = vec4<f32>(params[w_row + cols.x], params[w_row + cols.y], params[w_row + cols.z], params[w_row + cols.w]);
        acc0 = acc0 + x[rows.x + k] * w;
        acc1 = acc1 + x[rows.y + k] * w;
        acc2 = acc2 + x[rows.z + k] * w;
        acc3 = acc3 + x[rows.w + k] * w;
        w_row = w_row + units;
    }
    let bias = vec4<f32>(params[shape.bias_offset + cols.x], params[shape.bias_offset + cols.y],
                         params[shape.bias_offset + cols.z], params[shape.bias_offset + cols.w]);
    var out = array<vec4<f32>, 4>(acc0 + bias, acc1 + bias, acc2 + bias, acc3 + bias);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + i;
        if (row >= batch_rows) {
            break;
        }
        var v = out[i];
        if (shape.relu != 0u) {
            v = max(v, vec4<f32>(0.0));
        }
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (col0 + j < units) {
                y[row * units + col0 + j] = v[j];
            }
        }
    }
}
