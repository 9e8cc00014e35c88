//! Plans of hand-built executables, and every refusal, made by editing the
//! bytes of a valid executable.

mod common;

use common::*;
use exec::{errno, ExecError, ExecutableKind, LoadParams, LoadPlan, Prot, Segment, ET_DYN_BASE, USER_TOP_5LEVEL};

const PARAMS: LoadParams = LoadParams::LINUX_4LEVEL;

fn plan(file: &[u8]) -> Result<LoadPlan, ExecError> {
    LoadPlan::parse(file, &PARAMS)
}

/// `edit` applied to the minimal ET_EXEC, then planned.
fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Result<LoadPlan, ExecError> {
    let mut file = minimal_exec();
    edit(&mut file);
    plan(&file)
}

/// Asserts the edit is refused with `expected`, with errno `errno`, and a
/// message.
#[track_caller]
fn refused(edit: impl FnOnce(&mut Vec<u8>), expected: ExecError, errno: i32) {
    let error = edited(edit).expect_err("refused");
    assert_eq!(error, expected);
    assert_eq!(error.errno(), errno, "{error}");
    assert!(!error.to_string().is_empty());
}

const R: Prot = Prot { read: true, write: false, exec: false };
const RX: Prot = Prot { read: true, write: false, exec: true };
const RW: Prot = Prot { read: true, write: true, exec: false };

#[test]
fn the_minimal_executable() {
    let file = minimal_exec();
    let plan = plan(&file).unwrap();
    assert_eq!(plan.kind(), ExecutableKind::Static);
    assert_eq!(
        plan.segments(),
        [
            Segment { va: 0x40_0000, len: 0x1000, prot: R, file_offset: 0, file_len: 0x200 },
            Segment { va: 0x40_1000, len: 0x1000, prot: RX, file_offset: 0x1000, file_len: 0x100 },
            // 0x403010 + 0x3000 ends in the page at 0x406000.
            Segment { va: 0x40_3000, len: 0x4000, prot: RW, file_offset: 0x2000, file_len: 0x30 },
        ]
    );
    let data = plan.segments()[2];
    assert_eq!(data.file_pages(), 0x1000);
    assert_eq!(data.zero_tail(), 0x40_3030..0x40_4000);
    assert_eq!(data.anonymous(), 0x40_4000..0x40_7000);
    let code = plan.segments()[1];
    assert_eq!((code.zero_tail(), code.anonymous()), (0x40_1100..0x40_2000, 0x40_2000..0x40_2000));
    assert_eq!(plan.entry(), 0x40_1000);
    assert_eq!(plan.phdr(), Some(0x40_0040));
    assert_eq!((plan.phent(), plan.phnum()), (56, 4));
    assert_eq!(plan.brk(), 0x40_7000);
    assert_eq!(plan.load_bias(), 0);
    check_invariants(&plan, &PARAMS, file.len() as u64);
    assert_eq!(code.to_string(), "0x401000..0x402000 r-x file 0x1000+0x100");
}

#[test]
fn the_minimal_static_pie_goes_at_the_base() {
    let file = minimal_pie();
    let plan = plan(&file).unwrap();
    assert_eq!(plan.kind(), ExecutableKind::StaticPie);
    assert_eq!(plan.load_bias(), ET_DYN_BASE);
    let exec_plan = LoadPlan::parse(&minimal_exec(), &PARAMS).unwrap();
    let moved: Vec<Segment> =
        exec_plan.segments().iter().map(|s| Segment { va: s.va - 0x40_0000 + ET_DYN_BASE, ..*s }).collect();
    assert_eq!(plan.segments(), moved);
    assert_eq!(plan.entry(), ET_DYN_BASE + 0x1000);
    assert_eq!(plan.phdr(), Some(ET_DYN_BASE + 0x40));
    assert_eq!(plan.brk(), ET_DYN_BASE + 0x7000);
    check_invariants(&plan, &PARAMS, file.len() as u64);

    // Another base, and a PIE whose lowest segment is not at 0.
    let params = LoadParams { dyn_base: 0x10_0000_0000, ..PARAMS };
    let plan = LoadPlan::parse(&file, &params).unwrap();
    assert_eq!((plan.segments()[0].va, plan.entry()), (0x10_0000_0000, 0x10_0000_1000));
    let high = build(3, 0x20_1000, &minimal_phdrs(0x20_0000), MINIMAL_LEN);
    let plan = LoadPlan::parse(&high, &params).unwrap();
    assert_eq!((plan.segments()[0].va, plan.entry()), (0x10_0000_0000, 0x10_0000_1000));
    assert_eq!(plan.load_bias(), 0x10_0000_0000 - 0x20_0000);
}

#[test]
fn from_headers_needs_only_the_headers() {
    let file = minimal_exec();
    let whole = plan(&file).unwrap();
    let first = LoadPlan::from_headers(&file[..300], file.len() as u64, &PARAMS).unwrap();
    assert_eq!(first, whole);
    assert_eq!(
        LoadPlan::from_headers(&file[..200], file.len() as u64, &PARAMS),
        Err(ExecError::TruncatedProgramHeaders { phoff: 64, phnum: 4 })
    );
    let error = LoadPlan::from_headers(&file, 100, &PARAMS).unwrap_err();
    assert!(matches!(error, ExecError::BadParameter { .. }));
    assert_eq!(error.errno(), errno::EINVAL);
}

#[test]
fn zero_length_segments_are_ignored() {
    let mut phdrs = minimal_phdrs(0x40_0000);
    // Anywhere, even outside user space and misaligned: it maps nothing.
    phdrs.push(Ph {
        p_type: PT_LOAD,
        flags: PF_R | PF_W | PF_X,
        offset: 77,
        vaddr: 1 << 60,
        filesz: 0,
        memsz: 0,
        align: 3,
    });
    let file = build(2, 0x40_1000, &phdrs, MINIMAL_LEN);
    let plan = plan(&file).unwrap();
    assert_eq!(plan.segments(), LoadPlan::parse(&minimal_exec(), &PARAMS).unwrap().segments());
    assert_eq!(plan.phnum(), 5);
}

#[test]
fn a_segment_without_file_bytes_is_anonymous() {
    // readelf shows such a bss-only segment in `gcc -nostdlib` programs.
    refused(
        |f| put64(f, ph(2, P_OFFSET), 0x7777_7777_0000_0010),
        ExecError::SegmentPastFileEnd {
            index: 2,
            offset: 0x7777_7777_0000_0010,
            filesz: 0x20,
            file_size: MINIMAL_LEN as u64,
        },
        errno::ENOEXEC,
    );
    let plan = edited(|f| {
        put64(f, ph(2, P_FILESZ), 0);
        put64(f, ph(2, P_OFFSET), u64::MAX);
    })
    .unwrap();
    let bss = plan.segments()[2];
    assert_eq!((bss.file_offset, bss.file_len, bss.file_pages()), (0, 0, 0));
    assert_eq!(bss.anonymous(), 0x40_3000..0x40_7000);
}

#[test]
fn pt_phdr_gives_at_phdr() {
    let mut phdrs = minimal_phdrs(0x40_0000);
    phdrs.insert(
        0,
        Ph { p_type: PT_PHDR, flags: PF_R, offset: 64, vaddr: 0x40_0040, filesz: 280, memsz: 280, align: 8 },
    );
    // The entries moved down one: the data segment's bss is index 3 now.
    let file = build(2, 0x40_1000, &phdrs, MINIMAL_LEN);
    assert_eq!(plan(&file).unwrap().phdr(), Some(0x40_0040));
    phdrs[0].vaddr = 0x90_0000;
    let file = build(2, 0x40_1000, &phdrs, MINIMAL_LEN);
    let error = plan(&file).unwrap_err();
    assert_eq!(error, ExecError::PhdrNotLoaded { vaddr: 0x90_0000 });
    assert_eq!(error.errno(), errno::ENOEXEC);
}

#[test]
fn at_phdr_is_absent_when_no_segment_loads_the_table() {
    // The first segment's file bytes start after the table.
    let plan = edited(|f| {
        put64(f, ph(0, P_OFFSET), 0x200);
        put64(f, ph(0, P_VADDR), 0x40_0200);
        put64(f, ph(0, P_FILESZ), 0x100);
        put64(f, ph(0, P_MEMSZ), 0x100);
    })
    .unwrap();
    assert_eq!(plan.phdr(), None);
}

#[test]
fn truncated_headers() {
    assert_eq!(plan(&[]), Err(ExecError::TruncatedHeader { len: 0 }));
    assert_eq!(plan(b"\x7fEL"), Err(ExecError::TruncatedHeader { len: 3 }));
    let file = minimal_exec();
    for len in [4, 20, 63] {
        let error = plan(&file[..len]).unwrap_err();
        assert_eq!(error, ExecError::TruncatedHeader { len: len as u64 });
        assert_eq!(error.errno(), errno::ENOEXEC);
    }
    assert_eq!(plan(&file[..64]), Err(ExecError::TruncatedProgramHeaders { phoff: 64, phnum: 4 }));
    refused(|f| put64(f, 32, 0x2000), ExecError::TruncatedProgramHeaders { phoff: 0x2000, phnum: 4 }, errno::ENOEXEC);
    refused(
        |f| put64(f, 32, u64::MAX - 8),
        ExecError::TruncatedProgramHeaders { phoff: u64::MAX - 8, phnum: 4 },
        errno::ENOEXEC,
    );
}

#[test]
fn wrong_identification() {
    refused(|f| f[0] = 0x7e, ExecError::NotElf, errno::ENOEXEC);
    assert_eq!(plan(b"#!/bin/sh\n"), Err(ExecError::NotElf));
    refused(|f| f[4] = 1, ExecError::NotElf64 { class: 1 }, errno::ENOEXEC);
    refused(|f| f[4] = 0, ExecError::NotElf64 { class: 0 }, errno::ENOEXEC);
    refused(|f| f[5] = 2, ExecError::NotLittleEndian { data: 2 }, errno::ENOEXEC);
    refused(|f| f[6] = 0, ExecError::BadVersion { version: 0 }, errno::ENOEXEC);
    refused(|f| put16(f, 18, 3), ExecError::WrongMachine { machine: 3 }, errno::ENOEXEC);
    refused(|f| put16(f, 18, 183), ExecError::WrongMachine { machine: 183 }, errno::ENOEXEC);
    for e_type in [0, 1, 4, 0xfe00] {
        refused(|f| put16(f, 16, e_type), ExecError::WrongType { e_type }, errno::ENOEXEC);
    }
}

#[test]
fn program_header_table_limits() {
    refused(|f| put16(f, 54, 64), ExecError::BadProgramHeaderSize { phentsize: 64 }, errno::ENOEXEC);
    refused(|f| put16(f, 56, 65), ExecError::TooManyProgramHeaders { phnum: 65 }, errno::ENOEXEC);
    refused(|f| put16(f, 56, 0xffff), ExecError::TooManyProgramHeaders { phnum: 0xffff }, errno::ENOEXEC);
    refused(|f| put16(f, 56, 0), ExecError::NoLoadSegment, errno::ENOEXEC);
    refused(|f| put64(f, 32, 0), ExecError::NoLoadSegment, errno::ENOEXEC);
    // 64 headers are allowed: the minimal four and 60 PT_NOTEs.
    let mut phdrs = minimal_phdrs(0x40_0000);
    phdrs.resize(64, Ph { p_type: PT_NOTE, flags: PF_R, offset: 0, vaddr: 0, filesz: 0, memsz: 0, align: 4 });
    let file = build(2, 0x40_1000, &phdrs, 0x2030);
    assert_eq!(plan(&file).unwrap().phnum(), 64);
}

#[test]
fn dynamic_executables_are_refused() {
    refused(|f| put32(f, ph(3, P_TYPE), PT_INTERP), ExecError::Dynamic, errno::ENOEXEC);
    let message = ExecError::Dynamic.to_string();
    assert!(message.contains("dynamic") && message.contains("not supported"), "{message}");
    // Also for a PIE: a PIE with an interpreter is an ordinary dynamic program.
    let mut file = minimal_pie();
    put32(&mut file, ph(3, P_TYPE), PT_INTERP);
    assert_eq!(plan(&file), Err(ExecError::Dynamic));
}

#[test]
fn no_loadable_segment() {
    refused(|f| (0..3).for_each(|i| put32(f, ph(i, P_TYPE), PT_NOTE)), ExecError::NoLoadSegment, errno::ENOEXEC);
    refused(
        |f| {
            (0..3).for_each(|i| {
                put64(f, ph(i, P_FILESZ), 0);
                put64(f, ph(i, P_MEMSZ), 0);
            })
        },
        ExecError::NoLoadSegment,
        errno::ENOEXEC,
    );
}

#[test]
fn segment_sizes_and_offsets() {
    refused(
        |f| put64(f, ph(1, P_FILESZ), 0x101),
        ExecError::FileSizeOverMemSize { index: 1, filesz: 0x101, memsz: 0x100 },
        errno::ENOEXEC,
    );
    refused(
        |f| put64(f, ph(2, P_FILESZ), 0x21),
        ExecError::SegmentPastFileEnd { index: 2, offset: 0x2010, filesz: 0x21, file_size: 0x2030 },
        errno::ENOEXEC,
    );
    refused(
        |f| put64(f, ph(1, P_OFFSET), u64::MAX - 0x10),
        ExecError::SegmentPastFileEnd { index: 1, offset: u64::MAX - 0x10, filesz: 0x100, file_size: 0x2030 },
        errno::ENOEXEC,
    );
}

#[test]
fn alignment() {
    refused(|f| put64(f, ph(1, P_ALIGN), 0x1001), ExecError::BadAlignment { index: 1, align: 0x1001 }, errno::ENOEXEC);
    refused(|f| put64(f, ph(1, P_ALIGN), 3), ExecError::BadAlignment { index: 1, align: 3 }, errno::ENOEXEC);
    // 0, 1 and large powers of two are fine.
    for align in [0, 1, 8, 0x20_0000] {
        edited(|f| put64(f, ph(1, P_ALIGN), align)).unwrap();
    }
    refused(
        |f| put64(f, ph(1, P_OFFSET), 0x1008),
        ExecError::Misaligned { index: 1, vaddr: 0x40_1000, offset: 0x1008 },
        errno::ENOEXEC,
    );
}

#[test]
fn overlapping_segments() {
    // The data segment moved into the code segment's page.
    refused(
        |f| put64(f, ph(2, P_VADDR), 0x40_1010),
        ExecError::SegmentsOverlap { first: 1, second: 2 },
        errno::ENOEXEC,
    );
    // Sharing only a page after rounding: the code ends at 0x401100, data
    // starts at 0x401f10 in the same page.
    refused(
        |f| {
            put64(f, ph(2, P_VADDR), 0x40_1f10);
            put64(f, ph(2, P_OFFSET), 0x1f10);
            put64(f, ph(2, P_FILESZ), 0x10);
        },
        ExecError::SegmentsOverlap { first: 1, second: 2 },
        errno::ENOEXEC,
    );
    // Out of order but apart: accepted, and sorted.
    let plan = edited(|f| put64(f, ph(0, P_VADDR), 0x50_0000)).unwrap();
    let starts: Vec<u64> = plan.segments().iter().map(|s| s.va).collect();
    assert_eq!(starts, [0x40_1000, 0x40_3000, 0x50_0000]);
}

#[test]
fn addresses_outside_user_space() {
    // Past the top of the lower half with 4-level paging.
    refused(
        |f| put64(f, ph(2, P_VADDR), 0x7fff_ffff_f010),
        ExecError::OutsideUserSpace { index: 2, start: 0x7fff_ffff_f000, end: 0x8000_0000_3000 },
        errno::ENOMEM,
    );
    refused(
        |f| put64(f, ph(2, P_VADDR), 0xffff_8000_0000_0010),
        ExecError::OutsideUserSpace { index: 2, start: 0xffff_8000_0000_0000, end: 0xffff_8000_0000_4000 },
        errno::ENOMEM,
    );
    // 2^48 is user space only with 5-level paging.
    let high = |f: &mut Vec<u8>| put64(f, ph(2, P_VADDR), 0x1_0000_0000_0010);
    refused(
        high,
        ExecError::OutsideUserSpace { index: 2, start: 0x1_0000_0000_0000, end: 0x1_0000_0000_4000 },
        errno::ENOMEM,
    );
    let mut file = minimal_exec();
    high(&mut file);
    let params = LoadParams::LINUX_5LEVEL;
    let high_plan = LoadPlan::parse(&file, &params).unwrap();
    assert_eq!(high_plan.brk(), 0x1_0000_0000_4000);
    check_invariants(&high_plan, &params, file.len() as u64);
    assert_eq!(params.user_top, USER_TOP_5LEVEL);
    // Below mmap_min_addr: refused by default, allowed with user_bottom 0.
    let low = build(2, 0x1000, &minimal_phdrs(0), MINIMAL_LEN);
    assert_eq!(plan(&low), Err(ExecError::OutsideUserSpace { index: 0, start: 0, end: 0x1000 }));
    LoadPlan::parse(&low, &LoadParams { user_bottom: 0, ..PARAMS }).unwrap();
}

#[test]
fn address_overflow() {
    refused(
        |f| put64(f, ph(2, P_VADDR), 0xffff_ffff_ffff_f010),
        ExecError::AddressOverflow { index: 2 },
        errno::ENOEXEC,
    );
    refused(|f| put64(f, ph(2, P_MEMSZ), u64::MAX - 0x10), ExecError::AddressOverflow { index: 2 }, errno::ENOEXEC);
    // A PIE whose relocated end overflows.
    let mut file = minimal_pie();
    put64(&mut file, ph(2, P_MEMSZ), u64::MAX - ET_DYN_BASE);
    assert_eq!(plan(&file), Err(ExecError::AddressOverflow { index: 2 }));
}

#[test]
fn writable_and_executable_is_refused() {
    refused(
        |f| put32(f, ph(1, P_FLAGS), PF_R | PF_W | PF_X),
        ExecError::WritableAndExecutable { index: 1 },
        errno::ENOEXEC,
    );
    refused(|f| put32(f, ph(2, P_FLAGS), PF_W | PF_X), ExecError::WritableAndExecutable { index: 2 }, errno::ENOEXEC);
    assert!(ExecError::WritableAndExecutable { index: 1 }.to_string().contains("W^X"));
    refused(|f| put32(f, ph(3, P_FLAGS), PF_R | PF_W | PF_X), ExecError::ExecutableStack, errno::ENOEXEC);
    assert!(ExecError::ExecutableStack.to_string().contains("W^X"));
    // Execute-only is fine.
    let plan = edited(|f| put32(f, ph(1, P_FLAGS), PF_X)).unwrap();
    assert_eq!(plan.segments()[1].prot, Prot { read: false, write: false, exec: true });
}

#[test]
fn the_entry_must_be_executable() {
    for entry in [0x40_0000, 0x40_1100, 0x40_3010, 0, u64::MAX] {
        refused(|f| put64(f, 24, entry), ExecError::EntryNotExecutable { entry }, errno::ENOEXEC);
    }
    // The last byte of the code is fine.
    assert_eq!(edited(|f| put64(f, 24, 0x40_10ff)).unwrap().entry(), 0x40_10ff);
    // A PIE's entry below its lowest segment.
    let mut file = build(3, 0x1000, &minimal_phdrs(0x10_0000), MINIMAL_LEN);
    assert!(matches!(plan(&file), Err(ExecError::EntryNotExecutable { .. })));
    put64(&mut file, 24, 0x10_1000);
    assert_eq!(plan(&file).unwrap().entry(), ET_DYN_BASE + 0x1000);
}

#[test]
fn bad_parameters() {
    let file = minimal_exec();
    for params in [
        LoadParams { user_top: 0x8000_0000_0001, ..PARAMS },
        LoadParams { user_top: 0, ..PARAMS },
        LoadParams { user_top: 1 << 63 | 1 << 62, ..PARAMS },
        LoadParams { user_bottom: 0x1001, ..PARAMS },
        LoadParams { user_bottom: PARAMS.user_top, ..PARAMS },
        LoadParams { dyn_base: 0x5555_5555_4001, ..PARAMS },
        LoadParams { dyn_base: PARAMS.user_top, ..PARAMS },
        LoadParams { dyn_base: 0, ..PARAMS },
    ] {
        let error = LoadPlan::parse(&file, &params).unwrap_err();
        assert!(matches!(error, ExecError::BadParameter { .. }), "{params:?}: {error}");
        assert_eq!(error.errno(), errno::EINVAL);
    }
    assert_eq!(LoadParams::default(), PARAMS);
    PARAMS.validate().unwrap();
    LoadParams::LINUX_5LEVEL.validate().unwrap();
}

#[test]
fn a_pie_too_high_for_user_space() {
    let file = minimal_pie();
    let params = LoadParams { dyn_base: PARAMS.user_top - 0x2000, ..PARAMS };
    assert_eq!(
        LoadPlan::parse(&file, &params),
        Err(ExecError::OutsideUserSpace {
            index: 2,
            start: PARAMS.user_top - 0x2000 + 0x3000,
            end: PARAMS.user_top + 0x5000
        })
    );
}

#[test]
fn every_error_has_a_message_and_an_errno() {
    let errors = [
        ExecError::TruncatedHeader { len: 1 },
        ExecError::NotElf,
        ExecError::NotElf64 { class: 1 },
        ExecError::NotLittleEndian { data: 2 },
        ExecError::BadVersion { version: 0 },
        ExecError::WrongMachine { machine: 3 },
        ExecError::WrongType { e_type: 1 },
        ExecError::BadProgramHeaderSize { phentsize: 1 },
        ExecError::TooManyProgramHeaders { phnum: 100 },
        ExecError::TruncatedProgramHeaders { phoff: 1, phnum: 1 },
        ExecError::Dynamic,
        ExecError::ExecutableStack,
        ExecError::NoLoadSegment,
        ExecError::FileSizeOverMemSize { index: 0, filesz: 2, memsz: 1 },
        ExecError::SegmentPastFileEnd { index: 0, offset: 1, filesz: 1, file_size: 1 },
        ExecError::BadAlignment { index: 0, align: 3 },
        ExecError::Misaligned { index: 0, vaddr: 1, offset: 2 },
        ExecError::AddressOverflow { index: 0 },
        ExecError::WritableAndExecutable { index: 0 },
        ExecError::OutsideUserSpace { index: 0, start: 0, end: 1 },
        ExecError::SegmentsOverlap { first: 0, second: 1 },
        ExecError::EntryNotExecutable { entry: 0 },
        ExecError::PhdrNotLoaded { vaddr: 0 },
        ExecError::BadParameter { what: "x" },
        ExecError::ArgumentsTooLong { bytes: 2, limit: 1 },
        ExecError::NulInString,
        ExecError::StackTooSmall { needed: 2, room: 1 },
    ];
    for error in errors {
        assert!(error.to_string().len() > 10, "{error:?}");
        assert!([errno::E2BIG, errno::ENOEXEC, errno::ENOMEM, errno::EINVAL].contains(&error.errno()));
    }
    assert_eq!((errno::E2BIG, errno::ENOEXEC, errno::ENOMEM, errno::EINVAL), (7, 8, 12, 22));
}
