// adam: one Adam step over every trainable parameter at once (Keras's formulation):
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= lr_t · m / (√v + ε)
// where lr_t = lr·√(1−β2^t)/(1−β1^t) is computed on the host and passed in Step. A moment m or v
// below the smallest normal f32 in magnitude is written as 0 (flush to zero, as TensorFlow's CPU
// kernels do), and so is a parameter below 2⁻⁵⁰: with L2 the weights of silent units shrink
// geometrically, and long before they are subnormal what is computed from them (their squares,
// their products with gradients, the square of their L2 gradient in v) is, which CPU
// implementations of a GPU (lavapipe) compute many times slower (reference::NEGLIGIBLE_PARAMETER).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): lr_t
//   1 shape   uniform                   count, beta1, beta2, epsilon
//   2 params  storage, rw     f32[count]
//   3 grads   storage, read   f32[count]
//   4 m       storage, rw     f32[count]
//   5 v       storage, rw     f32[count]
// Dispatch: (min(ceil(count / 256), 65535), ceil(count / 256 / 65535), 1); one thread per parameter.

struct Shape { count: u32, beta1: f32, beta2: f32, epsilon: f32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

const SMALLEST_NORMAL: f32 = 1.17549435e-38;
const NEGLIGIBLE_PARAMETER: f32 = 8.881784e-16; // 2⁻⁵⁰

fn flushed(x: f32) -> f32 {
    return select(x, 0.0, abs(x) < SMALLEST_NORMAL);
}

fn negligible_flushed(x: f32) -> f32 {
    return select(x, 0.0, abs(x) < NEGLIGIBLE_PARAMETER);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.y * groups.x * 256u + gid.x;
    if (i >= shape.count) {
        return;
    }
    let g = grads[i];
    let m_new = shape.beta1 * m[i] + (1.0 - shape.beta1) * g;
    let v_new = shape.beta2 * v[i] + (1.0 - shape.beta2) * g * g;
    m[i] = flushed(m_new);
    v[i] = flushed(v_new);
    params[i] = negligible_flushed(params[i] - step.lr_t * m_new / (sqrt(v_new) + shape.epsilon));
}
