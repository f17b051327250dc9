// dense_backward_weights_tiled: dkernel = xᵀ · dz and dbias = Σ_rows dz, for GPUs, as one product:
// dbias is the row `inputs` of [x | 1]ᵀ · dz (x with a column of ones). A workgroup of 16×16
// threads computes a 32×32 tile of that [inputs + 1, units] result, each thread a 2×2 block; the
// workgroup stages 32 batch rows of x and dz at a time in workgroup memory (x transposed as it is
// staged). Any sizes. Each output sums the rows in order: the same order for every run.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, bias_offset
//   2 x       storage, read   f32[rows, inputs]  this layer's input
//   3 dz      storage, read   f32[rows, units]   gradient at this layer's pre-activation
//   4 grads   storage, rw     f32[..]  dkernel [inputs, units] at kernel_offset, dbias [units] at bias_offset
// Dispatch: (ceil(units / 32), ceil((inputs + 1) / 32), 1). Overwrites (does not accumulate) grads.

struct Shape { inputs: u32, units: u32, kernel_offset: u32, bias_offset: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;

const TILE: u32 = 32u;
var<workgroup> x_tile: array<f32, 1024>;  // [32 inputs][32 rows]
var<workgroup> dz_tile: array<f32, 1024>; // [32 rows][32 units]

fn store(input: u32, unit: u32, sum: f32) {
    if (unit >= shape.units) {
        return;
    }
    if (input < shape.inputs) {
        grads[shape.kernel_offset + input * shape.units + unit] = sum;
    } else if (input == shape.inputs) {
        grads[shape.bias_offset + unit] = sum;
    }
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) index: u32,
) {
    let rows = step.rows;
    let inputs = shape.inputs;
    let units = shape.units;
    let input0 = group.y * TILE;
    let unit0 = group.x * TILE;
    let i = 2u * local.y;
    let n = 2u * local.x;
    var acc0 = vec2<f32>(0.0); // input i, units n and n + 1
    var acc1 = vec2<f32>(0.0); // input i + 1
    for (var r0 = 0u; r0 < rows; r0 = r0 + TILE) {
        for (var s = 0u; s < 4u; s = s + 1u) {
            let e = index + 256u * s;
            // Consecutive threads read consecutive inputs of one batch row.
            let row = r0 + e / TILE;
            let input = input0 + e % TILE;
            var xv = 0.0;
            if (row < rows && input < inputs) {
                xv = x[row * inputs + input];
            } else if (row < rows && input == inputs) {
                xv = 1.0;
            }
            x_tile[(e % TILE) * TILE + e / TILE] = xv;
            let unit = unit0 + e % TILE;
            var g = 0.0;
            if (row < rows && unit < units) {
                g = dz[row * units + unit];
            }
            dz_tile[e] = g;
        }
        workgroupBarrier();
        for (var r = 0u; r < TILE; r = r + 1u) {
            let g = vec2<f32>(dz_tile[r * TILE + n], dz_tile[r * TILE + n + 1u]);
            acc0 = acc0 + x_tile[i * TILE + r] * g;
            acc1 = acc1 + x_tile[(i + 1u) * TILE + r] * g;
        }
        workgroupBarrier();
    }
    store(input0 + i, unit0 + n, acc0.x);
    store(input0 + i, unit0 + n + 1u, acc0.y);
    store(input0 + i + 1u, unit0 + n, acc1.x);
    store(input0 + i + 1u, unit0 + n + 1u, acc1.y);
}
