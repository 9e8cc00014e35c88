//! The files of `/proc` a program may read, made when opened, in Linux's
//! formats: `/proc/self/maps` (`fs/proc/task_mmu.c`, `show_map_vma`),
//! `/proc/self/status` (the memory lines) and `/proc/meminfo` (the first
//! three lines), from the kernel's true numbers.

use super::layout;
use super::process::Process;
use crate::address_space::paging_of;
use crate::fs;
use alloc::string::String;
use alloc::vec::Vec;
use aspace::{Protection, Region};
use core::fmt::Write;

/// One line of `maps`: a run of addresses with the same rights and the
/// same backing (Linux merges such neighbours into one VMA).
struct MapLine {
    start: u64,
    end: u64,
    prot: Protection,
    /// The initrd file and the offset of `start` in it.
    file: Option<(&'static str, u64)>,
}

/// The initrd file holding physical address `source`, and the offset.
fn file_at(source: u64) -> Option<(&'static str, u64)> {
    fs::files().iter().find_map(|file| {
        let start = file.phys_addr();
        (source >= start && source < start + file.size().max(1)).then(|| (file.name(), source - start))
    })
}

fn map_lines(process: &Process) -> Vec<MapLine> {
    let object = process.space.lock();
    let paging = paging_of(&object);
    let bottom = layout::user_bottom();
    let mut lines: Vec<MapLine> = Vec::new();
    let regions: Vec<Region> = object.regions().iter().filter(|r| r.va.as_u64() >= bottom).copied().collect();
    for region in regions {
        let start = region.va.as_u64();
        let backing = paging.and_then(|paging| paging.file_backing(region.va));
        let file = backing.and_then(|backing| file_at(backing.source.0 + (start - backing.va.0)));
        let line = MapLine { start, end: start + region.len, prot: region.prot, file };
        if let Some(last) = lines.last_mut() {
            let same_rights = last.prot.access() == line.prot.access()
                && last.prot.contains(Protection::READ_ONLY_BACKING)
                    == line.prot.contains(Protection::READ_ONLY_BACKING);
            let continues_file = match (last.file, line.file) {
                (None, None) => true,
                (Some((a, offset)), Some((b, next))) => a == b && offset + (last.end - last.start) == next,
                _ => false,
            };
            if last.end == line.start && same_rights && continues_file {
                last.end = line.end;
                continue;
            }
        }
        lines.push(line);
    }
    lines
}

/// `/proc/self/maps` of `process`.
pub fn maps(process: &Process) -> Vec<u8> {
    let (brk_start, brk) = {
        let state = process.state.lock();
        (state.brk_start, state.brk)
    };
    let mut out = String::new();
    for line in map_lines(process) {
        let r = if line.prot.contains(Protection::READ) { 'r' } else { '-' };
        let w = if line.prot.contains(Protection::WRITE) { 'w' } else { '-' };
        let x = if line.prot.contains(Protection::EXEC) { 'x' } else { '-' };
        let shared = if line.prot.contains(Protection::READ_ONLY_BACKING) { 's' } else { 'p' };
        let (offset, inode, name) = match line.file {
            Some((name, offset)) => (offset, inode_of(name), alloc::format!("/{name}")),
            // Linux's rules (show_map_vma): the line holding the break's
            // range is the heap, the one holding the stack's top the stack.
            None if line.start <= brk && line.end >= brk_start => (0, 0, String::from("[heap]")),
            None if line.start < layout::STACK_TOP && line.end >= layout::STACK_TOP => (0, 0, String::from("[stack]")),
            None => (0, 0, String::new()),
        };
        let _ = write!(out, "{:08x}-{:08x} {r}{w}{x}{shared} {offset:08x} 00:00 {inode} ", line.start, line.end);
        // As Linux's show_map_vma: an unnamed line keeps the header's
        // trailing space; a name comes after padding to 72 columns and one
        // more space (seq_pad).
        if !name.is_empty() {
            let column = out.len() - out.rfind('\n').map_or(0, |newline| newline + 1);
            for _ in column..72 {
                out.push(' ');
            }
            out.push(' ');
            out.push_str(&name);
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// The inode number the kernel gives initrd file `name` (its index + 1).
pub fn inode_of(name: &str) -> u64 {
    fs::files().iter().position(|file| file.name() == name).map_or(0, |index| index as u64 + 1)
}

/// The bytes of `process`'s pages in memory, and of its whole user space.
fn memory_sizes(process: &Process) -> (u64, u64) {
    let object = process.space.lock();
    let bottom = layout::user_bottom();
    let size: u64 = object.regions().iter().filter(|r| r.va.as_u64() >= bottom).map(|r| r.len).sum();
    let resident = paging_of(&object)
        .map(|paging| paging.anonymous_frames().filter(|(va, _)| va.as_u64() >= bottom).count() as u64 * 4096)
        .unwrap_or(0);
    (resident, size)
}

/// `/proc/self/status`: the identity and memory lines.
pub fn status(process: &Process) -> Vec<u8> {
    let (resident, size) = memory_sizes(process);
    let name = process.path.rsplit('/').next().unwrap_or("");
    let mut out = String::new();
    let _ = writeln!(out, "Name:\t{}", &name[..name.len().min(15)]);
    let _ = writeln!(out, "State:\tR (running)");
    let _ = writeln!(out, "Tgid:\t{}", process.pid);
    let _ = writeln!(out, "Pid:\t{}", process.pid);
    let _ = writeln!(out, "PPid:\t0");
    let _ = writeln!(out, "Uid:\t0\t0\t0\t0");
    let _ = writeln!(out, "Gid:\t0\t0\t0\t0");
    let _ = writeln!(out, "VmSize:\t{:8} kB", size / 1024);
    let _ = writeln!(out, "VmRSS:\t{:8} kB", resident / 1024);
    let _ = writeln!(out, "Threads:\t1");
    out.into_bytes()
}

/// `/proc/meminfo`: the first three lines, from the frame allocator.
pub fn meminfo() -> Vec<u8> {
    let frames = crate::mem::frames::stats();
    let kib = |frames: usize| frames as u64 * 4;
    let mut out = String::new();
    let _ = writeln!(out, "MemTotal:       {:8} kB", kib(frames.managed));
    let _ = writeln!(out, "MemFree:        {:8} kB", kib(frames.free));
    let _ = writeln!(out, "MemAvailable:   {:8} kB", kib(frames.free));
    out.into_bytes()
}
