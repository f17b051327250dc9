// dense_forward, vec4 variant: y = act(x · kernel + bias), the same maths, bindings and Shape as
// dense/forward.wgsl, for layers whose sizes and offsets are multiples of 4. x and params are
// read four floats at a time and each thread computes a 16×16 block of y as 16 4×4 matrices,
// so every loaded value feeds 8 multiply-adds (2 in the scalar kernel): CPU implementations of
// WebGPU/Vulkan (lavapipe, SwiftShader) pay per loaded lane, not per multiply-add.
//
// Requires: inputs, units, kernel_offset, bias_offset multiples of 4; every bound buffer a
// multiple of 16 bytes long (the host checks both, and falls back to dense/forward.wgsl).
// `step` is read once, outside the loop.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, bias_offset, relu (0/1)
//   2 x       storage, read   f32[rows, inputs]                 (as vec4)
//   3 params  storage, read   f32[..]  kernel [inputs, units] at kernel_offset, bias [units] at bias_offset (as vec4)
//   4 y       storage, rw     f32[rows, units]                  (as vec4)
// Dispatch: (ceil(units / 128), ceil(rows / 128), 1); a workgroup of 8×8 threads covers 128×128.

struct Shape { inputs: u32, units: u32, kernel_offset: u32, bias_offset: u32, relu: u32, _p0: u32, _p1: u32, _p2: u32 }

// The host sets these to the shape's inputs and units (one pipeline per layer shape): lavapipe
// keeps the vec4 loads fast only with sizes known at compile time. 0: read them from `shape`.
override INPUTS: u32 = 0u;
override UNITS: u32 = 0u;

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

// Four rows of x (starting at vec4 indices `starts`) at column group k4, one row per matrix column.
fn x_block(starts: vec4<u32>, k4: u32) -> mat4x4<f32> {
    return mat4x4<f32>(x[starts.x + k4], x[starts.y + k4], x[starts.z + k4], x[starts.w + k4]);
}

// Four consecutive kernel rows starting at vec4 index `at`, `stride` vec4s apart, one per column.
fn kernel_block(at: u32, stride: u32) -> mat4x4<f32> {
    return mat4x4<f32>(params[at], params[at + stride], params[at + 2u * stride], params[at + 3u * stride]);
}

// Stores the four rows of a 4×4 block (one per matrix column) at rows row.., column group c4.
fn store_block(block: mat4x4<f32>, row: u32, rows: u32, c4: u32, units4: u32) {
    if (c4 >= units4) {
        return;
    }
    let bias = params[shape.bias_offset / 4u + c4];
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (row + i < rows) {
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
    let rows = step.rows;
    let inputs4 = select(shape.inputs, INPUTS, INPUTS != 0u) / 4u;
    let units4 = select(shape.units, UNITS, UNITS != 0u) / 4u;
    let row0 = gid.y * 16u;
    let c4 = gid.x * 4u;
    if (row0 >= rows || c4 >= units4) {
        return;
    }
    // Rows past the batch repeat the last one, columns past the layer the last group: computed,
    // never stored.
    let last = vec4<u32>(rows - 1u);
    let xa = min(vec4<u32>(row0 + 0u, row0 + 1u, row0 + 2u, row0 + 3u), last) * inputs4;
    let xb = min(vec4<u32>(row0 + 4u, row0 + 5u, row0 + 6u, row0 + 7u), last) * inputs4;
    let xc = min(vec4<u32>(row0 + 8u, row0 + 9u, row0 + 10u, row0 + 11u), last) * inputs4;
    let xd = min(vec4<u32>(row0 + 12u, row0 + 13u, row0 + 14u, row0 + 15u), last) * inputs4;
    let wa = shape.kernel_offset / 4u + min(c4 + 0u, units4 - 1u);
    let wb = shape.kernel_offset / 4u + min(c4 + 1u, units4 - 1u);
    let wc = shape.kernel_offset / 4u + min(c4 + 2u, units4 - 1u);
    let wd = shape.kernel_offset / 4u + min(c4 + 3u, units4 - 1u);
    // acc_rc: rows row0 + 4r.., column group c4 + c; column i of each matrix is one output row.
    var acc_aa = mat4x4<f32>();
    var acc_ab = mat4x4<f32>();
    var acc_ac = mat4x4<f32>();
    var acc_ad = mat4x4<f32>();
    var acc_ba = mat4x4<f32>();
    var acc_bb = mat4x4<f32>();
    var acc_bc = mat4x4<f32>();
    var acc_bd = mat4x4<f32>();
    var acc_ca = mat4x4<f32>();
    var acc_cb = mat4x4<f32>();
    var acc_cc = mat4x4<f32>();
    var acc_cd = mat4x4<f32>();
    var acc_da = mat4x4<f32>();
    var acc_db = mat4x4<f32>();
    var acc_dc = mat4x4<f32>();
    var acc_dd = mat4x4<f32>();
    for (var k4 = 0u; k4 < inputs4; k4 = k4 + 1u) {
        let k_row = 4u * k4 * units4;
        let x_a = x_block(xa, k4);
        let x_b = x_block(xb, k4);
        let x_c = x_block(xc, k4);
        let x_d = x_block(xd, k4);
        let w_a = kernel_block(wa + k_row, units4);
        let w_b = kernel_block(wb + k_row, units4);
        let w_c = kernel_block(wc + k_row, units4);
        let w_d = kernel_block(wd + k_row, units4);
        acc_aa = acc_aa + w_a * x_a;
        acc_ab = acc_ab + w_b * x_a;
        acc_ac = acc_ac + w_c * x_a;
        acc_ad = acc_ad + w_d * x_a;
        acc_ba = acc_ba + w_a * x_b;
        acc_bb = acc_bb + w_b * x_b;
        acc_bc = acc_bc + w_c * x_b;
        acc_bd = acc_bd + w_d * x_b;
        acc_ca = acc_ca + w_a * x_c;
        acc_cb = acc_cb + w_b * x_c;
        acc_cc = acc_cc + w_c * x_c;
        acc_cd = acc_cd + w_d * x_c;
        acc_da = acc_da + w_a * x_d;
        acc_db = acc_db + w_b * x_d;
        acc_dc = acc_dc + w_c * x_d;
        acc_dd = acc_dd + w_d * x_d;
    }
    store_block(acc_aa, row0 + 0u, rows, c4 + 0u, units4);
    store_block(acc_ab, row0 + 0u, rows, c4 + 1u, units4);
    store_block(acc_ac, row0 + 0u, rows, c4 + 2u, units4);
    store_block(acc_ad, row0 + 0u, rows, c4 + 3u, units4);
    store_block(acc_ba, row0 + 4u, rows, c4 + 0u, units4);
    store_block(acc_bb, row0 + 4u, rows, c4 + 1u, units4);
    store_block(acc_bc, row0 + 4u, rows, c4 + 2u, units4);
    store_block(acc_bd, row0 + 4u, rows, c4 + 3u, units4);
    store_block(acc_ca, row0 + 8u, rows, c4 + 0u, units4);
    store_block(acc_cb, row0 + 8u, rows, c4 + 1u, units4);
    store_block(acc_cc, row0 + 8u, rows, c4 + 2u, units4);
    store_block(acc_cd, row0 + 8u, rows, c4 + 3u, units4);
    store_block(acc_da, row0 + 12u, rows, c4 + 0u, units4);
    store_block(acc_db, row0 + 12u, rows, c4 + 1u, units4);
    store_block(acc_dc, row0 + 12u, rows, c4 + 2u, units4);
    store_block(acc_dd, row0 + 12u, rows, c4 + 3u, units4);
}
