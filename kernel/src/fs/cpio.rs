//! The cpio "newc" archive format (the one Linux initramfs images use),
//! read in place.
//!
//! An archive is a run of entries, each:
//! - a 110-byte ASCII header: the magic `070701`, then thirteen 8-digit
//!   hexadecimal fields (inode, mode, uid, gid, nlink, mtime, filesize,
//!   devmajor, devminor, rdevmajor, rdevminor, namesize, check);
//! - the name, `namesize` bytes including its terminating NUL, padded with
//!   NULs so that header and name together end on a multiple of 4 bytes;
//! - the data, `filesize` bytes, padded to a multiple of 4 bytes.
//!
//! The entry named `TRAILER!!!` ends the archive; whatever follows it (block
//! padding) is ignored. Offsets are counted from the archive's first byte,
//! so the padding rules hold when the archive itself starts 4-aligned.
//!
//! Every length is checked against the archive before it is used: a
//! corrupt archive is a [`CpioError`], never a panic or a read past its end.

use core::fmt;

/// The magic of a newc header.
pub const MAGIC: &[u8; 6] = b"070701";
/// The length of a newc header.
pub const HEADER_LEN: usize = 110;
/// The name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";
/// The file-type bits of `mode`.
pub const MODE_TYPE_MASK: u32 = 0o170_000;
/// The file type of a regular file.
pub const MODE_REGULAR: u32 = 0o100_000;

/// The header fields, in order, for error messages.
const FIELDS: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];
const MODE_FIELD: usize = 1;
const FILESIZE_FIELD: usize = 6;
const NAMESIZE_FIELD: usize = 11;

/// One entry of an archive, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The name (without its NUL).
    pub name: &'a str,
    /// The mode: file type and permission bits.
    pub mode: u32,
    /// The data.
    pub data: &'a [u8],
    /// Where the data starts, counted from the archive's first byte.
    pub data_offset: usize,
}

impl Entry<'_> {
    /// True for a regular file.
    pub fn is_regular_file(&self) -> bool {
        self.mode & MODE_TYPE_MASK == MODE_REGULAR
    }
}

/// Why an archive was rejected. Offsets are those of the entry's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioError {
    /// The archive ends inside an entry.
    Truncated {
        /// The header's offset.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A header does not start with `070701`.
    BadMagic {
        /// The header's offset.
        offset: usize,
    },
    /// A header field is not 8 hexadecimal digits.
    BadField {
        /// The header's offset.
        offset: usize,
        /// The field's name.
        field: &'static str,
    },
    /// A name is empty, not NUL-terminated, or not UTF-8.
    BadName {
        /// The header's offset.
        offset: usize,
    },
    /// The archive ends without a `TRAILER!!!` entry.
    MissingTrailer,
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpioError::Truncated { offset, what } => {
                write!(f, "entry at {offset:#x}: the archive ends inside its {what}")
            }
            CpioError::BadMagic { offset } => write!(f, "entry at {offset:#x}: magic is not \"070701\" (newc)"),
            CpioError::BadField { offset, field } => {
                write!(f, "entry at {offset:#x}: field {field} is not 8 hexadecimal digits")
            }
            CpioError::BadName { offset } => {
                write!(f, "entry at {offset:#x}: the name is empty, not NUL-terminated or not UTF-8")
            }
            CpioError::MissingTrailer => write!(f, "no {TRAILER} entry: the archive is cut short"),
        }
    }
}

/// Every entry of `archive` before its trailer, in order.
pub fn parse(archive: &[u8]) -> Result<alloc::vec::Vec<Entry<'_>>, CpioError> {
    let mut entries = alloc::vec::Vec::new();
    let mut offset = 0;
    loop {
        if offset >= archive.len() {
            return Err(CpioError::MissingTrailer);
        }
        let (entry, next) = parse_entry(archive, offset)?;
        if entry.name == TRAILER {
            return Ok(entries);
        }
        entries.push(entry);
        offset = next;
    }
}

/// The entry whose header is at `offset`, and the offset of the next one.
fn parse_entry(archive: &[u8], offset: usize) -> Result<(Entry<'_>, usize), CpioError> {
    let header = slice(archive, offset, HEADER_LEN).ok_or(CpioError::Truncated { offset, what: "header" })?;
    if &header[..MAGIC.len()] != MAGIC {
        return Err(CpioError::BadMagic { offset });
    }
    let field = |index: usize| -> Result<usize, CpioError> {
        let start = MAGIC.len() + 8 * index;
        hex_field(&header[start..start + 8]).ok_or(CpioError::BadField { offset, field: FIELDS[index] })
    };
    // Every field is checked, even the unused ones: a corrupt header is rejected whole.
    for index in 0..FIELDS.len() {
        field(index)?;
    }
    let mode = field(MODE_FIELD)? as u32;
    let file_size = field(FILESIZE_FIELD)?;
    let name_size = field(NAMESIZE_FIELD)?;

    let name_start = offset + HEADER_LEN;
    let name_bytes = slice(archive, name_start, name_size).ok_or(CpioError::Truncated { offset, what: "name" })?;
    let name = match name_bytes.split_last() {
        Some((0, name)) if !name.is_empty() => core::str::from_utf8(name).map_err(|_| CpioError::BadName { offset })?,
        _ => return Err(CpioError::BadName { offset }),
    };
    let data_offset = align4(name_start + name_size);
    let data = slice(archive, data_offset, file_size).ok_or(CpioError::Truncated { offset, what: "data" })?;
    // The padding after the data may be missing at the very end.
    let next = align4(data_offset + file_size);
    Ok((Entry { name, mode, data, data_offset }, next))
}

/// `len` bytes of `bytes` from `start`, if they are all there.
fn slice(bytes: &[u8], start: usize, len: usize) -> Option<&[u8]> {
    bytes.get(start..start.checked_add(len)?)
}

/// Rounds up to a multiple of 4.
pub fn align4(offset: usize) -> usize {
    offset.next_multiple_of(4)
}

/// Eight ASCII hexadecimal digits, either case.
fn hex_field(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |value, &digit| Some(value << 4 | (digit as char).to_digit(16)? as usize))
}
