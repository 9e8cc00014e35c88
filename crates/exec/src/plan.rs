//! [`LoadPlan`]: an executable's program headers checked and turned into the
//! page-aligned mappings the kernel's address-space code makes.

use crate::elf::{read_headers, FileKind, Headers, Phdr, PHDR_SIZE};
use crate::error::ExecError;
use crate::layout::{page_down, page_offset, page_up, ET_DYN_BASE, MMAP_MIN_ADDR, PAGE_SIZE};
use crate::layout::{USER_TOP_4LEVEL, USER_TOP_5LEVEL};
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use object::elf::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR};

/// Where an executable may be put: the bounds of user space and the base of
/// a static PIE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadParams {
    /// The lowest address a segment may use (page aligned): Linux's
    /// `mmap_min_addr`, so that the pages around NULL stay unmapped. 0 allows
    /// every address.
    pub user_bottom: u64,
    /// The end of user space (page aligned, exclusive):
    /// [`USER_TOP_4LEVEL`] or [`USER_TOP_5LEVEL`].
    pub user_top: u64,
    /// Where a position-independent executable's (ET_DYN) lowest page goes
    /// (page aligned, inside user space). Not used for ET_EXEC.
    pub dyn_base: u64,
}

impl LoadParams {
    /// x86-64 Linux with 4-level paging, without randomization: user space
    /// `[64 KiB, 2^47)`, static PIEs at [`ET_DYN_BASE`].
    pub const LINUX_4LEVEL: LoadParams =
        LoadParams { user_bottom: MMAP_MIN_ADDR, user_top: USER_TOP_4LEVEL, dyn_base: ET_DYN_BASE };

    /// x86-64 Linux with 5-level paging: user space `[64 KiB, 2^56)`, static
    /// PIEs at [`ET_DYN_BASE`] still (Linux keeps its default mappings below
    /// 2^47 unless a program asks for more).
    pub const LINUX_5LEVEL: LoadParams =
        LoadParams { user_bottom: MMAP_MIN_ADDR, user_top: USER_TOP_5LEVEL, dyn_base: ET_DYN_BASE };

    /// Checks the parameters: every address page aligned, `user_bottom <
    /// user_top <= 2^63`, `dyn_base` in `[user_bottom, user_top)`.
    pub fn validate(&self) -> Result<(), ExecError> {
        let bad = |what| Err(ExecError::BadParameter { what });
        if page_offset(self.user_top) != 0 || self.user_top == 0 || self.user_top > 1 << 63 {
            return bad("user_top must be a non-zero page-aligned address at most 2^63");
        }
        if page_offset(self.user_bottom) != 0 || self.user_bottom >= self.user_top {
            return bad("user_bottom must be page aligned and below user_top");
        }
        if page_offset(self.dyn_base) != 0 || self.dyn_base < self.user_bottom || self.dyn_base >= self.user_top {
            return bad("dyn_base must be page aligned and inside user space");
        }
        Ok(())
    }
}

impl Default for LoadParams {
    fn default() -> Self {
        LoadParams::LINUX_4LEVEL
    }
}

/// A segment's access rights, from its ELF `p_flags`. Never both `write` and
/// `exec` (W^X).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Prot {
    /// PF_R: the pages may be read.
    pub read: bool,
    /// PF_W: the pages may be written.
    pub write: bool,
    /// PF_X: the pages may be executed.
    pub exec: bool,
}

impl Prot {
    /// The rights `p_flags` asks for.
    pub const fn from_flags(flags: u32) -> Prot {
        Prot { read: flags & PF_R.0 != 0, write: flags & PF_W.0 != 0, exec: flags & PF_X.0 != 0 }
    }
}

impl fmt::Display for Prot {
    /// As `ls` and `/proc/PID/maps` write them: `r-x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = |on, c| if on { c } else { '-' };
        write!(f, "{}{}{}", letter(self.read, 'r'), letter(self.write, 'w'), letter(self.exec, 'x'))
    }
}

/// One loadable segment as mappings: pages `[va, va + len)`, the first
/// [`file_pages`](Segment::file_pages) of them backed by the file, the rest
/// anonymous zero memory.
///
/// It is Linux's `elf_load`: a private file mapping of the pages that hold
/// the segment's file bytes, starting at the page-aligned file offset, whose
/// bytes past [`file_len`](Segment::file_len) read zero (`padzero`), then
/// anonymous zero pages up to the page-aligned end of `p_memsz` (the
/// `vm_brk` of the bss).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    /// The first page's address (load bias included), page aligned.
    pub va: u64,
    /// The length in bytes, a non-zero multiple of the page size.
    pub len: u64,
    /// The access rights.
    pub prot: Prot,
    /// The file offset of the byte that goes at `va`, page aligned (0 when
    /// `file_len` is 0).
    pub file_offset: u64,
    /// How many bytes of the file, from `file_offset`, go at `va`: the
    /// segment's offset in its first page plus its `p_filesz`, or 0 for a
    /// segment with no file bytes.
    pub file_len: u64,
}

impl Segment {
    /// The address past the last page.
    pub const fn end(&self) -> u64 {
        self.va + self.len
    }

    /// The range of addresses the segment's pages cover.
    pub const fn range(&self) -> Range<u64> {
        self.va..self.end()
    }

    /// The length of the file-backed part, `file_len` rounded up to a page:
    /// pages `[va, va + file_pages())` map the file from `file_offset`.
    pub const fn file_pages(&self) -> u64 {
        // file_len <= len, a multiple of the page size: no overflow.
        (self.file_len + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
    }

    /// The bytes of the last file-backed page past the file bytes: they must
    /// read zero (empty when `file_len` ends on a page boundary).
    pub const fn zero_tail(&self) -> Range<u64> {
        self.va + self.file_len..self.va + self.file_pages()
    }

    /// The anonymous part, zero-filled memory after the file-backed pages
    /// (the bss); may be empty.
    pub const fn anonymous(&self) -> Range<u64> {
        self.va + self.file_pages()..self.end()
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x} {} file {:#x}+{:#x}", self.va, self.end(), self.prot, self.file_offset, self.file_len)
    }
}

/// The kind of executable a plan loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecutableKind {
    /// ET_EXEC: loaded at the addresses it names (load bias 0).
    Static,
    /// ET_DYN without PT_INTERP: a static position-independent executable,
    /// loaded at [`LoadParams::dyn_base`]; it relocates itself.
    StaticPie,
}

/// What loading an executable takes: its segments as page-aligned mappings,
/// and the numbers the initial stack's auxiliary vector and the program
/// break need.
///
/// Every plan obeys: segments sorted by address, page aligned, non-empty,
/// non-overlapping, inside `[user_bottom, user_top)`, none both writable and
/// executable; the entry point inside an executable segment; the file bytes
/// of every segment inside the file; `brk` the page-aligned end of the
/// highest segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    kind: ExecutableKind,
    segments: Vec<Segment>,
    entry: u64,
    phdr: Option<u64>,
    phnum: u64,
    brk: u64,
    load_bias: u64,
}

/// A PT_LOAD header accepted so far, with its index in the table.
struct Load {
    index: usize,
    ph: Phdr,
}

impl LoadPlan {
    /// The plan for the whole executable file `file`.
    pub fn parse(file: &[u8], params: &LoadParams) -> Result<LoadPlan, ExecError> {
        LoadPlan::from_headers(file, file.len() as u64, params)
    }

    /// The plan for an executable of `file_size` bytes whose first bytes are
    /// `headers`: they must hold the file header and the program header
    /// table (the first page usually does; the rest of the file is not
    /// needed to plan).
    pub fn from_headers(headers: &[u8], file_size: u64, params: &LoadParams) -> Result<LoadPlan, ExecError> {
        params.validate()?;
        if headers.len() as u64 > file_size {
            return Err(ExecError::BadParameter { what: "more header bytes than the file has" });
        }
        let headers = read_headers(headers)?;
        if headers.phdrs().any(|ph| ph.p_type == PT_INTERP.0) {
            return Err(ExecError::Dynamic);
        }
        if headers.phdrs().any(|ph| ph.p_type == PT_GNU_STACK.0 && ph.flags & PF_X.0 != 0) {
            return Err(ExecError::ExecutableStack);
        }
        let loads = check_loads(&headers, file_size)?;
        // The lowest page of a static PIE goes at dyn_base.
        let lowest = loads.iter().map(|load| page_down(load.ph.vaddr)).min().ok_or(ExecError::NoLoadSegment)?;
        let (kind, base) = match headers.kind {
            FileKind::Executable => (ExecutableKind::Static, 0),
            FileKind::PositionIndependent => (ExecutableKind::StaticPie, params.dyn_base),
        };
        let relocate = |vaddr: u64| match kind {
            ExecutableKind::Static => Some(vaddr),
            ExecutableKind::StaticPie => vaddr.checked_sub(lowest)?.checked_add(base),
        };
        let load_bias = match kind {
            ExecutableKind::Static => 0,
            ExecutableKind::StaticPie => base.wrapping_sub(lowest),
        };

        // Each segment's bytes [start, start + memsz), and its pages.
        let mut placed: Vec<(usize, Range<u64>, Segment)> = Vec::with_capacity(loads.len());
        for Load { index, ph } in &loads {
            let index = *index;
            let overflow = ExecError::AddressOverflow { index };
            let start = relocate(ph.vaddr).ok_or(overflow)?;
            let end = start.checked_add(ph.memsz).ok_or(overflow)?;
            let va = page_down(start);
            let pages_end = page_up(end).ok_or(overflow)?;
            if va < params.user_bottom || pages_end > params.user_top {
                return Err(ExecError::OutsideUserSpace { index, start: va, end: pages_end });
            }
            let (file_offset, file_len) =
                if ph.filesz == 0 { (0, 0) } else { (page_down(ph.offset), page_offset(ph.vaddr) + ph.filesz) };
            let segment = Segment { va, len: pages_end - va, prot: Prot::from_flags(ph.flags), file_offset, file_len };
            placed.push((index, start..end, segment));
        }
        placed.sort_by_key(|(_, _, segment)| segment.va);
        for pair in placed.windows(2) {
            let (low, high) = (&pair[0], &pair[1]);
            if low.2.end() > high.2.va {
                return Err(ExecError::SegmentsOverlap { first: low.0, second: high.0 });
            }
        }

        let entry = relocate(headers.entry);
        let executable =
            |addr: u64| placed.iter().any(|(_, bytes, segment)| segment.prot.exec && bytes.contains(&addr));
        let entry = match entry {
            Some(entry) if executable(entry) => entry,
            _ => return Err(ExecError::EntryNotExecutable { entry: headers.entry.wrapping_add(load_bias) }),
        };

        let table_len = headers.phnum() as u64 * PHDR_SIZE;
        let phdr = match headers.phdrs().find(|ph| ph.p_type == PT_PHDR.0) {
            Some(ph) => {
                let loaded = relocate(ph.vaddr).filter(|&start| {
                    start
                        .checked_add(table_len)
                        .is_some_and(|end| placed.iter().any(|(_, bytes, _)| bytes.start <= start && end <= bytes.end))
                });
                Some(loaded.ok_or(ExecError::PhdrNotLoaded { vaddr: ph.vaddr.wrapping_add(load_bias) })?)
            }
            // The first PT_LOAD whose file bytes hold the whole table.
            None => loads
                .iter()
                .find(|Load { ph, .. }| {
                    ph.offset <= headers.phoff
                        && headers.phoff.checked_add(table_len).is_some_and(|end| end <= ph.offset + ph.filesz)
                })
                .and_then(|Load { ph, .. }| ph.vaddr.checked_add(headers.phoff - ph.offset).and_then(relocate)),
        };

        let brk = placed.iter().map(|(_, _, segment)| segment.end()).max().unwrap_or(0);
        let segments = placed.into_iter().map(|(_, _, segment)| segment).collect();
        Ok(LoadPlan { kind, segments, entry, phdr, phnum: headers.phnum() as u64, brk, load_bias })
    }

    /// ET_EXEC or a static PIE.
    pub fn kind(&self) -> ExecutableKind {
        self.kind
    }

    /// The segments to map, sorted by address.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The entry point (load bias included): where the program starts.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The program header table's address in the loaded image, for
    /// `AT_PHDR`: PT_PHDR's address if there is one, else the address where
    /// the first PT_LOAD whose file bytes hold the table puts it; `None` when
    /// no segment loads it (then `AT_PHDR` is 0, and a static glibc finds
    /// its headers through `__ehdr_start` instead).
    pub fn phdr(&self) -> Option<u64> {
        self.phdr
    }

    /// The size of one program header, for `AT_PHENT`: 56.
    pub fn phent(&self) -> u64 {
        PHDR_SIZE
    }

    /// The number of program headers, for `AT_PHNUM`.
    pub fn phnum(&self) -> u64 {
        self.phnum
    }

    /// The initial program break: the page-aligned end of the highest
    /// segment, where the heap `brk(2)` grows starts.
    pub fn brk(&self) -> u64 {
        self.brk
    }

    /// What is added to the file's addresses (modulo 2^64): 0 for ET_EXEC;
    /// for a static PIE, `dyn_base` minus the lowest segment's page, so
    /// `dyn_base` itself for the usual PIE whose lowest segment is at 0.
    pub fn load_bias(&self) -> u64 {
        self.load_bias
    }
}

/// Checks every PT_LOAD header on its own and keeps those with memory.
fn check_loads(headers: &Headers<'_>, file_size: u64) -> Result<Vec<Load>, ExecError> {
    let mut loads = Vec::new();
    for (index, ph) in headers.phdrs().enumerate().filter(|(_, ph)| ph.p_type == PT_LOAD.0) {
        if ph.filesz > ph.memsz {
            return Err(ExecError::FileSizeOverMemSize { index, filesz: ph.filesz, memsz: ph.memsz });
        }
        if ph.memsz == 0 {
            continue;
        }
        if ph.align != 0 && !ph.align.is_power_of_two() {
            return Err(ExecError::BadAlignment { index, align: ph.align });
        }
        if ph.filesz != 0 {
            if ph.offset.checked_add(ph.filesz).is_none_or(|end| end > file_size) {
                return Err(ExecError::SegmentPastFileEnd { index, offset: ph.offset, filesz: ph.filesz, file_size });
            }
            if page_offset(ph.vaddr) != page_offset(ph.offset) {
                return Err(ExecError::Misaligned { index, vaddr: ph.vaddr, offset: ph.offset });
            }
        }
        let prot = Prot::from_flags(ph.flags);
        if prot.write && prot.exec {
            return Err(ExecError::WritableAndExecutable { index });
        }
        loads.push(Load { index, ph });
    }
    if loads.is_empty() {
        return Err(ExecError::NoLoadSegment);
    }
    Ok(loads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn protections_print_like_maps() {
        assert_eq!(Prot::from_flags(PF_R.0 | PF_X.0).to_string(), "r-x");
        assert_eq!(Prot::from_flags(PF_R.0 | PF_W.0).to_string(), "rw-");
        assert_eq!(Prot::from_flags(0).to_string(), "---");
        assert_eq!(Prot::from_flags(u32::MAX), Prot { read: true, write: true, exec: true });
    }

    #[test]
    fn a_segments_parts() {
        let s = Segment { va: 0x1000, len: 0x3000, prot: Prot::default(), file_offset: 0, file_len: 0x1001 };
        assert_eq!((s.file_pages(), s.zero_tail(), s.anonymous()), (0x2000, 0x2001..0x3000, 0x3000..0x4000));
        let whole = Segment { file_len: 0x2000, ..s };
        assert_eq!((whole.zero_tail(), whole.anonymous()), (0x3000..0x3000, 0x3000..0x4000));
        let bss = Segment { file_len: 0, ..s };
        assert_eq!((bss.file_pages(), bss.anonymous()), (0, 0x1000..0x4000));
    }
}
