// dense_backward_input_tiled: dx = dz · kernelᵀ, times ReLU'(below) when the layer below is a
// ReLU (below = that layer's output; ReLU' is 1 where it is > 0), for GPUs. A workgroup of 16×16
// threads computes a 32×32 tile of dx, each thread a 2×2 block; the workgroup stages 32 columns
// of dz and of the kernel's rows at a time in workgroup memory (the kernel read transposed as it
// is staged). Any sizes.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, relu_below (0/1)
//   2 dz      storage, read   f32[rows, units]   gradient at this layer's pre-activation
//   3 params  storage, read   f32[..]            kernel [inputs, units] at kernel_offset
//   4 below   storage, read   f32[rows, inputs]  output of the layer below
//   5 dx      storage, rw     f32[rows, inputs]  gradient at the layer below's pre-activation
// Dispatch: (ceil(inputs / 32), ceil(rows / 32), 1).

struct Shape { inputs: u32, units: u32, kernel_offset: u32, relu_below: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> dz: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> below: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

const TILE: u32 = 32u;
var<workgroup> dz_tile: array<f32, 1024>; // [32 rows][32 units]
var<workgroup> w_tile: array<f32, 1024>;  // [32 units][32 inputs]

fn store(row: u32, input: u32, sum: f32) {
    if (row < step.rows && input < shape.inputs) {
        let at = row * shape.inputs + input;
        var g = sum;
        if (shape.relu_below != 0u && below[at] <= 0.0) {
            g = 0.0;
        }
        dx[at] = g;
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
    let row0 = group.y * TILE;
    let input0 = group.x * TILE;
    let r = 2u * local.y;
    let c = 2u * local.x;
    var acc0 = vec2<f32>(0.0); // row r, inputs c and c + 1
    var acc1 = vec2<f32>(0.0); // row r + 1
    for (var n0 = 0u; n0 < units; n0 = n0 + TILE) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = index + 256u * i;
            let row = row0 + e / TILE;
            let n = n0 + e % TILE;
            var g = 0.0;
            if (row < rows && n < units) {
                g = dz[row * units + n];
            }
            dz_tile[e] = g;
            // Consecutive threads read consecutive units of one kernel row.
            let input = input0 + e / TILE;
            var w = 0.0;
            if (input < inputs && n < units) {
                w = params[shape.kernel_offset + input * units + n];
            }
            w_tile[(e % TILE) * TILE + e / TILE] = w;
        }
        workgroupBarrier();
        for (var n = 0u; n < TILE; n = n + 1u) {
            let w = vec2<f32>(w_tile[n * TILE + c], w_tile[n * TILE + c + 1u]);
            acc0 = acc0 + dz_tile[r * TILE + n] * w;
            acc1 = acc1 + dz_tile[(r + 1u) * TILE + n] * w;
        }
        workgroupBarrier();
    }
    store(row0 + r, input0 + c, acc0.x);
    store(row0 + r, input0 + c + 1u, acc0.y);
    store(row0 + r + 1u, input0 + c, acc1.x);
    store(row0 + r + 1u, input0 + c + 1u, acc1.y);
}
