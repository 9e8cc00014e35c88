//! # mmu-model: a software x86-64 MMU for testing the paging code on the host
