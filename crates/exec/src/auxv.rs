//! The auxiliary vector's keys (`AT_*`, Linux's `include/uapi/linux/auxvec.h`
//! and `arch/x86/include/uapi/asm/auxvec.h`) that the initial stack uses.

/// The end of the vector.
pub const AT_NULL: u64 = 0;
/// The program headers' address in memory.
pub const AT_PHDR: u64 = 3;
/// The size of one program header.
pub const AT_PHENT: u64 = 4;
/// The number of program headers.
pub const AT_PHNUM: u64 = 5;
/// The page size.
pub const AT_PAGESZ: u64 = 6;
/// The dynamic linker's base address (0: there is none).
pub const AT_BASE: u64 = 7;
/// Flags (0).
pub const AT_FLAGS: u64 = 8;
/// The program's entry point.
pub const AT_ENTRY: u64 = 9;
/// The real user id.
pub const AT_UID: u64 = 11;
/// The effective user id.
pub const AT_EUID: u64 = 12;
/// The real group id.
pub const AT_GID: u64 = 13;
/// The effective group id.
pub const AT_EGID: u64 = 14;
/// The address of the platform string, `"x86_64"`.
pub const AT_PLATFORM: u64 = 15;
/// The CPU's features (CPUID leaf 1, EDX, on x86).
pub const AT_HWCAP: u64 = 16;
/// The frequency of `times(2)`, clock ticks per second.
pub const AT_CLKTCK: u64 = 17;
/// Whether the program runs with more privileges than its caller (0 or 1).
pub const AT_SECURE: u64 = 23;
/// The address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// More CPU features (on x86: ring-3 MONITOR/MWAIT, FSGSBASE).
pub const AT_HWCAP2: u64 = 26;
/// The address of the file name the program was run by.
pub const AT_EXECFN: u64 = 31;
/// The address of the vDSO's ELF header.
pub const AT_SYSINFO_EHDR: u64 = 33;
/// The least signal stack size the CPU's state needs (x86).
pub const AT_MINSIGSTKSZ: u64 = 51;
