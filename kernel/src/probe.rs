//! Fault probes: read or write memory that may not be there, and get an
//! error back instead of a crash.
//!
//! This is how kernels copy from and to user memory. Each probe is a tiny
//! assembly function whose one memory access has its address listed in the
//! *exception table* (linker section `.extable`: pairs of faulting RIP and
//! fixup RIP). When a #PF or #GP hits one of those instructions and the
//! address-space layer does not handle it, the trap dispatcher calls
//! [`apply_fixup`], which puts the fault's details in registers and resumes
//! at the fixup; the fixup stores them and returns "faulted".
//!
//! Register contract of the fixup: r8 = vector, r9 = error code, r10 =
//! faulting address (CR2 for a #PF, 0 for a #GP); rdx = where to store them.
//!
//! An instruction fetch cannot be listed that way: the faulting RIP is the
//! probed address itself, which can be anything. [`probe_execute`] instead
//! `call`s the address after recording it for this CPU; a #PF whose RIP is
//! that recorded address, with the probe's return address on top of the
//! stack, is a failed fetch of the probe, and [`apply_fixup`] unwinds the
//! `call` and resumes at the same fixup.

use aspace::{AspaceError, Fault, PageFaultCode, VirtAddr};
use core::arch::global_asm;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu::without_interrupts;
use crate::percpu::{self, MAX_CPUS};

use crate::arch::frame::{vector_name, SelectorErrorCode, TrapFrame};

// Each probe: (addr in rdi, value or value_out in rsi, fault_out in rdx)
// -> rax = 0 on success, 1 when the access faulted.
global_asm!(
    r#"
    .section .text.probe, "ax"

    .global nacre_probe_read_u8
nacre_probe_read_u8:
.Lprobe_read_u8_access:
    movzx eax, byte ptr [rdi]
    mov qword ptr [rsi], rax
    xor eax, eax
    ret

    .global nacre_probe_read_u16
nacre_probe_read_u16:
.Lprobe_read_u16_access:
    movzx eax, word ptr [rdi]
    mov qword ptr [rsi], rax
    xor eax, eax
    ret

    .global nacre_probe_read_u32
nacre_probe_read_u32:
.Lprobe_read_u32_access:
    mov eax, dword ptr [rdi]
    mov qword ptr [rsi], rax
    xor eax, eax
    ret

    .global nacre_probe_read_u64
nacre_probe_read_u64:
.Lprobe_read_u64_access:
    mov rax, qword ptr [rdi]
    mov qword ptr [rsi], rax
    xor eax, eax
    ret

    .global nacre_probe_write_u8
nacre_probe_write_u8:
.Lprobe_write_u8_access:
    mov byte ptr [rdi], sil
    xor eax, eax
    ret

    .global nacre_probe_write_u16
nacre_probe_write_u16:
.Lprobe_write_u16_access:
    mov word ptr [rdi], si
    xor eax, eax
    ret

    .global nacre_probe_write_u32
nacre_probe_write_u32:
.Lprobe_write_u32_access:
    mov dword ptr [rdi], esi
    xor eax, eax
    ret

    .global nacre_probe_write_u64
nacre_probe_write_u64:
.Lprobe_write_u64_access:
    mov qword ptr [rdi], rsi
    xor eax, eax
    ret

    // (addr in rdi, fault_out in rdx): calls addr, which must return at
    // once. A #GP on the call itself (a non-canonical target) is listed
    // below; a #PF on the fetch at the target is recognised by apply_fixup.
    .global nacre_probe_execute
nacre_probe_execute:
.Lprobe_execute_call:
    call rdi
    .global nacre_probe_execute_return
nacre_probe_execute_return:
    xor eax, eax
    ret

    // Where a faulting access resumes (see the register contract above).
    .global nacre_probe_fixup
nacre_probe_fixup:
    mov qword ptr [rdx], r8
    mov qword ptr [rdx + 8], r9
    mov qword ptr [rdx + 16], r10
    mov eax, 1
    ret

    .section .extable, "a"
    .balign 8
    .quad .Lprobe_read_u8_access, nacre_probe_fixup
    .quad .Lprobe_read_u16_access, nacre_probe_fixup
    .quad .Lprobe_read_u32_access, nacre_probe_fixup
    .quad .Lprobe_read_u64_access, nacre_probe_fixup
    .quad .Lprobe_write_u8_access, nacre_probe_fixup
    .quad .Lprobe_write_u16_access, nacre_probe_fixup
    .quad .Lprobe_write_u32_access, nacre_probe_fixup
    .quad .Lprobe_write_u64_access, nacre_probe_fixup
    .quad .Lprobe_execute_call, nacre_probe_fixup
    "#
);

/// What the fixup stores: the layout the assembly above writes.
#[repr(C)]
#[derive(Default)]
struct RawFault {
    vector: u64,
    error_code: u64,
    address: u64,
}

extern "C" {
    fn nacre_probe_read_u8(addr: u64, value: *mut u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_read_u16(addr: u64, value: *mut u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_read_u32(addr: u64, value: *mut u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_read_u64(addr: u64, value: *mut u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_write_u8(addr: u64, value: u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_write_u16(addr: u64, value: u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_write_u32(addr: u64, value: u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_write_u64(addr: u64, value: u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_execute(addr: u64, unused: u64, fault: *mut RawFault) -> u64;
    fn nacre_probe_fixup();
    static nacre_probe_execute_return: u8;
    static __extable_start: ExceptionTableEntry;
    static __extable_end: ExceptionTableEntry;
}

/// One entry of the exception table.
#[repr(C)]
struct ExceptionTableEntry {
    fault_rip: u64,
    fixup_rip: u64,
}

/// The exception table, as the linker gathered it.
fn exception_table() -> &'static [ExceptionTableEntry] {
    let start = core::ptr::addr_of!(__extable_start);
    let end = core::ptr::addr_of!(__extable_end);
    // SAFETY: the linker script puts only `.extable` between the two symbols,
    // and every `.extable` entry is a pair of quads, 8-byte aligned.
    unsafe { core::slice::from_raw_parts(start, end.offset_from(start) as usize) }
}

/// The fixup for a fault at `rip`, if `rip` is a listed access.
pub fn fixup_for(rip: u64) -> Option<u64> {
    exception_table().iter().find(|entry| entry.fault_rip == rip).map(|entry| entry.fixup_rip)
}

/// The address each CPU's [`probe_execute`] is calling right now (0: none).
static EXECUTE_PROBED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Called by the trap dispatcher for a fault nobody handled: if the faulting
/// instruction is a probe's access (or the fetch of a [`probe_execute`]),
/// hands the fault to the probe's fixup and returns true.
pub fn apply_fixup(frame: &mut TrapFrame, fault: &Fault) -> bool {
    let fixup = match fixup_for(frame.rip) {
        Some(fixup) => fixup,
        None if is_failed_execute_probe(frame, fault) => {
            // Unwind the probe's `call`: drop the return address it pushed,
            // so that the fixup's `ret` returns to the probe's caller.
            frame.rsp += 8;
            nacre_probe_fixup as unsafe extern "C" fn() as usize as u64
        }
        None => return false,
    };
    frame.r8 = fault.vector as u64;
    frame.r9 = frame.error_code;
    frame.r10 = fault.addr;
    frame.rip = fixup;
    true
}

/// True when `fault` is the failed fetch of this CPU's running
/// [`probe_execute`]: a fault at the very address the probe called, with
/// the probe's return address on top of the stack. That is a #PF with CR2
/// equal to RIP (the error code's I/D bit is not required: the CPU sets it
/// only with NX or SMEP on), or a #GP for a non-canonical target when the
/// CPU completes the `call` first (QEMU does; Intel faults on the `call`
/// itself, which the exception table covers).
fn is_failed_execute_probe(frame: &TrapFrame, fault: &Fault) -> bool {
    let probed = EXECUTE_PROBED[percpu::current().id as usize].load(Ordering::Relaxed);
    let at_probed = match fault.vector {
        Fault::PAGE_FAULT => fault.addr == probed,
        Fault::GENERAL_PROTECTION => true,
        _ => false,
    };
    if probed == 0 || frame.rip != probed || !at_probed {
        return false;
    }
    let return_address = core::ptr::addr_of!(nacre_probe_execute_return) as u64;
    // SAFETY: this CPU is inside probe_execute (interrupts off, so no other
    // thread ran since it recorded `probed`), whose `call` has just pushed
    // its return address at RSP on the running thread's stack.
    let top_of_stack = unsafe { (frame.rsp as *const u64).read() };
    top_of_stack == return_address
}

/// How many bytes a probe accesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// One byte.
    U8 = 1,
    /// Two bytes.
    U16 = 2,
    /// Four bytes.
    U32 = 4,
    /// Eight bytes.
    U64 = 8,
}

impl Width {
    /// The width of `bytes` bytes (1, 2, 4 or 8).
    pub fn from_bytes(bytes: u64) -> Option<Width> {
        Some(match bytes {
            1 => Width::U8,
            2 => Width::U16,
            4 => Width::U32,
            8 => Width::U64,
            _ => return None,
        })
    }

    /// The largest value of this width.
    pub fn max_value(self) -> u64 {
        match self {
            Width::U64 => u64::MAX,
            width => (1 << (8 * width as u32)) - 1,
        }
    }
}

/// Whether a probe read, wrote or fetched an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeAccess {
    /// A read.
    Read,
    /// A write.
    Write,
    /// An instruction fetch (a call).
    Execute,
}

/// The fault a probe ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeFault {
    /// The exception: 14 (#PF) or 13 (#GP).
    pub vector: u8,
    /// The CPU's error code.
    pub error_code: u64,
    /// The address probed.
    pub probed: u64,
    /// The faulting address the CPU reported (CR2) for a #PF; for a #GP,
    /// which reports none, the probed address.
    pub address: u64,
    /// What the probe did.
    pub access: ProbeAccess,
}

impl ProbeFault {
    /// The page-fault error code, for a #PF.
    pub fn page_fault_code(&self) -> Option<PageFaultCode> {
        (self.vector == Fault::PAGE_FAULT).then(|| PageFaultCode::from_bits_retain(self.error_code as u32))
    }
}

impl fmt::Display for ProbeFault {
    /// `page fault at 0xdead00000000: 0x0 [not-present read supervisor]`, or
    /// `general-protection fault (#GP) writing 0x8000000000000000: error code
    /// 0x0 [no selector]; the address is non-canonical`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.page_fault_code() {
            Some(code) => write!(f, "page fault at {:#x}: {code}", self.address),
            None => {
                let verb = match self.access {
                    ProbeAccess::Read => "reading",
                    ProbeAccess::Write => "writing",
                    ProbeAccess::Execute => "calling",
                };
                write!(
                    f,
                    "{} {verb} {:#x}: error code {}",
                    vector_name(self.vector),
                    self.probed,
                    SelectorErrorCode(self.error_code)
                )?;
                if self.vector == Fault::GENERAL_PROTECTION {
                    let width = crate::arch::cpu::virt_width();
                    if !VirtAddr::new(self.probed).is_canonical(width) {
                        write!(f, "; the address is non-canonical ({}-bit virtual addresses)", width.bits())?;
                    }
                }
                Ok(())
            }
        }
    }
}

fn to_result(status: u64, raw: RawFault, probed: u64, access: ProbeAccess) -> Result<(), ProbeFault> {
    if status == 0 {
        return Ok(());
    }
    let address = if raw.vector == Fault::PAGE_FAULT as u64 { raw.address } else { probed };
    Err(ProbeFault { vector: raw.vector as u8, error_code: raw.error_code, probed, address, access })
}

/// Why a probe did not complete: refused before the access, or the access faulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// The bytes asked for run past 2^64 (the access would wrap to address 0)
    /// or from a canonical address into the non-canonical hole: refused
    /// before anything was touched.
    Range(AspaceError),
    /// The CPU faulted on the access.
    Fault(ProbeFault),
}

impl ProbeError {
    /// The fault, when the access was made and faulted.
    #[cfg(feature = "ktest")]
    pub fn fault(&self) -> Option<ProbeFault> {
        match self {
            ProbeError::Fault(fault) => Some(*fault),
            ProbeError::Range(_) => None,
        }
    }
}

impl From<ProbeFault> for ProbeError {
    fn from(fault: ProbeFault) -> Self {
        ProbeError::Fault(fault)
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Range(error) => write!(f, "refused: {error}"),
            ProbeError::Fault(fault) => write!(f, "{fault}"),
        }
    }
}

/// Checks the `len` bytes from `addr` that a probe (or a series of probes,
/// such as `peek`'s) is about to touch: refused when they run past 2^64 or
/// cross between a canonical address and the non-canonical hole. A range
/// wholly inside the hole is let through, so that the CPU's own #GP can be
/// seen (and is caught).
pub fn check_access(addr: u64, len: u64) -> Result<(), AspaceError> {
    if len == 0 {
        return Err(AspaceError::ZeroLength);
    }
    let last = addr.checked_add(len - 1).ok_or(AspaceError::LengthOverflow {
        start: addr,
        len,
        kind: aspace::AddressKind::Virtual,
    })?;
    let width = crate::arch::cpu::virt_width();
    if VirtAddr::new(addr).is_canonical(width) == VirtAddr::new(last).is_canonical(width) {
        // Both canonical (and `len` is far too small to span the hole from
        // one half to the other), or both in the hole.
        return Ok(());
    }
    Err(AspaceError::CrossesCanonicalHole { start: addr, len })
}

/// Reads `width` bytes at `addr`; a fault comes back as an error, and so
/// does a range that [`check_access`] refuses (without an access).
pub fn probe_read(addr: u64, width: Width) -> Result<u64, ProbeError> {
    check_access(addr, width as u64).map_err(ProbeError::Range)?;
    let mut value = 0;
    let mut raw = RawFault::default();
    let probe = match width {
        Width::U8 => nacre_probe_read_u8,
        Width::U16 => nacre_probe_read_u16,
        Width::U32 => nacre_probe_read_u32,
        Width::U64 => nacre_probe_read_u64,
    };
    // SAFETY: the probe's only access to `addr` is covered by the exception
    // table, so a fault resumes at the fixup; `value` and `raw` are valid
    // for the writes the probe and the fixup make.
    let status = unsafe { probe(addr, &mut value, &mut raw) };
    to_result(status, raw, addr, ProbeAccess::Read).map(|()| value).map_err(ProbeError::Fault)
}

/// Writes the low `width` bytes of `value` at `addr`; a fault comes back as
/// an error, and so does a range that [`check_access`] refuses (nothing is
/// written: an 8-byte write at `0xffff_ffff_ffff_fffc` would otherwise wrap
/// and write the bytes at address 0).
///
/// # Safety
/// A write that does not fault changes memory: `addr` must not hold anything
/// whose change breaks the kernel (its own code, data, stacks, tables).
pub unsafe fn probe_write(addr: u64, value: u64, width: Width) -> Result<(), ProbeError> {
    check_access(addr, width as u64).map_err(ProbeError::Range)?;
    let mut raw = RawFault::default();
    let probe = match width {
        Width::U8 => nacre_probe_write_u8,
        Width::U16 => nacre_probe_write_u16,
        Width::U32 => nacre_probe_write_u32,
        Width::U64 => nacre_probe_write_u64,
    };
    // SAFETY: a faulting write resumes at the fixup; the caller vouches for
    // the effect of a write that succeeds; `raw` is valid for the fixup.
    let status = unsafe { probe(addr, value, &mut raw) };
    to_result(status, raw, addr, ProbeAccess::Write).map_err(ProbeError::Fault)
}

/// The byte [`probe_execute`] expects at an executable target: `ret`.
pub const RET_INSTRUCTION: u8 = 0xc3;

/// Calls `addr` as a function; a fault on fetching its first instruction
/// (a page that is not present or not executable: #PF; a non-canonical
/// address: #GP) comes back as an error.
///
/// # Safety
/// When the fetch succeeds the code at `addr` runs: it must be a function
/// that returns at once and changes nothing, such as a lone `ret`
/// ([`RET_INSTRUCTION`]).
pub unsafe fn probe_execute(addr: u64) -> Result<(), ProbeFault> {
    let mut raw = RawFault::default();
    let status = without_interrupts(|| {
        // Interrupts stay off so that no other thread on this CPU runs (and
        // faults) while the probed address is recorded.
        let probed = &EXECUTE_PROBED[percpu::current().id as usize];
        probed.store(addr, Ordering::Relaxed);
        // SAFETY: a failed fetch at `addr` and a #GP on the call both resume
        // at the fixup (see `apply_fixup`); the caller vouches for the code
        // at `addr` when the fetch succeeds; `raw` is valid for the fixup.
        let status = unsafe { nacre_probe_execute(addr, 0, &mut raw) };
        probed.store(0, Ordering::Relaxed);
        status
    });
    to_result(status, raw, addr, ProbeAccess::Execute)
}
