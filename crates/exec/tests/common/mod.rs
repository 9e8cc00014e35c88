//! Shared by the integration tests: a builder of small ELF files, byte
//! editing, an independent check of a plan's invariants and a decoder of
//! stack images.
#![allow(dead_code)]

use exec::{auxv, LoadParams, LoadPlan, StackImage};

pub const PAGE: u64 = 4096;
pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_NOTE: u32 = 4;
pub const PT_PHDR: u32 = 6;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// A program header to write.
#[derive(Clone, Copy, Debug)]
pub struct Ph {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// `exit(0)`: `mov eax, 60; xor edi, edi; syscall`.
pub const EXIT_CODE: &[u8] = &[0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];

/// An ELF64 x86-64 file of `len` bytes with these headers (the table at 64),
/// the exit code at file offset 0x1000 when it fits, and a recognisable
/// pattern elsewhere.
pub fn build(e_type: u16, entry: u64, phdrs: &[Ph], len: usize) -> Vec<u8> {
    let mut file: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    file[..64].fill(0);
    file[..4].copy_from_slice(b"\x7fELF");
    file[4] = 2; // ELFCLASS64
    file[5] = 1; // little-endian
    file[6] = 1; // EV_CURRENT
    put16(&mut file, 16, e_type);
    put16(&mut file, 18, 62); // EM_X86_64
    put32(&mut file, 20, 1);
    put64(&mut file, 24, entry);
    put64(&mut file, 32, 64); // e_phoff
    put64(&mut file, 40, 0); // e_shoff
    put16(&mut file, 52, 64); // e_ehsize
    put16(&mut file, 54, 56); // e_phentsize
    put16(&mut file, 56, phdrs.len() as u16);
    for (i, ph) in phdrs.iter().enumerate() {
        let at = 64 + 56 * i;
        put32(&mut file, at, ph.p_type);
        put32(&mut file, at + 4, ph.flags);
        put64(&mut file, at + 8, ph.offset);
        put64(&mut file, at + 16, ph.vaddr);
        put64(&mut file, at + 24, ph.vaddr);
        put64(&mut file, at + 32, ph.filesz);
        put64(&mut file, at + 40, ph.memsz);
        put64(&mut file, at + 48, ph.align);
    }
    if len >= 0x1000 + EXIT_CODE.len() {
        file[0x1000..0x1000 + EXIT_CODE.len()].copy_from_slice(EXIT_CODE);
    }
    file
}

/// The headers of the minimal executable, at `base` (0x400000 for ET_EXEC,
/// 0 for a PIE): a read-only page holding the headers, a code page, and a
/// data segment with a bss, then a non-executable stack.
pub fn minimal_phdrs(base: u64) -> Vec<Ph> {
    vec![
        Ph { p_type: PT_LOAD, flags: PF_R, offset: 0, vaddr: base, filesz: 0x200, memsz: 0x200, align: PAGE },
        Ph {
            p_type: PT_LOAD,
            flags: PF_R | PF_X,
            offset: 0x1000,
            vaddr: base + 0x1000,
            filesz: 0x100,
            memsz: 0x100,
            align: PAGE,
        },
        Ph {
            p_type: PT_LOAD,
            flags: PF_R | PF_W,
            offset: 0x2010,
            vaddr: base + 0x3010,
            filesz: 0x20,
            memsz: 0x3000,
            align: PAGE,
        },
        Ph { p_type: PT_GNU_STACK, flags: PF_R | PF_W, offset: 0, vaddr: 0, filesz: 0, memsz: 0, align: 16 },
    ]
}

/// The file length of the minimal executables.
pub const MINIMAL_LEN: usize = 0x2030;

/// A minimal valid ET_EXEC at 0x400000, entry 0x401000.
pub fn minimal_exec() -> Vec<u8> {
    build(2, 0x40_1000, &minimal_phdrs(0x40_0000), MINIMAL_LEN)
}

/// A minimal valid static PIE (ET_DYN, no PT_INTERP) at 0, entry 0x1000.
pub fn minimal_pie() -> Vec<u8> {
    build(3, 0x1000, &minimal_phdrs(0), MINIMAL_LEN)
}

pub fn put16(file: &mut [u8], at: usize, value: u16) {
    file[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

pub fn put32(file: &mut [u8], at: usize, value: u32) {
    file[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub fn put64(file: &mut [u8], at: usize, value: u64) {
    file[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The file offset of program header `index`'s field at `field` (p_type 0,
/// p_flags 4, p_offset 8, p_vaddr 16, p_filesz 32, p_memsz 40, p_align 48),
/// for a table at 64.
pub const fn ph(index: usize, field: usize) -> usize {
    64 + 56 * index + field
}

pub const P_TYPE: usize = 0;
pub const P_FLAGS: usize = 4;
pub const P_OFFSET: usize = 8;
pub const P_VADDR: usize = 16;
pub const P_FILESZ: usize = 32;
pub const P_MEMSZ: usize = 40;
pub const P_ALIGN: usize = 48;

/// Checks, independently of the crate, what every accepted plan must be:
/// segments sorted, page aligned, non-empty, non-overlapping, inside user
/// space, W^X, their file bytes inside the file; the entry in an executable
/// segment; `brk` the end of the highest segment; the program headers, if
/// loaded, inside a segment.
pub fn check_invariants(plan: &LoadPlan, params: &LoadParams, file_size: u64) {
    let segments = plan.segments();
    assert!(!segments.is_empty(), "a plan without segments");
    for s in segments {
        assert_eq!(s.va % PAGE, 0, "{s}: start not page aligned");
        assert!(s.len > 0 && s.len % PAGE == 0, "{s}: length not a whole number of pages");
        assert!(s.va >= params.user_bottom, "{s}: below user space");
        assert!(s.va.checked_add(s.len).is_some_and(|end| end <= params.user_top), "{s}: above user space");
        assert!(!(s.prot.write && s.prot.exec), "{s}: writable and executable");
        assert_eq!(s.file_offset % PAGE, 0, "{s}: file offset not page aligned");
        assert!(s.file_len <= s.len, "{s}: more file than memory");
        if s.file_len > 0 {
            // file_len counts from the page start, so the file's bytes end at
            // file_offset + file_len.
            assert!(s.file_offset + s.file_len <= file_size, "{s}: past the end of the file");
        }
        assert!(s.zero_tail().start <= s.zero_tail().end && s.zero_tail().end <= s.anonymous().start);
        assert_eq!(s.anonymous().end, s.end());
        assert_eq!(s.file_pages() % PAGE, 0);
    }
    for pair in segments.windows(2) {
        assert!(pair[0].end() <= pair[1].va, "{} and {} overlap or are out of order", pair[0], pair[1]);
    }
    let entry = plan.entry();
    assert!(
        segments.iter().any(|s| s.prot.exec && s.va <= entry && entry < s.end()),
        "entry {entry:#x} in no executable segment"
    );
    assert_eq!(plan.brk(), segments.iter().map(|s| s.end()).max().unwrap());
    assert_eq!(plan.brk() % PAGE, 0);
    if let Some(phdr) = plan.phdr() {
        assert!(segments.iter().any(|s| s.va <= phdr && phdr < s.end()), "AT_PHDR {phdr:#x} is not loaded");
    }
    assert_eq!(plan.phent(), 56);
}

/// A stack image read back as a program would read it.
#[derive(Debug)]
pub struct DecodedStack {
    pub argc: u64,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub auxv: Vec<(u64, u64)>,
    pub random: [u8; 16],
    pub platform: Vec<u8>,
    pub execfn: Vec<u8>,
}

/// Reads `image` from its `rsp` up: argc, the argument and environment
/// pointers and their strings, the auxiliary vector and what it points at.
/// Panics on anything that is not where a program would look.
pub fn decode(image: &StackImage) -> DecodedStack {
    let rsp = image.rsp();
    let bytes = image.bytes();
    assert_eq!(rsp % 16, 0, "rsp {rsp:#x} not 16-byte aligned");
    assert_eq!(rsp + bytes.len() as u64, image.top(), "the bytes do not reach the top");
    assert_eq!(image.top() % 16, 0);
    let word = |va: u64| -> u64 {
        let at = (va - rsp) as usize;
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    };
    let cstring = |va: u64| -> Vec<u8> {
        assert!(va >= rsp && va < image.top(), "string pointer {va:#x} outside the image");
        let at = (va - rsp) as usize;
        let len = bytes[at..].iter().position(|&b| b == 0).expect("a NUL-terminated string");
        bytes[at..at + len].to_vec()
    };
    let argc = word(rsp);
    let mut at = rsp + 8;
    let mut argv = Vec::new();
    for _ in 0..argc {
        argv.push(cstring(word(at)));
        at += 8;
    }
    assert_eq!(word(at), 0, "argv not NULL-terminated");
    at += 8;
    let mut envp = Vec::new();
    while word(at) != 0 {
        envp.push(cstring(word(at)));
        at += 8;
    }
    at += 8;
    let mut auxv = Vec::new();
    loop {
        let (key, value) = (word(at), word(at + 8));
        auxv.push((key, value));
        at += 16;
        if key == auxv::AT_NULL {
            break;
        }
    }
    let find = |key| auxv.iter().find(|(k, _)| *k == key).map(|&(_, v)| v).expect("an auxv entry");
    let random_va = find(auxv::AT_RANDOM);
    let random_at = (random_va - rsp) as usize;
    assert!(random_va >= at, "the random bytes overlap the tables");
    let random = bytes[random_at..random_at + 16].try_into().unwrap();
    let platform = cstring(find(auxv::AT_PLATFORM));
    let execfn = cstring(find(auxv::AT_EXECFN));
    DecodedStack { argc, argv, envp, auxv, random, platform, execfn }
}
