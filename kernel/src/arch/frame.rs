//! What a trap leaves behind: the frame the entry stubs build, and the
//! names and decodings of exception vectors and error codes. The lowest part
//! of the trap path: the stubs, the dispatcher, the probes and the context
//! switch all read it, and it imports none of them.

use super::sse::SseRegisters;
#[cfg(feature = "ktest")]
use aspace::{Fault, PageFaultCode};
use core::fmt;

/// Everything the entry stub saved, lowest address first: the interrupted
/// code's SSE registers (see [`super::sse`] for why not the x87 state), its
/// general registers, the vector and error code,
/// and the frame the CPU pushed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapFrame {
    /// SSE registers of the interrupted code.
    pub sse: SseRegisters,
    /// r15.
    pub r15: u64,
    /// r14.
    pub r14: u64,
    /// r13.
    pub r13: u64,
    /// r12.
    pub r12: u64,
    /// r11.
    pub r11: u64,
    /// r10.
    pub r10: u64,
    /// r9.
    pub r9: u64,
    /// r8.
    pub r8: u64,
    /// rbp.
    pub rbp: u64,
    /// rdi.
    pub rdi: u64,
    /// rsi.
    pub rsi: u64,
    /// rdx.
    pub rdx: u64,
    /// rcx.
    pub rcx: u64,
    /// rbx.
    pub rbx: u64,
    /// rax.
    pub rax: u64,
    /// The vector (0..=255).
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    /// Where the interrupted code resumes (for a fault: the faulting instruction).
    pub rip: u64,
    /// Its code segment.
    pub cs: u64,
    /// Its flags.
    pub rflags: u64,
    /// Its stack pointer.
    pub rsp: u64,
    /// Its stack segment.
    pub ss: u64,
}

impl TrapFrame {
    /// A frame with every register, selector and the vector zero: what the
    /// frames made by hand start from.
    pub const fn zeroed() -> TrapFrame {
        TrapFrame {
            sse: SseRegisters::new(),
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: 0,
            error_code: 0,
            rip: 0,
            cs: 0,
            rflags: 0,
            rsp: 0,
            ss: 0,
        }
    }

    /// A frame as the entry stub would build it for a #PF with error code
    /// `code` at `rip`: for testing the fault report with a made-up fault.
    #[cfg(feature = "ktest")]
    pub fn page_fault(code: PageFaultCode, rip: u64) -> TrapFrame {
        TrapFrame {
            vector: Fault::PAGE_FAULT as u64,
            error_code: code.bits() as u64,
            rip,
            cs: 0x8,
            rflags: 0x2,
            ss: 0x10,
            ..TrapFrame::zeroed()
        }
    }

    /// The vector as a byte.
    pub fn vector(&self) -> u8 {
        self.vector as u8
    }
}

/// The name of an exception vector (or "interrupt" above 31).
pub fn vector_name(vector: u8) -> &'static str {
    const NAMES: [&str; 32] = [
        "divide error (#DE)",
        "debug (#DB)",
        "non-maskable interrupt (NMI)",
        "breakpoint (#BP)",
        "overflow (#OF)",
        "bound range exceeded (#BR)",
        "invalid opcode (#UD)",
        "device not available (#NM)",
        "double fault (#DF)",
        "coprocessor segment overrun",
        "invalid TSS (#TS)",
        "segment not present (#NP)",
        "stack-segment fault (#SS)",
        "general-protection fault (#GP)",
        "page fault (#PF)",
        "reserved (15)",
        "x87 floating-point error (#MF)",
        "alignment check (#AC)",
        "machine check (#MC)",
        "SIMD floating-point exception (#XM)",
        "virtualization exception (#VE)",
        "control protection exception (#CP)",
        "reserved (22)",
        "reserved (23)",
        "reserved (24)",
        "reserved (25)",
        "reserved (26)",
        "reserved (27)",
        "hypervisor injection exception (#HV)",
        "VMM communication exception (#VC)",
        "security exception (#SX)",
        "reserved (31)",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

/// Decodes a selector error code (#TS, #NP, #SS, #GP): which descriptor
/// table entry was at fault, if any.
pub struct SelectorErrorCode(pub u64);

impl fmt::Display for SelectorErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.0;
        if code == 0 {
            return write!(f, "0x0 [no selector]");
        }
        let table = if code & 0b10 != 0 {
            "IDT"
        } else if code & 0b100 != 0 {
            "LDT"
        } else {
            "GDT"
        };
        write!(f, "{code:#x} [{table} entry {}", (code >> 3) & 0x1fff)?;
        if code & 1 != 0 {
            f.write_str(", external event")?;
        }
        f.write_str("]")
    }
}
