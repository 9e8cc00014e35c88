//! The initial stack, decoded back, and its refusals.

mod common;

use common::*;
use exec::auxv::*;
use exec::{errno, AuxValues, ExecError, LoadParams, LoadPlan, StackImage, StackRequest, ARG_MAX};

const TOP: u64 = 0x7fff_ffff_f000;
const BOTTOM: u64 = TOP - 0x80_0000;
const RANDOM: [u8; 16] = *b"0123456789abcdef";

fn aux() -> AuxValues {
    AuxValues::for_plan(&LoadPlan::parse(&minimal_exec(), &LoadParams::LINUX_4LEVEL).unwrap())
}

fn request<'a>(argv: &'a [&'a [u8]], envp: &'a [&'a [u8]], execfn: &'a [u8]) -> StackRequest<'a> {
    StackRequest { top: TOP, bottom: BOTTOM, argv, envp, execfn, random: RANDOM, aux: aux() }
}

#[test]
fn the_stack_decodes_back() {
    let argv: &[&[u8]] = &[b"/bin/hello", b"", b"two words", b"\xff\xfe non-UTF-8"];
    let envp: &[&[u8]] = &[b"HOME=/", b"PATH=/bin"];
    let image = StackImage::build(&request(argv, envp, b"/bin/hello")).unwrap();
    let stack = decode(&image);
    assert_eq!(stack.argc, 4);
    assert_eq!(stack.argv, argv);
    assert_eq!(stack.envp, envp);
    assert_eq!(stack.execfn, b"/bin/hello");
    assert_eq!(stack.platform, b"x86_64");
    assert_eq!(stack.random, RANDOM);
    assert_eq!((image.argc(), image.envc()), (4, 2));

    // The auxiliary vector: create_elf_tables' order and the values given.
    let keys: Vec<u64> = stack.auxv.iter().map(|&(key, _)| key).collect();
    assert_eq!(
        keys,
        [
            AT_HWCAP,
            AT_PAGESZ,
            AT_CLKTCK,
            AT_PHDR,
            AT_PHENT,
            AT_PHNUM,
            AT_BASE,
            AT_FLAGS,
            AT_ENTRY,
            AT_UID,
            AT_EUID,
            AT_GID,
            AT_EGID,
            AT_SECURE,
            AT_RANDOM,
            AT_HWCAP2,
            AT_EXECFN,
            AT_PLATFORM,
            AT_NULL
        ]
    );
    let value = |key| stack.auxv.iter().find(|(k, _)| *k == key).unwrap().1;
    assert_eq!(value(AT_PHDR), 0x40_0040);
    assert_eq!(value(AT_PHENT), 56);
    assert_eq!(value(AT_PHNUM), 4);
    assert_eq!(value(AT_ENTRY), 0x40_1000);
    assert_eq!(value(AT_PAGESZ), 4096);
    assert_eq!(value(AT_CLKTCK), 100);
    assert_eq!((value(AT_BASE), value(AT_SECURE), value(AT_UID)), (0, 0, 0));
    assert_eq!(value(AT_RANDOM), image.random());
    assert_eq!(value(AT_EXECFN), image.execfn());
    assert_eq!(value(AT_PLATFORM), image.platform());
    assert_eq!(image.auxv(), stack.auxv);
}

#[test]
fn the_layout_is_linuxs() {
    let argv: &[&[u8]] = &[b"prog", b"arg"];
    let envp: &[&[u8]] = &[b"A=1"];
    let image = StackImage::build(&request(argv, envp, b"/prog")).unwrap();
    let bytes = image.bytes();
    let at = |va: u64| (va - image.rsp()) as usize;
    // 8 zero bytes at the top, the file name under them.
    assert_eq!(&bytes[bytes.len() - 8..], [0; 8]);
    assert_eq!(image.execfn(), TOP - 8 - 6);
    // The argument then environment strings, packed, right under it.
    assert_eq!(image.strings(), image.execfn() - (5 + 4 + 4));
    assert_eq!(&bytes[at(image.strings())..at(image.execfn())], b"prog\0arg\0A=1\0");
    // "x86_64\0" ends at the 16-byte boundary below the strings; the random
    // bytes are right under it.
    assert_eq!(image.platform() + 7, image.strings() & !15);
    assert_eq!(image.random(), image.platform() - 16);
    // The tables from rsp: argc, argv, NULL, envp, NULL, auxv.
    assert_eq!(image.rsp() % 16, 0);
    assert_eq!(image.argv(), image.rsp() + 8);
    assert_eq!(image.envp(), image.rsp() + 8 * 4);
    assert_eq!(image.auxv_address(), image.rsp() + 8 * 6);
    let tables_end = image.auxv_address() + 16 * image.auxv().len() as u64;
    // rsp is the highest 16-byte boundary the tables fit under the random bytes.
    assert!(tables_end <= image.random() && image.random() - tables_end < 16, "{tables_end:#x}");
    assert!(bytes[at(tables_end)..at(image.random())].iter().all(|&b| b == 0));
    assert_eq!(image.top(), TOP);
}

#[test]
fn alignment_for_every_count_and_length() {
    let strings: Vec<Vec<u8>> = (0..40).map(|n| vec![b'x'; n]).collect();
    for argc in 1..6 {
        for envc in 0..5 {
            for len in [0, 1, 7, 8, 15, 16, 17, 33] {
                let argv: Vec<&[u8]> = (0..argc).map(|i| &strings[(len + i) % 40][..]).collect();
                let envp: Vec<&[u8]> = (0..envc).map(|i| &strings[(len * 3 + i) % 40][..]).collect();
                let image = StackImage::build(&request(&argv, &envp, &strings[len])).unwrap();
                let stack = decode(&image);
                assert_eq!(
                    (stack.argv, stack.envp),
                    (
                        argv.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
                        envp.iter().map(|s| s.to_vec()).collect::<Vec<_>>()
                    )
                );
            }
        }
    }
}

#[test]
fn an_empty_argv_gets_an_empty_argument() {
    let image = StackImage::build(&request(&[], &[], b"/x")).unwrap();
    let stack = decode(&image);
    assert_eq!((stack.argc, stack.argv), (1, vec![Vec::new()]));
    assert!(stack.envp.is_empty());
}

#[test]
fn optional_auxv_entries_come_first() {
    let mut req = request(&[b"a"], &[], b"a");
    req.aux.sysinfo_ehdr = Some(0x7fff_f7ff_d000);
    req.aux.minsigstksz = Some(3632);
    req.aux.hwcap = 0x178b_fbff;
    req.aux.uid = 1000;
    let stack = decode(&StackImage::build(&req).unwrap());
    assert_eq!(
        &stack.auxv[..3],
        [(AT_SYSINFO_EHDR, 0x7fff_f7ff_d000), (AT_MINSIGSTKSZ, 3632), (AT_HWCAP, 0x178b_fbff)]
    );
    assert!(stack.auxv.contains(&(AT_UID, 1000)));
}

#[test]
fn arguments_too_long() {
    // Exactly ARG_MAX: one argument and the file name "x".
    let counted_besides = 8 + 2; // its pointer, the file name "x\0"
    let big = vec![b'a'; (ARG_MAX - counted_besides - 1) as usize];
    let image = StackImage::build(&request(&[&big], &[], b"x")).unwrap();
    assert_eq!(decode(&image).argv[0].len(), big.len());
    let bigger = vec![b'a'; big.len() + 1];
    let error = StackImage::build(&request(&[&bigger], &[], b"x")).unwrap_err();
    assert_eq!(error, ExecError::ArgumentsTooLong { bytes: ARG_MAX + 1, limit: ARG_MAX });
    assert_eq!(error.errno(), errno::E2BIG);
    // Many small environment strings count their pointers too.
    let envp: Vec<&[u8]> = vec![b"A=1"; ARG_MAX as usize / 12 + 1];
    assert_eq!(StackImage::build(&request(&[b"p"], &envp, b"p")).unwrap_err().errno(), errno::E2BIG);
}

#[test]
fn nul_bytes_are_refused() {
    for (argv, envp, execfn) in [
        (&[&b"a\0b"[..]][..], &[][..], &b"x"[..]),
        (&[&b"a"[..]][..], &[&b"A=\0"[..]][..], &b"x"[..]),
        (&[&b"a"[..]][..], &[][..], &b"x\0"[..]),
    ] {
        let error = StackImage::build(&request(argv, envp, execfn)).unwrap_err();
        assert_eq!(error, ExecError::NulInString);
        assert_eq!(error.errno(), errno::EINVAL);
    }
}

#[test]
fn stack_parameters() {
    let mut req = request(&[b"a"], &[], b"a");
    req.top = TOP + 8;
    assert_eq!(StackImage::build(&req).unwrap_err().errno(), errno::EINVAL);
    req.top = TOP;
    req.bottom = TOP + 16;
    assert_eq!(StackImage::build(&req).unwrap_err().errno(), errno::EINVAL);
    // Exactly enough room, then 16 bytes too few.
    req.bottom = 0;
    let needed = StackImage::build(&req).unwrap().bytes().len() as u64;
    req.bottom = TOP - needed;
    StackImage::build(&req).unwrap();
    req.bottom += 16;
    let error = StackImage::build(&req).unwrap_err();
    assert_eq!(error, ExecError::StackTooSmall { needed, room: needed - 16 });
    assert_eq!(error.errno(), errno::ENOMEM);
    // A top too low for the image.
    req.top = 64;
    req.bottom = 0;
    assert!(matches!(StackImage::build(&req), Err(ExecError::StackTooSmall { .. })));
}
