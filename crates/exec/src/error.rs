//! [`ExecError`]: every reason an executable or a stack request is refused,
//! each with the errno number Linux's `execve(2)` would return.

use core::fmt;

/// Linux's errno numbers (x86-64, `asm-generic/errno-base.h`) that
/// [`ExecError::errno`] returns.
pub mod errno {
    /// Argument list too long.
    pub const E2BIG: i32 = 7;
    /// Exec format error: the file is no executable this loader runs.
    pub const ENOEXEC: i32 = 8;
    /// Out of memory, or no room at the address asked for.
    pub const ENOMEM: i32 = 12;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
}

/// Why an executable or an initial stack was refused.
///
/// `index` fields name a program header by its position in the table (from
/// 0), as `readelf -l` lists them. Nothing is ever refused by a panic: every
/// input, however malformed, gives a plan or one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecError {
    /// The file is shorter than an ELF64 file header (64 bytes).
    TruncatedHeader {
        /// The bytes there are.
        len: u64,
    },
    /// The file does not start with the ELF magic `\x7fELF`.
    NotElf,
    /// The ELF class is not ELFCLASS64.
    NotElf64 {
        /// `e_ident[EI_CLASS]`.
        class: u8,
    },
    /// The data encoding is not ELFDATA2LSB (little-endian).
    NotLittleEndian {
        /// `e_ident[EI_DATA]`.
        data: u8,
    },
    /// The ELF version (in `e_ident` or `e_version`) is not EV_CURRENT (1).
    BadVersion {
        /// The version found.
        version: u32,
    },
    /// The machine is not EM_X86_64 (62).
    WrongMachine {
        /// `e_machine`.
        machine: u16,
    },
    /// The file type is neither ET_EXEC (2) nor ET_DYN (3).
    WrongType {
        /// `e_type`.
        e_type: u16,
    },
    /// `e_phentsize` is not the size of an ELF64 program header (56).
    BadProgramHeaderSize {
        /// `e_phentsize`.
        phentsize: u16,
    },
    /// More program headers than [`MAX_PROGRAM_HEADERS`](crate::layout::MAX_PROGRAM_HEADERS).
    TooManyProgramHeaders {
        /// `e_phnum`.
        phnum: u16,
    },
    /// The program header table runs past the end of the bytes given (or
    /// past 2^64).
    TruncatedProgramHeaders {
        /// `e_phoff`.
        phoff: u64,
        /// `e_phnum`.
        phnum: u16,
    },
    /// A PT_INTERP header: the program wants a dynamic linker. Dynamically
    /// linked executables are not supported, only static ones (ET_EXEC and
    /// static PIE).
    Dynamic,
    /// PT_GNU_STACK asks for an executable stack: a stack both writable and
    /// executable breaks W^X.
    ExecutableStack,
    /// No PT_LOAD header with a non-zero memory size.
    NoLoadSegment,
    /// A PT_LOAD header's `p_filesz` is larger than its `p_memsz`.
    FileSizeOverMemSize {
        /// The program header.
        index: usize,
        /// `p_filesz`.
        filesz: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// A PT_LOAD header's file bytes run past the end of the file, or
    /// `p_offset + p_filesz` overflows a `u64`.
    SegmentPastFileEnd {
        /// The program header.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        filesz: u64,
        /// The file's size.
        file_size: u64,
    },
    /// A PT_LOAD header's `p_align` is neither 0 nor a power of two.
    BadAlignment {
        /// The program header.
        index: usize,
        /// `p_align`.
        align: u64,
    },
    /// A PT_LOAD header's `p_vaddr` and `p_offset` differ modulo the page
    /// size, so the file cannot be mapped page by page.
    Misaligned {
        /// The program header.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_offset`.
        offset: u64,
    },
    /// A PT_LOAD header's addresses, with the load bias, overflow a `u64`.
    AddressOverflow {
        /// The program header.
        index: usize,
    },
    /// A PT_LOAD header is both writable and executable (W^X refuses it).
    WritableAndExecutable {
        /// The program header.
        index: usize,
    },
    /// A segment's pages fall outside user space.
    OutsideUserSpace {
        /// The program header.
        index: usize,
        /// The first page's address (load bias included).
        start: u64,
        /// The address past the last page.
        end: u64,
    },
    /// Two segments share a page (after rounding out to whole pages).
    SegmentsOverlap {
        /// The program header of the lower segment.
        first: usize,
        /// The program header of the higher one.
        second: usize,
    },
    /// The entry point (load bias included) is in no executable segment.
    EntryNotExecutable {
        /// The entry point.
        entry: u64,
    },
    /// PT_PHDR names a program header table that no PT_LOAD header loads.
    PhdrNotLoaded {
        /// The table's address (load bias included, wrapping).
        vaddr: u64,
    },
    /// A parameter given by the caller is invalid.
    BadParameter {
        /// Which, and why.
        what: &'static str,
    },
    /// The argument and environment strings (with their pointers and the
    /// file name) are larger than [`ARG_MAX`](crate::layout::ARG_MAX).
    ArgumentsTooLong {
        /// The bytes they need.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// An argument, environment string or file name holds a NUL byte, so it
    /// cannot be passed as a C string.
    NulInString,
    /// The initial stack does not fit between the stack's bottom and top.
    StackTooSmall {
        /// The bytes the initial stack needs.
        needed: u64,
        /// The bytes there are.
        room: u64,
    },
}

impl ExecError {
    /// The errno number Linux's `execve(2)` returns for this refusal:
    /// [`ENOEXEC`](errno::ENOEXEC) for a file that is malformed or not
    /// supported, [`E2BIG`](errno::E2BIG) for arguments too long,
    /// [`ENOMEM`](errno::ENOMEM) for no room (outside user space, a stack too
    /// small), [`EINVAL`](errno::EINVAL) for a bad parameter.
    pub fn errno(&self) -> i32 {
        use ExecError::*;
        match self {
            ArgumentsTooLong { .. } => errno::E2BIG,
            OutsideUserSpace { .. } | StackTooSmall { .. } => errno::ENOMEM,
            BadParameter { .. } | NulInString => errno::EINVAL,
            TruncatedHeader { .. }
            | NotElf
            | NotElf64 { .. }
            | NotLittleEndian { .. }
            | BadVersion { .. }
            | WrongMachine { .. }
            | WrongType { .. }
            | BadProgramHeaderSize { .. }
            | TooManyProgramHeaders { .. }
            | TruncatedProgramHeaders { .. }
            | Dynamic
            | ExecutableStack
            | NoLoadSegment
            | FileSizeOverMemSize { .. }
            | SegmentPastFileEnd { .. }
            | BadAlignment { .. }
            | Misaligned { .. }
            | AddressOverflow { .. }
            | WritableAndExecutable { .. }
            | SegmentsOverlap { .. }
            | EntryNotExecutable { .. }
            | PhdrNotLoaded { .. } => errno::ENOEXEC,
        }
    }
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ExecError::*;
        match *self {
            TruncatedHeader { len } => write!(f, "truncated: {len} bytes, shorter than an ELF64 header (64 bytes)"),
            NotElf => f.write_str("not an ELF file (no \\x7fELF magic)"),
            NotElf64 { class } => write!(f, "ELF class {class} is not ELFCLASS64: only 64-bit executables run"),
            NotLittleEndian { data } => write!(f, "ELF data encoding {data} is not little-endian"),
            BadVersion { version } => write!(f, "ELF version {version} is not EV_CURRENT (1)"),
            WrongMachine { machine } => write!(f, "machine {machine} is not x86-64 (EM_X86_64, 62)"),
            WrongType { e_type } => {
                write!(f, "ELF type {e_type} is not an executable (ET_EXEC, 2) or a position-independent one (ET_DYN, 3)")
            }
            BadProgramHeaderSize { phentsize } => {
                write!(f, "program header entries of {phentsize} bytes, not 56 (Elf64_Phdr)")
            }
            TooManyProgramHeaders { phnum } => {
                write!(f, "{phnum} program headers, more than the {} allowed", crate::layout::MAX_PROGRAM_HEADERS)
            }
            TruncatedProgramHeaders { phoff, phnum } => {
                write!(f, "truncated: the {phnum} program headers at offset {phoff:#x} run past the end of the file")
            }
            Dynamic => f.write_str(
                "dynamically linked executable (PT_INTERP): not supported, only static executables and static PIEs run",
            ),
            ExecutableStack => f.write_str("PT_GNU_STACK asks for an executable stack: refused (W^X)"),
            NoLoadSegment => f.write_str("no PT_LOAD segment: nothing to load"),
            FileSizeOverMemSize { index, filesz, memsz } => {
                write!(f, "segment {index}: file size {filesz:#x} is larger than its memory size {memsz:#x}")
            }
            SegmentPastFileEnd { index, offset, filesz, file_size } => write!(
                f,
                "segment {index}: file bytes {offset:#x} + {filesz:#x} run past the end of the file ({file_size:#x} bytes)"
            ),
            BadAlignment { index, align } => write!(f, "segment {index}: alignment {align:#x} is not a power of two"),
            Misaligned { index, vaddr, offset } => write!(
                f,
                "segment {index}: address {vaddr:#x} and file offset {offset:#x} differ modulo the page size (4096)"
            ),
            AddressOverflow { index } => write!(f, "segment {index}: its addresses overflow 64 bits"),
            WritableAndExecutable { index } => {
                write!(f, "segment {index} is both writable and executable: refused (W^X)")
            }
            OutsideUserSpace { index, start, end } => {
                write!(f, "segment {index}: pages {start:#x}..{end:#x} are outside user space")
            }
            SegmentsOverlap { first, second } => write!(f, "segments {first} and {second} overlap (share a page)"),
            EntryNotExecutable { entry } => write!(f, "entry point {entry:#x} is in no executable segment"),
            PhdrNotLoaded { vaddr } => {
                write!(f, "the program headers' address {vaddr:#x} (PT_PHDR) is in no loaded segment")
            }
            BadParameter { what } => write!(f, "invalid parameter: {what}"),
            ArgumentsTooLong { bytes, limit } => {
                write!(f, "arguments and environment take {bytes} bytes, more than the {limit} allowed")
            }
            NulInString => f.write_str("an argument, environment string or file name holds a NUL byte"),
            StackTooSmall { needed, room } => {
                write!(f, "the initial stack needs {needed} bytes, the stack has {room}")
            }
        }
    }
}
