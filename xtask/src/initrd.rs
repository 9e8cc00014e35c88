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
//! `ls` lists it and `cat .script` prints it. A run with `--init PROGRAM`
//! also gets an archive of its own ([`build_for_init`]), with PROGRAM in it.
//!
//! How large an initrd fits ([`check_fits`]): QEMU's PVH loader puts it at
//! the top of the RAM below 4 GiB, under its ACPI tables
//! ([`QEMU_ACPI_DATA`]); on q35 that RAM is all of `--mem` up to 2816 MiB,
//! else 2 GiB ([`ram_below_4g`]). The kernel's frame allocator leaves the
//! initrd's frames alone, so everything else the kernel needs comes from
//! the rest: the low 1 MiB it never uses, its image, its heap (an eighth of
//! the free frames, 1 to 64 MiB) and the frames of the programs it runs.
//! xtask keeps [`KERNEL_ROOM`] (32 MiB) for those: an initrd may be at most
//! the RAM below 4 GiB less 32 MiB and the ACPI tables, and a larger one is
//! refused before the boot.

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
/// What is kept for the kernel besides the initrd, in the RAM below 4 GiB:
/// the low 1 MiB, the kernel's image (about 2 MiB), its heap (an eighth of
/// the free frames, at least 1 MiB) and room for the programs it runs.
pub const KERNEL_ROOM: u64 = 32 << 20;
/// The ACPI tables QEMU puts at the top of the RAM below 4 GiB, above the
/// initrd (`acpi_data_size` of QEMU's pc and q35 machines: 0x28000 bytes).
pub const QEMU_ACPI_DATA: u64 = 0x28000;
/// The RAM size from which q35 puts only 2 GiB below 4 GiB (and the rest above).
const Q35_LOWMEM_SPLIT: u64 = 0xb000_0000;
/// The RAM below 4 GiB on q35 from [`Q35_LOWMEM_SPLIT`] on.
const Q35_LOWMEM: u64 = 0x8000_0000;
const MIB: u64 = 1 << 20;
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

/// An archive written for one run (with a script in it, or an init);
/// removed when dropped.
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

/// The archive of `root/initrd`, the host files `added`, and the host file
/// `init` (`--init PROGRAM`) as `bin/NAME` unless that very file is there
/// already, written for one run; removed when dropped.
pub fn build_for_init(root: &Path, added: &[PathBuf], init: Option<&Path>) -> Result<ScriptArchive, String> {
    let mut items = items(root, added)?;
    if let Some(init) = init {
        let file_name =
            init.file_name().and_then(|n| n.to_str()).ok_or(format!("--init {}: not UTF-8", init.display()))?;
        let name = format!("{ADDED_DIR}/{file_name}");
        let data = fs::read(init).map_err(|e| format!("--init {}: {e}", init.display()))?;
        match items.iter().find(|item| item.name == name) {
            Some(item) if item.data.as_ref() == Some(&data) => {}
            Some(_) => return Err(format!("--init {}: the initrd has another file named {name}", init.display())),
            None => add_host_files(&mut items, &[init.to_path_buf()])?,
        }
    }
    let archive = archive(&items);
    let path = root.join(format!("target/initrd-init-{}.cpio", std::process::id()));
    write_archive(&path, &archive)?;
    Ok(ScriptArchive { path })
}

/// The bytes of QEMU's `-m SIZE`: a number of MiB, or a number with the
/// suffix `K`, `M`, `G` or `T` (either case; a fraction such as `1.5G`
/// allowed).
pub fn parse_mem(mem: &str) -> Result<u64, String> {
    let mem = mem.trim();
    let (number, unit) = match mem.char_indices().find(|(_, c)| !c.is_ascii_digit() && *c != '.') {
        Some((at, _)) => (&mem[..at], &mem[at..]),
        None => (mem, "M"),
    };
    let unit = match unit.to_ascii_uppercase().as_str() {
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1u64 << 40,
        _ => return Err(format!("--mem {mem:?}: not a size (such as 512M or 2G)")),
    };
    let number: f64 = number.parse().map_err(|_| format!("--mem {mem:?}: not a size (such as 512M or 2G)"))?;
    let bytes = number * unit as f64;
    if !(bytes >= MIB as f64 && bytes < (1u64 << 50) as f64) {
        return Err(format!("--mem {mem:?}: not a size QEMU boots with"));
    }
    Ok(bytes as u64)
}

/// The RAM QEMU's q35 machine puts below 4 GiB for `mem` bytes of RAM.
pub fn ram_below_4g(mem: u64) -> u64 {
    if mem >= Q35_LOWMEM_SPLIT {
        Q35_LOWMEM
    } else {
        mem
    }
}

/// The largest initrd, in bytes, for `mem` bytes of RAM: the RAM below
/// 4 GiB less QEMU's ACPI tables and [`KERNEL_ROOM`].
pub fn max_initrd_bytes(mem: u64) -> u64 {
    ram_below_4g(mem).saturating_sub(QEMU_ACPI_DATA + KERNEL_ROOM)
}

/// Refuses an initrd of `len` bytes that does not fit in `--mem mem`
/// ([`max_initrd_bytes`]), naming what would do.
pub fn check_fits(len: u64, mem: &str) -> Result<(), String> {
    let bytes = parse_mem(mem)?;
    let most = max_initrd_bytes(bytes);
    if len <= most {
        return Ok(());
    }
    let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / MIB as f64);
    let needed = len + QEMU_ACPI_DATA + KERNEL_ROOM;
    let split_mib = Q35_LOWMEM_SPLIT / MIB;
    let remedy = if needed >= Q35_LOWMEM_SPLIT {
        format!(
            "no --mem makes room: the initrd goes in the RAM below 4 GiB, which is at most {split_mib} MiB \
             (q35 puts only 2 GiB there from --mem {split_mib}M on)"
        )
    } else if bytes >= Q35_LOWMEM_SPLIT {
        format!(
            "from --mem {split_mib}M on, q35 puts only 2 GiB below 4 GiB, where the initrd goes: \
             use --mem {}M to {}M",
            needed.div_ceil(MIB),
            split_mib - 1
        )
    } else {
        format!("raise --mem (to {}M at least)", needed.div_ceil(MIB))
    };
    Err(format!("initrd of {} does not fit in --mem {mem}: at most {}; {remedy}", mib(len), mib(most)))
}

/// The size in bytes of the archive of `root/initrd` with the host files
/// `added` (as [`build`] writes it).
pub fn archive_size(root: &Path, added: &[PathBuf]) -> Result<u64, String> {
    Ok(archive(&items(root, added)?).len() as u64)
}

/// Refuses the archive at `path` when it does not fit in `--mem mem` ([`check_fits`]).
pub fn check_file_fits(path: &Path, mem: &str) -> Result<(), String> {
    let len = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    check_fits(len, mem)
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

    #[test]
    fn memory_sizes_parse_as_qemu_reads_them() {
        assert_eq!(parse_mem("512M"), Ok(512 << 20));
        assert_eq!(parse_mem("512"), Ok(512 << 20));
        assert_eq!(parse_mem("2G"), Ok(2 << 30));
        assert_eq!(parse_mem("1.5g"), Ok(3 << 29));
        assert_eq!(parse_mem("65536k"), Ok(64 << 20));
        assert_eq!(parse_mem("1T"), Ok(1 << 40));
        for bad in ["", "M", "12Q", "-5M", "1.2.3G", "0", "512K"] {
            assert!(parse_mem(bad).is_err(), "{bad:?}");
        }
    }

    /// The rule: an initrd may take the RAM below 4 GiB (all of --mem up to
    /// 2816 MiB on q35, else 2 GiB) less QEMU's ACPI tables and 32 MiB.
    #[test]
    fn an_initrd_too_large_for_mem_is_refused_with_the_limit_and_the_remedy() {
        let mib = 1u64 << 20;
        assert_eq!(max_initrd_bytes(512 * mib), 480 * mib - QEMU_ACPI_DATA);
        assert_eq!(max_initrd_bytes(2815 * mib), 2783 * mib - QEMU_ACPI_DATA);
        assert_eq!(max_initrd_bytes(4096 * mib), 2016 * mib - QEMU_ACPI_DATA);
        assert_eq!(max_initrd_bytes(16 * mib), 0);
        assert!(check_fits(480 * mib - QEMU_ACPI_DATA, "512M").is_ok());
        let error = check_fits(480 * mib - QEMU_ACPI_DATA + 1, "512M").unwrap_err();
        assert_eq!(
            error,
            "initrd of 479.8 MiB does not fit in --mem 512M: at most 479.8 MiB; raise --mem (to 513M at least)"
        );
        let error = check_fits(60 * mib, "64M").unwrap_err();
        assert_eq!(
            error,
            "initrd of 60.0 MiB does not fit in --mem 64M: at most 31.8 MiB; raise --mem (to 93M at least)"
        );
        // With 4 GiB only 2 GiB are below 4 GiB: less RAM holds more.
        let error = check_fits(2500 * mib, "4G").unwrap_err();
        assert!(error.contains("at most 2015.8 MiB") && error.contains("use --mem 2533M to 2815M"), "{error}");
        let error = check_fits(3000 * mib, "1G").unwrap_err();
        assert!(error.contains("no --mem makes room"), "{error}");
        assert!(check_fits(1, "lots").unwrap_err().contains("not a size"));
    }

    /// A host file given to `--init` goes under `bin/` unless the very same
    /// file is there already; another file of its name is refused.
    #[test]
    fn the_init_is_packed_once() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let dir = std::env::temp_dir().join(format!("nacre-init-{}", std::process::id()));
        let other = dir.join("other");
        fs::create_dir_all(&other).unwrap();
        fs::write(dir.join("prog"), b"program").unwrap();
        fs::write(other.join("prog"), b"another").unwrap();
        let entries = |archive: &ScriptArchive| read_back(&fs::read(archive.path()).unwrap());
        let packed = build_for_init(root, &[], Some(&dir.join("prog"))).unwrap();
        assert!(entries(&packed).iter().any(|e| e.0 == "bin/prog" && e.2 == b"program"));
        drop(packed);
        let again = build_for_init(root, &[dir.join("prog")], Some(&dir.join("prog"))).unwrap();
        assert_eq!(entries(&again).iter().filter(|e| e.0 == "bin/prog").count(), 1);
        drop(again);
        let clash = build_for_init(root, std::slice::from_ref(&other), Some(&dir.join("prog"))).unwrap_err();
        assert!(clash.contains("another file named bin/prog"), "{clash}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_repository_initrd_has_passwd_and_group() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut items = Vec::new();
        collect(&root.join(SOURCE_DIR), "", &mut items).unwrap();
        let text = |name: &str| {
            let item = items.iter().find(|item| item.name == name).unwrap_or_else(|| panic!("no {name}"));
            String::from_utf8(item.data.clone().unwrap()).unwrap()
        };
        assert!(items.iter().any(|item| item.name == "etc" && item.data.is_none()), "etc is a folder");
        let passwd = text("etc/passwd");
        assert!(passwd.lines().any(|line| line.starts_with("root:x:0:0:")));
        assert!(passwd.lines().any(|line| line.starts_with("nobody:x:65534:65534:")));
        assert!(passwd.lines().all(|line| line.split(':').count() == 7));
        let group = text("etc/group");
        assert!(group.lines().any(|line| line == "root:x:0:"));
        assert!(group.lines().any(|line| line == "nobody:x:65534:"));
        assert!(group.lines().all(|line| line.split(':').count() == 4));
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
