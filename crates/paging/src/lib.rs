//! # paging: x86-64 page tables for Nacre's address spaces
//!
//! Builds and edits 4-level (and 5-level) x86-64 page tables for the regions
//! of an address space. Hardware is reached only through the [`Machine`]
//! trait, so the same code runs in the kernel (real CR3, real `invlpg`) and
//! on the host against the software MMU of the `mmu-model` crate.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod machine;

pub use machine::{Machine, PagingFeatures, SpaceId, TlbInvalidation};
