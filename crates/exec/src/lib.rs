//! # exec: static ELF64 executables to load plans, and the initial stack
//!
//! The first, host-testable piece of running unmodified static Linux x86-64
//! programs on Nacre. This crate has no hardware in it and no `unsafe`; it
//! reads bytes and computes, and the kernel's address-space code carries
//! out what it computes:
//!
//! - [`LoadPlan::parse`] (or [`LoadPlan::from_headers`], from the first
//!   bytes of a file and its size) reads an ELF file's header and program
//!   headers with the [`object`] crate (its `no_std` ELF
//!   reader), checks them, and turns each PT_LOAD into a page-aligned
//!   [`Segment`]: a private file mapping then anonymous zero pages. The plan
//!   also gives the entry point, the numbers for `AT_PHDR`, `AT_PHENT` and
//!   `AT_PHNUM`, the initial program break and the load bias.
//! - [`StackImage::build`] lays out the initial user stack, `argc`, `argv`,
//!   `envp`, the auxiliary vector and the strings, as the x86-64 System V ABI
//!   and Linux's `create_elf_tables` do, and gives the bytes to copy below
//!   the stack's top and the initial `rsp`.
//!
//! Every refusal is an [`ExecError`], never a panic, with the errno number
//! Linux's `execve(2)` would give ([`ExecError::errno`]).
//!
//! ## What is accepted
//!
//! ELF64, little-endian, EM_X86_64, EV_CURRENT, `e_phentsize` 56, at most
//! [`MAX_PROGRAM_HEADERS`] program headers, and:
//!
//! - **ET_EXEC**, loaded at the addresses it names;
//! - **ET_DYN without PT_INTERP** (a static PIE, which relocates itself),
//!   loaded so that its lowest page is at [`LoadParams::dyn_base`] (by
//!   default [`ET_DYN_BASE`], `0x5555_5555_4000`, Linux's `ELF_ET_DYN_BASE`
//!   for 4-level paging, without randomization). Linux itself puts a static
//!   PIE where `mmap` would, near the stack; the caller chooses here.
//!
//! ## Decisions
//!
//! - **Dynamically linked executables are refused** ([`ExecError::Dynamic`]):
//!   a PT_INTERP header asks for a dynamic linker, which Nacre does not have.
//! - **W^X**: a PT_LOAD both writable and executable is refused
//!   ([`ExecError::WritableAndExecutable`]), and so is a PT_GNU_STACK asking
//!   for an executable stack ([`ExecError::ExecutableStack`]); Linux would
//!   map both. Linkers have not made such segments by default for years.
//! - **Segments may not share a page**: segments are rounded out to whole
//!   pages and must not overlap then ([`ExecError::SegmentsOverlap`]). Linux
//!   lets a later segment replace an earlier one's shared page; with W^X the
//!   two could not share protections anyway.
//! - **Checked more strictly than Linux**: file bytes past the end of the
//!   file, `p_align` neither 0 nor a power of two, an entry point outside
//!   every executable segment, and a PT_PHDR that no segment loads are
//!   refused (Linux would map them, and the program would fault).
//! - **Zero-length PT_LOADs are ignored**; a PT_LOAD with no file bytes is
//!   anonymous memory, its `p_offset` neither checked nor used.
//! - **User space** is `[user_bottom, user_top)` of [`LoadParams`]: by
//!   default `[64 KiB, 2^47)` (Linux's `mmap_min_addr` keeps the pages near
//!   NULL unmapped); [`LoadParams::LINUX_5LEVEL`] has `user_top` 2^56.
//! - **Errno numbers** are ENOEXEC for a malformed or unsupported file, ENOMEM
//!   for a segment outside user space or a stack too small, E2BIG for
//!   arguments over [`ARG_MAX`], EINVAL for a bad parameter. (Linux gives
//!   EINVAL for a `p_filesz` over `p_memsz`; this crate calls it ENOEXEC, a
//!   malformed file.)
//!
//! ## A segment's mappings
//!
//! As Linux's `elf_load` maps a PT_LOAD (`p_vaddr` plus the load bias is
//! `start`, `off` is `p_offset`):
//!
//! ```text
//!  va = page_down(start)         start + p_filesz       start + p_memsz
//!  |  file pages, private, from   |  zero tail  |  anonymous zero pages   |
//!  |  file offset page_down(off)  | (padzero)   |  (the bss, vm_brk)      |
//!  +------------------------------+-------------+----------- ... ---------+
//!  va                 va + file_len     va + file_pages()        va + len
//! ```
//!
//! `file_len` is `start`'s offset in its page plus `p_filesz`; the rest of
//! the last file page reads zero ([`Segment::zero_tail`]), and the pages
//! after it up to `page_up(start + p_memsz)` are anonymous
//! ([`Segment::anonymous`]). (Linux zeroes that tail only when the segment
//! has a bss, leaving the file's next bytes there otherwise; zeroing it
//! always is the stricter choice and no program can tell.)
//!
//! ## The initial stack
//!
//! ```text
//!   top ->  +--------------------------------+
//!           | 8 zero bytes                   |
//!           | file name "...\0"     <- AT_EXECFN
//!           | envp strings "NAME=value\0"... |
//!           | argv strings "arg\0"...        |
//!           | padding to 16                  |
//!           | "x86_64\0"            <- AT_PLATFORM
//!           | 16 random bytes       <- AT_RANDOM
//!           | padding (so that rsp % 16 == 0)|
//!           | AT_NULL, 0                     |
//!           | auxv (key, value) pairs        |
//!           | NULL                           |
//!           | envp[envc-1] ... envp[0]       |
//!           | NULL                           |
//!           | argv[argc-1] ... argv[0]       |
//!   rsp ->  | argc                           |   rsp % 16 == 0
//!           +--------------------------------+
//! ```
//!
//! The auxiliary vector is in `create_elf_tables`' order: `AT_SYSINFO_EHDR`
//! and `AT_MINSIGSTKSZ` when given, `AT_HWCAP`, `AT_PAGESZ`, `AT_CLKTCK`,
//! `AT_PHDR`, `AT_PHENT`, `AT_PHNUM`, `AT_BASE`, `AT_FLAGS`, `AT_ENTRY`,
//! `AT_UID`, `AT_EUID`, `AT_GID`, `AT_EGID`, `AT_SECURE`, `AT_RANDOM`,
//! `AT_HWCAP2`, `AT_EXECFN`, `AT_PLATFORM`, `AT_NULL`. The strings, their
//! pointers and the file name may take at most [`ARG_MAX`] (128 KiB) bytes;
//! an empty `argv` gets one empty string, as Linux gives it since 5.18.
//!
//! ## Example
//!
//! ```no_run
//! use exec::{AuxValues, LoadParams, LoadPlan, StackImage, StackRequest};
//!
//! # fn run(file: &[u8]) -> Result<(), exec::ExecError> {
//! let plan = LoadPlan::parse(file, &LoadParams::LINUX_4LEVEL)?;
//! for segment in plan.segments() {
//!     // map segment.va .. segment.end() with segment.prot: the file part
//!     // from segment.file_offset, then zero the tail and the anonymous part
//! }
//! let top = 0x7fff_ffff_f000;
//! let stack = StackImage::build(&StackRequest {
//!     top,
//!     bottom: top - 8 * 1024 * 1024,
//!     argv: &[b"/bin/hello", b"world"],
//!     envp: &[b"HOME=/"],
//!     execfn: b"/bin/hello",
//!     random: [7; 16],
//!     aux: AuxValues::for_plan(&plan),
//! })?;
//! // copy stack.bytes() to stack.rsp(), then enter ring 3 at plan.entry()
//! # Ok(()) }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod auxv;
mod elf;
mod error;
mod layout;
mod plan;
mod stack;

pub use error::{errno, ExecError};
pub use layout::{
    ARG_MAX, ET_DYN_BASE, MAX_PROGRAM_HEADERS, MMAP_MIN_ADDR, PAGE_SIZE, USER_TOP_4LEVEL, USER_TOP_5LEVEL,
};
pub use plan::{ExecutableKind, LoadParams, LoadPlan, Prot, Segment};
pub use stack::{AuxValues, StackImage, StackRequest, PLATFORM};
