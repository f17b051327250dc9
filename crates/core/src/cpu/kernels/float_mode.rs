//! Subnormal floats are many times slower in CPU arithmetic (on x86 each one takes a microcode
//! assist), and L2's geometric shrinking makes a fifth of the weights subnormal within four
//! epochs unless they are flushed. Adam flushes what it writes ([`crate::reference::flush_subnormal`]);
//! natively on x86-64 the fast kernels also run with the FPU set to flush-to-zero and
//! denormals-are-zero (MXCSR FTZ | DAZ), on the calling thread and on rayon's workers. In wasm,
//! which has no such mode, the explicit flush is what keeps them out.

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stmxcsr stores the 32-bit control register to the address given, a local u32.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
    csr
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(csr: u32) {
    // SAFETY: ldmxcsr loads the control register from a local u32; the values written here
    // differ from the thread's own only in the FTZ and DAZ bits, which cannot fault.
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags)) };
}

/// Flush-to-zero on this thread until dropped (then the mode it had comes back), so the
/// caller's own arithmetic outside the kernels keeps IEEE subnormals. ([`FloatMode::run`] sets
/// another thread's mode with it too.)
pub struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    before: u32,
}

impl FlushSubnormals {
    pub fn on_this_thread() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            FlushSubnormals::with_flush_bits(FTZ_DAZ)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            FlushSubnormals {}
        }
    }

    /// This thread's FTZ and DAZ bits set to `bits` (both, or neither) until dropped.
    #[cfg(target_arch = "x86_64")]
    fn with_flush_bits(bits: u32) -> Self {
        let before = mxcsr();
        set_mxcsr((before & !FTZ_DAZ) | bits);
        FlushSubnormals { before }
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        set_mxcsr(self.before);
    }
}

/// A thread's flush-to-zero setting, to compute on another thread as on this one: work split
/// over threads ([`super::awake`]) then gives the bits one thread would.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(cpu_threads), allow(dead_code))]
pub struct FloatMode {
    #[cfg(target_arch = "x86_64")]
    flush_bits: u32,
}

#[cfg_attr(not(cpu_threads), allow(dead_code))]
impl FloatMode {
    pub fn of_this_thread() -> Self {
        FloatMode {
            #[cfg(target_arch = "x86_64")]
            flush_bits: mxcsr() & FTZ_DAZ,
        }
    }

    /// Runs `work` on this thread in this mode, then gives the thread its own back.
    pub fn run<R>(self, work: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        let _mode = FlushSubnormals::with_flush_bits(self.flush_bits);
        work()
    }
}

/// Builds rayon's global pool (once) with flush-to-zero on every worker, which only ever run
/// kernel work. If something else built the pool first, its workers keep IEEE subnormals: the
/// results are the same up to subnormals, only slower on them.
#[cfg(not(target_arch = "wasm32"))]
pub fn start_pool() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = rayon::ThreadPoolBuilder::new()
            .start_handler(|_| std::mem::forget(FlushSubnormals::on_this_thread()))
            .build_global();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Black-boxed so the compiler cannot fold the product at build time.
    fn product(a: f32, b: f32) -> f32 {
        std::hint::black_box(a) * std::hint::black_box(b)
    }

    #[test]
    fn subnormal_results_flush_while_the_guard_lives_and_come_back_after() {
        let tiny = f32::MIN_POSITIVE;
        assert!(product(tiny, 0.25) > 0.0, "IEEE: a subnormal result");
        {
            let _flush = FlushSubnormals::on_this_thread();
            #[cfg(target_arch = "x86_64")]
            assert_eq!(product(tiny, 0.25), 0.0, "flushed to zero");
        }
        assert!(product(tiny, 0.25) > 0.0, "the thread's mode is restored");
    }

    #[test]
    fn a_mode_taken_from_one_thread_computes_as_that_thread_on_another() {
        let tiny = f32::MIN_POSITIVE;
        let ieee = FloatMode::of_this_thread();
        let flushing = {
            let _flush = FlushSubnormals::on_this_thread();
            FloatMode::of_this_thread()
        };
        let on_another_thread = |mode: FloatMode| std::thread::spawn(move || mode.run(|| product(tiny, 0.25))).join();
        assert!(on_another_thread(ieee).unwrap() > 0.0);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(on_another_thread(flushing).unwrap(), 0.0);
        let _flush = FlushSubnormals::on_this_thread();
        // (Bits compared: this thread's DAZ would read the subnormal as zero.)
        assert_ne!(ieee.run(|| product(tiny, 0.25)).to_bits(), 0, "IEEE inside the run");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(product(tiny, 0.25), 0.0, "and this thread's own mode after it");
    }
}
