//! Matrix products for the fast CPU kernels: packed, cache- and register-blocked GEMM from the
//! `gemm` crate (AVX2 / AVX-512 / NEON chosen at run time natively, SIMD128 in wasm). A product
//! large enough to pay for it is split by rows of its output, a band per thread
//! ([`super::threads`]); gemm sums each output over `k` in the same order whatever the band's
//! height, so the result is the same to the bit on any number of threads (tested).

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

    /// Rows `first..first + rows` of the matrix, read from the same values. The largest index
    /// it reads, `(first + rows − 1)·row_stride + (cols − 1)·col_stride`, is the whole matrix's
    /// at most.
    #[cfg_attr(not(any(cpu_threads, test)), allow(dead_code))]
    fn row_band(self, first: usize, rows: usize) -> Self {
        assert!(first + rows <= self.rows, "rows {first}..{} of a matrix of {}", first + rows, self.rows);
        MatRef { data: &self.data[first * self.row_stride..], rows, ..self }
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
    #[cfg(cpu_threads)]
    if let bands @ 2.. = bands(m, m * k * n, n) {
        let rows_per_band = m.div_ceil(bands);
        let band = |band: usize, out: &mut [f32]| {
            gemm_on_one_thread(out, a.row_band(band * rows_per_band, out.len() / n), b, output);
        };
        if super::awake::awake() > 0 {
            super::awake::for_each_chunk_mut(&mut out[..m * n], rows_per_band * n, band);
        } else {
            use rayon::prelude::*;
            out[..m * n].par_chunks_mut(rows_per_band * n).enumerate().for_each(|(i, out)| band(i, out));
        }
        return;
    }
    gemm_on_one_thread(out, a, b, output);
}

/// `out (=|+=) a · b` on the calling thread; the shapes are checked by [`matmul`].
fn gemm_on_one_thread(out: &mut [f32], a: MatRef, b: MatRef, output: Output) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let signed = |stride: usize| isize::try_from(stride).expect("a stride that fits a pointer offset");
    // SAFETY: matmul's asserts and the constructors bound every index gemm reads or writes:
    // out[i·n + j] for i < m, j < n; a.data[i·rs + p·cs] for i < m, p < k (the largest is
    // (m−1)·rs + (k−1)·cs < data.len() for every view MatRef builds), and the same for b.
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
            gemm::Parallelism::None,
        );
    }
}

/// Multiply-adds from which a product is split into bands over threads. Measured on 2 cores
/// (`fashion-gpu bench --backend cpu`, 2 threads, 2026-12-06, against gemm's own threading from
/// 64 M): the baseline's 784×256 product at batch 100 (20 M) is faster whole (bands from 16 M:
/// 0.87×: waking the other thread costs more than half of such a product), its products at
/// batch 1,000 (33 M and 200 M) and the CNN's (from 33 M at batch 100) faster in bands (from
/// 16–32 M: the baseline at batch 1,000 1.05–1.2×, the CNN at batch 100 1.24×, at 1,000
/// 1.1×). The page's threaded worker (wasm) splits from the same size: from 1 M its baseline at
/// batch 100 trained at 0.83× one thread (bench/page-vs-jaxjs.mjs, headless Chromium, 2 cores).
#[cfg(cpu_threads)]
const THREADED_FROM: usize = 24 << 20;

/// Multiply-adds from which a product is split into bands while threads are kept awake for it
/// ([`super::awake`]): no thread has to be woken, so much smaller products pay.
#[cfg(cpu_threads)]
const AWAKE_FROM: usize = 1 << 20;

/// The fewest output rows a band gets: gemm computes 8–16 rows at a time.
#[cfg(cpu_threads)]
const ROWS_PER_BAND_AT_LEAST: usize = 16;

/// Bands of output rows a product of `multiply_adds` with `rows` output rows and `columns`
/// columns is split into: one per thread kept awake for a step and this one, or one per thread
/// of [`super::threads`] for a large product, or one for a small one or where bands would not
/// sum as the whole does ([`same_sums_in_bands`]).
#[cfg(cpu_threads)]
fn bands(rows: usize, multiply_adds: usize, columns: usize) -> usize {
    let awake = super::awake::awake();
    let threads = if awake > 0 && multiply_adds >= AWAKE_FROM {
        awake + 1
    } else if multiply_adds >= THREADED_FROM {
        super::threads()
    } else {
        1
    };
    let bands = threads.min(rows / ROWS_PER_BAND_AT_LEAST).max(1);
    if bands > 1 && same_sums_in_bands(rows.div_ceil(bands), columns) {
        bands
    } else {
        1
    }
}

/// Whether gemm (0.19) sums each output over `k` in the same order for a band of `band_rows`
/// rows of a product with `columns` columns as for the whole product. It blocks `k` the same way
/// for any number of rows (by `k` and the caches alone) except in its small-size paths, which a
/// band may take where the whole does not: rows and columns both 64 or fewer (`k` in blocks of
/// 512), or 256 outputs or fewer (horizontal kernels). Tested over shapes on both sides.
#[cfg_attr(not(cpu_threads), allow(dead_code))]
fn same_sums_in_bands(band_rows: usize, columns: usize) -> bool {
    (band_rows > 64 || columns > 64) && band_rows * columns > 256
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

    /// What makes the threaded products' results independent of the thread count: gemm sums
    /// each output over `k` in the same order whatever the height of the band it computes, for
    /// every band [`same_sums_in_bands`] allows (over shapes on either side of its limits), and
    /// `matmul` splits no other.
    #[test]
    fn a_product_in_bands_of_rows_equals_the_whole_to_the_bit() {
        let mut allowed = 0;
        for (m, k, n) in shapes(&[33, 100, 128, 784], &[10, 100, 784, 1000], &[10, 64, 65, 256]) {
            for (a_t, b_t) in [(false, false), (true, false), (false, true)] {
                let (a, b) = (pseudo(m * k, 5), pseudo(k * n, 6));
                let a_view = if a_t { MatRef::row_major(&a, k, m).t() } else { MatRef::row_major(&a, m, k) };
                let b_view = if b_t { MatRef::row_major(&b, n, k).t() } else { MatRef::row_major(&b, k, n) };
                let mut whole = vec![f32::NAN; m * n];
                gemm_on_one_thread(&mut whole, a_view, b_view, Output::Overwrite);
                for bands in [2, 3] {
                    let rows_per_band = m.div_ceil(bands);
                    if !same_sums_in_bands(rows_per_band, n) {
                        continue;
                    }
                    allowed += 1;
                    let mut banded = vec![f32::NAN; m * n];
                    for (band, out) in banded.chunks_mut(rows_per_band * n).enumerate() {
                        let rows = out.len() / n;
                        gemm_on_one_thread(out, a_view.row_band(band * rows_per_band, rows), b_view, Output::Overwrite);
                    }
                    let differ = whole.iter().zip(&banded).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
                    assert_eq!(differ, 0, "{m}×{k}×{n} (aᵀ {a_t}, bᵀ {b_t}) in {bands} bands: {differ} outputs differ");
                }
                let mut threaded = vec![f32::NAN; m * n];
                matmul(&mut threaded, a_view, b_view, Output::Overwrite);
                assert!(threaded.iter().zip(&whole).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}×{k}×{n}: matmul");
            }
        }
        assert!(allowed > 100, "{allowed} banded products checked");
        // Where gemm's small-size paths would sum in another order, no bands (found by this
        // test: 128×1000×10 in bands of 64 rows differed).
        assert!(!same_sums_in_bands(64, 64) && !same_sums_in_bands(16, 10) && same_sums_in_bands(16, 65));
    }

    fn shapes(ms: &[usize], ks: &[usize], ns: &[usize]) -> Vec<(usize, usize, usize)> {
        ms.iter().flat_map(|&m| ks.iter().flat_map(move |&k| ns.iter().map(move |&n| (m, k, n)))).collect()
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
