//! The executable loader (`exec`) fed arbitrary bytes as an ELF file.
//!
//! The bytes are planned three ways: as a whole file (4-level user space),
//! as the first bytes of a 1 GiB file (so that the headers of a real static
//! executable, cut short, still plan), and with 5-level paging and with no
//! NULL guard and a low PIE base. None of it may panic: every input gives a
//! plan or a typed error with one of the four errno numbers. Beyond that,
//! checked without the crate's own arithmetic:
//! - every accepted plan's segments are sorted, page aligned, non-empty,
//!   non-overlapping, inside user space, never writable and executable, their
//!   file bytes inside the file; the entry point is in an executable
//!   segment; `brk` is the end of the highest segment; `AT_PHDR`, when
//!   given, is inside a segment;
//! - what plans as a whole file plans the same as the start of a larger one,
//!   and what plans in 4-level user space plans the same in 5-level;
//! - for an accepted plan, an initial stack built from arguments cut from the
//!   input decodes back to those arguments, with `rsp` 16-byte aligned.

use exec::{auxv, AuxValues, ExecError, LoadParams, LoadPlan, StackImage, StackRequest};

const PAGE: u64 = 4096;
const BIG_FILE: u64 = 1 << 30;

/// The invariants of an accepted plan, checked by plain comparisons.
fn check(plan: &LoadPlan, params: &LoadParams, file_size: u64) {
    let segments = plan.segments();
    assert!(!segments.is_empty());
    for s in segments {
        assert!(s.va % PAGE == 0 && s.len % PAGE == 0 && s.len > 0, "{s}: not whole pages");
        assert!(s.va >= params.user_bottom, "{s}: below user space");
        assert!(u128::from(s.va) + u128::from(s.len) <= u128::from(params.user_top), "{s}: above user space");
        assert!(!(s.prot.write && s.prot.exec), "{s}: W^X broken");
        assert!(s.file_offset % PAGE == 0 && s.file_len <= s.len, "{s}: bad file part");
        assert!(u128::from(s.file_offset) + u128::from(s.file_len) <= u128::from(file_size), "{s}: past the file");
    }
    for pair in segments.windows(2) {
        assert!(pair[0].va + pair[0].len <= pair[1].va, "{} and {} overlap", pair[0], pair[1]);
    }
    let inside =
        |addr: u64, exec: bool| segments.iter().any(|s| (!exec || s.prot.exec) && s.va <= addr && addr - s.va < s.len);
    assert!(inside(plan.entry(), true), "entry {:#x} not executable", plan.entry());
    assert_eq!(plan.brk(), segments.iter().map(|s| s.va + s.len).max().unwrap_or(0));
    if let Some(phdr) = plan.phdr() {
        assert!(inside(phdr, false), "AT_PHDR {phdr:#x} not loaded");
    }
}

/// Plans with `params`, checks an accepted plan and the error's errno.
fn plan(headers: &[u8], file_size: u64, params: &LoadParams) -> Result<LoadPlan, ExecError> {
    let result = LoadPlan::from_headers(headers, file_size, params);
    match &result {
        Ok(plan) => check(plan, params, file_size),
        Err(error) => {
            assert!([7, 8, 12, 22].contains(&error.errno()), "{error:?}: errno {}", error.errno());
            assert!(!error.to_string().is_empty());
        }
    }
    result
}

/// A stack for `plan` with arguments cut from `data`, decoded back.
fn stack(plan: &LoadPlan, data: &[u8]) {
    let tail = &data[data.len().saturating_sub(64)..];
    let pieces: Vec<&[u8]> = tail.split(|&b| b == 0).collect();
    let (argv, envp) = pieces.split_at(pieces.len() / 2);
    let top = 0x7fff_ffff_f000 - 16 * u64::from(data.first().copied().unwrap_or(0));
    let request = StackRequest {
        top,
        bottom: top - 0x10_0000,
        argv,
        envp,
        execfn: b"/fuzz",
        random: [0xa5; 16],
        aux: AuxValues::for_plan(plan),
    };
    let image = StackImage::build(&request).expect("a small stack always builds");
    let (rsp, bytes) = (image.rsp(), image.bytes());
    assert!(rsp % 16 == 0 && rsp + bytes.len() as u64 == top);
    let word = |va: u64| {
        let at = (va - rsp) as usize;
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    };
    let string = |va: u64| {
        let at = (va - rsp) as usize;
        let len = bytes[at..].iter().position(|&b| b == 0).unwrap();
        &bytes[at..at + len]
    };
    let argv: Vec<&[u8]> = if argv.is_empty() { vec![b""] } else { argv.to_vec() };
    assert_eq!(word(rsp), argv.len() as u64);
    let mut at = rsp + 8;
    for list in [&argv[..], envp] {
        for s in list {
            assert_eq!(string(word(at)), *s);
            at += 8;
        }
        assert_eq!(word(at), 0);
        at += 8;
    }
    let auxv_len = image.auxv().len() as u64;
    assert_eq!(word(at + 16 * (auxv_len - 1)), auxv::AT_NULL);
    let entry = image.auxv().iter().find(|(key, _)| *key == auxv::AT_ENTRY).unwrap().1;
    assert_eq!(entry, plan.entry());
}

/// Plans `data` as an executable, several ways, and checks what is accepted.
pub fn exec_loader(data: &[u8]) {
    let four = LoadParams::LINUX_4LEVEL;
    let five = LoadParams::LINUX_5LEVEL;
    let low = LoadParams { user_bottom: 0, dyn_base: PAGE, ..four };
    let whole = plan(data, data.len() as u64, &four);
    let cut = plan(data, BIG_FILE, &four);
    if let Ok(whole) = &whole {
        assert_eq!(cut.as_ref(), Ok(whole), "a larger file planned differently");
    }
    let wide = plan(data, BIG_FILE, &five);
    if let Ok(cut) = &cut {
        assert_eq!(wide.as_ref(), Ok(cut), "5-level planned differently");
    }
    let _ = plan(data, BIG_FILE, &low);
    if let Ok(cut) = &cut {
        stack(cut, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_plan() {
        let corpus = crate::runner::load_corpus(&crate::runner::corpus_dir("exec_loader")).unwrap();
        let planned =
            corpus.iter().filter(|seed| LoadPlan::from_headers(seed, BIG_FILE, &LoadParams::default()).is_ok());
        assert_eq!(planned.count(), corpus.len(), "every seed is a loadable executable's headers");
        corpus.iter().for_each(|seed| exec_loader(seed));
    }
}
