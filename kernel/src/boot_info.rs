//! What the loader tells the kernel: QEMU's PVH `hvm_start_info`.
//!
//! The structure (Xen's `arch-x86/hvm/start_info.h`, version 1) gives the
//! command line, the module list (the `-initrd` file is module 0), the ACPI
//! RSDP address and an E820-style memory map. Everything the kernel needs is
//! copied into a [`BootInfo`] at once, before the frame allocator may hand
//! the memory that held it to someone else.

use core::fmt;

/// The `magic` field of a valid start-info structure.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;

/// Longest command line kept (longer ones are cut).
pub const MAX_COMMAND_LINE: usize = 4096;
/// Most memory-map entries kept.
pub const MAX_MEMORY_REGIONS: usize = 128;
/// Most modules kept.
pub const MAX_MODULES: usize = 8;

/// `struct hvm_start_info`, as laid out in memory.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
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
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootInfoError::BadMagic(magic) => {
                write!(f, "start info magic is {magic:#x}, expected {START_INFO_MAGIC:#x}")
            }
        }
    }
}

/// The kernel's own copy of what the loader told it.
pub struct BootInfo {
    command_line: [u8; MAX_COMMAND_LINE],
    command_line_len: usize,
    memory_map: [MemoryRegion; MAX_MEMORY_REGIONS],
    memory_map_len: usize,
    modules: [Module; MAX_MODULES],
    module_count: usize,
    rsdp: Option<u64>,
    /// Physical ranges the loader's structures occupied, `[start, end)`.
    loader_ranges: [(u64, u64); 4],
}

/// Reads a `T` at physical address `addr` through the boot identity map.
///
/// # Safety
/// `[addr, addr + size_of::<T>())` must be mapped memory holding a `T`.
unsafe fn read_phys<T: Copy>(addr: u64) -> T {
    // SAFETY: the caller guarantees the memory; it may be unaligned.
    unsafe { (addr as *const T).read_unaligned() }
}

impl BootInfo {
    /// Copies the start-info structure at physical address `start_info`.
    ///
    /// # Safety
    /// `start_info` must be the address the PVH loader passed in `ebx`, and
    /// the first 4 GiB must be identity-mapped (as the boot code leaves them).
    pub unsafe fn parse(start_info: u64) -> Result<BootInfo, BootInfoError> {
        // SAFETY: the caller guarantees a start-info structure is there.
        let raw: RawStartInfo = unsafe { read_phys(start_info) };
        if raw.magic != START_INFO_MAGIC {
            return Err(BootInfoError::BadMagic(raw.magic));
        }
        let mut info = BootInfo {
            command_line: [0; MAX_COMMAND_LINE],
            command_line_len: 0,
            memory_map: [MemoryRegion { start: 0, size: 0, kind: MemoryKind::Reserved }; MAX_MEMORY_REGIONS],
            memory_map_len: 0,
            modules: [Module { start: 0, size: 0 }; MAX_MODULES],
            module_count: 0,
            rsdp: (raw.rsdp_paddr != 0).then_some(raw.rsdp_paddr),
            loader_ranges: [(0, 0); 4],
        };
        info.loader_ranges[0] = (start_info, start_info + size_of::<RawStartInfo>() as u64);

        if raw.cmdline_paddr != 0 {
            while info.command_line_len < MAX_COMMAND_LINE {
                // SAFETY: the loader's command line is a NUL-terminated string.
                let byte: u8 = unsafe { read_phys(raw.cmdline_paddr + info.command_line_len as u64) };
                if byte == 0 {
                    break;
                }
                info.command_line[info.command_line_len] = byte;
                info.command_line_len += 1;
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
            info.loader_ranges[3] = (
                raw.memmap_paddr,
                raw.memmap_paddr + (raw.memmap_entries as usize * size_of::<RawMemoryRegion>()) as u64,
            );
        }
        Ok(info)
    }

    /// The kernel command line (`-append`), or "" when none was given.
    pub fn command_line(&self) -> &str {
        let bytes = &self.command_line[..self.command_line_len];
        match core::str::from_utf8(bytes) {
            Ok(text) => text,
            // Keep the valid prefix of a line that is not UTF-8.
            Err(error) => core::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or(""),
        }
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
