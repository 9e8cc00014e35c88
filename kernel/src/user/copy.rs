//! The one door between the kernel and user memory: every system call reads
//! and writes a program's memory through these functions, never through a
//! pointer of its own.
//!
//! Each copy first checks that the whole range lies in user space
//! (`[user_bottom, user_top)`, without wrapping past 2^64): a pointer into
//! the kernel's map, a non-canonical one or one crossing the top of user
//! space is `EFAULT` before anything is touched. The copy itself is one
//! `rep movsb` with `RFLAGS.AC` set (`stac` ... `clac`), the only window in
//! which SMAP lets the kernel touch user pages. Its address is in the
//! exception table: a page the program has not touched yet is faulted in by
//! the address-space layer as if the program had touched it; an address
//! with no region, or a write to a read-only page, ends the copy at the
//! fixup, which clears AC and returns how many bytes were left: `EFAULT`.

use super::errno::Errno;
use super::layout;
use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};

global_asm!(
    r#"
    .section .text.user_copy, "ax"

    // (dst rdi, src rsi, len rdx) -> rax = bytes not copied (0: all).
    .global nacre_user_copy_smap
nacre_user_copy_smap:
    mov rcx, rdx
    stac
.Luser_copy_smap_access:
    rep movsb
    clac
    xor eax, eax
    ret

    // The same without SMAP (a CPU without stac/clac).
    .global nacre_user_copy_plain
nacre_user_copy_plain:
    mov rcx, rdx
.Luser_copy_plain_access:
    rep movsb
    xor eax, eax
    ret

    // A fault inside `rep movsb`: RCX holds the bytes not copied.
    .global nacre_user_copy_fixup_smap
nacre_user_copy_fixup_smap:
    clac
    mov rax, rcx
    ret

    .global nacre_user_copy_fixup_plain
nacre_user_copy_fixup_plain:
    mov rax, rcx
    ret

    .section .extable, "a"
    .balign 8
    .quad .Luser_copy_smap_access, nacre_user_copy_fixup_smap
    .quad .Luser_copy_plain_access, nacre_user_copy_fixup_plain
    "#
);

extern "C" {
    fn nacre_user_copy_smap(dst: *mut u8, src: *const u8, len: usize) -> usize;
    fn nacre_user_copy_plain(dst: *mut u8, src: *const u8, len: usize) -> usize;
}

/// True when this CPU set has SMAP on (then `stac`/`clac` exist).
static SMAP: AtomicBool = AtomicBool::new(false);

/// Picks the copy routine for the CPU's protections. Called once at boot,
/// after the CPU protections are on.
pub fn init() {
    SMAP.store(crate::hardening::cpu_protections().smap, Ordering::Relaxed);
}

/// Copies `len` bytes from `src` to `dst`, one of which is user memory
/// already checked by [`check_range`]; returns the bytes not copied.
fn raw_copy(dst: *mut u8, src: *const u8, len: usize) -> usize {
    // SAFETY: the kernel side is a buffer the caller owns for `len` bytes;
    // the user side was checked to lie in user space, where a fault ends
    // the copy through the exception table instead of stopping the kernel.
    unsafe {
        if SMAP.load(Ordering::Relaxed) {
            nacre_user_copy_smap(dst, src, len)
        } else {
            nacre_user_copy_plain(dst, src, len)
        }
    }
}

/// `EFAULT` unless `[addr, addr + len)` lies in user space. An empty range
/// is accepted anywhere (Linux's `access_ok` does the same).
pub fn check_range(addr: u64, len: u64) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    let end = addr.checked_add(len).ok_or(Errno::EFAULT)?;
    if addr < layout::user_bottom() || end > layout::user_top() {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// Copies `buf.len()` bytes of user memory at `addr` into `buf`.
pub fn read(addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    check_range(addr, buf.len() as u64)?;
    match raw_copy(buf.as_mut_ptr(), addr as *const u8, buf.len()) {
        0 => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Copies `data` into user memory at `addr`.
pub fn write(addr: u64, data: &[u8]) -> Result<(), Errno> {
    check_range(addr, data.len() as u64)?;
    match raw_copy(addr as *mut u8, data.as_ptr(), data.len()) {
        0 => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Reads a plain value (an integer or a `repr(C)` structure of integers).
pub fn read_value<T: Copy + Default>(addr: u64) -> Result<T, Errno> {
    let mut value = T::default();
    // SAFETY: `value` is a `T` the caller says is plain data: any bytes are
    // a valid `T` for the integer types and structures used here.
    let bytes = unsafe { core::slice::from_raw_parts_mut(&mut value as *mut T as *mut u8, core::mem::size_of::<T>()) };
    read(addr, bytes)?;
    Ok(value)
}

/// Writes a plain value (an integer or a `repr(C)` structure of integers).
pub fn write_value<T: Copy>(addr: u64, value: &T) -> Result<(), Errno> {
    // SAFETY: reading the bytes of a plain value, padding included: the
    // structures passed here have no padding (they are laid out as Linux's).
    let bytes = unsafe { core::slice::from_raw_parts(value as *const T as *const u8, core::mem::size_of::<T>()) };
    write(addr, bytes)
}

/// Reads a NUL-terminated string of at most `max` bytes (NUL excluded) at
/// `addr`: `EFAULT` if memory ends first, `ENAMETOOLONG` if no NUL comes
/// within `max` bytes. Copies page by page, so a string that ends before
/// an unmapped page is read whole.
pub fn read_string(addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut at = addr;
    loop {
        let to_page_end = (4096 - (at % 4096)) as usize;
        let chunk = to_page_end.min(max + 1 - out.len());
        let start = out.len();
        out.resize(start + chunk, 0);
        read(at, &mut out[start..])?;
        if let Some(nul) = out[start..].iter().position(|&byte| byte == 0) {
            out.truncate(start + nul);
            return Ok(out);
        }
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        at = at.checked_add(chunk as u64).ok_or(Errno::EFAULT)?;
    }
}
