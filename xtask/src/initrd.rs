//! The initrd: a cpio newc archive of the repository's `initrd/` folder,
//! written by hand (no external `cpio` tool), passed to QEMU with `-initrd`.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex
//! fields), the NUL-terminated name padded to 4 bytes, then the data padded
//! to 4 bytes; `TRAILER!!!` ends the archive.
//!
//! The data of every file of at least one page starts on a page boundary
//! of the archive (which QEMU loads page-aligned), so that the kernel can
//! map those pages shared, without a copy. That is done by inserting,
//! before such a file, a padding entry named `.pad` (a regular file of
//! zeros that the kernel's file layer skips) just long enough. Smaller
//! files are packed as they come.
//!
//! A scripted run (`cargo xtask run -- "..."`, and the scripted checks of
//! `cargo xtask test`) gets an archive of its own ([`build_with_script`]):
//! the same files plus the script as the file [`SCRIPT_NAME`] (`.script`),
//! which the kernel runs for `script=@.script`. The kernel command line is
//! too small for scripts (QEMU's PVH loader holds 4095 bytes); the file
//! holds up to [`MAX_SCRIPT_BYTES`]. It is an ordinary file in the kernel:
//! `ls` lists it and `cat .script` prints it.

use std::fs;
use std::path::{Path, PathBuf};

/// The folder the initrd is made from, relative to the workspace root.
pub const SOURCE_DIR: &str = "initrd";
/// Where the archive is written, relative to the workspace root.
pub const ARCHIVE_PATH: &str = "target/initrd.cpio";
/// The folder of the initrd that `--add` puts host files in.
pub const ADDED_DIR: &str = "bin";
/// The name of padding entries (the kernel skips them).
pub const PADDING_NAME: &str = ".pad";
/// The file a scripted run's script goes in (the kernel's
/// `cmdline::SCRIPT_FILE`); reserved: `initrd/` may not have one.
pub const SCRIPT_NAME: &str = ".script";
/// The largest script packed, in bytes (1 MiB, some 90,000 short commands;
/// the kernel keeps every command on its heap).
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;
const PAGE: usize = 4096;
const HEADER_LEN: usize = 110;
const MODE_REGULAR: u32 = 0o100_644;
const MODE_DIRECTORY: u32 = 0o040_755;

/// Builds the archive of `root/initrd` into `root/target/initrd.cpio` and
/// returns its path.
pub fn build(root: &Path, added: &[PathBuf]) -> Result<PathBuf, String> {
    let archive = archive(&items(root, added)?);
    let path = root.join(ARCHIVE_PATH);
    write_archive(&path, &archive)?;
    Ok(path)
}

/// An archive with a script in it, written for one run; removed when dropped.
#[derive(Debug)]
pub struct ScriptArchive {
    path: PathBuf,
}

impl ScriptArchive {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScriptArchive {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Builds the archive of `root/initrd` with `script` added as the file
/// [`SCRIPT_NAME`], in a file of this process's own under `root/target`
/// (other xtask runs may be booting at the same time). Refuses a script
/// larger than [`MAX_SCRIPT_BYTES`].
pub fn build_with_script(root: &Path, script: &str, added: &[PathBuf]) -> Result<ScriptArchive, String> {
    let archive = archive(&with_script(items(root, added)?, script)?);
    let path = root.join(format!("target/initrd-script-{}.cpio", std::process::id()));
    write_archive(&path, &archive)?;
    Ok(ScriptArchive { path })
}

/// `items` with `script` added as the file [`SCRIPT_NAME`], or why not.
pub fn with_script(mut items: Vec<Item>, script: &str) -> Result<Vec<Item>, String> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(format!(
            "the script is {} bytes; at most {MAX_SCRIPT_BYTES} bytes (1 MiB) are passed to the kernel",
            script.len()
        ));
    }
    if items.iter().any(|item| item.name == SCRIPT_NAME) {
        return Err(format!("{SOURCE_DIR}/{SCRIPT_NAME} exists, but that name is reserved for the script of a run"));
    }
    items.push(Item { name: SCRIPT_NAME.to_string(), data: Some(script.as_bytes().to_vec()) });
    Ok(items)
}

/// The items of `root/initrd`, then the host files `added` (`--add`) under
/// [`ADDED_DIR`].
fn items(root: &Path, added: &[PathBuf]) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    collect(&root.join(SOURCE_DIR), "", &mut items)?;
    add_host_files(&mut items, added)?;
    Ok(items)
}

/// Adds each host file of `added`, or each file directly inside a folder of
/// it, as `bin/NAME` (`cargo xtask run --add FILE_OR_DIR`): the user's own
/// programs, packed without touching the repository. Refused: a path that
/// is missing or not UTF-8, and two files of the same name.
pub fn add_host_files(items: &mut Vec<Item>, added: &[PathBuf]) -> Result<(), String> {
    if added.is_empty() {
        return Ok(());
    }
    if !items.iter().any(|item| item.name == ADDED_DIR) {
        items.push(Item { name: ADDED_DIR.to_string(), data: None });
    }
    for path in added {
        let files: Vec<PathBuf> = if path.is_dir() {
            let listing = fs::read_dir(path).map_err(|e| format!("--add {}: {e}", path.display()))?;
            let mut files: Vec<PathBuf> =
                listing.filter_map(|entry| entry.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
            files.sort();
            files
        } else if path.is_file() {
            vec![path.clone()]
        } else {
            return Err(format!("--add {}: no such file or folder", path.display()));
        };
        for file in files {
            let file_name =
                file.file_name().and_then(|n| n.to_str()).ok_or(format!("--add {}: not UTF-8", file.display()))?;
            let name = format!("{ADDED_DIR}/{file_name}");
            if items.iter().any(|item| item.name == name) {
                return Err(format!("--add {}: the initrd has a file named {name} already", file.display()));
            }
            let data = fs::read(&file).map_err(|e| format!("--add {}: {e}", file.display()))?;
            items.push(Item { name, data: Some(data) });
        }
    }
    Ok(())
}

/// Writes `archive` to `path`, only when it changed (so that its timestamp
/// means something).
fn write_archive(path: &Path, archive: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if fs::read(path).ok().as_deref() != Some(archive) {
        fs::write(path, archive).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// One thing to archive: a directory (no data) or a file.
#[derive(Debug, PartialEq, Eq)]
pub struct Item {
    /// Its path inside the archive.
    pub name: String,
    /// Its contents; `None` for a directory.
    pub data: Option<Vec<u8>>,
}

/// The items under `dir`, depth first, in name order (so the archive is
/// the same on every machine).
fn collect(dir: &Path, prefix: &str, items: &mut Vec<Item>) -> Result<(), String> {
    let listing = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = listing.filter_map(|entry| entry.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let file_name = path.file_name().and_then(|n| n.to_str()).ok_or(format!("{}: not UTF-8", path.display()))?;
        let name = format!("{prefix}{file_name}");
        if path.is_dir() {
            items.push(Item { name: name.clone(), data: None });
            collect(&path, &format!("{name}/"), items)?;
        } else {
            let data = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            items.push(Item { name, data: Some(data) });
        }
    }
    Ok(())
}

/// The newc archive of `items`, with padding entries before every file of
/// at least a page, so that its data starts page-aligned.
pub fn archive(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let inode = index as u32 + 1;
        match &item.data {
            None => push_entry(&mut out, inode, MODE_DIRECTORY, &item.name, &[]),
            Some(data) => {
                if data.len() >= PAGE {
                    pad_to_page(&mut out, &item.name);
                }
                push_entry(&mut out, inode, MODE_REGULAR, &item.name, data);
            }
        }
    }
    push_entry(&mut out, 0, 0, "TRAILER!!!", &[]);
    out
}

/// Adds a padding entry so that the data of the next entry, named `name`,
/// starts on a page boundary (nothing when it already would).
fn pad_to_page(out: &mut Vec<u8>, name: &str) {
    let data_start = |at: usize, name: &str| align4(at + HEADER_LEN + name.len() + 1);
    if data_start(out.len(), name).is_multiple_of(PAGE) {
        return;
    }
    // After the padding entry, whose data takes `fill` bytes (a multiple of 4):
    let after_header = data_start(out.len(), PADDING_NAME);
    let unpadded = data_start(after_header, name);
    let fill = (PAGE - unpadded % PAGE) % PAGE;
    push_entry(out, 0, MODE_REGULAR, PADDING_NAME, &vec![0; fill]);
    debug_assert!(data_start(out.len(), name).is_multiple_of(PAGE));
}

/// Appends one entry.
fn push_entry(out: &mut Vec<u8>, inode: u32, mode: u32, name: &str, data: &[u8]) {
    let fields = [inode, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(align4(out.len()), 0);
    out.extend_from_slice(data);
    out.resize(align4(out.len()), 0);
}

fn align4(n: usize) -> usize {
    n.next_multiple_of(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, data offset, data) of each entry, read back.
    fn read_back(archive: &[u8]) -> Vec<(String, usize, Vec<u8>)> {
        let mut entries = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(&archive[at..at + 6], b"070701");
            let field = |i: usize| {
                let start = at + 6 + 8 * i;
                usize::from_str_radix(std::str::from_utf8(&archive[start..start + 8]).unwrap(), 16).unwrap()
            };
            let (size, name_size) = (field(6), field(11));
            let name = std::str::from_utf8(&archive[at + HEADER_LEN..at + HEADER_LEN + name_size - 1]).unwrap();
            assert_eq!(archive[at + HEADER_LEN + name_size - 1], 0, "NUL-terminated");
            let data_at = align4(at + HEADER_LEN + name_size);
            if name == "TRAILER!!!" {
                assert_eq!(data_at, archive.len());
                return entries;
            }
            entries.push((name.to_string(), data_at, archive[data_at..data_at + size].to_vec()));
            at = align4(data_at + size);
        }
    }

    #[test]
    fn files_of_a_page_or_more_start_page_aligned_and_read_back() {
        let items = vec![
            Item { name: "a".into(), data: Some(b"tiny\n".to_vec()) },
            Item { name: "dir".into(), data: None },
            Item { name: "dir/big-one".into(), data: Some((0..9000u32).map(|i| i as u8).collect()) },
            Item { name: "exact".into(), data: Some(vec![7; 4096]) },
            Item { name: "b".into(), data: Some(b"xy".to_vec()) },
        ];
        let entries = read_back(&archive(&items));
        let files: Vec<&(String, usize, Vec<u8>)> = entries.iter().filter(|e| e.0 != PADDING_NAME).collect();
        assert_eq!(files.len(), items.len());
        for (entry, item) in files.iter().zip(&items) {
            assert_eq!(entry.0, item.name);
            assert_eq!(Some(&entry.2), item.data.as_ref().or(Some(&Vec::new())));
        }
        assert_eq!(files[2].1 % PAGE, 0, "dir/big-one is page-aligned");
        assert_eq!(files[3].1 % PAGE, 0, "exact is page-aligned");
        assert_ne!(files[0].1 % PAGE, 0, "small files are not padded");
        assert!(entries.iter().filter(|e| e.0 == PADDING_NAME).all(|e| e.2.iter().all(|&b| b == 0)));
    }

    #[test]
    fn the_script_is_a_file_of_the_archive_whole() {
        let script: String = (0..2000).map(|i| format!("echo {i}; ")).collect();
        assert!(script.len() > 16 * 1024);
        let items = vec![Item { name: "hello.txt".into(), data: Some(b"hi\n".to_vec()) }];
        let entries = read_back(&archive(&with_script(items, &script).unwrap()));
        let file = entries.iter().find(|e| e.0 == SCRIPT_NAME).expect("the script file");
        assert_eq!(file.2, script.as_bytes());
        assert_eq!(file.1 % PAGE, 0, "a script of pages is page-aligned like any file");
        assert!(entries.iter().any(|e| e.0 == "hello.txt"));
    }

    #[test]
    fn too_large_scripts_and_a_taken_name_are_refused() {
        let largest = "x".repeat(MAX_SCRIPT_BYTES);
        assert!(with_script(Vec::new(), &largest).is_ok());
        let error = with_script(Vec::new(), &format!("{largest};")).unwrap_err();
        assert!(error.contains("1048577 bytes") && error.contains("1 MiB"), "{error}");
        let taken = vec![Item { name: SCRIPT_NAME.into(), data: Some(Vec::new()) }];
        assert!(with_script(taken, "help").unwrap_err().contains("reserved"));
        assert_eq!(with_script(Vec::new(), "").unwrap()[0].data.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn the_repository_initrd_has_the_sample_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut items = Vec::new();
        collect(&root.join(SOURCE_DIR), "", &mut items).unwrap();
        let sizes: Vec<usize> = items.iter().filter_map(|i| i.data.as_ref().map(Vec::len)).collect();
        assert!(sizes.iter().any(|&s| s > 3 * PAGE), "a file of several pages");
        assert!(sizes.iter().any(|&s| s > PAGE && s % PAGE != 0), "a file whose size is not a multiple of a page");
        assert!(sizes.iter().any(|&s| s < 64), "a tiny file");
    }

    /// `--add` packs files, and the files of a folder, under `bin/`, and
    /// refuses a missing path and two files of one name.
    #[test]
    fn added_host_files_go_under_bin() {
        let dir = std::env::temp_dir().join(format!("nacre-add-{}", std::process::id()));
        let folder = dir.join("progs");
        fs::create_dir_all(&folder).unwrap();
        fs::write(dir.join("one"), b"1").unwrap();
        fs::write(folder.join("two"), b"22").unwrap();
        fs::write(folder.join("three"), b"333").unwrap();
        let mut items = vec![Item { name: "hello.txt".into(), data: Some(b"hi".to_vec()) }];
        add_host_files(&mut items, &[dir.join("one"), folder.clone()]).unwrap();
        let names: Vec<&str> = items.iter().map(|item| item.name.as_str()).collect();
        assert_eq!(names, ["hello.txt", "bin", "bin/one", "bin/three", "bin/two"]);
        assert_eq!(items[4].data.as_deref(), Some(&b"22"[..]));
        let again = add_host_files(&mut items, &[dir.join("one")]);
        assert!(again.unwrap_err().contains("has a file named bin/one already"));
        let missing = add_host_files(&mut items, &[dir.join("nowhere")]);
        assert!(missing.unwrap_err().contains("no such file or folder"));
        let _ = fs::remove_dir_all(&dir);
    }
}
