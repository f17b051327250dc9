// dense_forward_tiled: y = act(x · kernel + bias), for GPUs. A workgroup of 16×16 threads
// computes a 32×32 tile of y, each thread a 2×2 block; the workgroup stages 32 columns of x and
// 32 rows of the kernel at a time in workgroup memory, so each value read from storage feeds 32
// multiply-adds. Any sizes: values past the batch, the inputs or the units read as 0 and are
// never stored.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   inputs, units, kernel_offset, bias_offset, relu (0/1)
//   2 x       storage, read   f32[rows, inputs]
//   3 params  storage, read   f32[..]  kernel [inputs, units] at kernel_offset, bias [units] at bias_offset
//   4 y       storage, rw     f32[rows, units]
// Dispatch: (ceil(units / 32), ceil(rows / 32), 1).

struct Shape { inputs: u32, units: u32, kernel_offset: u32, bias_offset: u32, relu: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TILE: u32 = 32u;
var<workgroup> x_tile: array<f32, 1024>; // [32 rows][32 k]
var<workgroup> w_tile: array<f32, 1024>; // [32 k][32 units]

fn store(row: u32, unit: u32, sum: f32) {
    if (row < step.rows && unit < shape.units) {
        var v = sum + params[shape.bias_offset + unit];
        if (shape.relu != 0u) {
            v = max(v, 0.0);
        }
        y[row * shape.units + unit] = v;
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
    let unit0 = group.x * TILE;
    let r = 2u * local.y;
    let n = 2u * local.x;
    var acc0 = vec2<f32>(0.0); // row r, units n and n + 1
    var acc1 = vec2<f32>(0.0); // row r + 1
    for (var k0 = 0u; k0 < inputs; k0 = k0 + TILE) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = index + 256u * i;
            let row = row0 + e / TILE;
            let k = k0 + e % TILE;
            var xv = 0.0;
            if (row < rows && k < inputs) {
                xv = x[row * inputs + k];
            }
            x_tile[e] = xv;
            let kw = k0 + e / TILE;
            let unit = unit0 + e % TILE;
            var wv = 0.0;
            if (kw < inputs && unit < units) {
                wv = params[shape.kernel_offset + kw * units + unit];
            }
            w_tile[e] = wv;
        }
        workgroupBarrier();
        for (var k = 0u; k < TILE; k = k + 1u) {
            let w = vec2<f32>(w_tile[k * TILE + n], w_tile[k * TILE + n + 1u]);
            acc0 = acc0 + x_tile[r * TILE + k] * w;
            acc1 = acc1 + x_tile[(r + 1u) * TILE + k] * w;
        }
        workgroupBarrier();
    }
    store(row0 + r, unit0 + n, acc0.x);
    store(row0 + r, unit0 + n + 1u, acc0.y);
    store(row0 + r + 1u, unit0 + n, acc1.x);
    store(row0 + r + 1u, unit0 + n + 1u, acc1.y);
}
