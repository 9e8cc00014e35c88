//! memcpy, memmove, memset, memcmp against byte-at-a-time references, at
//! every small length and misalignment.

use crate::memfuncs::{memcmp, memcpy, memmove, memset};
use crate::{check, check_eq, kernel_test};
use alloc::string::String;
use alloc::vec::Vec;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn copy_and_fill_match_reference() -> Result<(), String> {
    for len in 0..70 {
        for offset in 0..8 {
            let source = pattern(len + 8, 7);
            let mut target = pattern(len + 16, 200);
            let mut expected = target.clone();
            expected[offset..offset + len].copy_from_slice(&source[offset..offset + len]);
            // SAFETY: both ranges lie inside their vectors and do not overlap.
            unsafe { memcpy(target.as_mut_ptr().add(offset), source.as_ptr().add(offset), len) };
            check!(target == expected, "memcpy len {len} offset {offset}");

            let mut filled = pattern(len + 16, 1);
            let mut expected = filled.clone();
            expected[offset..offset + len].fill(0xa5);
            // SAFETY: the range lies inside the vector.
            unsafe { memset(filled.as_mut_ptr().add(offset), 0x1a5, len) };
            check!(filled == expected, "memset len {len} offset {offset}");
        }
    }
    Ok(())
}
kernel_test!(copy_and_fill_match_reference);

fn memmove_handles_overlap_both_ways() -> Result<(), String> {
    for len in 0..80 {
        for shift in [0, 1, 7, 8, 9, 31, 32, 33] {
            let original = pattern(128, 3);
            // Forwards overlap: destination above the source.
            let mut buffer = original.clone();
            let mut expected = original.clone();
            expected.copy_within(4..4 + len, 4 + shift);
            // SAFETY: both ranges lie inside the 128-byte buffer.
            unsafe { memmove(buffer.as_mut_ptr().add(4 + shift), buffer.as_ptr().add(4), len) };
            check!(buffer == expected, "memmove up len {len} shift {shift}");
            // Backwards overlap: destination below the source.
            let mut buffer = original.clone();
            let mut expected = original.clone();
            expected.copy_within(4 + shift..4 + shift + len, 4);
            // SAFETY: as above.
            unsafe { memmove(buffer.as_mut_ptr().add(4), buffer.as_ptr().add(4 + shift), len) };
            check!(buffer == expected, "memmove down len {len} shift {shift}");
        }
    }
    Ok(())
}
kernel_test!(memmove_handles_overlap_both_ways);

fn memcmp_orders_by_first_difference() -> Result<(), String> {
    let a = pattern(100, 9);
    for len in 0..100 {
        for at in 0..len {
            let mut b = a.clone();
            b[at] = b[at].wrapping_add(1);
            // SAFETY: both slices hold at least `len` bytes.
            let (ab, ba) = unsafe { (memcmp(a.as_ptr(), b.as_ptr(), len), memcmp(b.as_ptr(), a.as_ptr(), len)) };
            let expected = a[at] as i32 - b[at] as i32;
            check_eq!(ab, expected);
            check_eq!(ba, -expected);
        }
        // SAFETY: as above.
        check_eq!(unsafe { memcmp(a.as_ptr(), a.clone().as_ptr(), len) }, 0);
    }
    // Unsigned comparison: 0x80 is greater than 0x7f.
    // SAFETY: one byte each.
    check!(unsafe { memcmp([0x80u8].as_ptr(), [0x7fu8].as_ptr(), 1) } > 0);
    Ok(())
}
kernel_test!(memcmp_orders_by_first_difference);
