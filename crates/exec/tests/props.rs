//! Property tests: no input makes the loader panic, every plan it accepts
//! obeys the invariants, and every stack decodes back to what was asked.

mod common;

use common::*;
use exec::{ExecError, LoadParams, LoadPlan, StackImage, StackRequest, ARG_MAX};
use proptest::prelude::*;

const PARAMS: LoadParams = LoadParams::LINUX_4LEVEL;

/// Plans `file` with the 4- and 5-level parameters and from its headers
/// alone, checking every accepted plan; returns the 4-level result.
fn plan_and_check(file: &[u8]) -> Result<LoadPlan, ExecError> {
    let result = LoadPlan::parse(file, &PARAMS);
    if let Ok(plan) = &result {
        check_invariants(plan, &PARAMS, file.len() as u64);
        // A larger file plans the same.
        assert_eq!(LoadPlan::from_headers(file, file.len() as u64 + 1, &PARAMS).as_ref(), Ok(plan));
    }
    let big = LoadParams::LINUX_5LEVEL;
    match LoadPlan::parse(file, &big) {
        Ok(plan) => check_invariants(&plan, &big, file.len() as u64),
        // What 4-level accepts, 5-level accepts.
        Err(error) => assert!(result.is_err(), "5-level refused what 4-level took: {error}"),
    }
    let low = LoadParams { user_bottom: 0, dyn_base: 0x1000, ..PARAMS };
    if let Ok(plan) = LoadPlan::from_headers(file, 1 << 40, &low) {
        check_invariants(&plan, &low, 1 << 40);
    }
    if let Err(error) = &result {
        assert!(!error.to_string().is_empty());
        assert!([7, 8, 12, 22].contains(&error.errno()));
    }
    result
}

/// Program header values that hit the interesting cases often.
fn field() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(0x1000),
        Just(0x40_0000),
        Just(0x40_1000),
        Just(0x7fff_ffff_f000),
        Just(0x8000_0000_0000),
        Just(u64::MAX),
        0u64..0x4000,
        0x40_0000u64..0x40_8000,
        any::<u64>(),
    ]
}

fn phdr() -> impl Strategy<Value = Ph> {
    (
        prop_oneof![
            Just(PT_LOAD),
            Just(PT_LOAD),
            Just(PT_LOAD),
            Just(PT_PHDR),
            Just(PT_GNU_STACK),
            Just(PT_NOTE),
            Just(PT_INTERP)
        ],
        0u32..8,
        field(),
        field(),
        field(),
        field(),
        prop_oneof![Just(0u64), Just(0x1000), Just(3), any::<u64>()],
    )
        .prop_map(|(p_type, flags, offset, vaddr, filesz, memsz, align)| Ph {
            p_type,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
            align,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = plan_and_check(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_ident_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut file = minimal_exec()[..16].to_vec();
        file.extend(tail);
        let _ = plan_and_check(&file);
    }

    #[test]
    fn edited_executables_plan_or_are_refused(
        pie in any::<bool>(),
        edits in proptest::collection::vec((0usize..300, any::<u8>()), 1..8),
    ) {
        let mut file = if pie { minimal_pie() } else { minimal_exec() };
        for (at, byte) in edits {
            file[at] = byte;
        }
        let _ = plan_and_check(&file);
    }

    #[test]
    fn random_program_headers(
        e_type in prop_oneof![Just(2u16), Just(3)],
        entry in field(),
        phdrs in proptest::collection::vec(phdr(), 1..6),
        len in 0usize..0x3000,
    ) {
        let file = build(e_type, entry, &phdrs, len.max(64 + 56 * phdrs.len()));
        let _ = plan_and_check(&file);
    }

    #[test]
    fn valid_layouts_are_accepted(
        pie in any::<bool>(),
        gaps in proptest::collection::vec((0u64..4, 1u64..0x3000, 0u64..0x3000, 0u32..3), 1..6),
    ) {
        // Segments one after another with page gaps between them, their file
        // bytes one after another in the file: always loadable.
        let base = if pie { 0 } else { 0x40_0000 };
        let mut phdrs = Vec::new();
        let mut va = base;
        let mut offset = 0x1000u64;
        for (gap, memsz, filesz, kind) in gaps {
            va += gap * PAGE;
            let filesz = filesz.min(memsz);
            let flags = [PF_R, PF_R | PF_X, PF_R | PF_W][kind as usize];
            let page_offset = (memsz * 7) % PAGE;
            let ph = Ph { p_type: PT_LOAD, flags, offset: offset + page_offset, vaddr: va + page_offset, filesz, memsz, align: PAGE };
            phdrs.push(ph);
            va = (va + page_offset + memsz).div_ceil(PAGE) * PAGE;
            offset = (offset + page_offset + filesz).div_ceil(PAGE) * PAGE;
        }
        // One executable segment holds the entry.
        phdrs[0].flags = PF_R | PF_X;
        let entry = phdrs[0].vaddr;
        let file = build(if pie { 3 } else { 2 }, entry, &phdrs, offset as usize);
        let plan = plan_and_check(&file).unwrap();
        prop_assert_eq!(plan.segments().len(), phdrs.len());
        let bias = plan.load_bias();
        for (segment, ph) in plan.segments().iter().zip(&phdrs) {
            prop_assert_eq!(segment.va, (ph.vaddr + bias) & !(PAGE - 1));
            prop_assert_eq!(segment.end(), (ph.vaddr + bias + ph.memsz).div_ceil(PAGE) * PAGE);
            prop_assert_eq!(segment.file_len, if ph.filesz == 0 { 0 } else { ph.vaddr % PAGE + ph.filesz });
        }
    }

    #[test]
    fn stacks_decode_back(
        argv in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..40), 0..12),
        envp in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..40), 0..12),
        execfn in proptest::collection::vec(1u8..=255, 0..64),
        top_pages in 1u64..1000,
        random in any::<[u8; 16]>(),
    ) {
        let argv: Vec<&[u8]> = argv.iter().map(|s| &s[..]).collect();
        let envp: Vec<&[u8]> = envp.iter().map(|s| &s[..]).collect();
        let top = top_pages * 16 + 0x10_0000;
        let aux = exec::AuxValues::for_plan(&LoadPlan::parse(&minimal_exec(), &PARAMS).unwrap());
        let image = StackImage::build(&StackRequest { top, bottom: 0, argv: &argv, envp: &envp, execfn: &execfn, random, aux }).unwrap();
        let stack = decode(&image);
        let expected_argv: Vec<Vec<u8>> = if argv.is_empty() { vec![Vec::new()] } else { argv.iter().map(|s| s.to_vec()).collect() };
        prop_assert_eq!(stack.argv, expected_argv);
        prop_assert_eq!(stack.envp, envp.iter().map(|s| s.to_vec()).collect::<Vec<_>>());
        prop_assert_eq!(stack.execfn, execfn);
        prop_assert_eq!(stack.random, random);
        prop_assert!(image.bytes().len() as u64 <= ARG_MAX + 1024);
    }
}
