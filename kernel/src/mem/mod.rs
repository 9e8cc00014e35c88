//! Physical memory: the frame allocator and the kernel heap built on it.

pub mod heap;
