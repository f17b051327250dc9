// dense_backward_weights, vec4 variant: dkernel = xᵀ · dz and dbias = Σ_rows dz, the same maths,
// bindings and Shape as dense_backward_weights.wgsl, for layers whose sizes and offsets are
// multiples of 4. Each thread computes an 8×8 block of dkernel as four 4×4 matrices from vec4
// loads, four batch rows at a time; the threads of the first block-row also write dbias.
//
// Requires: inputs, units, kernel_offset, bias_offset multiples of 4; every bound buffer a
// multiple of 16 bytes long (the host checks both, and falls back to dense_backward_weights.wgsl).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step: rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, bias_offset
//   2 x       storage, read   f32[rows, inputs]  this layer's input (as vec4)
//   3 dz      storage, read   f32[rows, units]   gradient at this layer's pre-activation (as vec4)
//   4 grads   storage, rw     f32[..]  dkernel [inputs, units] at kernel_offset, dbias [units] at bias_offset (as vec4)
// Dispatch: (ceil(units / 64), ceil(inputs / 64), 1). Overwrites (does not accumulate) grads.

struct Step { batch_start: u32, rows: u32, t: u32, lr_t: f32, seed: u32, _p0: u32, _p1: u32, _p2: u32 }
struct Shape { inputs: u32, units: u32, kernel_offset: u32, bias_offset: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> grads: array<vec4<f32>>;

// Batch rows row..row+3 of a [rows, 4·stride] matrix at column group c4, one row per matrix
// column, times `keep` (1 for rows in the batch, 0 past it).
fn x_block(row: u32, c4: u32, keep: vec4<f32>) -> mat4x4<f32> {
    let stride = shape.inputs / 4u;
    let last = step.rows - 1u;
    return mat4x4<f32>(
        x[min(row, last) * stride + c4] * keep.x,
        x[min(row + 1u, last) * stride + c4] * keep.y,
        x[min(row + 2u, last) * stride + c4] * keep.z,
        x[min(row + 3u, last) * stride + c4] * keep.w,
    );
}

fn dz_block(row: u32, c4: u32) -> mat4x4<f32> {
    let stride = shape.units / 4u;
    let last = step.rows - 1u;
    return mat4x4<f32>(
        dz[min(row, last) * stride + c4],
        dz[min(row + 1u, last) * stride + c4],
        dz[min(row + 2u, last) * stride + c4],
        dz[min(row + 3u, last) * stride + c4],
    );
}

// Stores the four kernel rows k4·4.. of a 4×4 block (one per matrix column) at columns 4·n4...
fn store_block(block: mat4x4<f32>, k4: u32, n4: u32) {
    let units4 = shape.units / 4u;
    if (k4 >= shape.inputs / 4u || n4 >= units4) {
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
    let n4 = gid.x * 2u;
    let k4 = gid.y * 2u;
    let units4 = shape.units / 4u;
    let inputs4 = shape.inputs / 4u;
    if (k4 >= inputs4 || n4 >= units4) {
        return;
    }
    let na = n4;
    let nb = min(n4 + 1u, units4 - 1u);
    let ka = k4;
    let kb = min(k4 + 1u, inputs4 - 1u);
    // acc_kn: kernel rows of group k, columns of group n; column i of each matrix is one kernel row.
    var acc_aa = mat4x4<f32>();
    var acc_ab = mat4x4<f32>();
    var acc_ba = mat4x4<f32>();
    var acc_bb = mat4x4<f32>();
    var bias_a = vec4<f32>(0.0);
    var bias_b = vec4<f32>(0.0);
    for (var r = 0u; r < step.rows; r = r + 4u) {
        let keep = vec4<f32>(vec4<u32>(r, r + 1u, r + 2u, r + 3u) < vec4<u32>(step.rows));
        let xa = transpose(x_block(r, ka, keep));
        let xb = transpose(x_block(r, kb, keep));
        let da = dz_block(r, na);
        let db = dz_block(r, nb);
        acc_aa = acc_aa + da * xa;
        acc_ab = acc_ab + db * xa;
        acc_ba = acc_ba + da * xb;
        acc_bb = acc_bb + db * xb;
        bias_a = bias_a + da * keep;
        bias_b = bias_b + db * keep;
    }
    store_block(acc_aa, k4, n4);
    store_block(acc_ab, k4, n4 + 1u);
    store_block(acc_ba, k4 + 1u, n4);
    store_block(acc_bb, k4 + 1u, n4 + 1u);
    if (k4 == 0u) {
        grads[shape.bias_offset / 4u + n4] = bias_a;
        if (n4 + 1u < units4) {
            grads[shape.bias_offset / 4u + n4 + 1u] = bias_b;
        }
    }
}
