//! The character devices of `/dev`: `null`, `zero`, `random`, `urandom`,
//! and the terminals `tty`, `console` and `ttyS0` (all three the serial
//! console a program's descriptors 0, 1 and 2 are: opening one gives a
//! new open description of the console).
//!
//! Each has Linux's major and minor numbers and permissions (`null` 1:3,
//! `zero` 1:5, `random` 1:8, `urandom` 1:9, all `crw-rw-rw-`; `tty` 5:0
//! `crw-rw-rw-`, `console` 5:1 `crw-------`, `ttyS0` 4:64 `crw-rw----`).
//! Reading `null` is end of file; reading `zero` gives zeros; reading
//! `random` or `urandom` gives bytes of [`super::random`] (never blocking,
//! as Linux's `random` after its pool is ready). A write to any of the four
//! is swallowed and returns its count; `lseek` returns 0 (Linux's
//! `null_lseek`, and `noop_llseek` at offset 0 for the random devices).
//! `mmap` of `/dev/zero` is `ENODEV` here: the memory layer maps files in
//! RAM and of the initrd only.

use super::errno::{Errno, SysResult};
use super::random;

/// A device of `/dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// `/dev/null`.
    Null,
    /// `/dev/zero`.
    Zero,
    /// `/dev/random`.
    Random,
    /// `/dev/urandom`.
    Urandom,
    /// `/dev/tty`: the process's terminal (the console).
    Tty,
    /// `/dev/console`.
    Console,
    /// `/dev/ttyS0`: the serial port the console is.
    TtyS0,
}

/// Every device, by its name in `/dev`.
pub const ALL: [(&str, Device); 7] = [
    ("console", Device::Console),
    ("null", Device::Null),
    ("random", Device::Random),
    ("tty", Device::Tty),
    ("ttyS0", Device::TtyS0),
    ("urandom", Device::Urandom),
    ("zero", Device::Zero),
];

/// The device `/dev/NAME` is.
pub fn named(name: &str) -> Option<Device> {
    ALL.iter().find(|(known, _)| *known == name).map(|&(_, device)| device)
}

impl Device {
    /// Its name in `/dev`.
    pub fn name(self) -> &'static str {
        ALL.iter().find(|(_, device)| *device == self).map_or("", |(name, _)| name)
    }

    /// Its major and minor numbers (`devices.txt`).
    pub fn numbers(self) -> (u32, u32) {
        match self {
            Device::Null => (1, 3),
            Device::Zero => (1, 5),
            Device::Random => (1, 8),
            Device::Urandom => (1, 9),
            Device::Tty => (5, 0),
            Device::Console => (5, 1),
            Device::TtyS0 => (4, 64),
        }
    }

    /// Its `st_rdev`, encoded as Linux's `new_encode_dev`.
    pub fn rdev(self) -> u64 {
        let (major, minor) = self.numbers();
        (minor as u64 & 0xff) | (major as u64) << 8 | (minor as u64 & !0xff) << 12
    }

    /// Its permission bits.
    pub fn permissions(self) -> u32 {
        match self {
            Device::Console => 0o600,
            Device::TtyS0 => 0o660,
            _ => 0o666,
        }
    }

    /// A terminal: opening it gives a description of the console.
    pub fn is_terminal(self) -> bool {
        matches!(self, Device::Tty | Device::Console | Device::TtyS0)
    }

    /// Its inode number in `/dev` (its place in [`ALL`], from 2: the
    /// directory is 1).
    pub fn ino(self) -> u64 {
        ALL.iter().position(|(_, device)| *device == self).map_or(0, |index| index as u64 + 2)
    }

    /// Reads up to `total` bytes, handing them to `put(at, bytes)` a page
    /// at a time (it returns how many it could copy): the count, or
    /// `EFAULT` when a fault stopped it before the first byte.
    pub fn read(self, total: u64, put: &mut dyn FnMut(u64, &[u8]) -> u64) -> SysResult {
        if matches!(self, Device::Null) || self.is_terminal() {
            return Ok(0);
        }
        let mut chunk = [0u8; 4096];
        let mut done = 0u64;
        while done < total {
            let count = (total - done).min(chunk.len() as u64) as usize;
            if matches!(self, Device::Random | Device::Urandom) {
                random::fill(&mut chunk[..count]);
            }
            let copied = put(done, &chunk[..count]);
            done += copied;
            if copied < count as u64 {
                return if done > 0 { Ok(done) } else { Err(Errno::EFAULT) };
            }
        }
        Ok(done)
    }

    /// Writes `total` bytes: swallowed, all of them.
    pub fn write(self, total: u64) -> SysResult {
        Ok(total)
    }
}
