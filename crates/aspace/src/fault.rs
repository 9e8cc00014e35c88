//! Faults offered to an address space, and what it made of them.

use crate::Region;
use bitflags::bitflags;
use core::fmt;

bitflags! {
    /// The error code the CPU pushes for a page fault (#PF, vector 14),
    /// Intel SDM vol. 3 §4.7.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PageFaultCode: u32 {
        /// P: 0 = the page was not present; 1 = a protection violation.
        const PRESENT = 1 << 0;
        /// W/R: the access was a write.
        const WRITE = 1 << 1;
        /// U/S: the access was made in user mode (CPL 3).
        const USER = 1 << 2;
        /// RSVD: a reserved bit was set in some paging-structure entry.
        const RESERVED = 1 << 3;
        /// I/D: the access was an instruction fetch.
        const FETCH = 1 << 4;
        /// PK: a protection-key violation.
        const PROTECTION_KEY = 1 << 5;
        /// SS: a shadow-stack access.
        const SHADOW_STACK = 1 << 6;
        /// SGX: an SGX access-control violation.
        const SGX = 1 << 15;
    }
}

impl PageFaultCode {
    /// The kind of access that faulted.
    pub fn access(self) -> FaultAccess {
        if self.contains(PageFaultCode::FETCH) {
            FaultAccess::Execute
        } else if self.contains(PageFaultCode::WRITE) {
            FaultAccess::Write
        } else {
            FaultAccess::Read
        }
    }
}

impl fmt::Display for PageFaultCode {
    /// Decodes the code bit by bit: `[not-present read supervisor]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#x} [{} {} {}",
            self.bits(),
            if self.contains(PageFaultCode::PRESENT) { "protection-violation" } else { "not-present" },
            match self.access() {
                FaultAccess::Read => "read",
                FaultAccess::Write => "write",
                FaultAccess::Execute => "instruction-fetch",
            },
            if self.contains(PageFaultCode::USER) { "user" } else { "supervisor" },
        )?;
        if self.contains(PageFaultCode::RESERVED) {
            f.write_str(" reserved-bit")?;
        }
        if self.contains(PageFaultCode::PROTECTION_KEY) {
            f.write_str(" protection-key")?;
        }
        if self.contains(PageFaultCode::SHADOW_STACK) {
            f.write_str(" shadow-stack")?;
        }
        if self.contains(PageFaultCode::SGX) {
            f.write_str(" sgx")?;
        }
        f.write_str("]")
    }
}

/// The kind of memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAccess {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

/// A fault, as the trap handler hands it to the current address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// 14 for a page fault, 13 for a general-protection fault.
    pub vector: u8,
    /// The faulting linear address (CR2) for a page fault; 0 for #GP.
    pub addr: u64,
    /// The error code (for #GP: the raw selector code, as bits).
    pub code: PageFaultCode,
    /// The instruction pointer of the faulting instruction.
    pub rip: u64,
}

impl Fault {
    /// The page-fault vector.
    pub const PAGE_FAULT: u8 = 14;
    /// The general-protection-fault vector.
    pub const GENERAL_PROTECTION: u8 = 13;

    /// A page fault at `addr` with error code `code`.
    pub const fn page_fault(addr: u64, code: PageFaultCode, rip: u64) -> Fault {
        Fault { vector: Fault::PAGE_FAULT, addr, code, rip }
    }
}

/// What an address space did with a fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The fault was fixed (a page was mapped); retry the instruction.
    Handled,
    /// The entries already allow the access (a stale TLB entry after a
    /// permission increase, or another CPU mapped it first); the stale
    /// translation has been dropped; retry.
    Spurious,
    /// Nothing this address space can do; the reason says why.
    Unhandled(UnhandledFault),
}

/// Why a fault could not be fixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnhandledFault {
    /// No region contains the address.
    NoRegion,
    /// A region contains the address but does not allow this access.
    Forbidden {
        /// The region.
        region: Region,
        /// The access it forbids.
        access: FaultAccess,
    },
    /// The access was allowed but a frame for a page table could not be had.
    OutOfMemory {
        /// The region the page belongs to.
        region: Region,
    },
    /// The CPU reported a reserved bit set in an entry: the tables are corrupt.
    ReservedBit,
    /// The fault asked a growing region ([`crate::Protection::GROW_DOWN`] or
    /// [`crate::Protection::GROW_UP`]) to grow past its maximum size or into
    /// the guard gap it must keep from its neighbour: a runaway stack.
    StackOverflow {
        /// The growing region, as it was (not grown).
        region: Region,
    },
    /// The page belongs to a region that maps a memory object (a file's
    /// pages), and lies wholly past the object's end: a kernel reports it
    /// as Linux does a touch past the end of a mapped file (`SIGBUS`).
    PastEndOfObject {
        /// The region.
        region: Region,
    },
    /// A fault this implementation does not handle at all (a #GP, or any fault
    /// in an implementation without demand paging).
    NotHandledHere,
}

impl fmt::Display for UnhandledFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnhandledFault::NoRegion => f.write_str("no region"),
            UnhandledFault::Forbidden { region, access } => {
                write!(f, "{access:?} not allowed by region {region}")
            }
            UnhandledFault::OutOfMemory { region } => {
                write!(f, "out of memory mapping a page of region {region}")
            }
            UnhandledFault::ReservedBit => f.write_str("reserved bit set in a page-table entry"),
            UnhandledFault::StackOverflow { region } => {
                write!(f, "stack overflow: region {region} may not grow past its maximum size or guard gap")
            }
            UnhandledFault::PastEndOfObject { region } => {
                write!(f, "past the end of the memory object region {region} maps")
            }
            UnhandledFault::NotHandledHere => f.write_str("not handled by this address space"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn decode() {
        assert_eq!(format!("{}", PageFaultCode::empty()), "0x0 [not-present read supervisor]");
        assert_eq!(
            format!("{}", PageFaultCode::PRESENT | PageFaultCode::WRITE),
            "0x3 [protection-violation write supervisor]"
        );
        assert_eq!(
            format!(
                "{}",
                PageFaultCode::PRESENT | PageFaultCode::FETCH | PageFaultCode::USER | PageFaultCode::RESERVED
            ),
            "0x1d [protection-violation instruction-fetch user reserved-bit]"
        );
    }

    #[test]
    fn stack_overflow_says_so() {
        let stack = Region::anonymous(0x7000, 0x1000, crate::Protection::READ | crate::Protection::GROW_DOWN);
        let text = format!("{}", UnhandledFault::StackOverflow { region: stack });
        assert!(text.starts_with("stack overflow: region 0x0000000000007000-"), "{text}");
    }
}
