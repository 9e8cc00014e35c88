//! What one region lookup costs, outside criterion: builds a set of `n`
//! one-page regions laid out as in the `region_set` benchmark (region `i` at
//! `2 * i` pages), then finds `count` random addresses inside them and
//! prints the time per lookup.
//!
//! ```text
//! cargo run --release -p aspace --example lookup_cost -- 1000000 20000000
//! ```
//!
//! Its use beside the benchmark is counting instructions: run it under
//! `valgrind --tool=callgrind` once with `count` 0 and once with 1000000;
//! the difference of the two totals, divided by a million, is the number of
//! instructions per lookup (building the set costs the same in both).

use aspace::{Protection, Region, RegionSet};
use std::hint::black_box;
use std::time::Instant;

const PAGE: u64 = 0x1000;

/// Distinct addresses looked up, round and round: enough that at 1M
/// regions what they touch is not in the cache (with the page index, two
/// lines per address; 65,536 addresses would fit in the L3 cache).
const ADDRESSES: usize = 1 << 20;

fn argument(position: usize, name: &str) -> u64 {
    let usage = "usage: lookup_cost REGIONS LOOKUPS";
    let text = std::env::args().nth(position).unwrap_or_else(|| panic!("{usage}: {name} missing"));
    text.parse().unwrap_or_else(|_| panic!("{usage}: {name} is not a number: {text}"))
}

fn main() {
    let regions = argument(1, "REGIONS").max(1);
    let lookups = argument(2, "LOOKUPS");
    let mut set = RegionSet::new();
    for i in 0..regions {
        let region = Region::new(2 * i * PAGE, 2 * i * PAGE, PAGE, Protection::READ);
        set.insert(region).expect("the regions are disjoint");
    }
    // xorshift64*: deterministic, so every run looks up the same addresses.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let addresses: Vec<u64> = (0..ADDRESSES)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let random = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            2 * (random % regions) * PAGE + (random >> 52)
        })
        .collect();
    let start = Instant::now();
    let mut found = 0u64;
    for i in 0..lookups as usize {
        found += u64::from(black_box(set.find(black_box(addresses[i % ADDRESSES]))).is_some());
    }
    let elapsed = start.elapsed();
    // Every address lies inside a region: a lookup that misses is a bug.
    assert_eq!(found, lookups, "some lookups found no region");
    let per_lookup = elapsed.as_nanos() as f64 / lookups.max(1) as f64;
    println!("{regions} regions, {lookups} lookups: {per_lookup:.1} ns per lookup");
}
