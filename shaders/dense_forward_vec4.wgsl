// dense_forward, vec4 variant: y = act(x · kernel + bias), the same maths, bindings and Shape as
// dense_forward.wgsl, for layers whose sizes and offsets are multiples of 4. x and params are
// read four floats at a time and each thread computes an 8×8 block of y as four 4×4 matrices,
// so every loaded value feeds 8 multiply-adds (2 in the 4×4 kernel): CPU implementations of
// WebGPU/Vulkan (lavapipe, SwiftShader) pay per loaded lane, not per multiply-add.
//
// Requires: inputs, units, kernel_offset, bias_offset multiples of 4; every bound buffer a
// multiple of 16 bytes long (the host checks both, and falls back to dense_forward.wgsl).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step: rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, bias_offset, relu (0/1)
//   2 x       storage, read   f32[rows, inputs]                 (as vec4)
//   3 params  storage, read   f32[..]  kernel [inputs, units] at kernel_offset, bias [units] at bias_offset (as vec4)
//   4 y       storage, rw     f32[rows, units]                  (as vec4)
// Dispatch: (ceil(units / 64), ceil(rows / 64), 1); a workgroup of 8×8 threads covers 64×64.

struct Step { batch_start: u32, rows: u32, t: u32, lr_t: f32, seed: u32, _p0: u32, _p1: u32, _p2: u32 }
struct Shape { inputs: u32, units: u32, kernel_offset: u32, bias_offset: u32, relu: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

// Rows row..row+3 of x at columns 4·k4..4·k4+3, one row per matrix column. Rows past the batch
// repeat the last one: they are computed but never stored.
fn x_block(row: u32, k4: u32) -> mat4x4<f32> {
    let stride = shape.inputs / 4u;
    let last = step.rows - 1u;
    return mat4x4<f32>(
        x[min(row, last) * stride + k4],
        x[min(row + 1u, last) * stride + k4],
        x[min(row + 2u, last) * stride + k4],
        x[min(row + 3u, last) * stride + k4],
    );
}

// Kernel rows k..k+3 at columns 4·c4..4·c4+3, one kernel row per matrix column.
fn kernel_block(k: u32, c4: u32) -> mat4x4<f32> {
    let stride = shape.units / 4u;
    let at = shape.kernel_offset / 4u + k * stride + c4;
    return mat4x4<f32>(params[at], params[at + stride], params[at + 2u * stride], params[at + 3u * stride]);
}

// Stores the four rows of a 4×4 block (one per matrix column) at rows row.., columns 4·c4...
fn store_block(block: mat4x4<f32>, row: u32, c4: u32) {
    let units4 = shape.units / 4u;
    if (c4 >= units4) {
        return;
    }
    let bias = params[shape.bias_offset / 4u + c4];
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (row + i < step.rows) {
            var v = block[i] + bias;
            if (shape.relu != 0u) {
                v = max(v, vec4<f32>(0.0));
            }
            y[(row + i) * units4 + c4] = v;
        }
    }
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 8u;
    let c4 = gid.x * 2u;
    let units4 = shape.units / 4u;
    if (row0 >= step.rows || c4 >= units4) {
        return;
    }
    let ca = c4;
    let cb = min(c4 + 1u, units4 - 1u);
    // acc_rc: rows row0 + 4r.., columns of group c; column i of each matrix is one output row.
    var acc_aa = mat4x4<f32>();
    var acc_ab = mat4x4<f32>();
    var acc_ba = mat4x4<f32>();
    var acc_bb = mat4x4<f32>();
    for (var k4 = 0u; k4 < shape.inputs / 4u; k4 = k4 + 1u) {
        let xa = x_block(row0, k4);
        let xb = x_block(row0 + 4u, k4);
        let wa = kernel_block(4u * k4, ca);
        let wb = kernel_block(4u * k4, cb);
        acc_aa = acc_aa + wa * xa;
        acc_ab = acc_ab + wb * xa;
        acc_ba = acc_ba + wa * xb;
        acc_bb = acc_bb + wb * xb;
    }
    store_block(acc_aa, row0, c4);
    store_block(acc_ab, row0, c4 + 1u);
    store_block(acc_ba, row0 + 4u, c4);
    store_block(acc_bb, row0 + 4u, c4 + 1u);
}
