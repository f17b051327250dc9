// dense_backward_input, vec4 variant: dx = dz · kernelᵀ masked by ReLU'(below), the same maths,
// bindings and Shape as dense/backward_input.wgsl, for layers whose sizes and kernel offset are
// multiples of 4. Each thread computes a 16×16 block of dx as 16 4×4 matrices from vec4 loads.
//
// Requires: inputs, units, kernel_offset multiples of 4; every bound buffer a multiple of 16
// bytes long (the host checks both, and falls back to dense/backward_input.wgsl). `step` is read
// once, outside the loop.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, relu_below (0/1)
//   2 dz      storage, read   f32[rows, units]   gradient at this layer's pre-activation (as vec4)
//   3 params  storage, read   f32[..]            kernel [inputs, units] at kernel_offset (as vec4)
//   4 below   storage, read   f32[rows, inputs]  output of the layer below (as vec4)
//   5 dx      storage, rw     f32[rows, inputs]  gradient at the layer below's pre-activation (as vec4)
// Dispatch: (ceil(inputs / 128), ceil(rows / 128), 1); a workgroup of 8×8 threads covers 128×128.

struct Shape { inputs: u32, units: u32, kernel_offset: u32, relu_below: u32 }

// The host sets these to the shape's inputs and units (one pipeline per layer shape): lavapipe
// keeps the vec4 loads fast only with sizes known at compile time. 0: read them from `shape`.
override INPUTS: u32 = 0u;
override UNITS: u32 = 0u;

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
    let row0 = gid.y * 16u;
    let k4 = gid.x * 4u;
    if (row0 >= rows || k4 >= inputs4) {
        return;
    }
    // Rows past the batch repeat the last one, inputs past the layer the last group: computed,
    // never stored.
    let last = vec4<u32>(rows - 1u);
    let da = min(vec4<u32>(row0 + 0u, row0 + 1u, row0 + 2u, row0 + 3u), last) * units4;
    let db = min(vec4<u32>(row0 + 4u, row0 + 5u, row0 + 6u, row0 + 7u), last) * units4;
    let dc = min(vec4<u32>(row0 + 8u, row0 + 9u, row0 + 10u, row0 + 11u), last) * units4;
    let dd = min(vec4<u32>(row0 + 12u, row0 + 13u, row0 + 14u, row0 + 15u), last) * units4;
    // Kernel rows 4·(k4 + c).., as vec4 indices.
    let wa = shape.kernel_offset / 4u + 4u * min(k4 + 0u, inputs4 - 1u) * units4;
    let wb = shape.kernel_offset / 4u + 4u * min(k4 + 1u, inputs4 - 1u) * units4;
    let wc = shape.kernel_offset / 4u + 4u * min(k4 + 2u, inputs4 - 1u) * units4;
    let wd = shape.kernel_offset / 4u + 4u * min(k4 + 3u, inputs4 - 1u) * units4;
    // acc_rc: rows row0 + 4r.., input group k4 + c; column i of each matrix is one row of dx.
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
    for (var n4 = 0u; n4 < units4; n4 = n4 + 1u) {
        let d_a = dz_block(da, n4);
        let d_b = dz_block(db, n4);
        let d_c = dz_block(dc, n4);
        let d_d = dz_block(dd, n4);
        let w_a = transpose(kernel_block(wa + n4, units4));
        let w_b = transpose(kernel_block(wb + n4, units4));
        let w_c = transpose(kernel_block(wc + n4, units4));
        let w_d = transpose(kernel_block(wd + n4, units4));
        acc_aa = acc_aa + w_a * d_a;
        acc_ab = acc_ab + w_b * d_a;
        acc_ac = acc_ac + w_c * d_a;
        acc_ad = acc_ad + w_d * d_a;
        acc_ba = acc_ba + w_a * d_b;
        acc_bb = acc_bb + w_b * d_b;
        acc_bc = acc_bc + w_c * d_b;
        acc_bd = acc_bd + w_d * d_b;
        acc_ca = acc_ca + w_a * d_c;
        acc_cb = acc_cb + w_b * d_c;
        acc_cc = acc_cc + w_c * d_c;
        acc_cd = acc_cd + w_d * d_c;
        acc_da = acc_da + w_a * d_d;
        acc_db = acc_db + w_b * d_d;
        acc_dc = acc_dc + w_c * d_d;
        acc_dd = acc_dd + w_d * d_d;
    }
    store_block(acc_aa, row0 + 0u, rows, k4 + 0u, inputs4);
    store_block(acc_ab, row0 + 0u, rows, k4 + 1u, inputs4);
    store_block(acc_ac, row0 + 0u, rows, k4 + 2u, inputs4);
    store_block(acc_ad, row0 + 0u, rows, k4 + 3u, inputs4);
    store_block(acc_ba, row0 + 4u, rows, k4 + 0u, inputs4);
    store_block(acc_bb, row0 + 4u, rows, k4 + 1u, inputs4);
    store_block(acc_bc, row0 + 4u, rows, k4 + 2u, inputs4);
    store_block(acc_bd, row0 + 4u, rows, k4 + 3u, inputs4);
    store_block(acc_ca, row0 + 8u, rows, k4 + 0u, inputs4);
    store_block(acc_cb, row0 + 8u, rows, k4 + 1u, inputs4);
    store_block(acc_cc, row0 + 8u, rows, k4 + 2u, inputs4);
    store_block(acc_cd, row0 + 8u, rows, k4 + 3u, inputs4);
    store_block(acc_da, row0 + 12u, rows, k4 + 0u, inputs4);
    store_block(acc_db, row0 + 12u, rows, k4 + 1u, inputs4);
    store_block(acc_dc, row0 + 12u, rows, k4 + 2u, inputs4);
    store_block(acc_dd, row0 + 12u, rows, k4 + 3u, inputs4);
}
