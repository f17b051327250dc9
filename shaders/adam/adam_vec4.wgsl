// adam, vec4 variant: the same Adam step, bindings and Shape as adam/adam.wgsl, each thread updating
// four consecutive parameters with vec4 loads and stores (a quarter of the per-lane loads on
// lavapipe and SwiftShader). The last group of a count that is not a multiple of 4 is updated
// component by component, so parameters past `count` (non-trainable statistics) are left alone.
//
// Requires: every bound buffer a multiple of 16 bytes long (the host checks, and falls back to
// adam/adam.wgsl).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): lr_t
//   1 shape   uniform                   count, beta1, beta2, epsilon
//   2 params  storage, rw     f32[count]  (as vec4)
//   3 grads   storage, read   f32[count]  (as vec4)
//   4 m       storage, rw     f32[count]  (as vec4)
//   5 v       storage, rw     f32[count]  (as vec4)
// Dispatch: (min(ceil(count / 1024), 65535), ceil(count / 1024 / 65535), 1); one thread per 4 parameters.

struct Shape { count: u32, beta1: f32, beta2: f32, epsilon: f32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;

const SMALLEST_NORMAL: f32 = 1.17549435e-38;
const NEGLIGIBLE_PARAMETER: f32 = 8.881784e-16; // 2⁻⁵⁰

// adam/adam.wgsl's flushes to zero, four lanes at once.
fn flushed(x: vec4<f32>) -> vec4<f32> {
    return select(x, vec4<f32>(0.0), abs(x) < vec4<f32>(SMALLEST_NORMAL));
}

fn negligible_flushed(x: vec4<f32>) -> vec4<f32> {
    return select(x, vec4<f32>(0.0), abs(x) < vec4<f32>(NEGLIGIBLE_PARAMETER));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.y * groups.x * 256u + gid.x;
    let first = 4u * i;
    if (first >= shape.count) {
        return;
    }
    let g = grads[i];
    let m_raw = shape.beta1 * m[i] + (1.0 - shape.beta1) * g;
    let v_raw = shape.beta2 * v[i] + (1.0 - shape.beta2) * g * g;
    let p_new = negligible_flushed(params[i] - step.lr_t * m_raw / (sqrt(v_raw) + shape.epsilon));
    let m_new = flushed(m_raw);
    let v_new = flushed(v_raw);
    if (first + 4u <= shape.count) {
        m[i] = m_new;
        v[i] = v_new;
        params[i] = p_new;
    } else {
        for (var j = 0u; first + j < shape.count; j = j + 1u) {
            m[i][j] = m_new[j];
            v[i][j] = v_new[j];
            params[i][j] = p_new[j];
        }
    }
}
