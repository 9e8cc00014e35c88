//! Nacre's page tables against the `x86_64` crate's `OffsetPageTable`, on
//! the same simulated physical memory (see `host_memory`).
//!
//! Each workload edits a run of 4 KiB pages: Nacre with one range call, the
//! peer page by page, as a kernel written with that crate does (it has no
//! range operations). Then a 1 GiB-aligned gigabyte is mapped with 1 GiB,
//! 2 MiB and 4 KiB pages. Nacre's flush batches are applied (the machine
//! counts the invalidations and frees the frames); the peer's flush tokens
//! are ignored, since the host has no TLB to flush. The peer's `unmap` frees
//! no tables, so unmap is also measured with its `clean_up_addr_range`
//! after it, which frees them as Nacre's does. Every edit starts from a tree
//! of its own, built outside the timed part.
//!
//! Before measuring, each workload is run once on both and the two trees are
//! walked page by page: the benchmark stops if they translate differently.
//!
//! `cargo bench -p paging --bench paging` (under two minutes on two cores);
//! `docs/performance-host.md` has the figures and what they mean.

mod host_memory;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use host_memory::HostMemory;
use paging::{walk, LeafPermissions, PageTables, TableRef};
use std::hint::black_box;
use std::time::{Duration, Instant};
use x86_64::structures::paging::mapper::CleanUp;
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageSize, PageTableFlags, PhysFrame, Size1GiB, Size2MiB, Size4KiB,
};

/// The run lengths measured, in 4 KiB pages.
const RUN_PAGES: [u64; 5] = [1, 16, 512, 4096, 16384];

/// Where runs start: 1 GiB-aligned, so a run of 512 pages fills one page table.
const RUN_VA: u64 = 0x10_0000_0000;
/// Where runs are mapped. One page off 2 MiB alignment: Nacre would map a
/// 2 MiB-aligned run of 512 pages onto 2 MiB-aligned memory as one 2 MiB
/// page, and these workloads are about 4 KiB pages.
const RUN_PA: u64 = 0x1_0000_0000 + KIB4;
/// Where the move workload moves them (also off 2 MiB alignment).
const MOVED_PA: u64 = 0x2_0000_0000 + KIB4;

const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;
const KIB4: u64 = 4 << 10;

/// Simulated physical memory: enough for the tables of 512 small trees at
/// once (one timed chunk of 1-page edits) or one tree mapping a gigabyte.
const MEMORY_BYTES: usize = 64 << 20;

/// Short edits are timed in chunks of trees covering about this many pages,
/// so that reading the clock does not weigh on the figure.
const CHUNK_PAGES: u64 = 512;

/// Rights of the mapped pages: read-write, not executable, kernel only.
const RW: LeafPermissions = LeafPermissions { writable: true, user: false, executable: false };
/// Rights after the protect workload: read-only.
const RO: LeafPermissions = LeafPermissions { writable: false, user: false, executable: false };

fn peer_flags(perms: LeafPermissions) -> PageTableFlags {
    let mut flags = PageTableFlags::PRESENT | PageTableFlags::NO_EXECUTE;
    if perms.writable {
        flags |= PageTableFlags::WRITABLE;
    }
    flags
}

/// An edit of a run of 4 KiB pages, on a tree where the run is mapped at
/// [`RUN_PA`] (except for `Map`, which starts from an empty tree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// Map the run at [`RUN_PA`].
    Map,
    /// Unmap the run.
    Unmap,
    /// Make the run read-only.
    Protect,
    /// Point the run at [`MOVED_PA`].
    Move,
}

impl Workload {
    const ALL: [Workload; 4] = [Workload::Map, Workload::Unmap, Workload::Protect, Workload::Move];

    fn name(self) -> &'static str {
        match self {
            Workload::Map => "map",
            Workload::Unmap => "unmap",
            Workload::Protect => "protect",
            Workload::Move => "move",
        }
    }
}

/// What both implementations are asked to do.
trait Tree<'m>: Sized {
    /// An empty tree (a root table) in `memory`.
    fn empty(memory: &'m HostMemory) -> Self;
    /// The physical address of its root table, to walk it.
    fn root(&self) -> u64;
    /// Runs `work` over the `pages` pages at [`RUN_VA`].
    fn edit(&mut self, memory: &'m HostMemory, work: Workload, pages: u64);
    /// Maps the gigabyte at `va` onto `pa` with pages of `page_bytes`.
    fn map_gigabyte(&mut self, memory: &'m HostMemory, va: u64, pa: u64, page_bytes: u64);
}

/// Nacre: one range call per edit, its flush batch applied.
struct Nacre(PageTables);

impl<'m> Tree<'m> for Nacre {
    fn empty(memory: &'m HostMemory) -> Self {
        Nacre(PageTables::new(memory, None).expect("simulated memory for a root table"))
    }

    fn root(&self) -> u64 {
        self.0.root().0
    }

    fn edit(&mut self, memory: &'m HostMemory, work: Workload, pages: u64) {
        let (va, len) = (aspace::VirtAddr(RUN_VA), pages * KIB4);
        let batch = match work {
            Workload::Map => self.0.map(memory, va, aspace::PhysAddr(RUN_PA), len, RW),
            Workload::Unmap => self.0.unmap(memory, va, len),
            Workload::Protect => self.0.protect(memory, va, len, RO),
            Workload::Move => self.0.remap(memory, va, len, aspace::PhysAddr(MOVED_PA)),
        };
        black_box(batch.expect("simulated memory for the tables").apply(memory, self.0.space_id()));
    }

    fn map_gigabyte(&mut self, memory: &'m HostMemory, va: u64, pa: u64, page_bytes: u64) {
        // Nacre picks the page size from the alignment: the physical start
        // given by `gigabyte_pa` allows no larger page than `page_bytes`.
        let batch = self.0.map(memory, aspace::VirtAddr(va), aspace::PhysAddr(pa), GIB, RW);
        let summary = batch.expect("simulated memory for the tables").apply(memory, self.0.space_id());
        black_box((summary, page_bytes));
    }
}

/// The `x86_64` crate: one mapper call per page, flush tokens ignored.
struct Peer<'m>(OffsetPageTable<'m>);

impl Peer<'_> {
    fn map_pages<S: PageSize + std::fmt::Debug>(
        &mut self,
        memory: &HostMemory,
        va: u64,
        pa: u64,
        count: u64,
        flags: PageTableFlags,
    ) where
        for<'a> OffsetPageTable<'a>: Mapper<S>,
    {
        let mut frames = memory.peer_frames();
        for i in 0..count {
            let page = Page::<S>::from_start_address(x86_64::VirtAddr::new(va + i * S::SIZE)).expect("aligned");
            let frame = PhysFrame::<S>::from_start_address(x86_64::PhysAddr::new(pa + i * S::SIZE)).expect("aligned");
            // SAFETY: the page is not in use and the frame is never
            // accessed: only the tables are, and they live in `memory`.
            let flush = unsafe { self.0.map_to(page, frame, flags, &mut frames) };
            flush.expect("simulated memory for the tables").ignore();
        }
    }
}

impl<'m> Peer<'m> {
    /// Unmaps the run and then frees the tables it left empty, as Nacre's
    /// unmap does (the crate's `unmap` never frees tables).
    fn unmap_and_clean_up(&mut self, memory: &'m HostMemory, pages: u64) {
        self.edit(memory, Workload::Unmap, pages);
        let range = Page::range_inclusive(run_page(0), run_page(pages - 1));
        // SAFETY: no translation uses the tables being freed: the run was
        // their only content, and there is no TLB on the host.
        unsafe { self.0.clean_up_addr_range(range, &mut memory.peer_frames()) };
    }
}

fn run_page(i: u64) -> Page<Size4KiB> {
    Page::containing_address(x86_64::VirtAddr::new(RUN_VA + i * KIB4))
}

impl<'m> Tree<'m> for Peer<'m> {
    fn empty(memory: &'m HostMemory) -> Self {
        let root = memory.new_peer_root();
        let offset = x86_64::VirtAddr::new(memory.host_offset());
        // SAFETY: `root` is a zeroed table in the simulated memory, which
        // the offset maps entirely; the tree is dropped before the memory
        // is reset (see `measure`).
        Peer(unsafe { OffsetPageTable::new(&mut *root, offset) })
    }

    fn root(&self) -> u64 {
        let root: *const _ = self.0.level_4_table();
        root as u64 - self.0.phys_offset().as_u64()
    }

    fn edit(&mut self, memory: &'m HostMemory, work: Workload, pages: u64) {
        let mut frames = memory.peer_frames();
        match work {
            Workload::Map => self.map_pages::<Size4KiB>(memory, RUN_VA, RUN_PA, pages, peer_flags(RW)),
            Workload::Unmap => {
                for i in 0..pages {
                    let (frame, flush) = self.0.unmap(run_page(i)).expect("mapped");
                    flush.ignore();
                    black_box(frame);
                }
            }
            Workload::Protect => {
                for i in 0..pages {
                    // SAFETY: removing write access breaks no memory safety here.
                    let flush = unsafe { self.0.update_flags(run_page(i), peer_flags(RO)) };
                    flush.expect("mapped").ignore();
                }
            }
            Workload::Move => {
                for i in 0..pages {
                    let page = run_page(i);
                    let (_, flush) = self.0.unmap(page).expect("mapped");
                    flush.ignore();
                    let frame = PhysFrame::containing_address(x86_64::PhysAddr::new(MOVED_PA + i * KIB4));
                    // SAFETY: as in `map_pages`.
                    let flush = unsafe { self.0.map_to(page, frame, peer_flags(RW), &mut frames) };
                    flush.expect("tables already there").ignore();
                }
            }
        }
    }

    fn map_gigabyte(&mut self, memory: &'m HostMemory, va: u64, pa: u64, page_bytes: u64) {
        let flags = peer_flags(RW);
        match page_bytes {
            GIB => self.map_pages::<Size1GiB>(memory, va, pa, 1, flags),
            MIB2 => self.map_pages::<Size2MiB>(memory, va, pa, GIB / MIB2, flags),
            _ => self.map_pages::<Size4KiB>(memory, va, pa, GIB / KIB4, flags),
        }
    }
}

/// The tree a workload starts from: empty for `Map`, else the run mapped.
fn start_tree<'m, T: Tree<'m>>(memory: &'m HostMemory, work: Workload, pages: u64) -> T {
    let mut tree = T::empty(memory);
    if work != Workload::Map {
        tree.edit(memory, Workload::Map, pages);
    }
    tree
}

/// Times `iters` runs of `edit`, each on a tree of its own from `prepare`,
/// `per_chunk` trees at a time; preparing the trees is not timed.
fn measure<'m, T: Tree<'m>>(
    memory: &'m HostMemory,
    iters: u64,
    per_chunk: u64,
    prepare: impl Fn(&'m HostMemory) -> T,
    edit: impl Fn(&mut T, &'m HostMemory),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let count = per_chunk.min(iters - done);
        // Every tree of the previous chunk has been dropped.
        memory.reset();
        let mut trees: Vec<T> = (0..count).map(|_| prepare(memory)).collect();
        let start = Instant::now();
        for tree in &mut trees {
            edit(tree, memory);
        }
        total += start.elapsed();
        black_box(&trees);
        drop(trees);
        done += count;
    }
    total
}

/// Panics unless the two trees translate every page of `[va, va+len)`,
/// and the pages on either side, the same way.
fn assert_same_translations(memory: &HostMemory, nacre: u64, peer: u64, va: u64, len: u64, what: &str) {
    let (nacre, peer) = (table(nacre), table(peer));
    for page in (va - KIB4..=va + len).step_by(KIB4 as usize) {
        let ours = walk(memory, nacre, aspace::VirtAddr(page)).translation();
        let theirs = walk(memory, peer, aspace::VirtAddr(page)).translation();
        assert_eq!(ours, theirs, "{what}: the trees differ at {page:#x}");
    }
}

/// The root table at `root`, to walk it.
fn table(root: u64) -> TableRef {
    // SAFETY: the root of a tree that Nacre or the peer built in the
    // simulated memory, which `HostMemory` reaches; the trees live until
    // the memory is reset, after the walks.
    unsafe { TableRef::new(aspace::PhysAddr(root)) }
}

/// Runs every workload once on both and compares the trees.
fn check_agreement(memory: &HostMemory) {
    for work in Workload::ALL {
        for pages in RUN_PAGES {
            memory.reset();
            let mut nacre: Nacre = start_tree(memory, work, pages);
            let mut peer: Peer = start_tree(memory, work, pages);
            let before = memory.invalidations();
            nacre.edit(memory, work, pages);
            let after = memory.invalidations();
            peer.edit(memory, work, pages);
            let what = format!("{} of {pages} pages", work.name());
            eprintln!(
                "{what}: Nacre asked for {} single-page and {} full invalidations",
                after.0 - before.0,
                after.1 - before.1
            );
            assert_same_translations(memory, nacre.root(), peer.root(), RUN_VA, pages * KIB4, &what);
            if work == Workload::Unmap {
                // Both free the tables the run emptied: the same frames come back.
                let mut cleaned: Peer = start_tree(memory, work, pages);
                let in_use = memory.frames_in_use();
                cleaned.unmap_and_clean_up(memory, pages);
                let peer_freed = in_use - memory.frames_in_use();
                assert_eq!(peer_freed, nacre.0.counters().tables_freed, "{what}: tables freed");
                assert_same_translations(memory, nacre.root(), cleaned.root(), RUN_VA, pages * KIB4, &what);
            } else {
                let translation = walk(memory, table(nacre.root()), aspace::VirtAddr(RUN_VA)).translation();
                assert!(translation.is_some(), "{what}: the first page is mapped");
            }
        }
    }
    for page_bytes in [GIB, MIB2, KIB4] {
        memory.reset();
        let (mut nacre, mut peer) = (Nacre::empty(memory), Peer::empty(memory));
        nacre.map_gigabyte(memory, RUN_VA, gigabyte_pa(page_bytes), page_bytes);
        peer.map_gigabyte(memory, RUN_VA, gigabyte_pa(page_bytes), page_bytes);
        let what = format!("a gigabyte in {page_bytes}-byte pages");
        assert_same_translations(memory, nacre.root(), peer.root(), RUN_VA, GIB, &what);
        let first = walk(memory, table(nacre.root()), aspace::VirtAddr(RUN_VA)).translation();
        assert_eq!(first.map(|t| t.page_size.bytes()), Some(page_bytes), "{what}: Nacre's page size");
    }
    memory.reset();
}

/// Where the gigabyte is mapped so that its pages can be no larger than
/// `page_bytes` (Nacre takes the largest size the alignment allows).
fn gigabyte_pa(page_bytes: u64) -> u64 {
    let aligned = 0x1_0000_0000;
    if page_bytes == GIB {
        aligned
    } else {
        aligned + page_bytes
    }
}

fn runs_of_pages(c: &mut Criterion) {
    let memory = HostMemory::new(MEMORY_BYTES);
    check_agreement(&memory);
    let memory = &memory;
    for work in Workload::ALL {
        let mut group = c.benchmark_group(work.name());
        for pages in RUN_PAGES {
            group.throughput(Throughput::Elements(pages));
            let per_chunk = (CHUNK_PAGES / pages).max(1);
            group.bench_function(BenchmarkId::new("nacre", pages), |b| {
                b.iter_custom(|iters| {
                    let prepare = |m| start_tree::<Nacre>(m, work, pages);
                    measure(memory, iters, per_chunk, prepare, |tree, m| tree.edit(m, work, pages))
                })
            });
            group.bench_function(BenchmarkId::new("x86_64", pages), |b| {
                b.iter_custom(|iters| {
                    let prepare = |m| start_tree::<Peer>(m, work, pages);
                    measure(memory, iters, per_chunk, prepare, |tree, m| tree.edit(m, work, pages))
                })
            });
            if work == Workload::Unmap {
                group.bench_function(BenchmarkId::new("x86_64+clean_up", pages), |b| {
                    b.iter_custom(|iters| {
                        let prepare = |m| start_tree::<Peer>(m, work, pages);
                        measure(memory, iters, per_chunk, prepare, |tree, m| tree.unmap_and_clean_up(m, pages))
                    })
                });
            }
        }
        group.finish();
    }
}

fn one_gigabyte(c: &mut Criterion) {
    let memory = HostMemory::new(MEMORY_BYTES);
    let memory = &memory;
    let mut group = c.benchmark_group("gigabyte");
    group.throughput(Throughput::Bytes(GIB));
    group.sampling_mode(SamplingMode::Flat);
    for (page_bytes, size) in [(GIB, "1GiB"), (MIB2, "2MiB"), (KIB4, "4KiB")] {
        let pa = gigabyte_pa(page_bytes);
        // One 1 GiB entry is quick to write: time a chunk of trees, as for short runs.
        let per_chunk = if page_bytes == GIB { CHUNK_PAGES } else { 1 };
        group.bench_function(BenchmarkId::new("nacre", size), |b| {
            b.iter_custom(|iters| {
                measure(memory, iters, per_chunk, Nacre::empty, |tree, m| tree.map_gigabyte(m, RUN_VA, pa, page_bytes))
            })
        });
        group.bench_function(BenchmarkId::new("x86_64", size), |b| {
            b.iter_custom(|iters| {
                measure(memory, iters, per_chunk, Peer::empty, |tree, m| tree.map_gigabyte(m, RUN_VA, pa, page_bytes))
            })
        });
    }
    group.finish();
}

/// Short runs: the whole suite takes a few minutes on two cores.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = runs_of_pages, one_gigabyte
}
criterion_main!(benches);
