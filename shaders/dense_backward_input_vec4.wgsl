// dense_backward_input, vec4 variant: dx = dz · kernelᵀ masked by ReLU'(below), the same maths,
// bindings and Shape as dense_backward_input.wgsl, for layers whose sizes and kernel offset are
// multiples of 4. Each thread computes an 8×8 block of dx as four 4×4 matrices from vec4 loads.
//
// Requires: inputs, units, kernel_offset multiples of 4; every bound buffer a multiple of 16
// bytes long (the host checks both, and falls back to dense_backward_input.wgsl). `step` is read
// once, outside the loop (see dense_forward_vec4.wgsl).
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

// The host sets these to the shape's inputs and units (one pipeline per layer shape): lavapipe
// keeps the vec4 loads fast only with sizes known at compile time. 0: read them from `shape`.
override INPUTS: u32 = 0u;
override UNITS: u32 = 0u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> below: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<vec4<f32>>;

// Four rows of dz (starting at vec4 indices `starts`) at column group n4, one row per matrix column.
fn dz_block(starts: vec4<u32>, n4: u32) -> mat4x4<f32> {
    return mat4x4<f32>(dz[starts.x + n4], dz[starts.y + n4], dz[starts.z + n4], dz[starts.w + n4]);
}

// Four consecutive kernel rows starting at vec4 index `at`, `stride` vec4s apart, one per column.
fn kernel_block(at: u32, stride: u32) -> mat4x4<f32> {
    return mat4x4<f32>(params[at], params[at + stride], params[at + 2u * stride], params[at + 3u * stride]);
}

// Stores the four rows of a 4×4 block of dx (one per matrix column) at rows row.., input group k4.
fn store_block(block: mat4x4<f32>, row: u32, rows: u32, k4: u32, inputs4: u32) {
    if (k4 >= inputs4) {
        return;
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (row + i < rows) {
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
    let rows = step.rows;
    let inputs4 = select(shape.inputs, INPUTS, INPUTS != 0u) / 4u;
    let units4 = select(shape.units, UNITS, UNITS != 0u) / 4u;
    let row0 = gid.y * 8u;
    let k4 = gid.x * 2u;
    if (row0 >= rows || k4 >= inputs4) {
        return;
    }
    // Rows past the batch repeat the last one: computed, never stored.
    let last = vec4<u32>(rows - 1u);
    let da = min(vec4<u32>(row0, row0 + 1u, row0 + 2u, row0 + 3u), last) * units4;
    let db = min(vec4<u32>(row0 + 4u, row0 + 5u, row0 + 6u, row0 + 7u), last) * units4;
    // Kernel rows 4·k4.. and 4·(k4 + 1).., as vec4 indices.
    let wa = shape.kernel_offset / 4u + 4u * k4 * units4;
    let wb = shape.kernel_offset / 4u + 4u * min(k4 + 1u, inputs4 - 1u) * units4;
    // acc_rk: rows row0 + 4r.., input group k; column i of each matrix is one row of dx.
    var acc_aa = mat4x4<f32>();
    var acc_ab = mat4x4<f32>();
    var acc_ba = mat4x4<f32>();
    var acc_bb = mat4x4<f32>();
    for (var n4 = 0u; n4 < units4; n4 = n4 + 1u) {
        let d_a = dz_block(da, n4);
        let d_b = dz_block(db, n4);
        let w_a = transpose(kernel_block(wa + n4, units4));
        let w_b = transpose(kernel_block(wb + n4, units4));
        acc_aa = acc_aa + w_a * d_a;
        acc_ab = acc_ab + w_b * d_a;
        acc_ba = acc_ba + w_a * d_b;
        acc_bb = acc_bb + w_b * d_b;
    }
    store_block(acc_aa, row0, rows, k4, inputs4);
    store_block(acc_ab, row0, rows, k4 + 1u, inputs4);
    store_block(acc_ba, row0 + 4u, rows, k4, inputs4);
    store_block(acc_bb, row0 + 4u, rows, k4 + 1u, inputs4);
}
