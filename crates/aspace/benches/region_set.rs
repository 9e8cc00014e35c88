//! How fast is the memory map? Insert, remove and lookup on [`RegionSet`]
//! (a B+-tree keyed by start address) at 10, 1k, 100k and 1M regions, beside
//! [`LinkedListRegionSet`], the sorted singly-linked list the NK paging lab
//! suggests as a first memory map.
//!
//! Run with `cargo bench -p aspace --bench region_set`. The criterion
//! settings are fixed in [`settings`] so the whole run takes a few minutes.
//!
//! The layout is the same for every size `n`: region `i` is one page at
//! `2 * i` pages, so the page between two regions is free and a region
//! inserted there touches both neighbours (the tightest legal fit).

use aspace::{AddressKind, AspaceError, Protection, Region, RegionSet, VirtAddr};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};

const PAGE: u64 = 0x1000;
/// Distance between the starts of two neighbouring regions.
const STRIDE: u64 = 2 * PAGE;
const RW: Protection = Protection::READ.union(Protection::WRITE);

/// Set sizes measured, for both structures. (A list operation at 1M
/// regions walks half a million nodes, about a millisecond: slow, but
/// criterion's minimum of a few hundred iterations still takes under a
/// second, so no size needs to be left out.)
const SIZES: [usize; 4] = [10, 1_000, 100_000, 1_000_000];
/// Random addresses for the `lookup` group: enough that at 1M regions what
/// they touch does not fit in the caches (with the page index, two lines per
/// lookup: 64 MiB for a million), so each lookup is a cold one.
const COLD_ADDRESSES: usize = 1 << 20;
/// Random addresses for the `lookup_hot` group: few enough that everything
/// they touch stays in the cache, so the figure is the search's own cost.
const HOT_ADDRESSES: usize = 256;

/// The region in the `index`-th occupied slot.
fn occupied(index: u64) -> Region {
    Region::new(index * STRIDE, index * STRIDE, PAGE, RW)
}

/// The region in the free page just after the `index`-th occupied slot.
fn free(index: u64) -> Region {
    Region::new(index * STRIDE + PAGE, index * STRIDE, PAGE, RW)
}

/// A small, fast, deterministic generator (xorshift64*), so every run
/// measures the same sequence without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// The numbers `0..n` in random order (Fisher-Yates).
    fn permutation(&mut self, n: usize) -> Vec<u64> {
        let mut values: Vec<u64> = (0..n as u64).collect();
        for i in (1..n).rev() {
            values.swap(i, self.below(i as u64 + 1) as usize);
        }
        values
    }
}

/// What the benchmarks need of a memory map.
trait MemoryMap {
    /// Builds a map holding `regions`, which are sorted and disjoint.
    fn from_sorted(regions: impl Iterator<Item = Region>) -> Self;
    fn insert(&mut self, region: Region) -> Result<(), AspaceError>;
    fn remove(&mut self, va: VirtAddr) -> Option<Region>;
    fn find(&self, va: u64) -> Option<&Region>;
}

impl MemoryMap for RegionSet {
    fn from_sorted(regions: impl Iterator<Item = Region>) -> Self {
        let mut set = RegionSet::new();
        for region in regions {
            set.insert(region).expect("benchmark regions are disjoint");
        }
        set
    }

    fn insert(&mut self, region: Region) -> Result<(), AspaceError> {
        RegionSet::insert(self, region)
    }

    fn remove(&mut self, va: VirtAddr) -> Option<Region> {
        RegionSet::remove(self, va)
    }

    fn find(&self, va: u64) -> Option<&Region> {
        RegionSet::find(self, va)
    }
}

/// The baseline: regions in a singly-linked list sorted by start address,
/// as the NK paging lab suggests. Every operation walks from the head.
///
/// The list is built in address order, so its nodes are also allocated in
/// address order and a walk streams through memory: the most favourable
/// case for a list (a list that has seen many inserts and removes scatters).
#[derive(Default)]
pub struct LinkedListRegionSet {
    head: Option<Box<Node>>,
}

struct Node {
    region: Region,
    next: Option<Box<Node>>,
}

impl LinkedListRegionSet {
    /// Walks from the head while `keep_walking` holds for the region ahead,
    /// and returns the link it stopped at (the final, empty one at the end).
    fn link_at(&mut self, mut keep_walking: impl FnMut(&Region) -> bool) -> &mut Option<Box<Node>> {
        let mut link = &mut self.head;
        while link.as_ref().is_some_and(|node| keep_walking(&node.region)) {
            link = &mut link.as_mut().expect("checked just above").next;
        }
        link
    }
}

impl MemoryMap for LinkedListRegionSet {
    fn from_sorted(regions: impl Iterator<Item = Region>) -> Self {
        let mut list = LinkedListRegionSet::default();
        let mut tail = &mut list.head;
        for region in regions {
            tail = &mut tail.insert(Box::new(Node { region, next: None })).next;
        }
        list
    }

    fn insert(&mut self, region: Region) -> Result<(), AspaceError> {
        if region.len == 0 {
            return Err(AspaceError::ZeroLength);
        }
        let Some(last) = region.va.0.checked_add(region.len - 1) else {
            return Err(AspaceError::LengthOverflow {
                start: region.va.0,
                len: region.len,
                kind: AddressKind::Virtual,
            });
        };
        // Every region before the link ends before the new one starts, so
        // the node at the link is the only one that can collide first.
        let link = self.link_at(|existing| existing.last() < region.va.0);
        if let Some(node) = link.as_ref().filter(|node| node.region.va.0 <= last) {
            return Err(AspaceError::Overlap { existing: node.region });
        }
        let next = link.take();
        *link = Some(Box::new(Node { region, next }));
        Ok(())
    }

    fn remove(&mut self, va: VirtAddr) -> Option<Region> {
        let link = self.link_at(|existing| existing.va < va);
        if link.as_ref()?.region.va != va {
            return None;
        }
        let mut node = link.take()?;
        *link = node.next.take();
        Some(node.region)
    }

    fn find(&self, va: u64) -> Option<&Region> {
        let mut cursor = self.head.as_deref();
        while let Some(node) = cursor {
            if node.region.va.0 > va {
                return None;
            }
            if node.region.contains(va) {
                return Some(&node.region);
            }
            cursor = node.next.as_deref();
        }
        None
    }
}

impl Drop for LinkedListRegionSet {
    /// Frees the nodes one by one: the default recursive drop of a
    /// million-node list would overflow the stack.
    fn drop(&mut self) {
        let mut cursor = self.head.take();
        while let Some(mut node) = cursor {
            cursor = node.next.take();
        }
    }
}

fn build<M: MemoryMap>(n: usize) -> M {
    M::from_sorted((0..n as u64).map(occupied))
}

/// How many operations are timed together: large enough that reading the
/// clock costs little per operation, small enough (a tenth of the set, at
/// most a thousand) that the set's size barely moves during a batch. The
/// 10-region set grows to at most 20 during an insert batch.
fn batch_size(n: usize) -> usize {
    (n / 10).clamp(10, 1_000)
}

/// Times `iterations` inserts of regions into free slots of a set of `n`,
/// in batches; each batch is removed again (untimed) so the set stays at `n`.
fn time_inserts<M: MemoryMap>(map: &mut M, slots: &[u64], next_slot: &mut usize, iterations: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut remaining = iterations as usize;
    while remaining > 0 {
        let batch = take_slots(slots, next_slot, remaining.min(batch_size(slots.len())));
        let start = Instant::now();
        for &slot in batch {
            let inserted = map.insert(black_box(free(slot)));
            assert!(inserted.is_ok());
        }
        total += start.elapsed();
        for &slot in batch {
            assert!(map.remove(free(slot).va).is_some());
        }
        remaining -= batch.len();
    }
    total
}

/// Times `iterations` removes from a set of `n`, in batches of regions
/// inserted (untimed) just before, so the set stays at `n`.
fn time_removes<M: MemoryMap>(map: &mut M, slots: &[u64], next_slot: &mut usize, iterations: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut remaining = iterations as usize;
    while remaining > 0 {
        let batch = take_slots(slots, next_slot, remaining.min(batch_size(slots.len())));
        for &slot in batch {
            assert!(map.insert(free(slot)).is_ok());
        }
        let start = Instant::now();
        for &slot in batch {
            let removed = map.remove(black_box(free(slot).va));
            assert!(removed.is_some());
        }
        total += start.elapsed();
        remaining -= batch.len();
    }
    total
}

/// The next `count` distinct free slots from a random permutation, wrapping
/// around (the window never straddles the end, so the slots are distinct).
fn take_slots<'a>(slots: &'a [u64], next_slot: &mut usize, count: usize) -> &'a [u64] {
    if *next_slot + count > slots.len() {
        *next_slot = 0;
    }
    let batch = &slots[*next_slot..*next_slot + count];
    *next_slot += count;
    batch
}

/// `count` random addresses, each inside a random region of a set of `n`.
fn lookup_addresses(n: usize, count: usize, random: &mut Random) -> Vec<u64> {
    (0..count).map(|_| occupied(random.below(n as u64)).va.0 + random.below(PAGE)).collect()
}

/// Finds the addresses in turn, round and round, in the usual layout moved
/// `shift` bytes up (regions that start and end inside pages when `shift`
/// is not a multiple of the page size).
fn bench_lookups<M: MemoryMap>(
    c: &mut Criterion,
    group: &str,
    name: &str,
    sizes: &[usize],
    addresses: usize,
    shift: u64,
) {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut group = c.benchmark_group(group);
    for &n in sizes {
        let map =
            M::from_sorted((0..n as u64).map(|i| Region { va: VirtAddr(occupied(i).va.0 + shift), ..occupied(i) }));
        let addresses: Vec<u64> = lookup_addresses(n, addresses, &mut random).iter().map(|va| va + shift).collect();
        // The figures mean nothing if the lookups miss: check a few.
        for &va in addresses.iter().take(64) {
            let start = ((va - shift) & !(STRIDE - 1)) + shift;
            assert_eq!(map.find(va).map(|r| r.va.0), Some(start), "{name} lost {va:#x}");
        }
        let mut next = 0;
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| {
                let va = addresses[next % addresses.len()];
                next += 1;
                black_box(map.find(black_box(va)))
            })
        });
    }
    group.finish();
}

/// Finds the addresses in turn, each lookup waiting for the one before: the
/// index of the next address depends on the region found (on a bit of its
/// start that is always 0, which the compiler cannot know), so the processor
/// cannot begin a lookup before the previous one has ended. This is the
/// latency of one lookup, as a page fault sees it, where `lookup` measures
/// how fast independent lookups go when the processor overlaps them.
fn bench_chained_lookups(c: &mut Criterion, sizes: &[usize]) {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut group = c.benchmark_group("lookup_chained");
    for &n in sizes {
        let map: RegionSet = build(n);
        let addresses = lookup_addresses(n, COLD_ADDRESSES, &mut random);
        // A mask rather than a division keeps the chain to the lookup itself.
        let wrap = COLD_ADDRESSES - 1;
        const { assert!(COLD_ADDRESSES.is_power_of_two()) };
        let mut next = 0;
        group.bench_function(BenchmarkId::new("RegionSet", n), |b| {
            b.iter(|| {
                let found = map.find(addresses[next]).map_or(1, |region| region.va.0);
                next = (next + 1 + (found & 1) as usize) & wrap;
            })
        });
    }
    group.finish();
}

/// One 64-byte cache line of the pointer chase: the index of the next line
/// to read, in its first word.
#[repr(align(64))]
struct Line([u64; 8]);

/// The machine's own floor, beside the lookups: one load at a time from a
/// buffer, each load's address taken from the one before, in a random
/// cycle through every cache line of the buffer. At 32 MiB (the regions of
/// a 1M-region set, 32 bytes each) nearly every load misses the caches and
/// the TLB: the round trip to memory that a cold lookup must pay at least
/// once (its leaf), so a run on another machine can be read against its
/// own memory. At 1 MiB the buffer stays in the L2 cache.
fn bench_memory_round_trip(c: &mut Criterion) {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut group = c.benchmark_group("memory_round_trip");
    for mib in [1usize, 32] {
        let count = (mib << 20) / size_of::<Line>();
        // Sattolo's shuffle: a random permutation that is one single cycle,
        // so the chase visits every line before it repeats.
        let mut order: Vec<u64> = (0..count as u64).collect();
        for i in (1..count).rev() {
            order.swap(i, random.below(i as u64) as usize);
        }
        let mut lines: Vec<Line> = (0..count).map(|_| Line([0; 8])).collect();
        for (line, &next) in order.iter().enumerate() {
            lines[line].0[0] = next;
        }
        let mut at = 0usize;
        group.bench_function(BenchmarkId::new("pointer_chase_MiB", mib), |b| {
            b.iter(|| {
                at = lines[at].0[0] as usize;
                at
            })
        });
        // The chase must have gone somewhere: a cycle never rests on one line.
        assert_ne!(lines[at].0[0] as usize, at);
    }
    group.finish();
}

fn bench_updates<M: MemoryMap>(c: &mut Criterion, name: &str, sizes: &[usize]) {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);

    let mut group = c.benchmark_group("insert");
    for &n in sizes {
        let mut map: M = build(n);
        let slots = random.permutation(n);
        let mut next_slot = 0;
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_custom(|iterations| time_inserts(&mut map, &slots, &mut next_slot, iterations))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("remove");
    for &n in sizes {
        let mut map: M = build(n);
        let slots = random.permutation(n);
        let mut next_slot = 0;
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_custom(|iterations| time_removes(&mut map, &slots, &mut next_slot, iterations))
        });
    }
    group.finish();
}

fn region_sets(c: &mut Criterion) {
    bench_updates::<RegionSet>(c, "RegionSet", &SIZES);
    bench_updates::<LinkedListRegionSet>(c, "LinkedListRegionSet", &SIZES);
    bench_lookups::<RegionSet>(c, "lookup", "RegionSet", &SIZES, COLD_ADDRESSES, 0);
    bench_lookups::<LinkedListRegionSet>(c, "lookup", "LinkedListRegionSet", &SIZES, COLD_ADDRESSES, 0);
    // A list lookup walks the same nodes whether they are cached or not, so
    // the hot pattern is measured for the B+-tree only.
    bench_lookups::<RegionSet>(c, "lookup_hot", "RegionSet", &SIZES, HOT_ADDRESSES, 0);
    bench_chained_lookups(c, &SIZES);
    // Regions that start and end inside pages, which the page index leaves
    // to the B+-tree: the tree's own search, which every other question
    // (overlaps, neighbours) also pays.
    bench_lookups::<RegionSet>(c, "lookup_in_tree", "RegionSet", &SIZES, COLD_ADDRESSES, PAGE / 2);
    bench_memory_round_trip(c);
}

/// Short, fixed warm-up and measurement times so the whole run takes minutes.
fn settings() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2)).sample_size(20)
}

criterion_group! {
    name = benches;
    config = settings();
    targets = region_sets
}
criterion_main!(benches);
