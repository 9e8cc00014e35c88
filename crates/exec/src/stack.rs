//! [`StackImage`]: the initial user stack of the x86-64 System V ABI, laid
//! out as Linux's `create_elf_tables` lays it out.

use crate::auxv::*;
use crate::error::ExecError;
use crate::layout::{ARG_MAX, PAGE_SIZE};
use crate::plan::LoadPlan;
use alloc::vec;
use alloc::vec::Vec;

/// The platform string `AT_PLATFORM` points at (with its NUL).
pub const PLATFORM: &[u8] = b"x86_64\0";

/// The values of the auxiliary vector the caller chooses. The addresses of
/// the strings and random bytes (`AT_RANDOM`, `AT_PLATFORM`, `AT_EXECFN`)
/// are filled in by [`StackImage::build`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuxValues {
    /// `AT_SYSINFO_EHDR`, the vDSO's address: left out when `None`.
    pub sysinfo_ehdr: Option<u64>,
    /// `AT_MINSIGSTKSZ`: left out when `None`.
    pub minsigstksz: Option<u64>,
    /// `AT_HWCAP`: CPUID leaf 1's EDX on x86.
    pub hwcap: u64,
    /// `AT_PAGESZ`: 4096.
    pub pagesz: u64,
    /// `AT_CLKTCK`: 100, as on Linux.
    pub clktck: u64,
    /// `AT_PHDR`: the program headers' address (0 when they are not loaded).
    pub phdr: u64,
    /// `AT_PHENT`: 56.
    pub phent: u64,
    /// `AT_PHNUM`.
    pub phnum: u64,
    /// `AT_BASE`: 0, there is no dynamic linker.
    pub base: u64,
    /// `AT_FLAGS`: 0.
    pub flags: u64,
    /// `AT_ENTRY`: the program's entry point.
    pub entry: u64,
    /// `AT_UID`.
    pub uid: u64,
    /// `AT_EUID`.
    pub euid: u64,
    /// `AT_GID`.
    pub gid: u64,
    /// `AT_EGID`.
    pub egid: u64,
    /// `AT_SECURE`: 0 (no set-user-id programs here).
    pub secure: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
}

impl AuxValues {
    /// The values for `plan`: its program headers and entry point, page size
    /// 4096, 100 clock ticks a second, ids 0 (root), no hardware
    /// capabilities, no vDSO.
    pub fn for_plan(plan: &LoadPlan) -> AuxValues {
        AuxValues {
            sysinfo_ehdr: None,
            minsigstksz: None,
            hwcap: 0,
            pagesz: PAGE_SIZE,
            clktck: 100,
            phdr: plan.phdr().unwrap_or(0),
            phent: plan.phent(),
            phnum: plan.phnum(),
            base: 0,
            flags: 0,
            entry: plan.entry(),
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            secure: 0,
            hwcap2: 0,
        }
    }
}

/// What the initial stack holds and where it goes.
#[derive(Clone, Copy, Debug)]
pub struct StackRequest<'a> {
    /// The address past the stack's highest byte; a multiple of 16.
    pub top: u64,
    /// The lowest address the initial stack may use (the bottom of the
    /// stack's mapping); at most `top`.
    pub bottom: u64,
    /// The arguments, without NULs (an empty list gets one empty argument,
    /// as Linux gives it).
    pub argv: &'a [&'a [u8]],
    /// The environment strings (`NAME=value`), without NULs.
    pub envp: &'a [&'a [u8]],
    /// The file name the program was run by, for `AT_EXECFN`; without NULs.
    pub execfn: &'a [u8],
    /// The bytes `AT_RANDOM` points at (the C library's stack protector and
    /// pointer guard come from them).
    pub random: [u8; 16],
    /// The other values of the auxiliary vector.
    pub aux: AuxValues,
}

/// The initial stack: the bytes to copy to `[rsp, top)`, and the `rsp` the
/// program starts with.
///
/// From `rsp` up: `argc`; `argv[0..argc]`; NULL; `envp[..]`; NULL; the
/// auxiliary vector's (key, value) pairs ending with `AT_NULL`; zero padding;
/// the 16 random bytes; `"x86_64\0"`; padding to 16 bytes; the argument
/// strings then the environment strings, each with its NUL, in order; the
/// file name with its NUL; 8 zero bytes; `top`. `rsp` is a multiple of 16.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackImage {
    top: u64,
    rsp: u64,
    bytes: Vec<u8>,
    argc: u64,
    envc: u64,
    auxv: Vec<(u64, u64)>,
    strings: u64,
    execfn: u64,
    platform: u64,
    random: u64,
}

/// `n` rounded up to a multiple of 16.
const fn round16(n: u64) -> u64 {
    (n + 15) & !15
}

impl StackImage {
    /// Lays out the initial stack `request` describes.
    pub fn build(request: &StackRequest<'_>) -> Result<StackImage, ExecError> {
        let StackRequest { top, bottom, argv, envp, execfn, random, aux } = *request;
        if top % 16 != 0 {
            return Err(ExecError::BadParameter { what: "the stack top must be a multiple of 16" });
        }
        if bottom > top {
            return Err(ExecError::BadParameter { what: "the stack bottom is above its top" });
        }
        const EMPTY: &[&[u8]] = &[b""];
        let argv = if argv.is_empty() { EMPTY } else { argv };
        let strings = || argv.iter().chain(envp).chain([&execfn]);
        if strings().any(|s| s.contains(&0)) {
            return Err(ExecError::NulInString);
        }
        // Everything counted against ARG_MAX: the strings with their NULs
        // and one pointer for each argument and environment string. Summed
        // with saturation: slices' lengths cannot overflow a u64 in practice.
        let string_bytes = |list: &[&[u8]]| list.iter().fold(0u64, |sum, s| sum.saturating_add(s.len() as u64 + 1));
        let (argc, envc) = (argv.len() as u64, envp.len() as u64);
        let args_bytes = string_bytes(argv).saturating_add(string_bytes(envp));
        let counted = args_bytes.saturating_add(execfn.len() as u64 + 1).saturating_add(8 * (argc + envc));
        if counted > ARG_MAX {
            return Err(ExecError::ArgumentsTooLong { bytes: counted, limit: ARG_MAX });
        }

        // The auxiliary vector, as create_elf_tables orders it; the three
        // addresses are patched in once known.
        let mut auxv: Vec<(u64, u64)> = Vec::with_capacity(22);
        auxv.extend(aux.sysinfo_ehdr.map(|value| (AT_SYSINFO_EHDR, value)));
        auxv.extend(aux.minsigstksz.map(|value| (AT_MINSIGSTKSZ, value)));
        auxv.extend([
            (AT_HWCAP, aux.hwcap),
            (AT_PAGESZ, aux.pagesz),
            (AT_CLKTCK, aux.clktck),
            (AT_PHDR, aux.phdr),
            (AT_PHENT, aux.phent),
            (AT_PHNUM, aux.phnum),
            (AT_BASE, aux.base),
            (AT_FLAGS, aux.flags),
            (AT_ENTRY, aux.entry),
            (AT_UID, aux.uid),
            (AT_EUID, aux.euid),
            (AT_GID, aux.gid),
            (AT_EGID, aux.egid),
            (AT_SECURE, aux.secure),
            (AT_RANDOM, 0),
            (AT_HWCAP2, aux.hwcap2),
            (AT_EXECFN, 0),
            (AT_PLATFORM, 0),
            (AT_NULL, 0),
        ]);

        // Depths below `top` (top is a multiple of 16, so rounding a depth
        // up to 16 rounds the address down to 16).
        let execfn_depth = 8 + execfn.len() as u64 + 1;
        let strings_depth = execfn_depth + args_bytes;
        let platform_depth = round16(strings_depth) + PLATFORM.len() as u64;
        let random_depth = platform_depth + 16;
        let table_words = (1 + argc + 1 + envc + 1) + 2 * auxv.len() as u64;
        let depth = round16(random_depth + 8 * table_words);
        let room = top - bottom;
        if depth > room {
            return Err(ExecError::StackTooSmall { needed: depth, room });
        }
        let rsp = top - depth;
        let (strings, execfn_va) = (top - strings_depth, top - execfn_depth);
        let (platform, random_va) = (top - platform_depth, top - random_depth);
        for (key, value) in auxv.iter_mut() {
            *value = match *key {
                AT_RANDOM => random_va,
                AT_EXECFN => execfn_va,
                AT_PLATFORM => platform,
                _ => *value,
            };
        }

        let mut image = StackImage {
            top,
            rsp,
            bytes: vec![0; depth as usize],
            argc,
            envc,
            auxv,
            strings,
            execfn: execfn_va,
            platform,
            random: random_va,
        };
        // The strings, and the pointers to them.
        let mut words: Vec<u64> = Vec::with_capacity(table_words as usize);
        words.push(argc);
        let mut at = strings;
        for list in [argv, envp] {
            for s in list {
                words.push(at);
                image.put(at, s);
                at += s.len() as u64 + 1;
            }
            words.push(0);
        }
        image.put(execfn_va, execfn);
        image.put(platform, PLATFORM);
        image.put(random_va, &random);
        words.extend(image.auxv.iter().flat_map(|&(key, value)| [key, value]));
        let table: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
        image.put(rsp, &table);
        Ok(image)
    }

    /// Copies `bytes` to address `va` of the image.
    fn put(&mut self, va: u64, bytes: &[u8]) {
        let at = (va - self.rsp) as usize;
        self.bytes[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// The address past the stack's highest byte.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The stack pointer the program starts with (a multiple of 16): where
    /// `argc` is.
    pub fn rsp(&self) -> u64 {
        self.rsp
    }

    /// The bytes to copy to `[rsp, top)`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The number of arguments (at least 1).
    pub fn argc(&self) -> u64 {
        self.argc
    }

    /// The number of environment strings.
    pub fn envc(&self) -> u64 {
        self.envc
    }

    /// The address of `argv[0]`'s pointer, `rsp + 8`.
    pub fn argv(&self) -> u64 {
        self.rsp + 8
    }

    /// The address of `envp[0]`'s pointer (or of its NULL).
    pub fn envp(&self) -> u64 {
        self.argv() + 8 * (self.argc + 1)
    }

    /// The address of the auxiliary vector's first pair.
    pub fn auxv_address(&self) -> u64 {
        self.envp() + 8 * (self.envc + 1)
    }

    /// The auxiliary vector, in order, ending with `(AT_NULL, 0)`.
    pub fn auxv(&self) -> &[(u64, u64)] {
        &self.auxv
    }

    /// The address of the first argument string; the environment strings
    /// follow the arguments.
    pub fn strings(&self) -> u64 {
        self.strings
    }

    /// The address of the file name (`AT_EXECFN`).
    pub fn execfn(&self) -> u64 {
        self.execfn
    }

    /// The address of `"x86_64"` (`AT_PLATFORM`).
    pub fn platform(&self) -> u64 {
        self.platform
    }

    /// The address of the 16 random bytes (`AT_RANDOM`).
    pub fn random(&self) -> u64 {
        self.random
    }
}
