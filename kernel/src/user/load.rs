//! Building a process's address space from a static ELF executable: the
//! kernel half, the program's segments, its stack, and the initial stack
//! image (arguments, environment, auxiliary vector).
//!
//! The space is an ordinary `paging` address space, made through the
//! address-space layer (`address_space::harden::create_process_space`, so `as`,
//! `ptdump` and `asis` show it):
//! - the kernel half (`k`: supervisor-only, in the upper half): the kernel
//!   image and the direct map of physical memory, which every space the
//!   kernel runs in needs, shared with the default space (the same tables);
//!   nothing of the kernel in the lower half;
//! - each `PT_LOAD` segment as the plan of `crates/exec` gives it: a private
//!   file region over the initrd file's bytes (pages copied on first touch,
//!   the bytes past the segment's file part read zero), then an anonymous
//!   region for the rest of its memory (the bss), with the segment's exact
//!   rights (the plan refuses a segment both writable and executable);
//! - the stack, an anonymous grow-down region below [`layout::STACK_TOP`].

use super::errno::Errno;
use super::layout::{self, STACK_GUARD_GAP, STACK_INITIAL, STACK_MAX, STACK_TOP};
use crate::address_space::{self, paging_of_mut, Space};
use crate::fs::File;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use aspace::{AddressSpace, AspaceError, PhysAddr, Protection, Region};
use exec::{AuxValues, ExecError, LoadParams, LoadPlan, Prot, StackImage, StackRequest};

/// Why a program could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file is not a program this kernel runs (the reason inside).
    Exec(ExecError),
    /// The address space refused a region.
    Space(AspaceError),
}

impl LoadError {
    /// The error number `execve` would return.
    pub fn errno(&self) -> Errno {
        match self {
            LoadError::Exec(error) => Errno(error.errno()),
            LoadError::Space(_) => Errno::ENOMEM,
        }
    }
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::Exec(error) => write!(f, "{error}"),
            LoadError::Space(error) => write!(f, "the address space refused a region: {error}"),
        }
    }
}

/// Where the program may go: from Linux's `mmap_min_addr` to the end of
/// user space (a non-PIE program where it is linked); a static PIE at
/// Linux's `ELF_ET_DYN_BASE`.
pub fn load_params() -> LoadParams {
    LoadParams { user_bottom: layout::user_bottom(), user_top: layout::DEFAULT_TOP, dyn_base: exec::ET_DYN_BASE }
}

/// A program ready to start: its space and where it begins.
pub struct Loaded {
    /// The new address space.
    pub space: Arc<Space>,
    /// The entry point.
    pub entry: u64,
    /// The initial stack, to be copied to `[image.rsp(), image.top())` by
    /// the program's own thread once it runs in the space.
    pub image: StackImage,
    /// The initial program break (page aligned, above the last segment).
    pub brk: u64,
}

/// Plans `file` without building anything (for `elf` and for `run`'s
/// first check).
pub fn plan(file: &File) -> Result<LoadPlan, ExecError> {
    LoadPlan::parse(file.data(), &load_params())
}

/// Builds the address space `name` for `file` run as `argv` with `envp`.
/// On failure nothing is left behind.
pub fn load(file: &File, name: &str, argv: &[&[u8]], envp: &[&[u8]], execfn: &[u8]) -> Result<Loaded, LoadError> {
    let plan = plan(file).map_err(LoadError::Exec)?;
    let image = stack_image(&plan, argv, envp, execfn).map_err(LoadError::Exec)?;
    let space = address_space::harden::create_process_space(name).map_err(LoadError::Space)?;
    match fill(&space, file, &plan) {
        Ok(()) => Ok(Loaded { space, entry: plan.entry(), image, brk: plan.brk() }),
        Err(error) => {
            let _ = address_space::destroy(space.name());
            Err(LoadError::Space(error))
        }
    }
}

/// The access rights of a segment as region protections (user pages: no `k`).
pub fn protection(prot: Prot) -> Protection {
    let mut out = Protection::empty();
    if prot.read || prot.write || prot.exec {
        out |= Protection::READ; // x86-64 cannot map a page it cannot read
    }
    if prot.write {
        out |= Protection::WRITE;
    }
    if prot.exec {
        out |= Protection::EXEC;
    }
    out
}

fn fill(space: &Arc<Space>, file: &File, plan: &LoadPlan) -> Result<(), AspaceError> {
    let mut object = space.lock();
    let paging = paging_of_mut(&mut object).ok_or(AspaceError::Unsupported {
        implementation: "paging",
        operation: "user programs (the space is not a paging one)",
    })?;
    for segment in plan.segments() {
        let prot = protection(segment.prot);
        if segment.file_pages() > 0 {
            let region = Region::anonymous(segment.va, segment.file_pages(), prot);
            let source = PhysAddr(file.phys_addr() + segment.file_offset);
            paging.add_file_region(region, source, segment.file_len)?;
        }
        let anonymous = segment.anonymous();
        if !anonymous.is_empty() {
            paging.add_region(Region::anonymous(anonymous.start, anonymous.end - anonymous.start, prot))?;
        }
    }
    paging.set_growth_limits(STACK_MAX, STACK_GUARD_GAP)?;
    // Reads of memory never written map the zero page, as on Linux.
    paging.set_zero_page(true);
    let stack = Region::anonymous(
        STACK_TOP - STACK_INITIAL,
        STACK_INITIAL,
        Protection::READ | Protection::WRITE | Protection::GROW_DOWN,
    );
    paging.add_region(stack)?;
    Ok(())
}

/// The initial stack for `plan` (see `exec::StackImage`).
fn stack_image(plan: &LoadPlan, argv: &[&[u8]], envp: &[&[u8]], execfn: &[u8]) -> Result<StackImage, ExecError> {
    let mut aux = AuxValues::for_plan(plan);
    aux.hwcap = cpuid_1_edx();
    StackImage::build(&StackRequest {
        top: STACK_TOP,
        bottom: STACK_TOP - STACK_INITIAL,
        argv,
        envp,
        execfn,
        random: super::random::bytes16(),
        aux,
    })
}

/// `AT_HWCAP` on x86: CPUID leaf 1's EDX, as Linux gives it.
fn cpuid_1_edx() -> u64 {
    core::arch::x86_64::__cpuid(1).edx as u64
}

/// A name for the space of process `pid` running `program`.
pub fn space_name(program: &str, pid: u32) -> String {
    format!("{program}.{pid}")
}
