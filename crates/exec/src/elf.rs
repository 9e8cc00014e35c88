//! Reading an ELF64 file header and its program headers with the `object`
//! crate, and the first refusals: not ELF, not 64-bit little-endian x86-64,
//! not an executable, a program header table too large or cut short.

use crate::error::ExecError;
use crate::layout::MAX_PROGRAM_HEADERS;
use core::mem::size_of;
use object::elf::{self, FileHeader64, ProgramHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{LittleEndian, ReadRef};

/// The ELF64 file header's size.
pub(crate) const EHDR_SIZE: u64 = size_of::<FileHeader64<LittleEndian>>() as u64;

/// An ELF64 program header's size, the only `e_phentsize` accepted.
pub(crate) const PHDR_SIZE: u64 = size_of::<ProgramHeader64<LittleEndian>>() as u64;

/// ELF file types this loader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// ET_EXEC: loaded at the addresses it names.
    Executable,
    /// ET_DYN: position independent, loaded at a bias.
    PositionIndependent,
}

/// One program header, decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Phdr {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// The parts of an ELF file's headers the loader uses.
pub(crate) struct Headers<'a> {
    pub kind: FileKind,
    pub entry: u64,
    pub phoff: u64,
    raw: &'a [ProgramHeader64<LittleEndian>],
}

impl Headers<'_> {
    /// The program headers in table order.
    pub fn phdrs(&self) -> impl Iterator<Item = Phdr> + '_ {
        let e = LittleEndian;
        self.raw.iter().map(move |ph| Phdr {
            p_type: ph.p_type(e).0,
            flags: ph.p_flags(e).0,
            offset: ph.p_offset(e),
            vaddr: ph.p_vaddr(e),
            filesz: ph.p_filesz(e),
            memsz: ph.p_memsz(e),
            align: ph.p_align(e),
        })
    }

    /// How many program headers there are.
    pub fn phnum(&self) -> usize {
        self.raw.len()
    }
}

/// The reason a header `object` refused is not supported.
fn diagnose(bytes: &[u8]) -> ExecError {
    let Ok(header) = bytes.read_at::<FileHeader64<LittleEndian>>(0) else {
        return ExecError::TruncatedHeader { len: bytes.len() as u64 };
    };
    let ident = header.e_ident();
    if ident.magic != elf::ELFMAG {
        ExecError::NotElf
    } else if ident.class != elf::ELFCLASS64 {
        ExecError::NotElf64 { class: ident.class.0 }
    } else if ident.data != elf::ELFDATA2LSB {
        ExecError::NotLittleEndian { data: ident.data.0 }
    } else if ident.version != elf::EV_CURRENT {
        ExecError::BadVersion { version: ident.version.0.into() }
    } else {
        ExecError::TruncatedHeader { len: bytes.len() as u64 }
    }
}

/// Reads the file header and the program header table from `bytes` (the
/// start of the file, through the end of the program header table).
pub(crate) fn read_headers(bytes: &[u8]) -> Result<Headers<'_>, ExecError> {
    if bytes.len() as u64 >= 4 && bytes[..4] != elf::ELFMAG {
        return Err(ExecError::NotElf);
    }
    if (bytes.len() as u64) < EHDR_SIZE {
        return Err(ExecError::TruncatedHeader { len: bytes.len() as u64 });
    }
    let header = FileHeader64::<LittleEndian>::parse(bytes).map_err(|_| diagnose(bytes))?;
    // `parse` accepts either byte order; `endian` takes only the type's.
    let e = header.endian().map_err(|_| ExecError::NotLittleEndian { data: header.e_ident().data.0 })?;
    let machine = header.e_machine(e);
    if machine != elf::EM_X86_64 {
        return Err(ExecError::WrongMachine { machine: machine.0 });
    }
    let kind = match header.e_type(e) {
        elf::ET_EXEC => FileKind::Executable,
        elf::ET_DYN => FileKind::PositionIndependent,
        other => return Err(ExecError::WrongType { e_type: other.0 }),
    };
    let phnum = header.e_phnum(e);
    let phoff = header.e_phoff(e);
    if phnum == 0 || phoff == 0 {
        return Err(ExecError::NoLoadSegment);
    }
    let phentsize = header.e_phentsize(e);
    if u64::from(phentsize) != PHDR_SIZE {
        return Err(ExecError::BadProgramHeaderSize { phentsize });
    }
    if usize::from(phnum) > MAX_PROGRAM_HEADERS {
        return Err(ExecError::TooManyProgramHeaders { phnum });
    }
    let raw = header.program_headers(e, bytes).map_err(|_| ExecError::TruncatedProgramHeaders { phoff, phnum })?;
    if raw.len() != usize::from(phnum) {
        // `object` reads e_phnum as it is below PN_XNUM; kept as a check.
        return Err(ExecError::TruncatedProgramHeaders { phoff, phnum });
    }
    Ok(Headers { kind, entry: header.e_entry(e), phoff, raw })
}
