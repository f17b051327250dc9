// dense_backward_weights: dkernel = xᵀ · dz and dbias = Σ_rows dz, in one pass. x is read
// transposed in place. Each thread computes a 4×4 block of dkernel; the threads of the first
// block-row also sum dbias for their 4 columns.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, bias_offset
//   2 x       storage, read   f32[rows, inputs]  this layer's input
//   3 dz      storage, read   f32[rows, units]   gradient at this layer's pre-activation
//   4 grads   storage, rw     f32[..]  dkernel [inputs, units] at kernel_offset, dbias [units] at bias_offset
// Dispatch: (ceil(units / 32), ceil(inputs / 32), 1). Overwrites (does not accumulate) grads.

struct Shape { inputs: u32, units: u32, kernel_offset: u32, bias_offset: u32 }

// The host sets these to the shape's inputs and units (one pipeline per layer shape): lavapipe
// runs this kernel several times faster with its sizes known at compile time. 0: read `shape`.
override INPUTS: u32 = 0u;
override UNITS: u32 = 0u;

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let inputs = select(shape.inputs, INPUTS, INPUTS != 0u);
    let units = select(shape.units, UNITS, UNITS != 0u);
    let batch_rows = step.rows;
    let n0 = gid.x * 4u;
    let k0 = gid.y * 4u;
    if (k0 >= inputs || n0 >= units) {
        return;
    }
    let ks = min(vec4<u32>(k0, k0 + 1u, k0 + 2u, k0 + 3u), vec4<u32>(inputs - 1u));
    let ns = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(units - 1u));
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var bias_acc = vec4<f32>(0.0);
    for (var r = 0u; r < batch_rows; r = r + 1u) {
        let xr = r * inputs;
        let zr = r * units;
        let g = vec4<f32>(dz[zr + ns.x], dz[zr + ns.y], dz[zr + ns.z], dz[zr + ns.w]);
        acc0 = acc0 + x[xr + ks.x] * g;
        acc1 = acc1 + x[xr + ks.y] * g;
        acc2 = acc2 + x[xr + ks.z] * g;
        acc3 = acc3 + x[xr + ks.w] * g;
        bias_acc = bias_acc + g;
    }
    var out = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let k = k0 + i;
        if (k >= inputs) {
            break;
        }
        let v = out[i];
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (n0 + j < units) {
                grads[shape.kernel_offset + k * units + n0 + j] = v[j];
            }
        }
    }
    if (k0 == 0u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (n0 + j < units) {
                grads[shape.bias_offset + n0 + j] = bias_acc[j];
            }
        }
    }
}
