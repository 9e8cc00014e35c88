//! The `paging` address space: a region set kept in step with a tree of
//! x86-64 page tables.

use crate::dump::MappingRuns;
use crate::entry::{LeafPermissions, PageSize};
use crate::flush::FlushBatch;
use crate::machine::{Machine, SpaceId, TlbInvalidation};
use crate::tables::{PageTables, PAGE_GRANULARITY};
use crate::walk::Walk;
use alloc::string::String;
use alloc::vec::Vec;
use aspace::{
    AddressSpace, AspaceError, Capabilities, Characteristics, Fault, FaultAccess, FaultOutcome, PageFaultCode,
    PhysAddr, Protection, Region, RegionSet, ThreadId, UnhandledFault, VirtAddr,
};
use core::fmt;

/// The implementation's name, as the registry lists it.
pub const IMPLEMENTATION_NAME: &str = "paging";

/// What the `paging` address space has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagingCounters {
    /// Page faults fixed by mapping a page.
    pub faults_handled: u64,
    /// Page faults the entries already allowed (stale TLB entries).
    pub spurious_faults: u64,
    /// Leaves made present, by size (index with [`PageSize::index`]).
    pub pages_mapped: [u64; 3],
    /// Single-page invalidations issued (edits, splits, spurious faults).
    pub page_invalidations: u64,
    /// Whole-address-space invalidations issued.
    pub full_flushes: u64,
    /// Large pages split.
    pub splits: u64,
    /// Page-table frames in the tree, the root included.
    pub table_frames: u64,
}

/// An address space whose regions are mapped by x86-64 page tables.
///
/// Regions with [`Protection::EAGER`] are mapped when added; the others on
/// first touch, by [`AddressSpace::exception`]. Each mapping uses the
/// largest page (1 GiB, 2 MiB, 4 KiB) that fits the region and the
/// alignment of its virtual and physical addresses. Regions without READ
/// are never mapped (x86-64 has no present-but-unreadable page).
///
/// Every edit invalidates what it must (through [`Machine::invalidate`],
/// which reaches every CPU) before it returns.
pub struct PagingAspace<M: Machine> {
    machine: M,
    name: String,
    /// `None` once destroyed.
    tables: Option<PageTables>,
    regions: RegionSet,
    threads: Vec<ThreadId>,
    /// The largest page a lazy fault may map (1 GiB by default).
    fault_page_limit: PageSize,
    faults_handled: u64,
    spurious_faults: u64,
    page_invalidations: u64,
    full_flushes: u64,
}

impl<M: Machine> PagingAspace<M> {
    /// Granularity and alignment: 4 KiB and 4 KiB.
    pub const CHARACTERISTICS: Characteristics = PAGE_GRANULARITY;

    /// A new, empty address space: allocates its root table. With `pcid`,
    /// it runs under that PCID and switching to it keeps its TLB entries.
    pub fn new(machine: M, name: &str, pcid: Option<u16>) -> Result<Self, AspaceError> {
        let tables = PageTables::new(&machine, pcid)?;
        Ok(PagingAspace {
            machine,
            name: name.into(),
            tables: Some(tables),
            regions: RegionSet::new(),
            threads: Vec::new(),
            fault_page_limit: PageSize::Size1G,
            faults_handled: 0,
            spurious_faults: 0,
            page_invalidations: 0,
            full_flushes: 0,
        })
    }

    /// Caps the page size a lazy fault maps. `Size4K` makes every fault map
    /// one 4 KiB page, as NK's paging lab does (one fault per page touched);
    /// the default, `Size1G`, maps the largest page the region allows.
    pub fn set_fault_page_limit(&mut self, limit: PageSize) {
        self.fault_page_limit = limit;
    }

    /// The largest page a lazy fault may map.
    pub fn fault_page_limit(&self) -> PageSize {
        self.fault_page_limit
    }

    /// The machine it runs on.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The memory map (the same as [`AddressSpace::regions`]).
    pub fn region_set(&self) -> &RegionSet {
        &self.regions
    }

    /// The page tables (`None` once destroyed).
    pub fn tables(&self) -> Option<&PageTables> {
        self.tables.as_ref()
    }

    /// The root table (what CR3 holds), `None` once destroyed.
    pub fn root(&self) -> Option<PhysAddr> {
        self.tables.as_ref().map(PageTables::root)
    }

    /// The root and PCID, `None` once destroyed.
    pub fn space_id(&self) -> Option<SpaceId> {
        self.tables.as_ref().map(PageTables::space_id)
    }

    /// What it has done so far.
    pub fn counters(&self) -> PagingCounters {
        let edits = self.tables.as_ref().map(PageTables::counters).unwrap_or_default();
        PagingCounters {
            faults_handled: self.faults_handled,
            spurious_faults: self.spurious_faults,
            pages_mapped: edits.pages_mapped,
            page_invalidations: self.page_invalidations + edits.split_invalidations,
            full_flushes: self.full_flushes,
            splits: edits.splits,
            table_frames: self.tables.as_ref().map_or(0, PageTables::table_frames),
        }
    }

    /// The walk of `va` through the tables (for fault reports), `None` once destroyed.
    pub fn walk(&self, va: VirtAddr) -> Option<Walk> {
        self.tables.as_ref().map(|t| t.walk(&self.machine, va))
    }

    /// Every translation, compressed into runs (for `ptdump`), `None` once destroyed.
    pub fn mappings(&self) -> Option<MappingRuns<'_, M>> {
        self.tables.as_ref().map(|t| t.mappings(&self.machine))
    }

    /// Runs one edit of the tables, then applies its flush batch.
    fn edit(
        &mut self,
        edit: impl FnOnce(&mut PageTables, &M) -> Result<FlushBatch, AspaceError>,
    ) -> Result<(), AspaceError> {
        let tables =
            self.tables.as_mut().ok_or_else(|| AspaceError::UnknownAddressSpace { name: self.name.clone() })?;
        let batch = edit(tables, &self.machine)?;
        self.finish(batch);
        Ok(())
    }

    /// Invalidates what `batch` names and frees its frames, counting.
    fn finish(&mut self, batch: FlushBatch) {
        let Some(space) = self.space_id() else { return };
        let summary = batch.apply(&self.machine, space);
        self.page_invalidations += summary.pages_invalidated;
        self.full_flushes += summary.full_flushes;
    }

    /// The existing region that `requested` names: itself, or (sub-range) a
    /// page-aligned part of it with the same virtual-to-physical offset.
    fn resolve(&self, requested: Region) -> Result<Region, AspaceError> {
        let Some(tables) = &self.tables else {
            return Err(AspaceError::UnknownAddressSpace { name: self.name.clone() });
        };
        let features = tables.features();
        // Only the numbers name the region; its flags are not compared.
        Region { prot: Protection::READ, ..requested }.validate(
            Self::CHARACTERISTICS,
            features.virt_width(),
            features.phys_bits,
        )?;
        let existing = *self.regions.find(requested.va.0).ok_or(AspaceError::NoSuchRegion { va: requested.va.0 })?;
        let exact = existing.va == requested.va && existing.pa == requested.pa && existing.len == requested.len;
        let part = existing.covers(requested.va.0, requested.len) && existing.translate(requested.va.0) == requested.pa;
        if exact || part {
            Ok(existing)
        } else {
            Err(AspaceError::RegionMismatch { requested, existing })
        }
    }

    /// Replaces `existing` in the region set by the parts of it outside
    /// `[va, va+len)` and, if given, `middle` in its place.
    fn replace_part(&mut self, existing: Region, va: u64, len: u64, middle: Option<Region>) {
        self.regions.remove(existing.va);
        let before = va - existing.va.0;
        let after = existing.last() - (va + (len - 1));
        let pieces = [
            (before > 0).then(|| existing.sub_region(existing.va.0, before)),
            middle,
            (after > 0).then(|| existing.sub_region(va + len, after)),
        ];
        for piece in pieces.into_iter().flatten() {
            self.regions.insert(piece).expect("the parts of a region cannot overlap other regions");
        }
    }
}

/// True when a region with protections `prot` forbids `access` (from user
/// mode if `user`).
fn forbids(prot: Protection, access: FaultAccess, user: bool) -> bool {
    !prot.contains(Protection::READ)
        || (user && prot.contains(Protection::KERN))
        || match access {
            FaultAccess::Read => false,
            FaultAccess::Write => !prot.contains(Protection::WRITE),
            FaultAccess::Execute => !prot.contains(Protection::EXEC),
        }
}

/// The largest page holding `addr` that lies wholly inside `region` and
/// whose virtual and physical starts are both aligned to its size.
/// No page larger than `limit` is chosen.
fn fault_page(region: &Region, addr: u64, huge_1g: bool, limit: PageSize) -> (VirtAddr, PhysAddr, PageSize) {
    for size in [PageSize::Size1G, PageSize::Size2M, PageSize::Size4K] {
        if (size == PageSize::Size1G && !huge_1g) || size.bytes() > limit.bytes() {
            continue;
        }
        let page = addr & !(size.bytes() - 1);
        if region.covers(page, size.bytes()) && region.translate(page).is_aligned(size.bytes()) {
            return (VirtAddr(page), region.translate(page), size);
        }
    }
    unreachable!("a 4 KiB-aligned region covers the 4 KiB page of each of its addresses")
}

impl<M: Machine + Send + 'static> AddressSpace for PagingAspace<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn implementation(&self) -> &'static str {
        IMPLEMENTATION_NAME
    }

    fn characteristics(&self) -> Characteristics {
        Self::CHARACTERISTICS
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::SUB_RANGE | Capabilities::DEMAND_PAGING | Capabilities::EDITABLE
    }

    fn regions(&self) -> &RegionSet {
        &self.regions
    }

    fn add_region(&mut self, region: Region) -> Result<(), AspaceError> {
        if self.tables.is_none() {
            return Err(AspaceError::UnknownAddressSpace { name: self.name.clone() });
        }
        let features = self.machine.features();
        region.validate(Self::CHARACTERISTICS, features.virt_width(), features.phys_bits)?;
        if let Some(existing) = self.regions.first_overlap(region.va.0, region.len) {
            return Err(AspaceError::Overlap { existing: *existing });
        }
        if region.prot.contains(Protection::EAGER | Protection::READ) {
            let perms = LeafPermissions::from_protection(region.prot);
            // All or nothing: on OutOfMemory the tables are as they were.
            self.edit(|tables, machine| tables.map(machine, region.va, region.pa, region.len, perms))?;
        }
        self.regions.insert(region)
    }

    fn remove_region(&mut self, region: Region) -> Result<(), AspaceError> {
        let existing = self.resolve(region)?;
        if existing.prot.contains(Protection::PIN) {
            return Err(AspaceError::Pinned { region: existing });
        }
        self.edit(|tables, machine| tables.unmap(machine, region.va, region.len))?;
        self.replace_part(existing, region.va.0, region.len, None);
        Ok(())
    }

    fn move_region(&mut self, region: Region, new_pa: PhysAddr) -> Result<(), AspaceError> {
        let existing = self.resolve(region)?;
        if existing.prot.contains(Protection::PIN) {
            return Err(AspaceError::Pinned { region: existing });
        }
        let moved = Region { pa: new_pa, prot: existing.prot, ..region };
        let features = self.machine.features();
        moved.validate(Self::CHARACTERISTICS, features.virt_width(), features.phys_bits)?;
        // Only the entries that exist are re-pointed; lazy pages not yet
        // touched will fault in with the new address.
        self.edit(|tables, machine| tables.remap(machine, region.va, region.len, new_pa))?;
        self.replace_part(existing, region.va.0, region.len, Some(moved));
        Ok(())
    }

    fn protect_region(&mut self, region: Region, prot: Protection) -> Result<(), AspaceError> {
        let existing = self.resolve(region)?;
        prot.validate()?;
        let perms = LeafPermissions::from_protection(prot);
        self.edit(|tables, machine| {
            if !prot.contains(Protection::READ) {
                // Unreadable regions are never mapped.
                tables.unmap(machine, region.va, region.len)
            } else if prot.contains(Protection::EAGER) {
                // Eager regions are fully mapped: fill the holes too.
                tables.map(machine, region.va, region.pa, region.len, perms)
            } else {
                tables.protect(machine, region.va, region.len, perms)
            }
        })?;
        let protected = Region { pa: existing.translate(region.va.0), prot, ..region };
        self.replace_part(existing, region.va.0, region.len, Some(protected));
        Ok(())
    }

    fn switch_to(&mut self) {
        if let Some(space) = self.space_id() {
            // With a PCID, the entries tagged with it are still valid: every
            // edit invalidated by PCID, whether the space was loaded or not.
            self.machine.load_root(space, space.pcid.is_some());
        }
    }

    fn switch_from(&mut self) {
        // Nothing to do on x86-64: the next switch_to loads another root.
    }

    fn exception(&mut self, fault: &Fault) -> FaultOutcome {
        let Some(tables) = &self.tables else { return FaultOutcome::Unhandled(UnhandledFault::NotHandledHere) };
        if fault.vector != Fault::PAGE_FAULT {
            return FaultOutcome::Unhandled(UnhandledFault::NotHandledHere);
        }
        if fault.code.contains(PageFaultCode::RESERVED) {
            return FaultOutcome::Unhandled(UnhandledFault::ReservedBit);
        }
        let Some(region) = self.regions.find(fault.addr).copied() else {
            return FaultOutcome::Unhandled(UnhandledFault::NoRegion);
        };
        let access = fault.code.access();
        let user = fault.code.contains(PageFaultCode::USER);
        if forbids(region.prot, access, user) {
            return FaultOutcome::Unhandled(UnhandledFault::Forbidden { region, access });
        }
        let space = tables.space_id();
        if let Some(translation) = tables.walk(&self.machine, VirtAddr(fault.addr)).translation() {
            if translation.allows(access, user) {
                // Another CPU mapped it, or a permission increase left a
                // stale entry in this CPU's TLB: drop it and retry.
                self.machine.invalidate(space, TlbInvalidation::Pages(&[translation.page_va]));
                self.page_invalidations += 1;
                self.spurious_faults += 1;
                return FaultOutcome::Spurious;
            }
        }
        let (va, pa, size) = fault_page(&region, fault.addr, tables.features().huge_1g, self.fault_page_limit);
        let perms = LeafPermissions::from_protection(region.prot);
        match self.edit(|tables, machine| tables.map(machine, va, pa, size.bytes(), perms)) {
            Ok(()) => {
                self.faults_handled += 1;
                FaultOutcome::Handled
            }
            Err(_) => FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region }),
        }
    }

    fn add_thread(&mut self, thread: ThreadId) {
        self.threads.push(thread);
    }

    fn remove_thread(&mut self, thread: ThreadId) {
        if let Some(at) = self.threads.iter().position(|&t| t == thread) {
            self.threads.swap_remove(at);
        }
    }

    fn thread_count(&self) -> usize {
        self.threads.len()
    }

    fn print(&self, out: &mut dyn fmt::Write, detailed: bool) -> fmt::Result {
        let ch = Self::CHARACTERISTICS;
        writeln!(out, "address space '{}' ({}):", self.name, IMPLEMENTATION_NAME)?;
        writeln!(out, "  granularity {:#x}, alignment {:#x}", ch.granularity, ch.alignment)?;
        match &self.tables {
            None => writeln!(out, "  destroyed")?,
            Some(tables) => {
                let f = tables.features();
                write!(out, "  root {:#x}, ", tables.root().0)?;
                match tables.space_id().pcid {
                    Some(pcid) => write!(out, "PCID {pcid}")?,
                    None => out.write_str("no PCID")?,
                }
                writeln!(
                    out,
                    ", {}-level paging{}{}",
                    f.levels(),
                    if f.huge_1g { ", 1G pages" } else { "" },
                    if f.nx { ", NX" } else { "" }
                )?;
            }
        }
        let c = self.counters();
        writeln!(out, "  {} regions, {} threads", self.regions.len(), self.threads.len())?;
        writeln!(
            out,
            "  faults: {} handled, {} spurious; pages mapped: {} 4K, {} 2M, {} 1G; splits: {}",
            c.faults_handled, c.spurious_faults, c.pages_mapped[0], c.pages_mapped[1], c.pages_mapped[2], c.splits
        )?;
        writeln!(
            out,
            "  invalidations: {} pages, {} full; page-table frames: {}",
            c.page_invalidations, c.full_flushes, c.table_frames
        )?;
        if detailed {
            for region in self.regions.iter() {
                writeln!(out, "    {region}")?;
            }
        }
        Ok(())
    }

    fn destroy(&mut self) -> Result<(), AspaceError> {
        if !self.threads.is_empty() {
            return Err(AspaceError::Busy { reason: "threads are still inside the address space" });
        }
        let Some(root) = self.root() else {
            return Err(AspaceError::UnknownAddressSpace { name: self.name.clone() });
        };
        if self.machine.current_root() == root {
            return Err(AspaceError::Busy { reason: "its root table is loaded in this CPU's CR3" });
        }
        let tables = self.tables.take().expect("root() found the tables");
        let space = tables.space_id();
        let summary = tables.destroy(&self.machine).apply(&self.machine, space);
        self.full_flushes += summary.full_flushes;
        self.regions.clear();
        Ok(())
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl<M: Machine> Drop for PagingAspace<M> {
    /// Frees the tables like [`AddressSpace::destroy`], unless the root is
    /// still loaded in this CPU's CR3: then the frames are kept (leaked), as
    /// freeing them would let the CPU walk freed memory.
    fn drop(&mut self) {
        if self.root().is_some_and(|root| self.machine.current_root() == root) {
            return;
        }
        if let Some(tables) = self.tables.take() {
            let space = tables.space_id();
            let _ = tables.destroy(&self.machine).apply(&self.machine, space);
        }
    }
}

impl<M: Machine> fmt::Debug for PagingAspace<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagingAspace")
            .field("name", &self.name)
            .field("root", &self.root())
            .field("regions", &self.regions)
            .field("threads", &self.threads)
            .finish()
    }
}
