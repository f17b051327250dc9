// l2/workgroup_sum.wgsl: the sum of one value per invocation of a 256-invocation workgroup, halved
// in workgroup memory in a fixed order (the same sum every run). The host prepends it to the
// kernels that reduce this way; every invocation calls it, from uniform control flow.

const SUM_INVOCATIONS: u32 = 256u;
var<workgroup> sum_scratch: array<f32, SUM_INVOCATIONS>;

fn workgroup_sum(tid: u32, value: f32) -> f32 {
    sum_scratch[tid] = value;
    workgroupBarrier();
    for (var stride = SUM_INVOCATIONS / 2u; stride > 0u; stride = stride / 2u) {
        if (tid < stride) {
            sum_scratch[tid] = sum_scratch[tid] + sum_scratch[tid + stride];
        }
        workgroupBarrier();
    }
    return sum_scratch[0];
}
