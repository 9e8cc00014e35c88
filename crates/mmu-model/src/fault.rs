//! What an access through the simulated MMU can run into.

use aspace::PageFaultCode;
use core::fmt;

/// The privilege of an access: CPL 0 (supervisor) or CPL 3 (user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// CPL < 3.
    Supervisor,
    /// CPL 3.
    User,
}

/// A page fault (#PF): the faulting address (what CR2 would hold) and the
/// error code the processor would push (SDM §4.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The linear address that could not be translated.
    pub addr: u64,
    /// The error code.
    pub code: PageFaultCode,
}

impl fmt::Display for PageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page fault at {:#x}, code {}", self.addr, self.code)
    }
}

/// Why an access failed.
///
/// A non-canonical address never reaches the page tables: the processor
/// raises #GP (or #SS), not #PF (SDM vol. 1 §3.3.7.1), so it has its own
/// variant rather than a page-fault code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// The access page-faulted.
    PageFault(PageFault),
    /// The address is not canonical for the paging mode in force (#GP).
    NonCanonical,
}

impl AccessError {
    /// The page fault, if this is one.
    pub fn page_fault(self) -> Option<PageFault> {
        match self {
            AccessError::PageFault(fault) => Some(fault),
            AccessError::NonCanonical => None,
        }
    }

    /// The page-fault error code, if this is a page fault.
    pub fn code(self) -> Option<PageFaultCode> {
        self.page_fault().map(|fault| fault.code)
    }
}

impl From<PageFault> for AccessError {
    fn from(fault: PageFault) -> Self {
        AccessError::PageFault(fault)
    }
}

impl PartialEq<PageFault> for AccessError {
    fn eq(&self, other: &PageFault) -> bool {
        *self == AccessError::PageFault(*other)
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::PageFault(fault) => fault.fmt(f),
            AccessError::NonCanonical => f.write_str("general-protection fault: non-canonical address"),
        }
    }
}

impl std::error::Error for AccessError {}
