//! `mmapTest`: the initrd's files mapped into an address space, read back
//! and written, and bad requests refused.
//!
//! In an address space of its own (the kernel half, so the kernel runs
//! there, and the hardened identity map), entered by the calling thread:
//! 1. every file mapped private reads exactly its bytes (what `cat`
//!    shows), then zeros to the end of the last page; page-aligned files
//!    mapped shared read the same, and their whole pages are the initrd's
//!    own frames (nothing copied);
//! 2. every page-aligned offset of every file, to the end and for a length
//!    that ends inside a page, reads back exactly;
//! 3. writes to a private mapping change neither the file, nor another
//!    private mapping of it, nor a shared one;
//! 4. bad requests (past the end, overlapping, misaligned VA or offset,
//!    unknown file or address space, shared and unaligned or writable, a
//!    non-paging space, munmap of nothing) get their error and change
//!    nothing: regions, counters, frames and the mapping list are as before;
//! 5. after every munmap the space's frames (anonymous and page tables) and
//!    the frame allocator are back at their baseline.

use crate::address_space::{self, Space};
use crate::fs::{self, File, PAGE};
use crate::mem::frames;
use crate::mmap::{self, Mapping, MmapError, MmapRequest, Sharing};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aspace::{AspaceError, Protection, RegionSet};
use core::fmt::Write;
use paging::PagingCounters;

/// The test's address space.
const SPACE: &str = "mmapTest";
/// Where the mappings go (far from the identity map).
const BASE: u64 = 0x6000_0000_0000;
/// The distance between two mappings' slots.
const SLOT: u64 = 0x100_0000;
/// How much of physical memory the identity map covers.
const IDENTITY_LEN: u64 = 4 << 30;

/// Runs the test, reporting each step to `out`.
pub fn run(out: &mut dyn Write) -> Result<(), String> {
    let files = fs::files();
    let aligned = files.iter().find(|f| f.is_page_aligned() && f.size() > PAGE);
    let unaligned = files.iter().find(|f| !f.is_page_aligned());
    let (Some(aligned), Some(unaligned)) = (aligned, unaligned) else {
        return Err(String::from(
            "the initrd needs a page-aligned file of more than a page and a file that is not page-aligned (see ls)",
        ));
    };
    let frames_before = frames::stats().used();
    let space = address_space::create(paging::IMPLEMENTATION_NAME, SPACE).map_err(|e| format!("create: {e}"))?;
    let came_from = address_space::current();
    let result = crate::address_space::harden::harden(&space, IDENTITY_LEN)
        .map_err(|e| format!("harden: {e}"))
        .and_then(|_| address_space::move_current_thread(Some(&space)).map_err(|e| format!("enter: {e}")))
        .and_then(|()| steps(&space, files, aligned, unaligned, out));
    for mapping in mmap::mappings().iter().filter(|m| m.space_id == space.id()) {
        let _ = mmap::munmap(SPACE, mapping.va);
    }
    let back = address_space::move_current_thread(came_from.as_ref());
    let destroyed = address_space::destroy(SPACE);
    result?;
    back.map_err(|e| format!("moving back: {e}"))?;
    destroyed.map_err(|e| format!("destroy: {e}"))?;
    let frames_after = frames::stats().used();
    if frames_after != frames_before {
        return Err(format!("frames in use: {frames_before} before the test, {frames_after} after"));
    }
    writeln!(out, "mmapTest: frames in use back to {frames_after} after destroying '{SPACE}'").ok();
    writeln!(out, "mmapTest: passed").ok();
    Ok(())
}

/// A bad request: what it is, what it got, and the error it must get.
type Refusal = (&'static str, Result<Mapping, MmapError>, fn(&MmapError) -> bool);

/// What must not change when a request is refused.
#[derive(Debug, PartialEq)]
struct Snapshot {
    regions: RegionSet,
    counters: PagingCounters,
    frames_used: usize,
    mappings: Vec<Mapping>,
}

fn snapshot(space: &Space) -> Snapshot {
    let object = space.lock();
    Snapshot {
        regions: object.regions().clone(),
        counters: address_space::paging_of(&object).map(|p| p.counters()).unwrap_or_default(),
        frames_used: frames::stats().used(),
        mappings: mmap::mappings(),
    }
}

fn counters(space: &Space) -> PagingCounters {
    address_space::paging_of(&space.lock()).map(|p| p.counters()).unwrap_or_default()
}

fn request<'a>(file: &'a str, va: u64, offset: u64, len: Option<u64>, sharing: Sharing) -> MmapRequest<'a> {
    let prot = match sharing {
        Sharing::Private => Protection::READ | Protection::WRITE,
        Sharing::Shared => Protection::READ,
    };
    MmapRequest { space: SPACE, file, va, offset, len, prot, sharing }
}

/// The bytes at `[va, va + len)` of the current address space.
///
/// # Safety
/// The range must be mapped readable (on demand is enough) in the address
/// space the calling thread is in, and not written while the slice lives.
unsafe fn mapped(va: u64, len: u64) -> &'static [u8] {
    // SAFETY: as the caller guarantees.
    unsafe { core::slice::from_raw_parts(va as *const u8, len as usize) }
}

/// Checks that the mapping shows `expected`, then zeros to its last page's end.
fn check_contents(mapping: &Mapping, expected: &[u8]) -> Result<(), String> {
    // SAFETY: the mapping is in place in the space this thread is in, and
    // covers mapped_len bytes; nothing writes it meanwhile.
    let shown = unsafe { mapped(mapping.va, mapping.mapped_len()) };
    let (data, tail) = shown.split_at(expected.len());
    if let Some(at) = data.iter().zip(expected).position(|(a, b)| a != b) {
        return Err(format!("{mapping}: byte {at:#x} reads {:#x}, the file has {:#x}", data[at], expected[at]));
    }
    if let Some(at) = tail.iter().position(|&b| b != 0) {
        return Err(format!("{mapping}: byte {:#x} past the file's bytes is not zero", expected.len() + at));
    }
    Ok(())
}

fn steps(
    space: &Arc<Space>,
    files: &'static [File],
    aligned: &'static File,
    unaligned: &'static File,
    out: &mut dyn Write,
) -> Result<(), String> {
    let baseline = snapshot(space);
    let mut slot = 0;
    let mut next_va = || {
        slot += 1;
        BASE + slot * SLOT
    };

    // 1. Whole files, private and (when aligned) shared.
    for file in files.iter().filter(|f| f.size() > 0) {
        let before = counters(space);
        let private = mmap::mmap(&request(file.name(), next_va(), 0, None, Sharing::Private))
            .map_err(|e| format!("mmap {}: {e}", file.name()))?;
        check_contents(&private, file.data())?;
        let pages = file.size().div_ceil(PAGE);
        let copied = counters(space).file_pages_filled - before.file_pages_filled;
        if copied != pages {
            return Err(format!("{private}: {copied} pages copied, expected {pages}"));
        }
        if !file.is_page_aligned() {
            writeln!(out, "mmapTest: '{}' private: {} bytes equal, pages copied: {pages}", file.name(), file.size())
                .ok();
            continue;
        }
        let before = counters(space);
        let shared = mmap::mmap(&request(file.name(), next_va(), 0, None, Sharing::Shared))
            .map_err(|e| format!("mmap {} shared: {e}", file.name()))?;
        check_contents(&shared, file.data())?;
        let copied = counters(space).file_pages_filled - before.file_pages_filled;
        let partial = u64::from(!file.size().is_multiple_of(PAGE));
        if copied != partial {
            return Err(format!("{shared}: {copied} pages copied, expected {partial} (the partial last page)"));
        }
        // Its whole pages are the initrd's frames.
        let object = space.lock();
        let paging = address_space::paging_of(&object).ok_or("not a paging space")?;
        for page in 0..file.size() / PAGE {
            let va = aspace::VirtAddr::new(shared.va + page * PAGE);
            let frame = paging.walk(va).and_then(|walk| walk.translation()).map(|t| t.pa.as_u64());
            if frame != Some(file.phys_addr() + page * PAGE) {
                return Err(format!("{shared}: page {page} maps {frame:x?}, not the initrd's frame"));
            }
        }
        drop(object);
        writeln!(
            out,
            "mmapTest: '{}' private and shared: {} bytes equal; private copied {pages} pages, shared {partial}",
            file.name(),
            file.size()
        )
        .ok();
    }

    // 2. Every page-aligned offset, to the end and ending inside a page.
    let mut ranges = 0;
    for file in files {
        for offset in (0..file.size()).step_by(PAGE as usize) {
            let rest = file.size() - offset;
            for len in [rest, rest.min(PAGE + 123), rest.min(7)] {
                let mapping = mmap::mmap(&request(file.name(), next_va(), offset, Some(len), Sharing::Private))
                    .map_err(|e| format!("mmap {} {offset:#x} {len:#x}: {e}", file.name()))?;
                check_contents(&mapping, &file.data()[offset as usize..(offset + len) as usize])?;
                ranges += 1;
            }
        }
    }
    writeln!(out, "mmapTest: {ranges} ranges at every page offset of every file read back exactly").ok();

    // 3. Private writes stay private.
    let original: Vec<u8> = aligned.data().to_vec();
    let first =
        mmap::mmap(&request(aligned.name(), next_va(), 0, None, Sharing::Private)).map_err(|e| format!("{e}"))?;
    let second =
        mmap::mmap(&request(aligned.name(), next_va(), 0, None, Sharing::Private)).map_err(|e| format!("{e}"))?;
    let shared =
        mmap::mmap(&request(aligned.name(), next_va(), 0, None, Sharing::Shared)).map_err(|e| format!("{e}"))?;
    let written: Vec<u64> = (0..aligned.size()).step_by(1000).collect();
    for &at in &written {
        // SAFETY: a private, writable mapping in this thread's address space.
        unsafe { ((first.va + at) as *mut u8).write_volatile(!original[at as usize]) };
    }
    // SAFETY: as above.
    let changed = unsafe { mapped(first.va, aligned.size()) };
    if !written.iter().all(|&at| changed[at as usize] == !original[at as usize]) {
        return Err(format!("{first}: the writes did not stick"));
    }
    if aligned.data() != &original[..] {
        return Err(String::from("a write to a private mapping changed the file"));
    }
    check_contents(&second, &original).map_err(|e| format!("after writes to another mapping: {e}"))?;
    check_contents(&shared, &original).map_err(|e| format!("after writes to a private mapping: {e}"))?;
    writeln!(
        out,
        "mmapTest: {} writes to a private mapping changed neither the file, nor another private mapping, nor a shared one",
        written.len()
    )
    .ok();

    // 4. Bad requests change nothing.
    let size = aligned.size();
    let taken = first.va;
    let before = snapshot(space);
    let refusals: [Refusal; 10] = [
        (
            "one byte past the end",
            mmap::mmap(&request(aligned.name(), next_va(), 0, Some(size + 1), Sharing::Private)),
            |e| matches!(e, MmapError::PastEnd { .. }),
        ),
        (
            "an offset past the end",
            mmap::mmap(&request(aligned.name(), next_va(), size.next_multiple_of(PAGE), Some(1), Sharing::Private)),
            |e| matches!(e, MmapError::PastEnd { .. }),
        ),
        ("an overlapping VA", mmap::mmap(&request(aligned.name(), taken + PAGE, 0, None, Sharing::Private)), |e| {
            matches!(e, MmapError::Refused(AspaceError::Overlap { .. }))
        }),
        ("a misaligned VA", mmap::mmap(&request(aligned.name(), next_va() + 8, 0, None, Sharing::Private)), |e| {
            matches!(e, MmapError::MisalignedVa { .. })
        }),
        ("a misaligned offset", mmap::mmap(&request(aligned.name(), next_va(), 8, Some(8), Sharing::Private)), |e| {
            matches!(e, MmapError::MisalignedOffset { offset: 8 })
        }),
        ("an unknown file", mmap::mmap(&request("no-such-file", next_va(), 0, None, Sharing::Private)), |e| {
            matches!(e, MmapError::UnknownFile(_))
        }),
        (
            "an unknown address space",
            mmap::mmap(&MmapRequest {
                space: "no-such-space",
                ..request(aligned.name(), next_va(), 0, None, Sharing::Private)
            }),
            |e| matches!(e, MmapError::UnknownSpace { .. }),
        ),
        ("shared unaligned data", mmap::mmap(&request(unaligned.name(), next_va(), 0, None, Sharing::Shared)), |e| {
            matches!(e, MmapError::SharedUnaligned { .. })
        }),
        (
            "shared and writable",
            mmap::mmap(&MmapRequest {
                prot: Protection::READ | Protection::WRITE,
                ..request(aligned.name(), next_va(), 0, None, Sharing::Shared)
            }),
            |e| matches!(e, MmapError::SharedWritable),
        ),
        (
            "the boot map",
            mmap::mmap(&MmapRequest { space: "base", ..request(aligned.name(), next_va(), 0, None, Sharing::Private) }),
            |e| matches!(e, MmapError::NotPaging { .. }),
        ),
    ];
    for (what, result, expected) in &refusals {
        match result {
            Err(error) if expected(error) => writeln!(out, "mmapTest: {what}: refused: {error}").ok(),
            Err(error) => return Err(format!("{what}: refused with the wrong error: {error}")),
            Ok(mapping) => return Err(format!("{what}: accepted: {mapping}")),
        };
    }
    match mmap::munmap(SPACE, taken + PAGE) {
        Err(MmapError::NoMapping { .. }) => {}
        other => return Err(format!("munmap where no mapping starts: {other:?}")),
    }
    if snapshot(space) != before {
        return Err(String::from("a refused request changed the address space, the frames or the mapping list"));
    }

    // 5. Everything unmapped: back to the baseline.
    let ours: Vec<u64> = mmap::mappings().iter().filter(|m| m.space_id == space.id()).map(|m| m.va).collect();
    for va in &ours {
        mmap::munmap(SPACE, *va).map_err(|e| format!("munmap {va:#x}: {e}"))?;
    }
    let after = snapshot(space);
    let c = after.counters;
    if after.regions != baseline.regions
        || c.anonymous_frames != 0
        || c.table_frames != baseline.counters.table_frames
        || after.frames_used != baseline.frames_used
    {
        return Err(format!(
            "after munmap of {} mappings: {} regions (baseline {}), {} anonymous frames, {} table frames \
             (baseline {}), {} frames in use (baseline {})",
            ours.len(),
            after.regions.len(),
            baseline.regions.len(),
            c.anonymous_frames,
            c.table_frames,
            baseline.counters.table_frames,
            after.frames_used,
            baseline.frames_used
        ));
    }
    writeln!(
        out,
        "mmapTest: {} mappings unmapped; frames back to the baseline ({} in use)",
        ours.len(),
        after.frames_used
    )
    .ok();
    Ok(())
}
