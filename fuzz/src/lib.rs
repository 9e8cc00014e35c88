//! # nacre-fuzz: byte strings decoded into operations, checked against models
//!
//! Four targets, each a plain function of a byte string that panics when
//! the code under test does something wrong:
//!
//! - [`targets::region_set`]: a sequence of inserts, removes, updates and
//!   look-ups on an [`aspace::RegionSet`], each checked against a naive
//!   list of regions;
//! - [`targets::paging_model`]: adds, removes, moves, protects, touches and
//!   CPU switches on a [`paging::PagingAspace`] over the software MMU,
//!   checked against a model of its regions (a refusal exactly when the model
//!   refuses, the same translations), with `verify()` and the machine's rule
//!   checks after every step, and the frame count back to its baseline once
//!   the space is destroyed;
//! - [`targets::shell_parser`]: bytes fed to the shell's line editor, and the
//!   lines it yields split, tokenized and parsed as numbers and flags: none
//!   of it may panic, and what parses must print back the same;
//! - [`targets::exec_loader`]: bytes planned as an ELF executable by
//!   [`exec::LoadPlan`], as a whole file and as the headers of a larger one:
//!   a plan or a typed error, never a panic, and every plan page aligned,
//!   non-overlapping, inside user space, W^X, its entry executable; an
//!   initial stack for it decodes back.
//!
//! The same functions serve two drivers: libFuzzer through `cargo fuzz`
//! (the entry points in `fuzz_targets/`, behind the `libfuzzer` feature,
//! nightly only), and the stable [`runner`], a small deterministic mutator
//! over the corpus in `fuzz/corpus/TARGET/`, time-boxed, which CI runs.

pub mod input;
pub mod runner;
pub mod targets;

pub use runner::Target;

/// Every target, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("region_set", targets::region_set),
    ("paging_model", targets::paging_model),
    ("shell_parser", targets::shell_parser),
    ("exec_loader", targets::exec_loader),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(known, _)| *known == name).map(|&(_, run)| run)
}
