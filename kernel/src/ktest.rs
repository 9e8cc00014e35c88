//! In-kernel tests: `kernel_test!(function)` registers a test, the `test`
//! command-line mode runs them all.
//!
//! Registration writes a [`KernelTest`] into the linker section `.ktests`,
//! so tests sit next to the code they test and no central list needs
//! editing. The runner prints `test <name> ... ok` or `... FAILED: <reason>`
//! per test, then the closing line `N passed, M failed`, and powers off with
//! success only if none failed. A test that panics ends the run (the panic
//! handler reports and powers off with failure).

use alloc::string::String;

/// One registered test.
#[repr(C)]
pub struct KernelTest {
    /// The test's path, `module::function`.
    pub name: &'static str,
    /// The test: `Err(reason)` on failure.
    pub run: fn() -> Result<(), String>,
}

/// Registers a test function `fn() -> Result<(), String>`.
#[macro_export]
macro_rules! kernel_test {
    ($function:ident) => {
        const _: () = {
            #[link_section = ".ktests"]
            #[used]
            static TEST: $crate::ktest::KernelTest = $crate::ktest::KernelTest {
                name: concat!(module_path!(), "::", stringify!($function)),
                run: $function,
            };
        };
    };
}

/// Fails the current test with a formatted reason unless `condition` holds.
#[macro_export]
macro_rules! check {
    ($condition:expr) => {
        if !$condition {
            return Err(alloc::format!("check failed: {} (line {})", stringify!($condition), line!()));
        }
    };
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            return Err(alloc::format!("{} (line {})", alloc::format!($($reason)+), line!()));
        }
    };
}

/// Fails the current test unless the two values are equal.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(alloc::format!(
                "{} == {} failed: {:?} != {:?} (line {})",
                stringify!($left),
                stringify!($right),
                left,
                right,
                line!()
            ));
        }
    }};
}

extern "C" {
    static __ktests_start: u8;
    static __ktests_end: u8;
}

/// Every registered test, in link order.
pub fn tests() -> &'static [KernelTest] {
    let start = core::ptr::addr_of!(__ktests_start).cast::<KernelTest>();
    let end = core::ptr::addr_of!(__ktests_end).cast::<KernelTest>();
    // SAFETY: the linker script puts only `.ktests` between the two symbols,
    // and `kernel_test!` puts only `KernelTest` values there (each 8-aligned,
    // with a size that is a multiple of 8, so they are packed like an array).
    unsafe { core::slice::from_raw_parts(start, end.offset_from(start) as usize) }
}

/// Runs every test and reports; returns true when none failed.
pub fn run_all() -> bool {
    let (mut passed, mut failed) = (0, 0);
    for test in tests() {
        let name = test.name.strip_prefix("nacre::").unwrap_or(test.name);
        crate::print!("test {name} ... ");
        match (test.run)() {
            Ok(()) => {
                passed += 1;
                crate::println!("ok");
            }
            Err(reason) => {
                failed += 1;
                crate::println!("FAILED: {reason}");
            }
        }
    }
    crate::println!("{passed} passed, {failed} failed");
    failed == 0
}
