//! The in-kernel tests, by subject. Each is registered with
//! [`kernel_test!`](crate::kernel_test) and run by `cargo xtask test`
//! (kernel command line `test`).

mod cmdline;
mod files;
mod frames;
mod heap;
mod memfuncs;
mod paging;
mod probes;
mod robustness;
mod shell;
mod smp;
mod soak;
mod test_page;
mod threads;
mod traps;

/// A small deterministic pseudo-random generator (xorshift64) for stress tests.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}
