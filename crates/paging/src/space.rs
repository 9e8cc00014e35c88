//! The `paging` address space: a region set kept in step with a tree of
//! x86-64 page tables.

use crate::anon::AnonymousFrames;
use crate::dump::MappingRuns;
use crate::entry::PAGE;
use crate::entry::{LeafPermissions, PageSize};
use crate::error::{PagingError, IMPLEMENTATION_NAME};
use crate::file::FileBacking;
use crate::flush::FlushBatch;
use crate::grow::{self, GrowthLimits, GrowthRequest};
use crate::kernel_half::KernelHalf;
use crate::machine::{Machine, SpaceId, TlbInvalidation};
use crate::object::{ObjectBacking, ObjectFault, PageObject};
use crate::tables::{FaultProbe, Hole, PageTables, PAGE_GRANULARITY};
use crate::walk::Walk;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{
    AddressSpace, AspaceError, Capabilities, Characteristics, Fault, FaultAccess, FaultOutcome, PageFaultCode,
    PhysAddr, Protection, Region, RegionSet, ThreadId, UnhandledFault, VirtAddr,
};
use core::fmt;
use core::hint::cold_path;

/// The default fault-around window, in 4 KiB pages (64 KiB, as Linux's
/// `fault_around_bytes`). Chosen by the kernel's `bench fault_around_sweep`:
/// see docs/PERFORMANCE.md.
pub const DEFAULT_FAULT_AROUND_PAGES: u64 = 16;

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
    /// Frames the space owns for the pages of its anonymous regions.
    pub anonymous_frames: u64,
    /// Growing regions extended by a fault.
    pub growths: u64,
    /// Anonymous pages whose new frame was filled from a file backing.
    pub file_pages_filled: u64,
    /// Writes to a page shared copy-on-write that copied it.
    pub cow_copies: u64,
    /// Pages whose frame came from a memory object on first touch.
    pub object_pages: u64,
    /// The most frames the space owned at once for anonymous pages (the
    /// resident set's high-water mark).
    pub peak_anonymous_frames: u64,
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
///
/// ## Anonymous regions
/// A region with [`Protection::ANON`] (and `pa` 0) gets its memory from the
/// space: a zeroed frame per 4 KiB page, allocated on first touch or, with
/// EAGER, when the region is added (all or nothing). The frames are freed,
/// after the flush, when the region or part of it is removed and when the
/// space is destroyed. Such a region is named by its virtual range and `pa`
/// 0 (a sub-range too). It cannot be moved ([`AspaceError::Unsupported`]);
/// protect works, and taking READ away unmaps the pages but keeps their
/// frames, so the contents come back with READ.
///
/// ## Growing regions
/// An anonymous region with [`Protection::GROW_DOWN`] or
/// [`Protection::GROW_UP`] grows, one fault at a time, under the space's
/// [`GrowthLimits`] ([`PagingAspace::set_growth_limits`]); see the `grow`
/// rules in the crate documentation. Growth past the maximum size or into
/// the guard gap is reported as [`UnhandledFault::StackOverflow`]. A region
/// may not be added inside a growing neighbour's guard gap
/// ([`AspaceError::Overlap`] names the growing region).
pub struct PagingAspace<M: Machine> {
    machine: M,
    name: String,
    /// `None` once destroyed.
    tables: Option<PageTables>,
    regions: RegionSet,
    threads: Vec<ThreadId>,
    /// The largest page a lazy fault may map (1 GiB by default).
    fault_page_limit: PageSize,
    /// How many 4 KiB pages a lazy fault maps at once (see [`PagingAspace::set_fault_around`]).
    fault_around: u64,
    /// The frames owned for anonymous pages.
    anonymous: AnonymousFrames,
    /// Whether reads of untouched anonymous pages map the machine's zero
    /// frame (see [`PagingAspace::set_zero_page`]).
    zero_page: bool,
    /// How far growing regions grow, and the gap they keep.
    growth_limits: GrowthLimits,
    growths: u64,
    cow_copies: u64,
    object_pages: u64,
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
        Ok(Self::new_around(machine, name, tables))
    }

    fn new_around(machine: M, name: &str, tables: PageTables) -> Self {
        PagingAspace {
            machine,
            name: name.into(),
            tables: Some(tables),
            regions: RegionSet::new(),
            threads: Vec::new(),
            fault_page_limit: PageSize::Size1G,
            fault_around: DEFAULT_FAULT_AROUND_PAGES,
            anonymous: AnonymousFrames::default(),
            zero_page: false,
            growth_limits: GrowthLimits::DEFAULT,
            growths: 0,
            cow_copies: 0,
            object_pages: 0,
            faults_handled: 0,
            spurious_faults: 0,
            page_invalidations: 0,
            full_flushes: 0,
        }
    }

    /// With `on`, a read (or instruction fetch) of a page of an anonymous
    /// region that has no frame yet (and no file or object behind it) maps
    /// the machine's zero frame read-only ([`Machine::zero_frame`]) instead
    /// of a fresh zeroed frame of its own, as Linux's zero page: the page
    /// owns no frame until its first write, which maps one. Off by default;
    /// nothing changes on a machine without a zero frame. A fork copies the
    /// setting.
    pub fn set_zero_page(&mut self, on: bool) {
        self.zero_page = on;
    }

    /// The pages that map the zero frame, in address order.
    pub(crate) fn zero_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.anonymous.zero_pages()
    }

    /// True when the page at `va` has the zero page's contents (see
    /// [`PagingAspace::set_zero_page`]): read, never written. It maps the
    /// zero frame while its region is readable; without READ it is
    /// unmapped but keeps its contents, as a page with a frame keeps its
    /// frame (and, as on Linux, `mincore` still counts it).
    pub fn maps_zero_page(&self, va: VirtAddr) -> bool {
        self.anonymous.is_zero_page(va.0 & !(PAGE - 1))
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

    /// Sets the fault-around window: a lazy fault that maps a 4 KiB page
    /// also maps the other pages of the same region in the naturally
    /// aligned window of `pages` pages around it. `pages` is rounded down to
    /// a power of two and capped at 512 (one page table); 0 and 1 turn
    /// fault-around off. A scan of memory then takes one fault per window
    /// instead of one per page. Anonymous regions are not concerned (each
    /// page needs a frame of its own), and neither is a space whose fault
    /// page limit is 4 KiB: that limit means one 4 KiB page per fault, as
    /// NK's paging lab counts them.
    pub fn set_fault_around(&mut self, pages: u64) {
        let capped = pages.clamp(1, 512);
        self.fault_around = 1 << capped.ilog2();
    }

    /// The fault-around window, in 4 KiB pages.
    pub fn fault_around(&self) -> u64 {
        self.fault_around
    }

    /// Sets how large a growing region may grow (`max_size`) and the gap it
    /// keeps clear on its growing side (`guard_gap`, also how far from the
    /// region a fault may land and still grow it). Both must be non-zero
    /// multiples of 4 KiB. The defaults are [`GrowthLimits::DEFAULT`]:
    /// 8 MiB and 64 KiB. New limits govern later growth and later adds;
    /// regions already in place are not re-checked.
    pub fn set_growth_limits(&mut self, max_size: u64, guard_gap: u64) -> Result<(), AspaceError> {
        self.growth_limits = GrowthLimits::new(max_size, guard_gap)?;
        Ok(())
    }

    /// The limits growing regions grow under.
    pub fn growth_limits(&self) -> GrowthLimits {
        self.growth_limits
    }

    /// The frame backing the anonymous page holding `va`, if the space has
    /// provided one yet (the page has been touched, or its region is eager).
    pub fn anonymous_frame(&self, va: VirtAddr) -> Option<PhysAddr> {
        self.anonymous.get(va.0 & !(PAGE - 1))
    }

    /// Every frame owned for an anonymous page, as (page's virtual start,
    /// frame), in address order.
    pub fn anonymous_frames(&self) -> impl Iterator<Item = (VirtAddr, PhysAddr)> + '_ {
        self.anonymous.iter().map(|(page, frame)| (VirtAddr(page), frame))
    }

    /// The file backing whose range holds `va` (see [`PagingAspace::add_file_region`]).
    pub fn file_backing(&self, va: VirtAddr) -> Option<FileBacking> {
        self.anonymous.files.find(va.0).copied()
    }

    /// Every file backing, in address order.
    pub fn file_backings(&self) -> impl Iterator<Item = FileBacking> + '_ {
        self.anonymous.files.iter()
    }

    /// The object backing whose range holds `va` (see [`PagingAspace::add_object_region`]).
    pub fn object_backing(&self, va: VirtAddr) -> Option<&ObjectBacking> {
        self.anonymous.objects.find(va.0)
    }

    /// Every object backing, in address order.
    pub fn object_backings(&self) -> impl Iterator<Item = &ObjectBacking> + '_ {
        self.anonymous.objects.iter()
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
            anonymous_frames: self.anonymous.len() as u64,
            peak_anonymous_frames: self.anonymous.peak() as u64,
            growths: self.growths,
            file_pages_filled: self.anonymous.files.pages_filled(),
            cow_copies: self.cow_copies,
            object_pages: self.object_pages,
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

    /// A new address space holding exactly `regions`, in address order and
    /// not overlapping (see [`RegionSet::from_sorted`]), each readable
    /// [`Protection::EAGER`] region mapped at once: a map known whole when
    /// it is made, such as a kernel's boot map. The tables are
    /// built as [`AddressSpace::add_region`] of each region in turn would
    /// build them (the same edits, pages and counters), but without that
    /// operation or the region set's `insert`: a kernel's own map must not
    /// depend on the bodies the paging lab has students write.
    ///
    /// Refused, with nothing left behind: for a region that `add_region`
    /// would refuse as invalid, with [`AspaceError::InvalidFlags`] for an
    /// anonymous or growing region (their memory belongs to the space: add
    /// them with `add_region`), as [`RegionSet::from_sorted`] refuses
    /// disorder and overlap, and with [`AspaceError::OutOfMemory`] when the
    /// root or the tables do not fit.
    pub fn from_regions(machine: M, name: &str, pcid: Option<u16>, regions: &[Region]) -> Result<Self, AspaceError> {
        let space = Self::new(machine, name, pcid)?;
        space.fill_from_regions(regions, false)
    }

    /// A new, empty address space whose upper half is `kernel`'s
    /// ([`PageTables::new_with_kernel_half`]): allocates its root and links
    /// the shared tables.
    pub fn new_with_kernel_half(
        machine: M,
        name: &str,
        pcid: Option<u16>,
        kernel: &KernelHalf,
    ) -> Result<Self, AspaceError> {
        let tables = PageTables::new_with_kernel_half(&machine, kernel, pcid)?;
        Ok(Self::new_around(machine, name, tables))
    }

    /// [`PagingAspace::from_regions`] with `kernel`'s upper half
    /// ([`PagingAspace::new_with_kernel_half`]). With `upper_half_mapped`,
    /// the regions in the upper half are recorded but not mapped: the
    /// kernel half's shared tables already map them as they say (they were
    /// mapped through another space made with it, from the same regions),
    /// which is how a space joins a kernel half that is already built.
    /// Without it, they are mapped like the others, into the shared tables,
    /// which every space made with `kernel` then sees.
    pub fn from_regions_with_kernel_half(
        machine: M,
        name: &str,
        pcid: Option<u16>,
        regions: &[Region],
        kernel: &KernelHalf,
        upper_half_mapped: bool,
    ) -> Result<Self, AspaceError> {
        let space = Self::new_with_kernel_half(machine, name, pcid, kernel)?;
        space.fill_from_regions(regions, upper_half_mapped)
    }

    /// True when the tables share an upper half ([`KernelHalf`]).
    pub fn shares_kernel_half(&self) -> bool {
        self.tables.as_ref().is_some_and(|tables| tables.kernel_half().is_some())
    }

    /// The shared upper half, if the space was made with one.
    pub fn kernel_half(&self) -> Option<&KernelHalf> {
        self.tables.as_ref().and_then(PageTables::kernel_half)
    }

    fn fill_from_regions(mut self, regions: &[Region], skip_upper_half: bool) -> Result<Self, AspaceError> {
        let features = self.machine.features();
        for region in regions {
            region.validate(Self::CHARACTERISTICS, features.virt_width(), features.phys_bits)?;
            if region.is_anonymous() || region.prot.grows() {
                return Err(AspaceError::InvalidFlags {
                    flags: region.prot.bits(),
                    reason: "a map built whole holds regions with their own physical memory, not anonymous or growing",
                });
            }
        }
        let set = RegionSet::from_sorted(regions)?;
        let lower_half_end = features.virt_width().lower_half_end();
        let space = &mut self;
        let to_map = regions
            .iter()
            .filter(|r| r.prot.contains(Protection::EAGER | Protection::READ))
            .filter(|r| !(skip_upper_half && r.va.0 >= lower_half_end));
        for region in to_map {
            let perms = LeafPermissions::from_protection(region.prot);
            // On an error, dropping the space frees what was built.
            space.edit(|tables, machine, batch| {
                tables.map_into(machine, region.va, region.pa, region.len, perms, batch)
            })?;
        }
        space.regions = set;
        Ok(self)
    }

    /// Unmaps `part`, which lies inside one region and translates as that
    /// region does, and records it as a region of its own with the
    /// protections `part.prot`, which lack READ (so nothing of it is
    /// mapped): how a kernel takes a page out of a map made by
    /// [`PagingAspace::from_regions`], such as the guard page under a stack.
    /// The region and tables end as [`AddressSpace::protect_region`] of
    /// `part` to `part.prot` would leave them, with the same flushes, but
    /// without that operation or the region set's `find`.
    ///
    /// Refused, changing nothing, with [`AspaceError::InvalidFlags`] for
    /// protections with READ or of another kind than the region's,
    /// [`AspaceError::NoSuchRegion`] / [`AspaceError::RegionMismatch`] when
    /// no one region holds `part` with its physical address,
    /// [`AspaceError::Unsupported`] for a part of an anonymous region, and
    /// as `protect_region` refuses an invalid range.
    pub fn unmap_part(&mut self, part: Region) -> Result<(), AspaceError> {
        let Some(tables) = &self.tables else {
            return Err(AspaceError::UnknownAddressSpace { name: self.name.clone() });
        };
        let features = tables.features();
        part.validate(Self::CHARACTERISTICS, features.virt_width(), features.phys_bits)?;
        if part.prot.contains(Protection::READ) {
            return Err(AspaceError::InvalidFlags {
                flags: part.prot.bits(),
                reason: "an unmapped part has no READ (a readable page would be mapped)",
            });
        }
        // The region holding the first byte; not `RegionSet::find`.
        let Some(&existing) = self.regions.overlapping(part.va.0, 1).next() else {
            return Err(AspaceError::NoSuchRegion { va: part.va.0 });
        };
        if existing.is_anonymous() {
            return Err(AspaceError::Unsupported {
                implementation: IMPLEMENTATION_NAME,
                operation: "unmapping part of an anonymous region (its frames belong to the address space)",
            });
        }
        if !existing.covers(part.va.0, part.len) || existing.translate(part.va.0) != part.pa {
            return Err(AspaceError::RegionMismatch { requested: part, existing });
        }
        if part.prot.kind() != existing.prot.kind() {
            return Err(AspaceError::InvalidFlags {
                flags: part.prot.bits(),
                reason: "an unmapped part keeps its region's kind (anonymous, grow-down, grow-up, read-only backing)",
            });
        }
        self.edit(|tables, machine, batch| tables.unmap_into(machine, part.va, part.len, batch))?;
        let unmapped = Region { prot: part.prot, ..existing.sub_region(part.va.0, part.len) };
        self.replace_part(existing, part.va.0, part.len, Some(unmapped));
        Ok(())
    }

    /// Runs one edit of the tables, which fills a flush batch (nothing on
    /// an error), then applies the batch.
    fn edit(
        &mut self,
        edit: impl FnOnce(&mut PageTables, &M, &mut FlushBatch) -> Result<(), PagingError>,
    ) -> Result<(), AspaceError> {
        let tables =
            self.tables.as_mut().ok_or_else(|| AspaceError::UnknownAddressSpace { name: self.name.clone() })?;
        let mut batch = FlushBatch::new();
        let result = edit(tables, &self.machine, &mut batch);
        self.finish(&mut batch);
        result.map_err(AspaceError::from)
    }

    /// Runs one edit of the tables and the anonymous frames together. It
    /// fills a flush batch, applied whether or not the edit succeeds: a
    /// refused edit may have undone work of its own that must be flushed.
    fn edit_anonymous(
        &mut self,
        edit: impl FnOnce(&mut PageTables, &M, &mut AnonymousFrames, &mut FlushBatch) -> Result<(), PagingError>,
    ) -> Result<(), AspaceError> {
        let tables =
            self.tables.as_mut().ok_or_else(|| AspaceError::UnknownAddressSpace { name: self.name.clone() })?;
        let mut batch = FlushBatch::new();
        let result = edit(tables, &self.machine, &mut self.anonymous, &mut batch);
        self.finish(&mut batch);
        result.map_err(AspaceError::from)
    }

    /// Maps the anonymous page `page` of `region` on a fault, with a frame
    /// of its own (a fresh zeroed one on first touch). `probe` is the
    /// fault's walk: when it found the page table, the leaf is written there.
    /// A frame shared copy-on-write is mapped read-only, and a write to it
    /// copies it first (see the `anon` module).
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    fn fault_in_anonymous(
        &mut self,
        region: Region,
        page: VirtAddr,
        probe: FaultProbe,
        perms: LeafPermissions,
        access: FaultAccess,
    ) -> FaultOutcome {
        let mut existing = self.anonymous.get(page.0);
        let mut from_object = false;
        if existing.is_none() {
            if let Some(backing) = self.anonymous.objects.find(page.0) {
                cold_path();
                if access != FaultAccess::Write {
                    // A read: the page and its neighbours in one go, when
                    // the object holds the page and its table is there.
                    let hole = probe.hole_for(PageSize::Size4K, perms);
                    if let Some(hole) = hole.filter(|_| self.fault_around > 1) {
                        let backing = backing.clone();
                        if self.map_object_window(region, page, &backing, Some(hole)) {
                            self.faults_handled += 1;
                            return FaultOutcome::Handled;
                        }
                    }
                }
                let backing = self.anonymous.objects.find(page.0).expect("found above");
                // First touch of an object's page: the object's frame, one
                // more reference (the space's), recorded like any other.
                let shared = backing.shared;
                match backing.object.frame(backing.index_of(page.0)) {
                    Ok(frame) => {
                        self.anonymous.record(page.0, frame);
                        if shared {
                            self.anonymous.mark_shared_page(page.0);
                        }
                        self.object_pages += 1;
                        existing = Some(frame);
                        from_object = true;
                    }
                    Err(ObjectFault::PastEnd) => {
                        return FaultOutcome::Unhandled(UnhandledFault::PastEndOfObject { region })
                    }
                    Err(ObjectFault::OutOfMemory) => {
                        return FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region })
                    }
                }
            }
        }
        if existing.is_none() && access != FaultAccess::Write && self.zero_page {
            if let Some(outcome) = self.map_zero_page(region, page, probe, perms) {
                return outcome;
            }
        }
        let outcome = self.map_anonymous_page(region, page, probe, perms, access, existing);
        if from_object && outcome == FaultOutcome::Handled && access != FaultAccess::Write {
            // The page is mapped: its neighbours may follow.
            if let Some(backing) = self.anonymous.objects.find(page.0).cloned() {
                self.map_object_window(region, page, &backing, None);
            }
        }
        outcome
    }

    /// A read of `page` (of anonymous `region`), which has no frame: maps the
    /// machine's zero frame there read-only, unless the page has a file
    /// backing or the machine has no zero frame (`None`: the caller maps a
    /// frame of its own).
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    fn map_zero_page(
        &mut self,
        region: Region,
        page: VirtAddr,
        probe: FaultProbe,
        perms: LeafPermissions,
    ) -> Option<FaultOutcome> {
        let zero = self.machine.zero_frame()?;
        if self.anonymous.files.find(page.0).is_some() {
            cold_path();
            return None;
        }
        let perms = perms.read_only();
        let mapped = match (probe.hole_for(PageSize::Size4K, perms), self.tables.as_mut()) {
            (Some(hole), Some(tables)) => {
                tables.fill_holes(&self.machine, hole, page, zero, 1, PageSize::Size4K, perms);
                Ok(())
            }
            _ => {
                cold_path();
                self.edit(|tables, machine, batch| tables.map_into(machine, page, zero, PAGE, perms, batch))
            }
        };
        if mapped.is_err() {
            cold_path();
            return Some(FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region }));
        }
        self.anonymous.mark_zero_page(page.0);
        self.faults_handled += 1;
        Some(FaultOutcome::Handled)
    }

    /// The rest of [`PagingAspace::fault_in_anonymous`]: maps `page`, whose
    /// frame is `existing` (if it has one yet), copying it first on a write
    /// while it is shared copy-on-write.
    fn map_anonymous_page(
        &mut self,
        region: Region,
        page: VirtAddr,
        probe: FaultProbe,
        perms: LeafPermissions,
        access: FaultAccess,
        existing: Option<PhysAddr>,
    ) -> FaultOutcome {
        let copy_on_write = |frame| {
            access == FaultAccess::Write
                && !self.anonymous.is_shared_page(page.0)
                && self.machine.frame_is_shared(frame)
        };
        if let Some(shared) = existing.filter(|&frame| copy_on_write(frame)) {
            let copied = self.edit_anonymous(|tables, machine, frames, batch| {
                frames.copy_on_write(tables, machine, page, shared, perms, batch)
            });
            return match copied {
                Ok(()) => {
                    self.faults_handled += 1;
                    self.cow_copies += 1;
                    FaultOutcome::Handled
                }
                Err(_) => FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region }),
            };
        }
        let perms = existing.map_or(perms, |frame| self.anonymous.rights_for(&self.machine, page.0, frame, perms));
        if let (Some(hole), Some(tables)) = (probe.hole_for(PageSize::Size4K, perms), self.tables.as_mut()) {
            let frame = match self.anonymous.get(page.0) {
                Some(frame) => frame,
                None => match self.machine.alloc_frame() {
                    Some(frame) => {
                        // First touch: zeroed, then filled from its file backing, if any.
                        self.anonymous.files.fill(&self.machine, page.0, frame);
                        frame
                    }
                    None => return FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region }),
                },
            };
            tables.fill_holes(&self.machine, hole, page, frame, 1, PageSize::Size4K, perms);
            self.anonymous.record(page.0, frame);
            self.faults_handled += 1;
            return FaultOutcome::Handled;
        }
        match self.edit_anonymous(|tables, machine, frames, batch| frames.fault_in(tables, machine, page, perms, batch))
        {
            Ok(()) => {
                self.faults_handled += 1;
                FaultOutcome::Handled
            }
            Err(_) => FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region }),
        }
    }

    /// Fault-around for a memory object's pages, as Linux's
    /// `filemap_map_pages`, on a read fault of `page` (of `region`, whose
    /// object backing is `backing`): maps the pages of its aligned window of
    /// [`PagingAspace::fault_around`] pages, inside the region and the
    /// backing, that the object holds already and this space has no frame
    /// for, each with the object's frame (shared writable, or read-only
    /// while shared copy-on-write), asking the object for them at once.
    ///
    /// With `hole` (the faulting page's last-level table, from the fault's
    /// walk), `page` is one of them: false, and nothing changed, when the
    /// object does not hold it (its own fault then asks for it alone).
    /// Without, `page` is mapped already and only its neighbours are, best
    /// effort: a page that cannot be mapped is left to its own fault.
    fn map_object_window(
        &mut self,
        region: Region,
        page: VirtAddr,
        backing: &ObjectBacking,
        hole: Option<Hole>,
    ) -> bool {
        let window = self.fault_around.max(1) * PAGE;
        if window <= PAGE || !region.prot.contains(Protection::READ) {
            return false;
        }
        let start = (page.0 & !(window - 1)).max(region.va.0).max(backing.va.0);
        let end = (page.0 & !(window - 1))
            .saturating_add(window)
            .min(region.last().saturating_add(1))
            .min(backing.last().saturating_add(1));
        // The window's pages this space has no frame for, and the frames the
        // object holds for them (one taking of its lock).
        let mut wanted = self.anonymous.frameless_pages(start, end);
        if hole.is_none() {
            wanted.retain(|&at| at != page.0);
        }
        for at in &mut wanted {
            *at = backing.index_of(*at);
        }
        let mut pages = Vec::with_capacity(wanted.len());
        backing.object.held_frames(&wanted, &mut pages);
        if hole.is_some() && !pages.iter().any(|&(index, _)| index == backing.index_of(page.0)) {
            for &(_, frame) in &pages {
                // SAFETY: the reference `held_frames` just gave, never mapped.
                unsafe { self.machine.free_frame(frame) };
            }
            return false;
        }
        if pages.is_empty() {
            return false;
        }
        for (index, _) in &mut pages {
            *index = backing.va.0 + (*index - backing.first_index) * PAGE;
        }
        self.anonymous.record_all(&pages, backing.shared);
        self.object_pages += pages.len() as u64;
        // A shared backing's pages are shared writable on purpose; a private
        // one's are copy-on-write while the object holds them too.
        let perms = LeafPermissions::from_protection(region.prot);
        let (anonymous, machine) = (&self.anonymous, &self.machine);
        let rights = |at, frame| match backing.shared || !perms.writable {
            true => perms,
            false => anonymous.rights_for(machine, at, frame, perms),
        };
        let Some(tables) = self.tables.as_mut() else { return false };
        // The window is aligned and at most 512 pages, so it lies in the
        // faulting page's last-level table: the leaves go straight into it
        // (it exists now, if the fault did not find it).
        let hole = hole.or_else(|| {
            tables.probe_fault(machine, VirtAddr(pages[0].0), FaultAccess::Read, true).hole_for(PageSize::Size4K, perms)
        });
        if let Some(hole) = hole {
            tables.fill_scattered(machine, hole, &pages, rights);
            return true;
        }
        // Otherwise one edit for them; a page that cannot be mapped ends it
        // (recorded but not mapped, its own fault maps it later).
        let mut batch = FlushBatch::new();
        for &(at, frame) in &pages {
            if tables.map_into(machine, VirtAddr(at), frame, PAGE, rights(at, frame), &mut batch).is_err() {
                break;
            }
        }
        self.finish(&mut batch);
        true
    }

    /// `protect_region` on the entries and the region set (the trait method
    /// adds the copy-on-write rule on top).
    fn protect_entries(&mut self, region: Region, prot: Protection) -> Result<(), AspaceError> {
        // lab:begin task4 protect_region: new rights on existing entries, flush where they shrink, update the set
        let existing = self.resolve(region)?;
        // Checked before the flags: the region's backing, not the request's
        // letters, is what forbids the write.
        if prot.contains(Protection::WRITE) && existing.prot.contains(Protection::READ_ONLY_BACKING) {
            return Err(AspaceError::ReadOnlyBacking { region: existing });
        }
        prot.validate()?;
        if prot.kind() != existing.prot.kind() {
            return Err(AspaceError::InvalidFlags {
                flags: prot.bits(),
                reason: "protect cannot change a region's kind (anonymous, grow-down, grow-up, read-only backing)",
            });
        }
        let perms = LeafPermissions::from_protection(prot);
        if existing.is_anonymous() && prot.contains(Protection::EAGER | Protection::READ) {
            self.edit_anonymous(|tables, machine, frames, batch| {
                // All or nothing: the holes first, then the pages already there.
                frames.populate(tables, machine, region.va, region.len, perms, batch)?;
                tables
                    .protect_into(machine, region.va, region.len, perms, batch)
                    .expect("protecting 4 KiB pages splits nothing");
                Ok(())
            })?;
            let protected = Region { prot, ..region };
            self.replace_part(existing, region.va.0, region.len, Some(protected));
            return Ok(());
        }
        // Taking READ from an anonymous region unmaps its pages but keeps their frames.
        self.edit(|tables, machine, batch| {
            if !prot.contains(Protection::READ) {
                // Unreadable regions are never mapped.
                tables.unmap_into(machine, region.va, region.len, batch)
            } else if prot.contains(Protection::EAGER) {
                // Eager regions are fully mapped: fill the holes too.
                tables.map_into(machine, region.va, region.pa, region.len, perms, batch)
            } else {
                tables.protect_into(machine, region.va, region.len, perms, batch)
            }
        })?;
        let protected = Region { prot, ..existing.sub_region(region.va.0, region.len) };
        self.replace_part(existing, region.va.0, region.len, Some(protected));
        Ok(())
        // lab:end
    }

    /// Maps read-only again every page in `[va, va+len)` whose frame is
    /// shared copy-on-write (after an edit that gave the range write access).
    fn write_protect_shared(&mut self, va: u64, len: u64) {
        let last = va.saturating_add(len - 1);
        // Frames shared copy-on-write, and the zero page, are never written.
        let shared = self.anonymous.read_only_pages_in(&self.machine, va, last);
        if shared.is_empty() {
            return;
        }
        let perms_of = |region: &Region| LeafPermissions::from_protection(region.prot).read_only();
        let pages: Vec<(u64, LeafPermissions)> =
            shared.iter().filter_map(|&page| self.regions.find(page).map(|region| (page, perms_of(region)))).collect();
        let _ = self.edit(|tables, machine, batch| {
            for &(page, perms) in &pages {
                // 4 KiB anonymous pages: nothing to split, so this cannot fail.
                tables.protect_into(machine, VirtAddr(page), PAGE, perms, batch)?;
            }
            Ok(())
        });
    }

    /// Makes the anonymous region `region` (or a page-aligned part of one)
    /// memory that this space shares *writable* with every space forked
    /// from it later, as a `MAP_SHARED` anonymous mapping is: every page
    /// gets its frame now (so that each fork shares them all), and a write
    /// to one never copies it. Refused, nothing changed, for a region that
    /// is not anonymous or not there, or without memory for its pages.
    pub fn share_anonymous(&mut self, region: Region) -> Result<(), AspaceError> {
        let existing = self.resolve(region)?;
        if !existing.is_anonymous() {
            return Err(AspaceError::InvalidFlags {
                flags: existing.prot.bits(),
                reason: "only anonymous memory can be shared writable across fork",
            });
        }
        let perms = LeafPermissions::from_protection(existing.prot);
        if existing.prot.contains(Protection::READ) {
            self.edit_anonymous(|tables, machine, frames, batch| {
                frames.populate(tables, machine, region.va, region.len, perms, batch)
            })?;
        } else {
            // Unreadable pages are never mapped: frames only.
            for page in (region.va.0..region.va.0 + region.len).step_by(PAGE as usize) {
                if self.anonymous.get(page).is_none() {
                    let frame = self.machine.alloc_frame().ok_or(AspaceError::from(PagingError::OutOfMemory))?;
                    self.anonymous.files.fill(&self.machine, page, frame);
                    self.anonymous.record(page, frame);
                }
            }
        }
        for page in (region.va.0..region.va.0 + region.len).step_by(PAGE as usize) {
            self.anonymous.mark_shared_page(page);
        }
        Ok(())
    }

    /// True when the page at `va` is shared writable on purpose (a shared
    /// mapping's: [`PagingAspace::share_anonymous`],
    /// [`PagingAspace::adopt_frames`]): its frame is never copied on write.
    pub fn is_shared_page(&self, va: VirtAddr) -> bool {
        self.anonymous.is_shared_page(va.0 & !(PAGE - 1))
    }

    /// Puts `frames`, one per page of `region` (an anonymous region of this
    /// space, or a page-aligned part of one, whose pages have no frame
    /// yet), behind its pages: the pages of a file's page cache, which
    /// another owner (the file) keeps too. Each frame gets one more
    /// reference, this space's ([`Machine::share_frame`]). With
    /// `copy_on_write` false the pages are shared writable, as a
    /// `MAP_SHARED` file mapping's are: writes reach the frame, every
    /// holder sees them, and a fork shares them writable. With it true
    /// they are a `MAP_PRIVATE` file mapping's: mapped read-only while the
    /// frame has other holders, so the first write copies the page. Pages
    /// map on first touch.
    ///
    /// Refused, nothing changed, when the region is not there or not
    /// anonymous, when `frames` does not have one frame per page
    /// ([`AspaceError::LengthOverflow`]), when a page has a frame already
    /// ([`AspaceError::Overlap`]), or when the machine does not count frame
    /// references ([`AspaceError::Unsupported`]).
    pub fn adopt_frames(
        &mut self,
        region: Region,
        frames: &[PhysAddr],
        copy_on_write: bool,
    ) -> Result<(), AspaceError> {
        let existing = self.resolve(region)?;
        if !existing.is_anonymous() {
            return Err(AspaceError::InvalidFlags {
                flags: existing.prot.bits(),
                reason: "only an anonymous region takes a file's frames",
            });
        }
        if frames.len() as u64 != region.len / PAGE {
            return Err(AspaceError::LengthOverflow {
                start: region.va.0,
                len: frames.len() as u64 * PAGE,
                kind: aspace::AddressKind::Length,
            });
        }
        let last = region.va.0 + region.len - 1;
        if self.anonymous.holds_any(region.va.0, last) {
            return Err(AspaceError::Overlap { existing });
        }
        for (index, &frame) in frames.iter().enumerate() {
            // SAFETY: the caller holds a reference to each frame (the file's
            // page cache keeps it); this adds the space's own.
            if !unsafe { self.machine.share_frame(frame, copy_on_write) } {
                for &taken in &frames[..index] {
                    // SAFETY: the reference taken just above, never mapped.
                    unsafe { self.machine.free_frame(taken) };
                }
                return Err(AspaceError::Unsupported {
                    implementation: IMPLEMENTATION_NAME,
                    operation: "adopting frames on a machine that does not count frame references",
                });
            }
        }
        for (index, &frame) in frames.iter().enumerate() {
            let page = region.va.0 + index as u64 * PAGE;
            self.anonymous.record(page, frame);
            if !copy_on_write {
                self.anonymous.mark_shared_page(page);
            }
        }
        Ok(())
    }

    /// Moves the memory of `[from, from+len)` to `[to, to+len)`, as
    /// `mremap` moves a mapping: each page's frame (and whether it is shared
    /// on purpose) passes to the page at the same offset from `to`, with no
    /// reference taken or given up and no byte copied, and the old pages own
    /// nothing after. Pages that had no frame have none at their new place
    /// either.
    ///
    /// When every page of the target has the same protection as the page
    /// it comes from (as `mremap`'s new regions have), the page-table
    /// entries move with the frames: the new pages are mapped at once, as
    /// the old ones were (read-only while copy-on-write, the zero page
    /// where they read it), and need no fault; whole page tables move where
    /// both ranges are 2 MiB-aligned. Otherwise, or when the tables cannot
    /// take the entries (no memory for a target table), the old pages are
    /// unmapped, pages that mapped the zero page forget it, and the new ones
    /// map their frames on their next touch. Either way the old pages are
    /// flushed from every TLB before this returns.
    ///
    /// Refused, nothing changed: a length that is zero or not whole pages,
    /// or ranges that wrap or overlap ([`AspaceError::LengthOverflow`],
    /// [`AspaceError::Overlap`]); a range not wholly inside anonymous
    /// regions ([`AspaceError::NoSuchRegion`]); a target page that owns a
    /// frame already or maps the zero page ([`AspaceError::Overlap`]).
    pub fn move_frames(&mut self, from: VirtAddr, to: VirtAddr, len: u64) -> Result<(), AspaceError> {
        use aspace::AddressKind;
        let too_long = |start| AspaceError::LengthOverflow { start, len, kind: AddressKind::Virtual };
        if len == 0 || !len.is_multiple_of(PAGE) || !from.0.is_multiple_of(PAGE) || !to.0.is_multiple_of(PAGE) {
            return Err(too_long(from.0));
        }
        let (from_last, to_last) =
            (from.0.checked_add(len - 1).ok_or(too_long(from.0))?, to.0.checked_add(len - 1).ok_or(too_long(to.0))?);
        let (source, one_source) = self.anonymous_cover(from.0, from_last)?;
        let (target, one_target) = self.anonymous_cover(to.0, to_last)?;
        if from.0 <= to_last && to.0 <= from_last {
            return Err(AspaceError::Overlap { existing: target });
        }
        if self.anonymous.holds_any(to.0, to_last) {
            return Err(AspaceError::Overlap { existing: target });
        }
        // Each range in one region (a one-mapping mremap): their two
        // protections decide; else page by page.
        let same_rights = if one_source && one_target {
            source.prot == target.prot
        } else {
            self.same_protection(from.0, to.0, from_last)
        };
        self.edit_anonymous(|tables, machine, frames, batch| {
            if same_rights && tables.move_into(machine, from, to, len, batch).is_ok() {
                frames.move_range(from.0, to.0, len, true);
                return Ok(());
            }
            // Anonymous pages are 4 KiB leaves: nothing to split.
            tables.unmap_into(machine, from, len, batch)?;
            frames.move_range(from.0, to.0, len, false);
            Ok(())
        })
    }

    /// The region holding `start`, and whether it holds all of `[start,
    /// last]`, when anonymous regions cover the whole range; else
    /// [`AspaceError::NoSuchRegion`] naming the first page none covers.
    fn anonymous_cover(&self, start: u64, last: u64) -> Result<(Region, bool), AspaceError> {
        let mut at = start;
        let mut first = None;
        loop {
            let region = self.regions.find(at).filter(|region| region.is_anonymous());
            let region = *region.ok_or(AspaceError::NoSuchRegion { va: at })?;
            let first = *first.get_or_insert(region);
            // A region ending at the top of the address space holds the rest.
            if region.last() >= last {
                return Ok((first, region == first));
            }
            at = region.last() + 1;
        }
    }

    /// True when every page of `[from, last]` lies in a region with the
    /// same protection as the region holding the page at the same offset
    /// from `to` (both ranges lie inside regions).
    fn same_protection(&self, from: u64, to: u64, last: u64) -> bool {
        let mut at = from;
        loop {
            let (Some(source), Some(target)) = (self.regions.find(at), self.regions.find(to + (at - from))) else {
                return false;
            };
            if source.prot != target.prot {
                return false;
            }
            // The next page where either region ends.
            let next = source.last().min(target.last() - (to + (at - from)) + at);
            if next >= last {
                return true;
            }
            at = next + 1;
        }
    }

    /// A copy-on-write clone of this space, named `name` (running under
    /// `pcid`), as `fork` makes for a child process: every region is added to
    /// the child as it is here; regions with their own memory (not
    /// anonymous: the kernel's map, a shared file) map the same physical
    /// memory in both (a space made with a [`KernelHalf`] gives its child
    /// the same kernel half, whose regions are recorded, not mapped anew); every frame of an anonymous region (private memory,
    /// private file pages) is shared by both spaces, one more reference
    /// each ([`Machine::share_frame`]), and mapped read-only in both, so the
    /// first write on either side copies the page (or, when the other side
    /// has let go of it, just makes it writable). Pages never touched stay
    /// untouched in both, and start from their file backing if they have one.
    ///
    /// The parent's writable private pages are write-protected, and every
    /// TLB that may hold them (every CPU running the parent) has dropped
    /// them, before this returns: a write on another CPU through a stale
    /// writable entry would otherwise reach the frame the child now shares.
    ///
    /// Refused with [`AspaceError::Unsupported`], nothing changed, when the
    /// machine does not count frame references or an anonymous region is
    /// eager (it would get fresh frames in the child).
    pub fn fork(&mut self, name: &str, pcid: Option<u16>) -> Result<PagingAspace<M>, AspaceError>
    where
        M: Clone + Send + 'static,
    {
        let refuse = |operation| AspaceError::Unsupported { implementation: IMPLEMENTATION_NAME, operation };
        if self.tables.is_none() {
            return Err(AspaceError::UnknownAddressSpace { name: self.name.clone() });
        }
        let regions: Vec<Region> = self.regions.iter().copied().collect();
        if regions.iter().any(|region| region.is_anonymous() && region.prot.contains(Protection::EAGER)) {
            return Err(refuse("fork of a space with an eager anonymous region"));
        }
        // With a shared kernel half, the child shares it too: its regions in
        // the upper half are recorded, already mapped by the shared tables.
        let (upper, lower): (Vec<Region>, Vec<Region>) = match self.kernel_half() {
            Some(_) => {
                let lower_half_end = self.machine.features().virt_width().lower_half_end();
                regions.iter().partition(|region| region.va.0 >= lower_half_end)
            }
            None => (Vec::new(), regions.clone()),
        };
        let mut child = match self.kernel_half() {
            Some(kernel) => {
                let kernel = kernel.clone();
                PagingAspace::from_regions_with_kernel_half(self.machine.clone(), name, pcid, &upper, &kernel, true)?
            }
            None => PagingAspace::new(self.machine.clone(), name, pcid)?,
        };
        child.fault_page_limit = self.fault_page_limit;
        child.fault_around = self.fault_around;
        child.zero_page = self.zero_page;
        child.growth_limits = self.growth_limits;
        for region in &lower {
            if let Err(error) = child.add_region(*region) {
                let _ = child.destroy();
                return Err(error);
            }
        }
        // Every frame gets the child's reference, in two calls (one per kind
        // of sharing), and the child's record is a copy of this one's.
        // One pass over the record, a chunk at a time, sorts the frames by
        // kind and gathers the parent's side: its writable private pages
        // become read-only, flushed from every TLB (the edit's batch) before
        // returning, a run of adjacent pages with the same rights in one
        // edit. Pages shared on purpose stay writable in both.
        let (mut shared, mut private) = (Vec::new(), Vec::with_capacity(self.anonymous.len()));
        let mut runs: Vec<(u64, u64, LeafPermissions)> = Vec::new();
        let mut region: Option<Region> = None;
        let regions = &self.regions;
        self.anonymous.for_each_frame(|page, frame, on_purpose| {
            if on_purpose {
                shared.push(frame);
                return;
            }
            private.push(frame);
            if !region.is_some_and(|region| region.contains(page)) {
                region = regions.find(page).copied();
            }
            let Some(region) = region.filter(|region| region.prot.contains(Protection::WRITE | Protection::READ))
            else {
                return;
            };
            let perms = LeafPermissions::from_protection(region.prot).read_only();
            match runs.last_mut() {
                Some((start, len, run_perms)) if *start + *len == page && *run_perms == perms => *len += PAGE,
                _ => runs.push((page, PAGE, perms)),
            }
        });
        // SAFETY: frames this space owns a reference to.
        if !unsafe { self.machine.share_frames(&private, true) } {
            let _ = child.destroy();
            return Err(refuse("fork (the machine does not count frame references)"));
        }
        // SAFETY: as above.
        if !unsafe { self.machine.share_frames(&shared, false) } {
            for &frame in &private {
                // SAFETY: the child's reference, taken just above and never mapped.
                unsafe { self.machine.free_frame(frame) };
            }
            let _ = child.destroy();
            return Err(refuse("fork (the machine does not count frame references)"));
        }
        child.anonymous = self.anonymous.fork_copy();
        let protected = self.edit(|tables, machine, batch| {
            for &(start, len, perms) in &runs {
                // 4 KiB anonymous pages: nothing to split.
                tables.protect_into(machine, VirtAddr(start), len, perms, batch)?;
            }
            Ok(())
        });
        if let Err(error) = protected {
            let _ = child.destroy();
            return Err(error);
        }
        Ok(child)
    }

    /// A fault at an address no region holds: grows the growing region it
    /// asks to grow, if the limits allow (see [`GrowthLimits`]).
    fn grow_on_fault(&mut self, fault: &Fault) -> FaultOutcome {
        let (region, grown) = match grow::growth_request(&self.regions, fault.addr, self.growth_limits) {
            GrowthRequest::None => return FaultOutcome::Unhandled(UnhandledFault::NoRegion),
            GrowthRequest::Overflow { region } => {
                return FaultOutcome::Unhandled(UnhandledFault::StackOverflow { region });
            }
            GrowthRequest::Grow { region, grown } => (region, grown),
        };
        let access = fault.code.access();
        if forbids(region.prot, access, fault.code.contains(PageFaultCode::USER)) {
            return FaultOutcome::Unhandled(UnhandledFault::Forbidden { region, access });
        }
        let features = self.machine.features();
        if grown.validate(Self::CHARACTERISTICS, features.virt_width(), features.phys_bits).is_err() {
            // It would run into the non-canonical hole: the end of the road.
            return FaultOutcome::Unhandled(UnhandledFault::StackOverflow { region });
        }
        let perms = LeafPermissions::from_protection(grown.prot);
        let page = VirtAddr(fault.addr & !(PAGE - 1));
        let result = if grown.prot.contains(Protection::EAGER) {
            // An eager region stays fully mapped: map all it grows by.
            let (start, len) = if grown.va == region.va {
                (VirtAddr(region.last() + 1), grown.len - region.len)
            } else {
                (grown.va, grown.len - region.len)
            };
            self.edit_anonymous(|tables, machine, frames, batch| {
                frames.populate(tables, machine, start, len, perms, batch)
            })
        } else {
            self.edit_anonymous(|tables, machine, frames, batch| frames.fault_in(tables, machine, page, perms, batch))
        };
        if result.is_err() {
            return FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region });
        }
        self.regions.replace(region.va, &[grown]).expect("growth keeps clear of every other region");
        self.growths += 1;
        self.faults_handled += 1;
        FaultOutcome::Handled
    }

    /// Invalidates what `batch` names and frees its frames, counting; the
    /// batch is left empty.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn finish(&mut self, batch: &mut FlushBatch) {
        let Some(space) = self.space_id() else { return };
        let summary = batch.apply_in_place(&self.machine, space);
        self.page_invalidations += summary.pages_invalidated;
        self.full_flushes += summary.full_flushes;
    }

    /// The existing region that `requested` names: itself, or (sub-range) a
    /// page-aligned part of it with the same virtual-to-physical offset (for
    /// an anonymous region, with `pa` 0).
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
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
        // Not `ok_or`: that builds the error (which has drop glue) on every call.
        let Some(&existing) = self.regions.find(requested.va.0) else {
            return Err(AspaceError::NoSuchRegion { va: requested.va.0 });
        };
        let same_memory = if existing.is_anonymous() {
            requested.pa.0 == 0
        } else {
            existing.translate(requested.va.0) == requested.pa
        };
        // The whole region, or a part of it.
        if existing.covers(requested.va.0, requested.len) && same_memory {
            Ok(existing)
        } else {
            Err(AspaceError::RegionMismatch { requested, existing })
        }
    }

    /// Replaces `existing` in the region set by the parts of it outside
    /// `[va, va+len)` and, if given, `middle` in its place. Of the parts of a
    /// growing region, only the one at the growing edge keeps growing.
    // Inlined: on the path of every one-page edit (DESIGN.md, "Inlining").
    #[inline(always)]
    fn replace_part(&mut self, existing: Region, va: u64, len: u64, middle: Option<Region>) {
        if va == existing.va.0 && len == existing.len && middle.is_some() {
            // The edit covered the whole region: change it in place, without
            // taking it out of the region set and inserting it again.
            let mut whole = [middle];
            grow::keep_growth_at_the_edge(&mut whole, existing.prot);
            let [Some(whole)] = whole else { unreachable!("the piece is still there") };
            self.regions.update(whole).expect("the region is in the set with this start and length");
            return;
        }
        let before = va - existing.va.0;
        let after = existing.last() - (va + (len - 1));
        let mut pieces = [
            (before > 0).then(|| existing.sub_region(existing.va.0, before)),
            middle,
            (after > 0).then(|| existing.sub_region(va + len, after)),
        ];
        grow::keep_growth_at_the_edge(&mut pieces, existing.prot);
        // The pieces in address order, without the ones that are not there.
        let mut present = [existing; 3];
        let mut count = 0;
        for piece in pieces.into_iter().flatten() {
            present[count] = piece;
            count += 1;
        }
        self.regions
            .replace(existing.va, &present[..count])
            .expect("the parts of a region cannot overlap other regions");
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

/// The fault-around window of `pages` 4 KiB pages (a power of two) around
/// the 4 KiB page at `va` (mapping `pa`), clipped to `region`: its first
/// page, that page's physical address, and its page count. Aligned to its
/// size, a window never leaves the page table of `va`.
fn fault_window(region: &Region, va: VirtAddr, pa: PhysAddr, pages: u64) -> (VirtAddr, PhysAddr, u64) {
    if pages <= 1 {
        return (va, pa, 1);
    }
    let window = pages * PAGE;
    let start = (va.0 & !(window - 1)).max(region.va.0);
    let end = (va.0 & !(window - 1)).saturating_add(window - 1).min(region.last());
    (VirtAddr(start), region.translate(start), (end - start) / PAGE + 1)
}

/// The largest page holding `addr` that lies wholly inside `region` and
/// whose virtual and physical starts are both aligned to its size.
/// No page larger than `limit` is chosen.
fn fault_page(region: &Region, addr: u64, huge_1g: bool, limit: PageSize) -> (VirtAddr, PhysAddr, PageSize) {
    // lab:begin extra-large-pages fault_page: the largest page inside the region whose VA and PA are aligned to it
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
    // lab:end
}

impl<M: Machine + Send + 'static> PagingAspace<M> {
    /// Adds `region`, an anonymous region (`pa` 0, [`Protection::ANON`],
    /// not growing), whose pages start as a copy of the `source_len` bytes of
    /// physical memory at `source` followed by zeros, instead of all zeros:
    /// a private mapping of a file. Each page is copied into its own frame
    /// when it gets one (first touch, or at once with EAGER); writes stay in
    /// that frame and never reach `source`. The region is otherwise an
    /// anonymous region like any other (remove frees its frames, and cuts
    /// the backing away with them).
    ///
    /// Refused, with nothing changed, when `add_region` would refuse the
    /// region, and when it is not anonymous or grows
    /// ([`AspaceError::InvalidFlags`]), `source_len` is zero
    /// ([`AspaceError::ZeroLength`]) or longer than the region, or the
    /// source runs past the top of the address space or MAXPHYADDR
    /// ([`AspaceError::LengthOverflow`], [`AspaceError::PhysTooWide`]).
    pub fn add_file_region(&mut self, region: Region, source: PhysAddr, source_len: u64) -> Result<(), AspaceError> {
        use aspace::AddressKind;
        if !region.is_anonymous() || region.prot.grows() {
            return Err(AspaceError::InvalidFlags {
                flags: region.prot.bits(),
                reason: "a file-backed region is anonymous (a) and does not grow (no d or u)",
            });
        }
        if source_len == 0 {
            return Err(AspaceError::ZeroLength);
        }
        if source_len > region.len {
            return Err(AspaceError::LengthOverflow { start: source.0, len: source_len, kind: AddressKind::Length });
        }
        let end = source.0.checked_add(source_len).ok_or(AspaceError::LengthOverflow {
            start: source.0,
            len: source_len,
            kind: AddressKind::Physical,
        })?;
        let phys_bits = self.machine.features().phys_bits;
        if (end - 1) >> phys_bits != 0 {
            return Err(AspaceError::PhysTooWide { addr: end - 1, phys_bits });
        }
        // Validate and check overlaps first: the backing must not be
        // recorded over a range that belongs to another region.
        let features = self.machine.features();
        region.validate(Self::CHARACTERISTICS, features.virt_width(), features.phys_bits)?;
        if let Some(existing) = self.regions.first_overlap(region.va.0, region.len) {
            return Err(AspaceError::Overlap { existing: *existing });
        }
        // Recorded before the add, so that an EAGER region's pages are filled.
        self.anonymous.files.insert(FileBacking { va: region.va, len: region.len, source, source_len });
        let added = self.add_region(region);
        if added.is_err() {
            self.anonymous.files.remove_at(region.va.0);
        }
        added
    }

    /// Adds `region`, an anonymous lazy region, whose pages are pages
    /// `first_index..` of `object` (see the `object` module): each page's
    /// first touch maps the object's frame, shared writable when `shared`
    /// (`MAP_SHARED`), copy-on-write otherwise (`MAP_PRIVATE`). A touch of
    /// a page past the object's end is
    /// [`UnhandledFault::PastEndOfObject`]. The pages come and go with the
    /// region like an anonymous region's: a remove gives their frames back.
    ///
    /// Refused, with nothing changed, when `add_region` would refuse the
    /// region, when it is not anonymous, grows or is eager
    /// ([`AspaceError::InvalidFlags`]), or when the object's pages would
    /// pass index 2^64 ([`AspaceError::LengthOverflow`]).
    pub fn add_object_region(
        &mut self,
        region: Region,
        object: Arc<dyn PageObject>,
        first_index: u64,
        shared: bool,
    ) -> Result<(), AspaceError> {
        if !region.is_anonymous() || region.prot.grows() || region.prot.contains(Protection::EAGER) {
            return Err(AspaceError::InvalidFlags {
                flags: region.prot.bits(),
                reason: "a memory object's region is anonymous (a), lazy (no e) and does not grow (no d or u)",
            });
        }
        if first_index.checked_add(region.len / PAGE).is_none() {
            return Err(AspaceError::LengthOverflow {
                start: first_index,
                len: region.len / PAGE,
                kind: aspace::AddressKind::Length,
            });
        }
        self.add_region(region)?;
        self.anonymous.objects.insert(ObjectBacking { va: region.va, len: region.len, object, first_index, shared });
        Ok(())
    }

    /// Drops every page this space maps of the memory object whose key is
    /// `key`, from its page `first_index` on: shared pages and private
    /// copies alike leave the tables (flushed from every TLB) and their
    /// frames are given back; the regions and backings stay, so a later
    /// touch faults and asks the object again. What a kernel does in every
    /// space when a file shrinks (Linux's `unmap_mapping_range` with its
    /// copy-on-write pages). Returns how many pages were dropped.
    pub fn drop_object_pages(&mut self, key: usize, first_index: u64) -> usize {
        let ranges: Vec<(u64, u64)> = self
            .anonymous
            .objects
            .iter()
            .filter(|backing| backing.object.key() == key)
            .filter_map(|backing| backing.pages_from_index(first_index))
            .collect();
        let mut dropped = 0;
        for (start, last) in ranges {
            let pages: Vec<u64> = self.anonymous.iter_range(start, last).map(|(page, _)| page).collect();
            if pages.is_empty() {
                continue;
            }
            dropped += pages.len();
            let _ = self.edit_anonymous(|tables, machine, frames, batch| {
                for &page in &pages {
                    // Object pages are 4 KiB leaves: nothing to split.
                    tables.unmap_into(machine, VirtAddr(page), PAGE, batch)?;
                }
                frames.release_frames(start, last, batch);
                Ok(())
            });
        }
        dropped
    }
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
        // lab:begin task1 add_region: refuse bad or overlapping regions, map an EAGER region now, record it
        if self.tables.is_none() {
            return Err(AspaceError::UnknownAddressSpace { name: self.name.clone() });
        }
        let features = self.machine.features();
        region.validate(Self::CHARACTERISTICS, features.virt_width(), features.phys_bits)?;
        if let Some(existing) = self.regions.first_overlap(region.va.0, region.len) {
            return Err(AspaceError::Overlap { existing: *existing });
        }
        if let Some(conflict) = grow::guard_conflict(&self.regions, &region, self.growth_limits) {
            return Err(conflict);
        }
        if region.prot.contains(Protection::EAGER | Protection::READ) {
            let perms = LeafPermissions::from_protection(region.prot);
            // All or nothing: on OutOfMemory the tables are as they were.
            if region.is_anonymous() {
                self.edit_anonymous(|tables, machine, frames, batch| {
                    frames.populate(tables, machine, region.va, region.len, perms, batch)
                })?;
            } else {
                self.edit(|tables, machine, batch| {
                    tables.map_into(machine, region.va, region.pa, region.len, perms, batch)
                })?;
            }
        }
        self.regions.insert(region)
        // lab:end
    }

    fn remove_region(&mut self, region: Region) -> Result<(), AspaceError> {
        // lab:begin task4 remove_region: refuse pinned regions, unmap and flush the TLB, update the region set
        let existing = self.resolve(region)?;
        if existing.prot.contains(Protection::PIN) {
            return Err(AspaceError::Pinned { region: existing });
        }
        if existing.is_anonymous() {
            // The frames go back after the flush that drops their translations.
            self.edit_anonymous(|tables, machine, frames, batch| {
                tables.unmap_into(machine, region.va, region.len, batch)?;
                frames.release(region.va.0, region.last(), batch);
                Ok(())
            })?;
        } else {
            self.edit(|tables, machine, batch| tables.unmap_into(machine, region.va, region.len, batch))?;
        }
        self.replace_part(existing, region.va.0, region.len, None);
        Ok(())
        // lab:end
    }

    fn move_region(&mut self, region: Region, new_pa: PhysAddr) -> Result<(), AspaceError> {
        // lab:begin task4 move_region: refuse pinned regions, re-point existing entries, flush, update the set
        let existing = self.resolve(region)?;
        if existing.is_anonymous() {
            return Err(AspaceError::Unsupported {
                implementation: IMPLEMENTATION_NAME,
                operation: "moving an anonymous region (its frames belong to the address space)",
            });
        }
        if existing.prot.contains(Protection::PIN) {
            return Err(AspaceError::Pinned { region: existing });
        }
        let moved = Region { pa: new_pa, prot: existing.prot, ..region };
        let features = self.machine.features();
        moved.validate(Self::CHARACTERISTICS, features.virt_width(), features.phys_bits)?;
        // Only the entries that exist are re-pointed; lazy pages not yet
        // touched will fault in with the new address.
        self.edit(|tables, machine, batch| tables.remap_into(machine, region.va, region.len, new_pa, batch))?;
        self.replace_part(existing, region.va.0, region.len, Some(moved));
        Ok(())
        // lab:end
    }

    fn protect_region(&mut self, region: Region, prot: Protection) -> Result<(), AspaceError> {
        if prot.contains(Protection::EAGER) && self.anonymous.objects.overlaps(region.va.0, region.last()) {
            return Err(AspaceError::InvalidFlags {
                flags: prot.bits(),
                reason: "a memory object's pages come on first touch: its range cannot be eager (e)",
            });
        }
        self.protect_entries(region, prot)?;
        if prot.contains(Protection::WRITE) {
            // Frames shared copy-on-write stay read-only whatever the region allows.
            self.write_protect_shared(region.va.0, region.len);
        }
        Ok(())
    }

    fn switch_to(&mut self) {
        if let Some(space) = self.space_id() {
            // With a PCID, the entries tagged with it are still valid: every
            // edit invalidated by PCID, whether the space was loaded or not.
            // SAFETY: the root of this space's live tree. It stays alive
            // while loaded: `destroy` refuses a root this CPU has loaded and
            // `drop` leaks it, and the kernel refuses to destroy a space
            // any CPU has loaded. That the tree maps what the running code
            // needs is the switching layer's check (the kernel's
            // `check_can_enter`), as for any address space.
            unsafe { self.machine.load_root(space, space.pcid.is_some()) };
        }
    }

    fn switch_from(&mut self) {
        // Nothing to do on x86-64: the next switch_to loads another root.
    }

    // Inlined into the kernel's fault hook, which calls it directly for a
    // paging space (DESIGN.md, "Inlining").
    #[inline(always)]
    fn exception(&mut self, fault: &Fault) -> FaultOutcome {
        // lab:begin task3 exception: find the region, refuse forbidden accesses, map the missing page (lazy)
        let Some(tables) = &self.tables else {
            cold_path();
            return FaultOutcome::Unhandled(UnhandledFault::NotHandledHere);
        };
        if fault.vector != Fault::PAGE_FAULT {
            cold_path();
            return FaultOutcome::Unhandled(UnhandledFault::NotHandledHere);
        }
        if fault.code.contains(PageFaultCode::RESERVED) {
            cold_path();
            return FaultOutcome::Unhandled(UnhandledFault::ReservedBit);
        }
        let Some(region) = self.regions.find(fault.addr).copied() else {
            cold_path();
            return self.grow_on_fault(fault);
        };
        let access = fault.code.access();
        let user = fault.code.contains(PageFaultCode::USER);
        if forbids(region.prot, access, user) {
            cold_path();
            return FaultOutcome::Unhandled(UnhandledFault::Forbidden { region, access });
        }
        // One walk serves both the stale-entry check and, most of the time,
        // the mapping: it ends at the table the new leaf goes in.
        let probe = tables.probe_fault(&self.machine, VirtAddr(fault.addr), access, user);
        if let FaultProbe::Allows { page_va } = probe {
            cold_path();
            // Another CPU mapped it, or a permission increase left a
            // stale entry in this CPU's TLB: drop it and retry.
            self.machine.invalidate(tables.space_id(), TlbInvalidation::Pages(&[page_va]));
            self.page_invalidations += 1;
            self.spurious_faults += 1;
            return FaultOutcome::Spurious;
        }
        let perms = LeafPermissions::from_protection(region.prot);
        if region.is_anonymous() {
            return self.fault_in_anonymous(region, VirtAddr(fault.addr & !(PAGE - 1)), probe, perms, access);
        }
        let (va, pa, size) = fault_page(&region, fault.addr, tables.features().huge_1g, self.fault_page_limit);
        let pages =
            if size == PageSize::Size4K && self.fault_page_limit != PageSize::Size4K { self.fault_around } else { 1 };
        let (va, pa, count) = fault_window(&region, va, pa, pages);
        if let Some(hole) = probe.hole_for(size, perms) {
            let tables = self.tables.as_mut().expect("checked above");
            tables.fill_holes(&self.machine, hole, va, pa, count, size, perms);
            self.faults_handled += 1;
            return FaultOutcome::Handled;
        }
        // A table is missing on the way (or a leaf is in the way): the
        // general edit, which allocates tables all or nothing.
        match self.edit(|tables, machine, batch| tables.map_into(machine, va, pa, count * size.bytes(), perms, batch)) {
            Ok(()) => {
                self.faults_handled += 1;
                FaultOutcome::Handled
            }
            Err(_) => FaultOutcome::Unhandled(UnhandledFault::OutOfMemory { region }),
        }
        // lab:end
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
        let limits = self.growth_limits;
        writeln!(
            out,
            "  anonymous frames: {}; growths: {} (maximum size {:#x}, guard gap {:#x})",
            c.anonymous_frames, c.growths, limits.max_size, limits.guard_gap
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
        let mut batch = tables.destroy(&self.machine);
        self.anonymous.release_all(&mut batch);
        let summary = batch.apply(&self.machine, space);
        self.full_flushes += summary.full_flushes;
        self.regions.clear();
        Ok(())
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
            let mut batch = tables.destroy(&self.machine);
            self.anonymous.release_all(&mut batch);
            let _ = batch.apply(&self.machine, space);
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
