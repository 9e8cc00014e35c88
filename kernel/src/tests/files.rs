//! Files, mmap and grow-down stacks: the cpio newc parser on good and
//! corrupt archives, the initrd's file layer, and the `mmapTest` and
//! `growTest` sequences.

use crate::fs::cpio::{self, CpioError, HEADER_LEN};
use crate::{check, check_eq, kernel_test};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Appends one newc entry (as xtask writes them).
fn push_entry(out: &mut Vec<u8>, mode: u32, name: &str, data: &[u8]) {
    let fields = [1, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(cpio::align4(out.len()), 0);
    out.extend_from_slice(data);
    out.resize(cpio::align4(out.len()), 0);
}

fn sample_archive() -> Vec<u8> {
    let mut archive = Vec::new();
    push_entry(&mut archive, 0o040_755, "dir", &[]);
    push_entry(&mut archive, 0o100_644, "dir/a.txt", b"hello");
    push_entry(&mut archive, 0o100_644, "b", &[7; 13]);
    push_entry(&mut archive, 0, cpio::TRAILER, &[]);
    archive
}

fn cpio_reads_names_modes_and_data() -> Result<(), String> {
    let archive = sample_archive();
    let entries = cpio::parse(&archive).map_err(|e| format!("{e}"))?;
    check_eq!(entries.len(), 3);
    check!(!entries[0].is_regular_file(), "a directory is not a regular file");
    check_eq!(entries[1].name, "dir/a.txt");
    check_eq!(entries[1].data, &b"hello"[..]);
    check!(entries[1].is_regular_file());
    check_eq!(entries[2].data, &[7u8; 13][..]);
    check_eq!(entries[2].data_offset % 4, 0);
    check_eq!(&archive[entries[2].data_offset..entries[2].data_offset + 13], entries[2].data);
    // Block padding after the trailer is ignored.
    let mut padded = archive.clone();
    padded.resize(archive.len() + 512, 0);
    check_eq!(cpio::parse(&padded).map(|e| e.len()), Ok(3));
    Ok(())
}
kernel_test!(cpio_reads_names_modes_and_data);

fn corrupt_archives_are_errors_not_panics() -> Result<(), String> {
    let archive = sample_archive();
    let second = cpio::align4(HEADER_LEN + 4);
    // Bad magic, in the first and in the second entry.
    let mut bad = archive.clone();
    bad[5] = b'2';
    check_eq!(cpio::parse(&bad), Err(CpioError::BadMagic { offset: 0 }));
    let mut bad = archive.clone();
    bad[second] = b'x';
    check_eq!(cpio::parse(&bad), Err(CpioError::BadMagic { offset: second }));
    // A field that is not hexadecimal (filesize of the first entry).
    let mut bad = archive.clone();
    bad[6 + 6 * 8] = b'g';
    check_eq!(cpio::parse(&bad), Err(CpioError::BadField { offset: 0, field: "filesize" }));
    // A name without its NUL.
    let mut bad = archive.clone();
    bad[HEADER_LEN + 3] = b'x';
    check_eq!(cpio::parse(&bad), Err(CpioError::BadName { offset: 0 }));
    // A huge size runs past the end.
    let mut bad = archive.clone();
    bad[second + 6 + 6 * 8..second + 6 + 7 * 8].copy_from_slice(b"7fffffff");
    check!(matches!(cpio::parse(&bad), Err(CpioError::Truncated { what: "data", .. })));
    // Cut at every length: always an error, never a panic.
    for len in 0..archive.len() {
        check!(cpio::parse(&archive[..len]).is_err(), "a cut at {len} bytes was accepted");
    }
    // No trailer.
    let mut no_trailer = Vec::new();
    push_entry(&mut no_trailer, 0o100_644, "x", b"1");
    check_eq!(cpio::parse(&no_trailer), Err(CpioError::MissingTrailer));
    Ok(())
}
kernel_test!(corrupt_archives_are_errors_not_panics);

fn the_initrd_files_are_read_in_place() -> Result<(), String> {
    let files = crate::fs::files();
    check!(!files.is_empty(), "no files: was the kernel started without the initrd? ({:?})", crate::fs::initrd());
    for file in files {
        check!(file.name() != crate::fs::PADDING_NAME, "padding listed as a file");
        check_eq!(crate::fs::find(file.name()).map(|f| f.phys_addr()), Ok(file.phys_addr()));
        if file.size() >= crate::fs::PAGE {
            check!(file.is_page_aligned(), "'{}' ({} bytes) is not page-aligned", file.name(), file.size());
        }
    }
    check!(crate::fs::find("no-such-file").is_err());
    Ok(())
}
kernel_test!(the_initrd_files_are_read_in_place);

fn mmap_test_passes() -> Result<(), String> {
    crate::labs::mmap_test::run(&mut String::new())
}
kernel_test!(mmap_test_passes);

fn grow_test_passes() -> Result<(), String> {
    crate::labs::grow_test::run(&mut String::new())
}
kernel_test!(grow_test_passes);
