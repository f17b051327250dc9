// dense_backward_input, vec4 variant: dx = dz · kernelᵀ masked by ReLU'(below), the same maths,
// bindings and Shape as dense_backward_input.wgsl, for layers whose sizes and kernel offset are
// multiples of 4. Each thread computes an 8×8 block of dx as four 4×4 matrices from vec4 loads.
//
// Requires: inputs, units, kernel_offset multiples of 4; every bound buffer a multiple of 16
// bytes long (the host checks both, and falls back to dense_backward_input.wgsl).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step: rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, relu_below (0/1)
//   2 dz      storage, read   f32[rows, units]   gradient at this layer's pre-activation (as vec4)
//   3 params  storage, read   f32[..]            kernel [inputs, units] at kernel_offset (as vec4)
//   4 below   storage, read   f32[rows, inputs]  output of the layer below (as vec4)
//   5 dx      storage, rw     f32[rows, inputs]  gradient at the layer below's pre-activation (as vec4)
// Dispatch: (ceil(inputs / 64), ceil(rows / 64), 1); a workgroup of 8×8 threads covers 64×64.

struct Step { batch_start: u32, rows: u32, t: u32, lr_t: f32, seed: u32, _p0: u32, _p1: u32, _p2: u32 }
struct Shape { inputs: u32, units: u32, kernel_offset: u32, relu_below: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> below: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<vec4<f32>>;

// Rows row..row+3 of dz at columns 4·n4.., one row per matrix column; rows past the batch repeat
// the last one (computed, never stored).
fn dz_block(row: u32, n4: u32) -> mat4x4<f32> {
    let stride = shape.units / 4u;
    let last = step.rows - 1u;
    return mat4x4<f32>(
        dz[min(row, last) * stride + n4],
        dz[min(row + 1u, last) * stride + n4],
        dz[min(row + 2u, last) * stride + n4],
        dz[min(row + 3u, last) * stride + n4],
    );
}

// Kernel rows k..k+3 (inputs k4·4..) at columns 4·n4.., one kernel row per matrix column.
fn kernel_block(k4: u32, n4: u32) -> mat4x4<f32> {
    let stride = shape.units / 4u;
    let at = shape.kernel_offset / 4u + 4u * k4 * stride + n4;
    return mat4x4<f32>(params[at], params[at + stride], params[at + 2u * stride], params[at + 3u * stride]);
}

// Stores the four rows of a 4×4 block of dx (one per matrix column) at rows row.., inputs 4·k4...
fn store_block(block: mat4x4<f32>, row: u32, k4: u32) {
    let inputs4 = shape.inputs / 4u;
    if (k4 >= inputs4) {
        return;
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (row + i < step.rows) {
            let at = (row + i) * inputs4 + k4;
            var g = block[i];
            if (shape.relu_below != 0u) {
                g = select(vec4<f32>(0.0), g, below[at] > vec4<f32>(0.0));
            }
            dx[at] = g;
        }
    }
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 8u;
    let k4 = gid.x * 2u;
    let inputs4 = shape.inputs / 4u;
    if (row0 >= step.rows || k4 >= inputs4) {
        return;
    }
    let ka = k4;
    let kb = min(k4 + 1u, inputs4 - 1u);
    // acc_rk: rows row0 + 4r.., inputs of group k; column i of each matrix is one row of dx.
    var acc_aa = mat4x4<f32>();
    var acc_ab = mat4x4<f32>();
    var acc_ba = mat4x4<f32>();
    var acc_bb = mat4x4<f32>();
    for (var n4 = 0u; n4 < shape.units / 4u; n4 = n4 + 1u) {
        let da = dz_block(row0, n4);
        let db = dz_block(row0 + 4u, n4);
        let wa = transpose(kernel_block(ka, n4));
        let wb = transpose(kernel_block(kb, n4));
        acc_aa = acc_aa + wa * da;
        acc_ab = acc_ab + wb * da;
        acc_ba = acc_ba + wa * db;
        acc_bb = acc_bb + wb * db;
    }
    store_block(acc_aa, row0, k4);
    store_block(acc_ab, row0, k4 + 1u);
    store_block(acc_ba, row0 + 4u, k4);
    store_block(acc_bb, row0 + 4u, k4 + 1u);
}
