//! The numbers of the x86-64 Linux process layout this crate follows, and
//! page arithmetic.

/// The page size: the granularity of every segment in a [`LoadPlan`](crate::plan::LoadPlan).
pub const PAGE_SIZE: u64 = 4096;

/// The end of user space with 4-level paging: the lower canonical half,
/// `[0, 2^47)`.
pub const USER_TOP_4LEVEL: u64 = 0x0000_8000_0000_0000;

/// The end of user space with 5-level paging: the lower canonical half,
/// `[0, 2^56)`.
pub const USER_TOP_5LEVEL: u64 = 0x0100_0000_0000_0000;

/// Linux's lowest address a program may map (`vm.mmap_min_addr`, 64 KiB by
/// default): the pages below stay unmapped so that a NULL pointer faults.
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;

/// Where a static PIE's lowest page goes by default: Linux's
/// `ELF_ET_DYN_BASE` for x86-64 with 4-level paging, two thirds of the way
/// up user space, page aligned (`2 * 0x7fff_ffff_f000 / 3` rounded down to
/// a page), without address-space randomization.
pub const ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// The most program headers an executable may have. (Linux allows 1170, as
/// many as fit in 64 KiB; real static executables have about a dozen.)
pub const MAX_PROGRAM_HEADERS: usize = 64;

/// The most bytes the argument and environment strings may take, with their
/// NULs, their pointers and the file name: a small `ARG_MAX` (Linux's
/// historical 32 pages).
pub const ARG_MAX: u64 = 128 * 1024;

/// `addr` rounded down to a page boundary.
pub(crate) const fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// `addr` rounded up to a page boundary, or `None` past 2^64.
pub(crate) const fn page_up(addr: u64) -> Option<u64> {
    match addr.checked_add(PAGE_SIZE - 1) {
        Some(sum) => Some(page_down(sum)),
        None => None,
    }
}

/// The offset of `addr` in its page.
pub(crate) const fn page_offset(addr: u64) -> u64 {
    addr & (PAGE_SIZE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_arithmetic() {
        assert_eq!((page_down(0x1fff), page_down(0x2000)), (0x1000, 0x2000));
        assert_eq!((page_up(0), page_up(1), page_up(0x1000)), (Some(0), Some(0x1000), Some(0x1000)));
        assert_eq!(page_up(u64::MAX - 0xffe), None);
        assert_eq!(page_up(u64::MAX - 0xfff), Some(u64::MAX - 0xfff));
        assert_eq!(page_offset(0x1234), 0x234);
    }

    #[test]
    fn linux_numbers() {
        // ELF_ET_DYN_BASE: 2/3 of TASK_SIZE (2^47 - 4096), page aligned.
        assert_eq!(ET_DYN_BASE, page_down((USER_TOP_4LEVEL - PAGE_SIZE) / 3 * 2));
        assert_eq!(USER_TOP_5LEVEL, 1 << 56);
    }
}
