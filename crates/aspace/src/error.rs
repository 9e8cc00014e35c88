//! The one error type every address-space operation returns.

use crate::Region;
use alloc::string::String;
use core::fmt;

/// Which of a region's numbers an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    /// The virtual start (or a virtual range).
    Virtual,
    /// The physical start (or a physical range).
    Physical,
    /// The length.
    Length,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressKind::Virtual => "virtual address",
            AddressKind::Physical => "physical address",
            AddressKind::Length => "length",
        })
    }
}

/// Every way an address-space operation can be refused.
///
/// A refused operation changes nothing: the region set, the page tables and
/// the TLBs are as they were before the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AspaceError {
    /// A start or length is not a multiple of what the implementation requires.
    Misaligned {
        /// Which number.
        kind: AddressKind,
        /// Its value.
        value: u64,
        /// The alignment or granularity required.
        required: u64,
    },
    /// The length is zero.
    ZeroLength,
    /// `start + len` runs past the top of the 64-bit address space.
    LengthOverflow {
        /// The start that overflows.
        start: u64,
        /// The length.
        len: u64,
        /// Virtual or physical.
        kind: AddressKind,
    },
    /// A virtual address is not canonical.
    NonCanonical {
        /// The address.
        addr: u64,
    },
    /// A virtual range starts in one canonical half and ends in the other
    /// (or in the non-canonical hole between them).
    CrossesCanonicalHole {
        /// Start of the range.
        start: u64,
        /// Its length.
        len: u64,
    },
    /// A physical address is beyond what the CPU can address (MAXPHYADDR).
    PhysTooWide {
        /// The highest physical byte asked for.
        addr: u64,
        /// The CPU's physical address width.
        phys_bits: u32,
    },
    /// The flags contradict each other or hold unknown bits.
    InvalidFlags {
        /// The raw flag bits.
        flags: u32,
        /// Why they are refused.
        reason: &'static str,
    },
    /// The region overlaps an existing region in virtual addresses.
    Overlap {
        /// The existing region it collides with (the lowest, if several).
        existing: Region,
    },
    /// No region contains this virtual address.
    NoSuchRegion {
        /// The address looked up.
        va: u64,
    },
    /// A region exists there, but not the one described.
    RegionMismatch {
        /// What the caller described.
        requested: Region,
        /// What is there.
        existing: Region,
    },
    /// The region is pinned: it may not be removed or moved.
    Pinned {
        /// The pinned region.
        region: Region,
    },
    /// The edit would let the region be written, and its backing is
    /// read-only ([`crate::Protection::READ_ONLY_BACKING`]: a shared mapping
    /// of a read-only file). Linux answers the same request with `EACCES`.
    ReadOnlyBacking {
        /// The region whose backing forbids it.
        region: Region,
    },
    /// A frame (for a page table or a page) could not be allocated.
    OutOfMemory,
    /// This implementation does not offer the operation.
    Unsupported {
        /// The implementation's name.
        implementation: &'static str,
        /// What was asked for.
        operation: &'static str,
    },
    /// The address space is in use and cannot be changed that way now.
    Busy {
        /// What holds it.
        reason: &'static str,
    },
    /// No implementation by that name is registered.
    UnknownImplementation {
        /// The name asked for.
        name: String,
    },
    /// No address space by that name exists (or it was destroyed).
    UnknownAddressSpace {
        /// The name asked for.
        name: String,
    },
    /// The name is empty or holds white space.
    InvalidName {
        /// The name refused.
        name: String,
    },
    /// An address space by that name exists already.
    NameTaken {
        /// The name.
        name: String,
    },
    /// Entering the address space would leave the running code or stack unmapped.
    WouldUnmapRunning {
        /// What would be lost ("stack", "code", ...).
        what: &'static str,
        /// Its address.
        addr: u64,
    },
}

impl fmt::Display for AspaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AspaceError::*;
        match self {
            Misaligned { kind, value, required } => {
                write!(f, "{kind} {value:#x} is not a multiple of {required:#x}")
            }
            ZeroLength => f.write_str("length is zero"),
            LengthOverflow { start, len, kind } => {
                write!(f, "{kind} range {start:#x} + {len:#x} runs past the top of the address space")
            }
            NonCanonical { addr } => write!(f, "virtual address {addr:#x} is not canonical"),
            CrossesCanonicalHole { start, len } => {
                write!(f, "virtual range {start:#x} + {len:#x} crosses the non-canonical hole")
            }
            PhysTooWide { addr, phys_bits } => {
                write!(f, "physical address {addr:#x} is beyond the CPU's {phys_bits}-bit physical address width")
            }
            InvalidFlags { flags, reason } => write!(f, "flags {flags:#x} refused: {reason}"),
            Overlap { existing } => write!(f, "overlaps existing region {existing}"),
            NoSuchRegion { va } => write!(f, "no region contains {va:#x}"),
            RegionMismatch { requested, existing } => {
                write!(f, "region {requested} does not match the region there, {existing}")
            }
            Pinned { region } => write!(f, "region {region} is pinned"),
            ReadOnlyBacking { region } => {
                write!(f, "region {region} has a read-only backing (o): it can never be made writable")
            }
            OutOfMemory => f.write_str("out of memory (no free frame)"),
            Unsupported { implementation, operation } => {
                write!(f, "the {implementation} implementation does not support {operation}")
            }
            Busy { reason } => write!(f, "busy: {reason}"),
            UnknownImplementation { name } => write!(f, "no address-space implementation named '{name}'"),
            UnknownAddressSpace { name } => write!(f, "no address space named '{name}'"),
            InvalidName { name } => write!(f, "'{name}' is not a valid name (non-empty, no spaces)"),
            NameTaken { name } => write!(f, "an address space named '{name}' exists already"),
            WouldUnmapRunning { what, addr } => {
                write!(
                    f,
                    "the {what} at {addr:#x} must stay mapped to its own memory, eagerly (e), with the access the kernel needs"
                )
            }
        }
    }
}
