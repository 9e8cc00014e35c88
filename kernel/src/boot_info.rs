//! What the loader tells the kernel: QEMU's PVH `hvm_start_info`.
//!
//! The structure (Xen's `arch-x86/hvm/start_info.h`, version 1) gives the
//! command line, the module list (the `-initrd` file is module 0), the ACPI
//! RSDP address and an E820-style memory map. Everything the kernel needs is
//! copied into a [`BootInfo`] at once, before the frame allocator may hand
//! the memory that held it to someone else.
//!
//! The command line is never cut short. QEMU's PVH loader (its `pvh.bin`
//! option ROM) copies it, unchecked, into a buffer of 4096 bytes with its
//! NUL, right before the start-info structure; so a line of more than
//! [`MAX_COMMAND_LINE`] bytes either has no NUL in that buffer or has run
//! over the start info. Both are [`BootInfoError`]s that [`BootInfo::parse`]
//! reports on the console before powering off with a failing status (not a
//! panic), as it does for a line that is not UTF-8. Long scripts go to the
//! kernel as an initrd file instead (`script=@NAME`, see [`crate::cmdline`]).
//! Memory-map entries and modules beyond what is kept are reported too.

use core::fmt;

/// The `magic` field of a valid start-info structure.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;

/// The longest command line, in bytes without its NUL: QEMU's PVH loader
/// holds 4096 with the NUL. Longer ones are refused, never cut.
pub const MAX_COMMAND_LINE: usize = 4095;
/// Most memory-map entries kept (QEMU's PVH loader gives at most as many).
pub const MAX_MEMORY_REGIONS: usize = 128;
/// Most modules kept.
pub const MAX_MODULES: usize = 8;

/// `struct hvm_start_info` (version 1), as laid out in memory (the tests
/// build one by hand).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawStartInfo {
    pub(crate) magic: u32,
    pub(crate) version: u32,
    pub(crate) flags: u32,
    pub(crate) nr_modules: u32,
    pub(crate) modlist_paddr: u64,
    pub(crate) cmdline_paddr: u64,
    pub(crate) rsdp_paddr: u64,
    pub(crate) memmap_paddr: u64,
    pub(crate) memmap_entries: u32,
    pub(crate) reserved: u32,
}

/// `struct hvm_modlist_entry`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawModule {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

/// `struct hvm_memmap_table_entry`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawMemoryRegion {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// What a memory-map entry holds (E820 types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// 1: RAM the kernel may use.
    Usable,
    /// 2: reserved by the firmware or devices.
    Reserved,
    /// 3: ACPI tables; usable once they have been read.
    AcpiReclaimable,
    /// 4: ACPI non-volatile storage.
    AcpiNvs,
    /// 5: defective RAM.
    Unusable,
    /// Any other type.
    Other(u32),
}

impl MemoryKind {
    fn from_e820(kind: u32) -> MemoryKind {
        match kind {
            1 => MemoryKind::Usable,
            2 => MemoryKind::Reserved,
            3 => MemoryKind::AcpiReclaimable,
            4 => MemoryKind::AcpiNvs,
            5 => MemoryKind::Unusable,
            other => MemoryKind::Other(other),
        }
    }
}

/// One entry of the physical memory map: `[start, start + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First physical address.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// What the memory is.
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// One past the last physical address.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

/// A module loaded with the kernel (`-initrd` is module 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    /// Physical address of its first byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

/// Why the start-info structure was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The magic number is wrong: not a PVH boot.
    BadMagic(u32),
    /// The magic number is text: a command line longer than QEMU's PVH
    /// loader holds ran over the start info.
    OverwrittenByCommandLine(u32),
    /// No NUL within [`MAX_COMMAND_LINE`] + 1 bytes: the command line is
    /// longer than the loader holds.
    CommandLineTooLong,
    /// The command line is not UTF-8: its first bad byte.
    CommandLineNotUtf8 {
        /// The offset of the first byte that is not UTF-8.
        offset: usize,
    },
}

impl BootInfoError {
    /// True for the errors of an unusable command line (reported and
    /// refused by [`BootInfo::parse`] rather than returned).
    pub fn is_command_line_error(&self) -> bool {
        !matches!(self, BootInfoError::BadMagic(_))
    }
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootInfoError::BadMagic(magic) => {
                write!(
                    f,
                    "start info magic is {magic:#x}, expected {START_INFO_MAGIC:#x} (or a kernel command line \
                     longer than {MAX_COMMAND_LINE} bytes ran over it)"
                )
            }
            BootInfoError::OverwrittenByCommandLine(magic) => write!(
                f,
                "the PVH start info is overwritten with text (magic {magic:#x}, expected {START_INFO_MAGIC:#x}): \
                 the kernel command line is longer than {MAX_COMMAND_LINE} bytes, the most QEMU's PVH loader \
                 holds, and ran over it"
            ),
            BootInfoError::CommandLineTooLong => write!(
                f,
                "the kernel command line is longer than {MAX_COMMAND_LINE} bytes, the most QEMU's PVH loader \
                 holds; refused rather than cut short"
            ),
            BootInfoError::CommandLineNotUtf8 { offset } => {
                write!(f, "the kernel command line is not UTF-8 (byte {offset})")
            }
        }
    }
}

/// True when `magic` (not the right one) reads as the end of a command line
/// that ran over it: printable ASCII, possibly ended by the line's NUL and
/// followed by what is left of the real magic.
fn overwritten_by_text(magic: u32) -> bool {
    let (got, want) = (magic.to_le_bytes(), START_INFO_MAGIC.to_le_bytes());
    let text = got.iter().take_while(|byte| byte.is_ascii_graphic() || byte.is_ascii_whitespace()).count();
    text == got.len() || (got[text] == 0 && got[text + 1..] == want[text + 1..])
}

/// What the loader told us, copied once at boot by `kernel_main`.
pub static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// The boot information (available from the first steps of `kernel_main` on).
pub fn get() -> &'static BootInfo {
    BOOT_INFO.get().expect("boot info is parsed first thing at boot")
}

/// The kernel's own copy of what the loader told it.
pub struct BootInfo {
    command_line: [u8; MAX_COMMAND_LINE],
    command_line_len: usize,
    memory_map: [MemoryRegion; MAX_MEMORY_REGIONS],
    memory_map_len: usize,
    /// Entries of the loader's memory map beyond [`MAX_MEMORY_REGIONS`].
    dropped_memory_regions: usize,
    modules: [Module; MAX_MODULES],
    module_count: usize,
    /// Modules beyond [`MAX_MODULES`].
    dropped_modules: usize,
    rsdp: Option<u64>,
    /// Physical ranges the loader's structures occupied, `[start, end)`.
    loader_ranges: [(u64, u64); 4],
}

/// Reads a `T` at physical address `addr` through the direct map (which
/// the boot tables hold for the first 4 GiB).
///
/// # Safety
/// `[addr, addr + size_of::<T>())` must be mapped memory holding a `T`.
unsafe fn read_phys<T: Copy>(addr: u64) -> T {
    // SAFETY: the caller guarantees the memory; it may be unaligned.
    unsafe { (crate::direct_map::phys_to_virt(addr) as *const T).read_unaligned() }
}

impl BootInfo {
    /// Copies the start-info structure at physical address `start_info`.
    /// A command line that is too long or not UTF-8 is reported on the
    /// console, and the machine powers off with a failing status: the
    /// kernel never runs a command line cut short.
    ///
    /// # Safety
    /// `start_info` must be the address the PVH loader passed in `ebx`, and
    /// the first 4 GiB must be in the direct map (as the boot code leaves them).
    pub unsafe fn parse(start_info: u64) -> Result<BootInfo, BootInfoError> {
        // SAFETY: the caller's guarantees are `read`'s.
        match unsafe { BootInfo::read(start_info) } {
            Ok(info) => {
                if info.dropped_memory_regions > 0 {
                    crate::println!(
                        "boot: the loader gave {} memory-map entries; only the first {MAX_MEMORY_REGIONS} are used",
                        MAX_MEMORY_REGIONS + info.dropped_memory_regions
                    );
                }
                if info.dropped_modules > 0 {
                    crate::println!(
                        "boot: the loader gave {} modules; only the first {MAX_MODULES} are kept",
                        MAX_MODULES + info.dropped_modules
                    );
                }
                Ok(info)
            }
            Err(error) if error.is_command_line_error() => {
                crate::println!("\nboot: {error}; not booting");
                crate::qemu::exit(crate::qemu::ExitStatus::Failure)
            }
            Err(error) => Err(error),
        }
    }

    /// Copies the start-info structure at `start_info` (the work of
    /// [`parse`](BootInfo::parse), which reports and refuses errors of the
    /// command line; this only returns them).
    ///
    /// # Safety
    /// `start_info` must be the address of a start-info structure whose
    /// addresses (command line, modules, memory map) are mapped one to one.
    pub unsafe fn read(start_info: u64) -> Result<BootInfo, BootInfoError> {
        // SAFETY: the caller guarantees a start-info structure is there.
        let raw: RawStartInfo = unsafe { read_phys(start_info) };
        if raw.magic != START_INFO_MAGIC {
            if overwritten_by_text(raw.magic) {
                return Err(BootInfoError::OverwrittenByCommandLine(raw.magic));
            }
            return Err(BootInfoError::BadMagic(raw.magic));
        }
        let mut info = BootInfo {
            command_line: [0; MAX_COMMAND_LINE],
            command_line_len: 0,
            memory_map: [MemoryRegion { start: 0, size: 0, kind: MemoryKind::Reserved }; MAX_MEMORY_REGIONS],
            memory_map_len: 0,
            dropped_memory_regions: 0,
            modules: [Module { start: 0, size: 0 }; MAX_MODULES],
            module_count: 0,
            dropped_modules: 0,
            rsdp: (raw.rsdp_paddr != 0).then_some(raw.rsdp_paddr),
            loader_ranges: [(0, 0); 4],
        };
        info.loader_ranges[0] = (start_info, start_info + size_of::<RawStartInfo>() as u64);

        if raw.cmdline_paddr != 0 {
            // Up to the NUL, which must come within MAX_COMMAND_LINE + 1 bytes.
            loop {
                // SAFETY: the loader's command line is a NUL-terminated
                // string; no byte past its NUL is read.
                let byte: u8 = unsafe { read_phys(raw.cmdline_paddr + info.command_line_len as u64) };
                if byte == 0 {
                    break;
                }
                if info.command_line_len == MAX_COMMAND_LINE {
                    return Err(BootInfoError::CommandLineTooLong);
                }
                info.command_line[info.command_line_len] = byte;
                info.command_line_len += 1;
            }
            if let Err(error) = core::str::from_utf8(&info.command_line[..info.command_line_len]) {
                return Err(BootInfoError::CommandLineNotUtf8 { offset: error.valid_up_to() });
            }
            info.loader_ranges[1] = (raw.cmdline_paddr, raw.cmdline_paddr + info.command_line_len as u64 + 1);
        }

        let modules = (raw.nr_modules as usize).min(MAX_MODULES);
        for index in 0..modules {
            let entry_addr = raw.modlist_paddr + (index * size_of::<RawModule>()) as u64;
            // SAFETY: the module list holds `nr_modules` entries.
            let entry: RawModule = unsafe { read_phys(entry_addr) };
            info.modules[index] = Module { start: entry.paddr, size: entry.size };
        }
        info.module_count = modules;
        info.dropped_modules = raw.nr_modules as usize - modules;
        if modules > 0 {
            info.loader_ranges[2] =
                (raw.modlist_paddr, raw.modlist_paddr + (raw.nr_modules as usize * size_of::<RawModule>()) as u64);
        }

        // The memory map exists from version 1 of the structure on.
        if raw.version >= 1 && raw.memmap_paddr != 0 {
            let entries = (raw.memmap_entries as usize).min(MAX_MEMORY_REGIONS);
            for index in 0..entries {
                let entry_addr = raw.memmap_paddr + (index * size_of::<RawMemoryRegion>()) as u64;
                // SAFETY: the table holds `memmap_entries` entries.
                let entry: RawMemoryRegion = unsafe { read_phys(entry_addr) };
                info.memory_map[index] =
                    MemoryRegion { start: entry.addr, size: entry.size, kind: MemoryKind::from_e820(entry.kind) };
            }
            info.memory_map_len = entries;
            info.dropped_memory_regions = raw.memmap_entries as usize - entries;
            info.loader_ranges[3] = (
                raw.memmap_paddr,
                raw.memmap_paddr + (raw.memmap_entries as usize * size_of::<RawMemoryRegion>()) as u64,
            );
        }
        Ok(info)
    }

    /// The kernel command line (`-append`), or "" when none was given: whole
    /// (a longer or non-UTF-8 one is refused at boot).
    pub fn command_line(&self) -> &str {
        core::str::from_utf8(&self.command_line[..self.command_line_len]).unwrap_or("")
    }

    /// The physical memory map.
    pub fn memory_map(&self) -> &[MemoryRegion] {
        &self.memory_map[..self.memory_map_len]
    }

    /// The modules loaded with the kernel.
    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.module_count]
    }

    /// The initial RAM disk (`-initrd`): module 0.
    pub fn initrd(&self) -> Option<Module> {
        self.modules().first().copied()
    }

    /// Physical address of the ACPI RSDP, when the loader gave one.
    pub fn rsdp(&self) -> Option<u64> {
        self.rsdp
    }

    /// The physical ranges `[start, end)` the loader's structures occupied
    /// (they need not be kept from reuse once parsed, but the frame
    /// allocator leaves them alone anyway).
    pub fn loader_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.loader_ranges.iter().copied().filter(|(start, end)| end > start)
    }
}
