//! Dense layers as matrix products: the same maths as [`crate::reference`]'s `dense_*` twins
//! (tested against them), summed in blocks by [`matmul`], with the bias and ReLU fused around
//! the product.

use super::matmul::{matmul, MatRef, Output};

/// `y[rows, units] = act(x[rows, inputs] · kernel + bias)`: the bias is written first and the
/// product added to it, ReLU applied in the same pass as nothing else.
pub fn dense_forward(x: &[f32], rows: usize, kernel: &[f32], bias: &[f32], inputs: usize, relu: bool, y: &mut [f32]) {
    let units = bias.len();
    let y = &mut y[..rows * units];
    bias_rows(bias, y);
    matmul(y, MatRef::row_major(x, rows, inputs), MatRef::row_major(kernel, inputs, units), Output::Accumulate);
    if relu {
        relu_in_place(y);
    }
}

/// Fills `y` with copies of `bias` end to end: the output a product is then added onto. A
/// block of about 4 KiB of copies is written once, then copied whole (`cycle().take().collect()`
/// went value by value, and a copy a row is a `memcpy` call per 32 values: 5% of a CNN step).
pub(super) fn bias_rows(bias: &[f32], y: &mut [f32]) {
    if bias.is_empty() {
        return;
    }
    let rows = y.len() / bias.len();
    let block = (1024 / bias.len()).clamp(1, rows.max(1)).min(rows) * bias.len();
    if block == 0 {
        return;
    }
    let (first, rest) = y.split_at_mut(block);
    first.chunks_exact_mut(bias.len()).for_each(|row| row.copy_from_slice(bias));
    for chunk in rest.chunks_mut(block) {
        chunk.copy_from_slice(&first[..chunk.len()]);
    }
}

pub(super) fn relu_in_place(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// Zeroes the gradient where the layer below's output (`below`, after its ReLU) is not positive.
pub(super) fn relu_gate(gradient: &mut [f32], below: Option<&[f32]>) {
    if let Some(below) = below {
        gradient.iter_mut().zip(below).for_each(|(g, &a)| *g = if a > 0.0 { *g } else { 0.0 });
    }
}

/// `dx = dz · kernelᵀ`, times ReLU' of the layer below when given.
pub fn dense_backward_input(
    dz: &[f32],
    rows: usize,
    kernel: &[f32],
    inputs: usize,
    units: usize,
    below: Option<&[f32]>,
    dx: &mut [f32],
) {
    let dx = &mut dx[..rows * inputs];
    matmul(dx, MatRef::row_major(dz, rows, units), MatRef::row_major(kernel, inputs, units).t(), Output::Overwrite);
    relu_gate(dx, below);
}

/// `dkernel [inputs, units] = xᵀ · dz`, `dbias [units] = Σ_rows dz`.
pub fn dense_backward_weights(
    x: &[f32],
    dz: &[f32],
    rows: usize,
    inputs: usize,
    dkernel: &mut [f32],
    dbias: &mut [f32],
) {
    let units = dbias.len();
    let x_t = MatRef::row_major(x, rows, inputs).t();
    matmul(&mut dkernel[..inputs * units], x_t, MatRef::row_major(dz, rows, units), Output::Overwrite);
    column_sums(&dz[..rows * units], dbias);
}

/// `sums = Σ_rows m[row, ·]` of a row-major matrix as wide as `sums`.
pub(super) fn column_sums(m: &[f32], sums: &mut [f32]) {
    sums.fill(0.0);
    if sums.is_empty() {
        return;
    }
    for row in m.chunks_exact(sums.len()) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::tests::{assert_close, pseudo};
    use crate::reference;

    /// Odd shapes (none a multiple of a SIMD width or a block), with and without ReLU.
    #[test]
    fn dense_kernels_match_the_reference_twins_on_odd_shapes() {
        for &(rows, inputs, units) in &[(1, 1, 1), (3, 7, 5), (37, 65, 11), (101, 129, 33)] {
            let x = pseudo(rows * inputs, 1);
            let kernel = pseudo(inputs * units, 2);
            let bias = pseudo(units, 3);
            let dz = pseudo(rows * units, 4);
            let below: Vec<f32> = pseudo(rows * inputs, 5);
            for relu in [false, true] {
                let shape = format!("{rows}×{inputs}→{units} relu {relu}");
                let mut y = vec![f32::NAN; rows * units];
                dense_forward(&x, rows, &kernel, &bias, inputs, relu, &mut y);
                assert_close(
                    &y,
                    &reference::dense_forward(&x, rows, &kernel, &bias, inputs, relu),
                    &format!("forward {shape}"),
                );
                let below = relu.then_some(below.as_slice());
                let mut dx = vec![f32::NAN; rows * inputs];
                dense_backward_input(&dz, rows, &kernel, inputs, units, below, &mut dx);
                assert_close(
                    &dx,
                    &reference::dense_backward_input(&dz, rows, &kernel, inputs, units, below),
                    &format!("dx {shape}"),
                );
            }
            let (mut dkernel, mut dbias) = (vec![f32::NAN; inputs * units], vec![f32::NAN; units]);
            dense_backward_weights(&x, &dz, rows, inputs, &mut dkernel, &mut dbias);
            let (want_dkernel, want_dbias) = reference::dense_backward_weights(&x, &dz, rows, inputs, units);
            assert_close(&dkernel, &want_dkernel, &format!("dkernel {rows}×{inputs}→{units}"));
            assert_close(&dbias, &want_dbias, &format!("dbias {rows}×{inputs}→{units}"));
        }
    }
}
