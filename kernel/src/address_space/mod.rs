//! The generic address-space layer: every address space in the system, the
//! one each CPU has loaded, and the thread moves, context-switch hook and
//! fault routing that tie them to the rest of the kernel.
//!
//! The paths through this module:
//! - **a lazy fault**: [`on_page_fault`] finds the CPU's current address
//!   space and hands it the fault; the implementation maps the page.
//! - **an edit of a live address space**: the shell (or a test) finds a
//!   [`Space`] by name, locks it and calls the trait operation; the
//!   implementation edits its tables and flushes through [`KernelMachine`].
//! - **a context switch**: the scheduler calls [`on_context_switch`] when the
//!   next thread's address space differs from the CPU's; it calls
//!   `switch_from` on the old one and `switch_to` on the new one.

pub mod base;
pub mod harden;
pub mod machine;

pub use machine::KernelMachine;

use crate::arch::cpu;
use crate::percpu;
use crate::sync::{IrqMutex, IrqMutexGuard};
use crate::thread::{self, AddressSpaceId};
use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{
    AddressSpace, AspaceError, Characteristics, Fault, FaultOutcome, Implementation, PhysAddr, Protection, Region,
    Registry, UnhandledFault,
};
use base::BaseAspace;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use paging::PagingAspace;

/// An address space known to the kernel: its id (the threads' slot value),
/// its name, and the implementation object behind a lock that keeps
/// interrupts off (the fault path takes it from interrupt context).
/// The object behind a [`Space`], by kind: the kernel reaches the page
/// tables of its own implementations by matching on it, never by downcasting
/// a trait object. Every kind is an [`AddressSpace`] (through `Deref`), which
/// is all the shell's generic verbs use.
pub enum SpaceObject {
    /// The boot map (`base`).
    Base(BaseAspace),
    /// A `paging` address space on the real hardware.
    Paging(PagingAspace<KernelMachine>),
    /// Any other registered implementation (a student's own, say).
    Other(Box<dyn AddressSpace>),
}

impl core::ops::Deref for SpaceObject {
    type Target = dyn AddressSpace;

    fn deref(&self) -> &Self::Target {
        match self {
            SpaceObject::Base(base) => base,
            SpaceObject::Paging(paging) => paging,
            SpaceObject::Other(other) => &**other,
        }
    }
}

impl core::ops::DerefMut for SpaceObject {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            SpaceObject::Base(base) => base,
            SpaceObject::Paging(paging) => paging,
            SpaceObject::Other(other) => &mut **other,
        }
    }
}

impl SpaceObject {
    /// The page tables behind it: a `paging` address space's, or the boot
    /// map's under `base`. `None` for other implementations.
    pub fn paging(&self) -> Option<&PagingAspace<KernelMachine>> {
        match self {
            SpaceObject::Base(base) => Some(base.paging()),
            SpaceObject::Paging(paging) => Some(paging),
            SpaceObject::Other(_) => None,
        }
    }

    /// The `paging` address space, for the settings the trait does not
    /// offer (the lazy-fault page size). `None` for any other kind, `base`
    /// included: the boot map is not to be changed.
    pub fn paging_mut(&mut self) -> Option<&mut PagingAspace<KernelMachine>> {
        match self {
            SpaceObject::Paging(paging) => Some(paging),
            SpaceObject::Base(_) | SpaceObject::Other(_) => None,
        }
    }
}

pub struct Space {
    id: AddressSpaceId,
    name: String,
    inner: IrqMutex<SpaceObject>,
}

impl Space {
    /// The id threads carry in their address-space slot.
    pub fn id(&self) -> AddressSpaceId {
        self.id
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when some CPU has the space loaded: a look at every CPU's
    /// loaded-space record ([`percpu::LoadedSpace`]), without a lock, so
    /// that a holder of this space's lock never waits for a CPU that is
    /// switching.
    pub fn is_loaded(&self) -> bool {
        let me = self as *const Space as *mut ();
        percpu::all_cpus().any(|cpu| cpu.loaded.owner.load(Ordering::SeqCst) == me)
    }

    /// Locks the implementation object (interrupts stay off until the guard
    /// is dropped).
    ///
    /// While it waits, this CPU keeps answering TLB shootdowns: the holder
    /// may be editing the space and waiting for this CPU's acknowledgement,
    /// and with interrupts off the shootdown IPI cannot get through.
    pub fn lock(&self) -> IrqMutexGuard<'_, SpaceObject> {
        self.lock_by(IrqMutex::try_lock)
    }

    /// [`Space::lock`] for a caller whose interrupts are off already (the
    /// fault handler): no flags to save and restore, which under TCG are a
    /// helper call each.
    pub fn lock_interrupts_off(&self) -> IrqMutexGuard<'_, SpaceObject> {
        self.lock_by(IrqMutex::try_lock_interrupts_off)
    }

    // Inlined: on the path of every fault and edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn lock_by<'a>(
        &'a self,
        try_lock: fn(&'a IrqMutex<SpaceObject>) -> Option<IrqMutexGuard<'a, SpaceObject>>,
    ) -> IrqMutexGuard<'a, SpaceObject> {
        loop {
            if let Some(guard) = try_lock(&self.inner) {
                return guard;
            }
            crate::tlb::service_pending_shootdowns();
            core::hint::spin_loop();
        }
    }
}

/// Every address space, by id.
static SPACES: IrqMutex<BTreeMap<AddressSpaceId, Arc<Space>>> = IrqMutex::new(BTreeMap::new());
/// The next id to hand out; 0 is the boot map.
static NEXT_ID: AtomicU32 = AtomicU32::new(1);
// Which space each CPU has loaded is one record per CPU,
// `percpu::LoadedSpace`. This layer's part of it is `owner`: null for the
// default space, else a strong reference (`Arc::into_raw`) that only its own
// CPU changes, with interrupts off ([`on_context_switch`]). So that CPU may
// use the space it points to without cloning the `Arc`, and the others only
// compare the pointer. The TLB layer's part is the root (`tlb::load_root`).

/// The space this CPU has loaded (`None`: the default one), for as long as
/// the caller keeps interrupts off and does not switch spaces.
fn loaded_here() -> Option<&'static Space> {
    let pointer = percpu::current().loaded.owner.load(Ordering::Acquire) as *const Space;
    // SAFETY: a non-null slot holds a strong reference that only this CPU
    // releases, in `on_context_switch`, which cannot run while the caller
    // (on this CPU, interrupts off) uses the space.
    (!pointer.is_null()).then(|| unsafe { &*pointer })
}

/// The id of the address space CPU `cpu` has loaded (`None`: the default
/// one), for the `cpus` listing: the pointer is only compared with the
/// spaces in the table, never followed.
pub fn loaded_on(cpu: u32) -> Option<AddressSpaceId> {
    let pointer = percpu::by_id(cpu)?.loaded.owner.load(Ordering::Acquire) as *const Space;
    if pointer.is_null() {
        return None;
    }
    SPACES.lock().values().find(|space| core::ptr::eq(Arc::as_ptr(space), pointer)).map(|space| space.id)
}
/// The boot map, which is also the default address space.
static BASE: spin::Once<Arc<Space>> = spin::Once::new();
/// The implementations, by name.
static REGISTRY: spin::Once<Registry> = spin::Once::new();
/// The PCIDs in use (bit n = PCID n); PCID 0 belongs to the default space.
static PCIDS: IrqMutex<[u64; 64]> = IrqMutex::new(pcids_with_zero_taken());

const fn pcids_with_zero_taken() -> [u64; 64] {
    let mut words = [0; 64];
    words[0] = 1;
    words
}

/// The page size of the default map's pages, and so its unit of length.
const GIB: u64 = 1 << 30;
/// The implementations, in the order `asis` lists them.
static BASE_IMPLEMENTATION: Implementation = Implementation {
    name: base::NAME,
    description: "the boot map of all RAM and low MMIO (kernel half and identity), under a name; fixed",
    characteristics: Characteristics { granularity: 4096, alignment: 4096 },
    create: create_base,
};
static PAGING_IMPLEMENTATION: Implementation = Implementation {
    name: "paging",
    description: "x86-64 4/5-level page tables; eager or lazy regions, sub-range edits",
    characteristics: Characteristics { granularity: 4096, alignment: 4096 },
    create: create_paging,
};

fn create_base(name: &str) -> Result<Box<dyn AddressSpace>, AspaceError> {
    Ok(Box::new(base::create(name)?))
}

fn create_paging(name: &str) -> Result<Box<dyn AddressSpace>, AspaceError> {
    Ok(Box::new(PagingAspace::new(KernelMachine, name, allocate_pcid())?))
}

/// A free PCID when the CPU has PCIDs on, else `None` (every switch then
/// flushes the TLB, which is always correct).
pub(crate) fn allocate_pcid() -> Option<u16> {
    if !cpu::pcid_enabled() {
        return None;
    }
    let mut used = PCIDS.lock();
    let (word, bit) = used
        .iter()
        .enumerate()
        .find_map(|(index, bits)| (*bits != u64::MAX).then(|| (index, bits.trailing_ones() as usize)))?;
    used[word] |= 1 << bit;
    Some((word * 64 + bit) as u16)
}

fn release_pcid(pcid: u16) {
    // Entries still tagged with it belong to the destroyed space.
    crate::tlb::retire_pcid(pcid);
    PCIDS.lock()[pcid as usize / 64] &= !(1 << (pcid % 64));
}

/// Builds the default address space (the boot map, named `base`)
/// over `[0, max(4 GiB, top of RAM))`, loads it, registers the
/// implementations and installs the hooks of the thread switcher and the
/// trap dispatcher. Called once at boot, before threads start.
pub fn init(ram_top: u64) -> Result<(), AspaceError> {
    if cpu::features().pcid {
        // SAFETY: CR3's PCID field is 0 here, as the SDM requires when
        // setting CR4.PCIDE, and the CPU reports PCID support.
        unsafe { cpu::write_cr4(cpu::read_cr4() | cpu::CR4_PCIDE) };
    }
    crate::hardening::enable_cpu_protections();
    let len = ram_top.max(4 * GIB).next_multiple_of(GIB);
    KERNEL_MAP_LEN.store(len, Ordering::Relaxed);
    // The boot CPU's interrupt stacks get guard pages like every stack; the
    // map built next leaves every guard page recorded so far unmapped.
    crate::percpu::guard_ist_stacks(crate::percpu::current());
    let half = paging::KernelHalf::new(&KernelMachine)?;
    let half = KERNEL_HALF.call_once(|| half);
    let mut boot_map = BaseAspace::build("base", len, half)?;
    boot_map.switch_to();
    let base = Arc::new(Space { id: 0, name: "base".into(), inner: IrqMutex::new(SpaceObject::Base(boot_map)) });
    SPACES.lock().insert(0, base.clone());
    BASE.call_once(|| base);

    let mut registry = Registry::new();
    registry.register(&BASE_IMPLEMENTATION)?;
    registry.register(&PAGING_IMPLEMENTATION)?;
    REGISTRY.call_once(|| registry);

    Ok(())
}

/// The length of the physical memory the kernel maps, `[0, len)` (in the
/// direct map of every space it runs in, and one to one in the default
/// space): all RAM and the low MMIO, a multiple of 1 GiB, at least 4 GiB
/// (0 before [`init`]).
pub fn kernel_map_len() -> u64 {
    KERNEL_MAP_LEN.load(Ordering::Relaxed)
}

static KERNEL_MAP_LEN: AtomicU64 = AtomicU64::new(0);

/// The registered implementations.
pub fn registry() -> &'static Registry {
    REGISTRY.get().expect("address-space layer initialised at boot")
}

/// The default address space (the boot map).
pub fn base() -> Arc<Space> {
    BASE.get().expect("address-space layer initialised at boot").clone()
}

/// Creates an address space of implementation `implementation` named `name`.
pub fn create(implementation: &str, name: &str) -> Result<Arc<Space>, AspaceError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
        return Err(AspaceError::InvalidName { name: name.into() });
    }
    if find(name).is_ok() {
        return Err(AspaceError::NameTaken { name: name.into() });
    }
    // The kernel's own kinds are built typed; any other through the registry.
    let object = match implementation {
        "paging" => SpaceObject::Paging(PagingAspace::new(KernelMachine, name, allocate_pcid())?),
        base::NAME => SpaceObject::Base(base::create(name)?),
        _ => SpaceObject::Other(registry().create(implementation, name)?),
    };
    register(name, object)
}

/// Lists `object` under `name` with a fresh id.
pub(crate) fn register(name: &str, object: SpaceObject) -> Result<Arc<Space>, AspaceError> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let space = Arc::new(Space { id, name: name.into(), inner: IrqMutex::new(object) });
    let mut spaces = SPACES.lock();
    // Checked again under the lock: two creators may race for a name.
    if spaces.values().any(|existing| existing.name == name) {
        return Err(AspaceError::NameTaken { name: name.into() });
    }
    spaces.insert(id, space.clone());
    Ok(space)
}

/// The kernel half: the tables of the upper half that the default space and
/// every process space share (`paging::KernelHalf`), built at boot.
pub fn kernel_half() -> &'static paging::KernelHalf {
    KERNEL_HALF.get().expect("address-space layer initialised at boot")
}

static KERNEL_HALF: spin::Once<paging::KernelHalf> = spin::Once::new();

/// A copy-on-write clone of `parent` named `name`, registered like a new
/// space: what `fork` makes for a child process (see
/// `paging::PagingAspace::fork`: private pages shared read-only until the
/// first write, the parent's writable entries shot down on every CPU
/// before this returns). Only `paging` spaces fork. The child has the
/// parent's regions, guard pages included; to have later guard pages
/// unmapped in it too, see `harden::mark_hardened`.
pub fn fork(parent: &Space, name: &str) -> Result<Arc<Space>, AspaceError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
        return Err(AspaceError::InvalidName { name: name.into() });
    }
    if find(name).is_ok() {
        return Err(AspaceError::NameTaken { name: name.into() });
    }
    let pcid = allocate_pcid();
    let forked = {
        let mut object = parent.lock();
        let implementation = object.implementation();
        match paging_of_mut(&mut object) {
            Some(paging) => paging.fork(name, pcid),
            None => Err(AspaceError::Unsupported { implementation, operation: "fork" }),
        }
    };
    let child = match forked {
        Ok(child) => child,
        Err(error) => {
            if let Some(pcid) = pcid {
                release_pcid(pcid);
            }
            return Err(error);
        }
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let space = Arc::new(Space { id, name: name.into(), inner: IrqMutex::new(SpaceObject::Paging(child)) });
    SPACES.lock().insert(id, space.clone());
    Ok(space)
}

/// The address space called `name`.
pub fn find(name: &str) -> Result<Arc<Space>, AspaceError> {
    SPACES
        .lock()
        .values()
        .find(|space| space.name == name)
        .cloned()
        .ok_or_else(|| AspaceError::UnknownAddressSpace { name: name.into() })
}

/// The address space with id `id`.
pub fn by_id(id: AddressSpaceId) -> Option<Arc<Space>> {
    SPACES.lock().get(&id).cloned()
}

/// Every address space, by id (the boot map first).
pub fn all() -> Vec<Arc<Space>> {
    SPACES.lock().values().cloned().collect()
}

/// Destroys the address space called `name`: refused while threads are in
/// it or a CPU has it loaded, and for the boot map.
pub fn destroy(name: &str) -> Result<(), AspaceError> {
    let space = find(name)?;
    if space.id == 0 {
        return Err(AspaceError::Unsupported {
            implementation: base::NAME,
            operation: "destroy (the kernel runs on it)",
        });
    }
    // Threads inside first: with several CPUs, a thread inside usually also
    // keeps a CPU holding the space, and the thread is the cause to report.
    if space.lock().thread_count() > 0 {
        return Err(AspaceError::Busy { reason: "threads are still inside the address space" });
    }
    if space.is_loaded() {
        return Err(AspaceError::Busy { reason: "a CPU has it loaded" });
    }
    let mut object = space.lock();
    let pcid = paging_of(&object).and_then(|paging| paging.space_id()?.pcid);
    let root = paging_of(&object).and_then(|paging| paging.root());
    object.destroy()?;
    drop(object);
    if let Some(root) = root {
        let ipis = crate::tlb::space_ipis(root.as_u64());
        if ipis > 0 {
            log::info!("address space '{}' destroyed: {ipis} shootdown IPIs were sent for it", space.name);
        }
        crate::tlb::forget_space(root.as_u64());
    }
    SPACES.lock().remove(&space.id);
    if let Some(pcid) = pcid {
        release_pcid(pcid);
    }
    Ok(())
}

/// The page tables behind `object` (see [`SpaceObject::paging`]).
pub fn paging_of(object: &SpaceObject) -> Option<&PagingAspace<KernelMachine>> {
    object.paging()
}

/// The `paging` address space behind `object` (see [`SpaceObject::paging_mut`]).
pub fn paging_of_mut(object: &mut SpaceObject) -> Option<&mut PagingAspace<KernelMachine>> {
    object.paging_mut()
}

/// The address space the running thread is in (`None` = default).
pub fn current() -> Option<Arc<Space>> {
    thread::current_address_space().and_then(by_id)
}

/// Moves the running thread into `target` (`None` = the default address
/// space) and switches this CPU to it at once. Refused when `target` does
/// not map what the kernel needs to keep running (see [`check_can_enter`]).
pub fn move_current_thread(target: Option<&Arc<Space>>) -> Result<(), AspaceError> {
    let from = thread::current_address_space();
    let to = target.map(|space| space.id);
    if from == to {
        // Already there (a new thread of a process starts in its space).
        return Ok(());
    }
    if let Some(space) = target {
        check_can_enter(&**space.lock())?;
    }
    let me = thread::current();
    if let Some(old) = from.and_then(by_id) {
        old.lock().remove_thread(me.id().0);
    }
    if let Some(new) = target {
        new.lock().add_thread(me.id().0);
    }
    thread::set_current_address_space(to);
    Ok(())
}

/// A range of virtual addresses the kernel touches while an address space
/// is loaded: what it holds, `[start, end)`, the physical address `start`
/// must translate to (the rest following on), and the access needed.
#[derive(Clone, Copy, Debug)]
struct KernelRange {
    what: &'static str,
    start: u64,
    end: u64,
    phys: u64,
    needs: Protection,
}

/// What the kernel touches while an address space is loaded, each with the
/// access it needs, all in the kernel half (the upper half): the kernel
/// image by sections where it is linked (text read and execute, rodata
/// read, data and bss read and write), the rest of RAM in the direct map
/// (heap, thread stacks and page-table frames come from anywhere in it;
/// read and write) and the local APIC's registers there. Each must
/// translate to its own physical memory. Guard pages need nothing (see
/// [`kernel_mapped`]). The lower half is not among them: the kernel never
/// runs there, whatever a space maps there. Kept once the local APIC's
/// base is known: none of it changes after that, and every edit of a live
/// space looks at it.
fn kernel_ranges() -> Cow<'static, [KernelRange]> {
    static RANGES: spin::Once<Vec<KernelRange>> = spin::Once::new();
    if let Some(ranges) = RANGES.get() {
        return Cow::Borrowed(ranges);
    }
    if crate::arch::apic::mmio_base() == 0 {
        return Cow::Owned(find_kernel_ranges());
    }
    Cow::Borrowed(RANGES.call_once(find_kernel_ranges))
}

/// [`kernel_ranges`], from the image's sections and the boot memory map.
fn find_kernel_ranges() -> Vec<KernelRange> {
    use crate::direct_map::{image_phys, PHYS_OFFSET};
    let read_write = Protection::READ | Protection::WRITE;
    let image = crate::hardening::image_sections();
    let mut ranges: Vec<_> = image
        .iter()
        .map(|section| KernelRange {
            what: "kernel image",
            start: section.start,
            end: section.end,
            phys: image_phys(section.start),
            needs: section.access,
        })
        .collect();
    let (image_start, image_end) = (image_phys(image[0].start), image_phys(image[2].end));
    let usable = crate::boot_info::get().memory_map().iter().filter(|r| r.kind == crate::boot_info::MemoryKind::Usable);
    let direct = |what: &'static str, start: u64, end: u64| KernelRange {
        what,
        start: PHYS_OFFSET + start,
        end: PHYS_OFFSET + end,
        phys: start,
        needs: read_write,
    };
    for ram in usable {
        // The image's own RAM is reached where the image is linked.
        let below = (ram.start, ram.end().min(image_start));
        let above = (ram.start.max(image_end), ram.end());
        for (start, end) in [below, above] {
            if start < end {
                ranges.push(direct("RAM (heap, stacks, page tables)", start, end));
            }
        }
    }
    let apic = crate::arch::apic::mmio_base();
    ranges.push(direct("local APIC registers", apic, apic + 4096));
    ranges
}

/// Checks that `space` holds the kernel half: that it maps, each to its
/// own physical memory, eagerly and with the access the kernel needs,
/// everything the kernel touches while it is loaded (see
/// [`kernel_ranges`]), and the running thread's stack. What the space maps
/// in the lower half (an identity map or nothing) does not matter.
///
/// Eagerly ([`Protection::EAGER`]): a lazy page of that memory would fault
/// where the CPU cannot take a fault. Delivering a page fault needs the IDT,
/// the GDT and TSS, and the handler's IST stack (all in the kernel image or
/// in RAM), handling it needs the kernel's code, its heap and the page-table
/// frames (written through the direct map); a fault on any of those while
/// delivering or handling a fault is a double fault, then a reset. So a
/// space whose kernel regions are lazy is refused instead of entered.
pub fn check_can_enter(space: &dyn AddressSpace) -> Result<(), AspaceError> {
    if let Some((bottom, top)) = thread::current().stack_range() {
        let needs = Protection::READ | Protection::WRITE | Protection::EAGER;
        // A stack the kernel made: in the direct map, or (the boot CPU's
        // first thread) in the image.
        let phys = crate::direct_map::virt_to_phys(bottom).unwrap_or(u64::MAX);
        kernel_mapped(space, bottom, top, phys, needs)
            .map_err(|addr| AspaceError::WouldUnmapRunning { what: "running stack", addr })?;
    }
    for range in kernel_ranges().iter() {
        kernel_mapped(space, range.start, range.end, range.phys, range.needs | Protection::EAGER)
            .map_err(|addr| AspaceError::WouldUnmapRunning { what: range.what, addr })?;
    }
    Ok(())
}

/// An edit of regions that may take memory away from the kernel.
#[derive(Clone, Copy, Debug)]
pub enum LiveEdit {
    /// Removing the target.
    Remove,
    /// Pointing the target at other physical memory.
    Move,
    /// Changing the target's protections to these.
    Protect(Protection),
}

impl Space {
    /// True when a thread is inside or a CPU has the space loaded: an edit
    /// then acts on memory the kernel may be using this instant.
    fn is_live(&self, object: &dyn AddressSpace) -> bool {
        object.thread_count() > 0 || self.is_loaded()
    }

    /// Refuses an edit of a live address space that would unmap, move or
    /// take access away from what the kernel is running on (NK would let it
    /// through and the CPU would triple-fault on its next instruction).
    // Inlined: on the path of every memory system call (DESIGN.md,
    // "Inlining"); the look at the kernel's ranges is out of line.
    #[inline(always)]
    pub fn check_live_edit(
        &self,
        object: &dyn AddressSpace,
        target: &Region,
        edit: LiveEdit,
    ) -> Result<(), AspaceError> {
        // Everything the kernel runs on lies in the upper half (see
        // `kernel_ranges`): an edit wholly below it cannot touch any of it.
        if target.va.as_u64().saturating_add(target.len.saturating_sub(1)) < 1 << 63 {
            return Ok(());
        }
        self.check_upper_half_edit(object, target, edit)
    }

    /// [`Space::check_live_edit`] of an edit that reaches the upper half.
    #[inline(never)]
    fn check_upper_half_edit(
        &self,
        object: &dyn AddressSpace,
        target: &Region,
        edit: LiveEdit,
    ) -> Result<(), AspaceError> {
        let pinned = object
            .regions()
            .overlapping(target.va.as_u64(), 1)
            .next()
            .is_some_and(|r| r.prot.contains(Protection::PIN));
        if !self.is_live(object) || (pinned && matches!(edit, LiveEdit::Remove | LiveEdit::Move)) {
            // Not live, or the implementation refuses it anyway (as pinned).
            return Ok(());
        }
        for range in kernel_ranges().iter() {
            if range.start >= range.end || !target.overlaps_range(range.start, range.end - 1) {
                continue;
            }
            let harmful = match edit {
                LiveEdit::Remove | LiveEdit::Move => true,
                LiveEdit::Protect(prot) => !prot.contains(range.needs),
            };
            if harmful {
                return Err(AspaceError::WouldUnmapRunning {
                    what: range.what,
                    addr: range.start.max(target.va.as_u64()),
                });
            }
        }
        Ok(())
    }

    /// `remove_region`, refused when the space is live and the region holds
    /// what the kernel runs on.
    pub fn remove_region(&self, region: Region) -> Result<(), AspaceError> {
        let mut object = self.lock();
        self.check_live_edit(&**object, &region, LiveEdit::Remove)?;
        object.remove_region(region)
    }

    /// `move_region`, with the same guard as [`Space::remove_region`].
    pub fn move_region(&self, region: Region, new_pa: PhysAddr) -> Result<(), AspaceError> {
        let mut object = self.lock();
        self.check_live_edit(&**object, &region, LiveEdit::Move)?;
        object.move_region(region, new_pa)
    }

    /// `protect_region`, refused when the space is live and the new
    /// protections would take from the kernel an access it needs.
    pub fn protect_region(&self, region: Region, prot: Protection) -> Result<(), AspaceError> {
        let mut object = self.lock();
        self.check_live_edit(&**object, &region, LiveEdit::Protect(prot))?;
        object.protect_region(region, prot)
    }
}

/// `Ok` when every byte of `[start, end)` lies in regions that allow `needs`
/// and map it to `phys + (byte - start)`, or in a stack's guard page (which
/// the kernel must never touch); else the first byte that does not.
fn kernel_mapped(space: &dyn AddressSpace, start: u64, end: u64, phys: u64, needs: Protection) -> Result<(), u64> {
    let mut next = start;
    while next < end {
        if let Some(guard) = crate::mem::guard::guard_page_containing(next) {
            next = guard + thread::stack::GUARD_SIZE as u64;
            continue;
        }
        let region = space.regions().overlapping(next, 1).next().ok_or(next)?;
        let usable = region.translate(next).as_u64() == phys.wrapping_add(next - start) && region.prot.contains(needs);
        if !usable {
            return Err(next);
        }
        next = region.last().saturating_add(1);
        if next == 0 {
            break; // the region runs to the top of the address space
        }
    }
    Ok(())
}

/// The scheduler's hook: the next thread runs in another address space than
/// the one this CPU has loaded. Interrupts are off.
pub fn on_context_switch(from: Option<AddressSpaceId>, to: Option<AddressSpaceId>) {
    let slot = &percpu::current().loaded.owner;
    let next = to.and_then(by_id);
    let next_pointer = next.map_or(core::ptr::null_mut(), |space| Arc::into_raw(space) as *mut ());
    // Published before the new root is loaded, like the TLB code's own record
    // of the root: an edit that misses it finds the old space still loaded.
    let old = slot.swap(next_pointer, Ordering::SeqCst);
    if !old.is_null() {
        // SAFETY: the slot held this strong reference (from `Arc::into_raw`
        // above, on this CPU), and nothing else releases it.
        let old = unsafe { Arc::from_raw(old as *const Space) };
        debug_assert_eq!(Some(old.id), from);
        old.lock().switch_from();
    }
    if next_pointer.is_null() {
        base().lock().switch_to();
    } else {
        // SAFETY: just stored; this CPU holds the reference in its slot.
        unsafe { &*(next_pointer as *const Space) }.lock().switch_to();
    }
}

/// The trap dispatcher's page-fault hook: offer the fault to this CPU's
/// current address space. The default address space maps everything it
/// will ever map, so a fault there is never fixable here.
pub fn on_page_fault(fault: &Fault) -> FaultOutcome {
    if crate::hardening::supervisor_touched_user_page(fault) {
        core::hint::cold_path();
        // The tables allow it; only SMAP or SMEP does not. Retrying would
        // fault again for ever.
        return FaultOutcome::Unhandled(UnhandledFault::NotHandledHere);
    }
    // This CPU's record, read without a lock or a clone of the `Arc`:
    // interrupts are off, so it cannot switch spaces meanwhile.
    let Some(space) = loaded_here() else {
        core::hint::cold_path();
        return FaultOutcome::Unhandled(UnhandledFault::NotHandledHere);
    };
    match &mut *space.lock_interrupts_off() {
        // A process's space: called directly, not through the trait
        // object, so that its handler is inlined here (DESIGN.md, "Inlining").
        SpaceObject::Paging(paging) => paging.exception(fault),
        other => other.exception(fault),
    }
}

/// The fault report's address-space part: which address space, the region
/// holding the address (or "no region") and the page-table walk.
pub fn describe_fault(fault: &Fault, out: &mut dyn Write) {
    let base = base();
    let space = loaded_here().unwrap_or(&base);
    let Some(object) = space.inner.try_lock() else {
        let _ = writeln!(out, "address space: {} (locked; not inspected)", space.name);
        return;
    };
    let _ = writeln!(out, "address space: {} ({})", space.name, object.implementation());
    match object.regions().overlapping(fault.addr, 1).next() {
        Some(region) => {
            let _ = writeln!(out, "region: {region}");
        }
        None => {
            let _ = writeln!(out, "region: no region contains {:#x}", fault.addr);
        }
    }
    drop(object);
    crate::hardening::describe_guard_fault(fault.addr, out);
    if crate::hardening::supervisor_touched_user_page(fault) {
        let _ = writeln!(out, "the kernel touched a user page: SMAP (or SMEP for a fetch) forbids it");
    }
    let root = paging::TableRef::current(&KernelMachine);
    let walk = paging::walk(&KernelMachine, root, aspace::VirtAddr::new(fault.addr));
    let _ = writeln!(out, "page-table walk:\n{walk}");
}

/// A thread was created in, or exited from, address space `id`.
pub fn on_membership_change(id: AddressSpaceId, thread: thread::ThreadId, joined: bool) {
    if let Some(space) = by_id(id) {
        let mut object = space.lock();
        if joined {
            object.add_thread(thread.0);
        } else {
            object.remove_thread(thread.0);
        }
    }
}

/// The thread listing's name hook.
pub fn write_name(id: AddressSpaceId, out: &mut dyn Write) -> fmt::Result {
    match by_id(id) {
        Some(space) => out.write_str(&space.name),
        None => write!(out, "#{id} (destroyed)"),
    }
}
