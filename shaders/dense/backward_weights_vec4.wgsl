// dense_backward_weights, vec4 variant: dkernel = xᵀ · dz and dbias = Σ_rows dz, the same maths,
// bindings and Shape as dense/backward_weights.wgsl, for layers whose sizes and offsets are
// multiples of 4. Each thread computes a 16×16 block of dkernel as 16 4×4 matrices from vec4
// loads, four batch rows at a time; the threads of the first block-row also write dbias.
//
// Requires: inputs, units, kernel_offset, bias_offset multiples of 4; every bound buffer a
// multiple of 16 bytes long (the host checks both, and falls back to dense/backward_weights.wgsl).
// `step` is read once, outside the loop.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, bias_offset
//   2 x       storage, read   f32[rows, inputs]  this layer's input (as vec4)
//   3 dz      storage, read   f32[rows, units]   gradient at this layer's pre-activation (as vec4)
//   4 grads   storage, rw     f32[..]  dkernel [inputs, units] at kernel_offset, dbias [units] at bias_offset (as vec4)
// Dispatch: (ceil(units / 128), ceil(inputs / 128), 1). Overwrites (does not accumulate) grads.

struct Shape { inputs: u32, units: u32, kernel_offset: u32, bias_offset: u32 }

// The host sets these to the shape's inputs and units (one pipeline per layer shape): lavapipe
// keeps the vec4 loads fast only with sizes known at compile time. 0: read them from `shape`.
override INPUTS: u32 = 0u;
override UNITS: u32 = 0u;

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> grads: array<vec4<f32>>;

// Batch rows `batch_rows` of x at column group k4, one row per matrix column, transposed (so
// column j holds input 4·k4 + j over the four rows), each row times its entry of `keep`.
fn x_block(batch_rows: vec4<u32>, k4: u32, stride: u32, keep: vec4<f32>) -> mat4x4<f32> {
    let at = batch_rows * stride + k4;
    return transpose(mat4x4<f32>(x[at.x] * keep.x, x[at.y] * keep.y, x[at.z] * keep.z, x[at.w] * keep.w));
}

fn dz_block(batch_rows: vec4<u32>, n4: u32, stride: u32) -> mat4x4<f32> {
    let at = batch_rows * stride + n4;
    return mat4x4<f32>(dz[at.x], dz[at.y], dz[at.z], dz[at.w]);
}

// Stores the four kernel rows 4·k4.. of a 4×4 block (one per matrix column) at column group n4.
fn store_block(block: mat4x4<f32>, k4: u32, n4: u32, inputs4: u32, units4: u32) {
    if (k4 >= inputs4 || n4 >= units4) {
        return;
    }
    let at = shape.kernel_offset / 4u + 4u * k4 * units4 + n4;
    grads[at] = block[0];
    grads[at + units4] = block[1];
    grads[at + 2u * units4] = block[2];
    grads[at + 3u * units4] = block[3];
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let rows = step.rows;
    let inputs4 = select(shape.inputs, INPUTS, INPUTS != 0u) / 4u;
    let units4 = select(shape.units, UNITS, UNITS != 0u) / 4u;
    let n4 = gid.x * 4u;
    let k4 = gid.y * 4u;
    if (k4 >= inputs4 || n4 >= units4) {
        return;
    }
    // Groups past the layer repeat the last one: computed, never stored.
    let na = min(n4 + 0u, units4 - 1u);
    let nb = min(n4 + 1u, units4 - 1u);
    let nc = min(n4 + 2u, units4 - 1u);
    let nd = min(n4 + 3u, units4 - 1u);
    let ka = min(k4 + 0u, inputs4 - 1u);
    let kb = min(k4 + 1u, inputs4 - 1u);
    let kc = min(k4 + 2u, inputs4 - 1u);
    let kd = min(k4 + 3u, inputs4 - 1u);
    // acc_kn: kernel rows of group k4 + k, columns of group n4 + n; column i of each matrix is one
    // kernel row.
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
    var bias_a = vec4<f32>(0.0);
    var bias_b = vec4<f32>(0.0);
    var bias_c = vec4<f32>(0.0);
    var bias_d = vec4<f32>(0.0);
    let whole = rows / 4u * 4u;
    let all = vec4<f32>(1.0);
    let four = vec4<u32>(0u, 1u, 2u, 3u);
    for (var r = 0u; r < whole; r = r + 4u) {
        let rs = vec4<u32>(r) + four;
        let x_a = x_block(rs, ka, inputs4, all);
        let x_b = x_block(rs, kb, inputs4, all);
        let x_c = x_block(rs, kc, inputs4, all);
        let x_d = x_block(rs, kd, inputs4, all);
        let d_a = dz_block(rs, na, units4);
        let d_b = dz_block(rs, nb, units4);
        let d_c = dz_block(rs, nc, units4);
        let d_d = dz_block(rs, nd, units4);
        acc_aa = acc_aa + d_a * x_a;
        acc_ab = acc_ab + d_b * x_a;
        acc_ac = acc_ac + d_c * x_a;
        acc_ad = acc_ad + d_d * x_a;
        acc_ba = acc_ba + d_a * x_b;
        acc_bb = acc_bb + d_b * x_b;
        acc_bc = acc_bc + d_c * x_b;
        acc_bd = acc_bd + d_d * x_b;
        acc_ca = acc_ca + d_a * x_c;
        acc_cb = acc_cb + d_b * x_c;
        acc_cc = acc_cc + d_c * x_c;
        acc_cd = acc_cd + d_d * x_c;
        acc_da = acc_da + d_a * x_d;
        acc_db = acc_db + d_b * x_d;
        acc_dc = acc_dc + d_c * x_d;
        acc_dd = acc_dd + d_d * x_d;
        bias_a = bias_a + d_a * all;
        bias_b = bias_b + d_b * all;
        bias_c = bias_c + d_c * all;
        bias_d = bias_d + d_d * all;
    }
    if (whole < rows) {
        // The last 1–3 rows; the rest of the group repeats the last row, weighted 0.
        let rs = min(vec4<u32>(whole) + four, vec4<u32>(rows - 1u));
        let keep = vec4<f32>(vec4<u32>(whole) + four < vec4<u32>(rows));
        let x_a = x_block(rs, ka, inputs4, keep);
        let x_b = x_block(rs, kb, inputs4, keep);
        let x_c = x_block(rs, kc, inputs4, keep);
        let x_d = x_block(rs, kd, inputs4, keep);
        let d_a = dz_block(rs, na, units4);
        let d_b = dz_block(rs, nb, units4);
        let d_c = dz_block(rs, nc, units4);
        let d_d = dz_block(rs, nd, units4);
        acc_aa = acc_aa + d_a * x_a;
        acc_ab = acc_ab + d_b * x_a;
        acc_ac = acc_ac + d_c * x_a;
        acc_ad = acc_ad + d_d * x_a;
        acc_ba = acc_ba + d_a * x_b;
        acc_bb = acc_bb + d_b * x_b;
        acc_bc = acc_bc + d_c * x_b;
        acc_bd = acc_bd + d_d * x_b;
        acc_ca = acc_ca + d_a * x_c;
        acc_cb = acc_cb + d_b * x_c;
        acc_cc = acc_cc + d_c * x_c;
        acc_cd = acc_cd + d_d * x_c;
        acc_da = acc_da + d_a * x_d;
        acc_db = acc_db + d_b * x_d;
        acc_dc = acc_dc + d_c * x_d;
        acc_dd = acc_dd + d_d * x_d;
        bias_a = bias_a + d_a * keep;
        bias_b = bias_b + d_b * keep;
        bias_c = bias_c + d_c * keep;
        bias_d = bias_d + d_d * keep;
    }
    store_block(acc_aa, k4 + 0u, n4 + 0u, inputs4, units4);
    store_block(acc_ab, k4 + 0u, n4 + 1u, inputs4, units4);
    store_block(acc_ac, k4 + 0u, n4 + 2u, inputs4, units4);
    store_block(acc_ad, k4 + 0u, n4 + 3u, inputs4, units4);
    store_block(acc_ba, k4 + 1u, n4 + 0u, inputs4, units4);
    store_block(acc_bb, k4 + 1u, n4 + 1u, inputs4, units4);
    store_block(acc_bc, k4 + 1u, n4 + 2u, inputs4, units4);
    store_block(acc_bd, k4 + 1u, n4 + 3u, inputs4, units4);
    store_block(acc_ca, k4 + 2u, n4 + 0u, inputs4, units4);
    store_block(acc_cb, k4 + 2u, n4 + 1u, inputs4, units4);
    store_block(acc_cc, k4 + 2u, n4 + 2u, inputs4, units4);
    store_block(acc_cd, k4 + 2u, n4 + 3u, inputs4, units4);
    store_block(acc_da, k4 + 3u, n4 + 0u, inputs4, units4);
    store_block(acc_db, k4 + 3u, n4 + 1u, inputs4, units4);
    store_block(acc_dc, k4 + 3u, n4 + 2u, inputs4, units4);
    store_block(acc_dd, k4 + 3u, n4 + 3u, inputs4, units4);
    if (k4 == 0u) {
        if (n4 + 0u < units4) {
            grads[shape.bias_offset / 4u + n4 + 0u] = bias_a;
        }
        if (n4 + 1u < units4) {
            grads[shape.bias_offset / 4u + n4 + 1u] = bias_b;
        }
        if (n4 + 2u < units4) {
            grads[shape.bias_offset / 4u + n4 + 2u] = bias_c;
        }
        if (n4 + 3u < units4) {
            grads[shape.bias_offset / 4u + n4 + 3u] = bias_d;
        }
    }
}
