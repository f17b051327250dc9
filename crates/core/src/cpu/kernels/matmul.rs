//! Matrix products for the fast CPU kernels: packed, cache- and register-blocked GEMM from the
//! `gemm` crate (AVX2 / AVX-512 / NEON chosen at run time natively, SIMD128 in wasm), threaded
//! through rayon ([`super::threads`]) when a product is large enough to pay for it.

/// A matrix read in place from a slice: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// `data` as a row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "a {rows}×{cols} matrix needs {} values, got {}", rows * cols, data.len());
        MatRef { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose, read from the same values.
    pub fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
}

/// Whether a product overwrites its output or adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Overwrite,
    Accumulate,
}

/// `out[a.rows × b.cols] (=|+=) a · b`, `out` row-major.
pub fn matmul(out: &mut [f32], a: MatRef, b: MatRef, output: Output) {
    assert_eq!(a.cols, b.rows, "inner dimensions of a {}×{} · {}×{} product", a.rows, a.cols, b.rows, b.cols);
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(out.len() >= m * n, "a {m}×{n} product needs {} outputs, got {}", m * n, out.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if output == Output::Overwrite {
            out[..m * n].fill(0.0);
        }
        return;
    }
    let signed = |stride: usize| isize::try_from(stride).expect("a stride that fits a pointer offset");
    // SAFETY: the asserts above and the constructors' bound every index gemm reads or writes:
    // out[i·n + j] for i < m, j < n; a.data[i·rs + p·cs] for i < m, p < k (the largest is
    // (m−1)·rs + (k−1)·cs < data.len() for both layouts MatRef builds), and the same for b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            signed(n),
            output == Output::Accumulate,
            a.data.as_ptr(),
            signed(a.col_stride),
            signed(a.row_stride),
            b.data.as_ptr(),
            signed(b.col_stride),
            signed(b.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(m * k * n),
        );
    }
}

/// Multiply-adds from which a product is split over threads. Measured on 2 cores
/// (`fashion-gpu bench --backend cpu`, quiet machine): the baseline at batch 100 (products of
/// 20 M multiply-adds at most) trains at 37–41k samples/s on one thread and 20–33k on two
/// (waking the other thread costs more than half of such a product); at batch 1,000 (200 M) two
/// threads give 73k against 57k. The page's threaded worker agrees (bench/page-vs-jaxjs.mjs,
/// headless Chromium, 2 cores, 2026-12-06): from 1 M the baseline at batch 100 ran at 0.82× one
/// thread, from 4 M at about 0.9×; at batch 1,000, from 1 M, at 1.02–1.11×.
#[cfg(cpu_threads)]
const THREADED_FROM: usize = 64 << 20;

/// Every thread of [`super::threads`] for large products, one for small ones.
fn parallelism(multiply_adds: usize) -> gemm::Parallelism {
    #[cfg(cpu_threads)]
    if multiply_adds >= THREADED_FROM && super::threads() > 1 {
        return gemm::Parallelism::Rayon(0);
    }
    let _ = multiply_adds;
    gemm::Parallelism::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::tests::pseudo;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, a_t: bool, b_t: bool) -> Vec<f32> {
        let at = |i: usize, p: usize| if a_t { a[p * m + i] } else { a[i * k + p] };
        let bt = |p: usize, j: usize| if b_t { b[j * k + p] } else { b[p * n + j] };
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| f64::from(at(i, p)) * f64::from(bt(p, j))).sum::<f64>() as f32;
            }
        }
        out
    }

    /// Every transpose combination on odd shapes.
    #[test]
    fn products_match_the_naive_sum_on_odd_shapes_and_transposes() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (17, 33, 9), (100, 31, 13), (129, 257, 65)] {
            for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (pseudo(m * k, 1), pseudo(k * n, 2));
                let a_view = if a_t { MatRef::row_major(&a, k, m).t() } else { MatRef::row_major(&a, m, k) };
                let b_view = if b_t { MatRef::row_major(&b, n, k).t() } else { MatRef::row_major(&b, k, n) };
                let mut out = vec![f32::NAN; m * n];
                matmul(&mut out, a_view, b_view, Output::Overwrite);
                let want = naive(&a, &b, m, k, n, a_t, b_t);
                for (i, (&got, &want)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (got - want).abs() < 1e-4 * (k as f32).sqrt(),
                        "{m}×{k}×{n} {a_t}/{b_t} [{i}]: {got} vs {want}"
                    );
                }
                let before = out.clone();
                matmul(&mut out, a_view, b_view, Output::Accumulate);
                for (&twice, &once) in out.iter().zip(&before) {
                    assert!((twice - 2.0 * once).abs() < 1e-4 * (k as f32).sqrt());
                }
            }
        }
    }

    /// A product large enough to be split over threads (natively), with a transposed operand.
    #[test]
    fn a_threaded_product_matches_the_naive_sum() {
        let (m, k, n) = (520, 500, 260);
        assert!(m * k * n >= THREADED_FROM);
        let (a, b) = (pseudo(m * k, 3), pseudo(k * n, 4));
        let mut out = vec![f32::NAN; m * n];
        matmul(&mut out, MatRef::row_major(&a, k, m).t(), MatRef::row_major(&b, k, n), Output::Overwrite);
        let want = naive(&a, &b, m, k, n, true, false);
        for (i, (&got, &want)) in out.iter().zip(&want).enumerate() {
            assert!((got - want).abs() < 1e-4 * (k as f32).sqrt(), "[{i}]: {got} vs {want}");
        }
    }

    #[test]
    fn an_empty_inner_dimension_gives_zeros() {
        let mut out = vec![5.0; 6];
        matmul(&mut out, MatRef::row_major(&[], 2, 0), MatRef::row_major(&[], 0, 3), Output::Overwrite);
        assert_eq!(out, [0.0; 6]);
    }
}
