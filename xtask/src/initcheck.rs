//! The checks of `cargo xtask test` for the init (`--init`), the shell's
//! `runall`, and a large initrd, over the helper programs of `tests/init`
//! (built as the user tests are, [`usertest::compile`], but not user tests
//! themselves: most make sense on Nacre only).

use crate::boot::{Check, CheckBoot};
use crate::initrd;
use crate::usertest;
use std::path::{Path, PathBuf};

/// How many copies of `big` the large-initrd check packs.
pub const BIG_COPIES: usize = 60;

/// The helper programs of `tests/init`, built into `target/init-tests/bin`:
/// NAME to its binary.
fn build(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let sources = root.join("tests/init");
    let out = root.join("target/init-tests/bin");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut programs = Vec::new();
    for source in usertest::c_sources(&sources)? {
        let name = source.file_stem().and_then(|stem| stem.to_str()).unwrap_or("program").to_string();
        let binary = out.join(&name);
        usertest::compile(&source, &binary)?;
        programs.push((name, binary));
    }
    Ok(programs)
}

/// A folder `target/init-tests/NAME` holding copies of the programs `names`.
fn folder(root: &Path, name: &str, files: &[(String, PathBuf)]) -> Result<PathBuf, String> {
    let dir = root.join("target/init-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, binary) in files {
        std::fs::copy(binary, dir.join(name)).map_err(|e| format!("{}: {e}", binary.display()))?;
    }
    Ok(dir)
}

/// The checks: the init's three endings and a refused start, `runall` over
/// passing, failing, crashing and hanging programs, and a large initrd.
pub fn checks(root: &Path) -> Result<Vec<Check>, String> {
    let programs = build(root)?;
    let binary = |name: &str| -> Result<PathBuf, String> {
        programs
            .iter()
            .find(|(program, _)| program == name)
            .map(|(_, binary)| binary.clone())
            .ok_or(format!("tests/init/{name}.c is missing"))
    };
    let text = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let init = |label: &str, words: Vec<String>, expect_success: bool, expect_output: &[&str]| Check {
        label: label.to_string(),
        boot: CheckBoot::Init(words),
        expect_success,
        expect_output: text(expect_output),
        cpus: None,
        add: Vec::new(),
        mem: None,
    };
    let path = |binary: PathBuf| binary.display().to_string();
    let mut checks = vec![
        init(
            "an init exiting 0: pid 1, its arguments, an orphan adopted and reaped; success",
            vec![path(binary("init_ok")?), "one".into(), "two".into()],
            true,
            &[
                "init_ok: pid 1, parent 0, 2 arguments: [one] [two]",
                "adopted by pid 1 and reaped",
                "init_ok: all good",
                "init: /bin/init_ok (pid 1) exit 0; powering off",
            ],
        ),
        init(
            "the init is shielded from signals whose action is the default; kill(-1) passes it over",
            vec![path(binary("init_shield")?)],
            true,
            &[
                "init_shield: alive after SIGTERM, SIGKILL, SIGSTOP and SIGINT",
                "init_shield: all good",
                "init: /bin/init_shield (pid 1) exit 0; powering off",
            ],
        ),
        init(
            "an init exiting 1: failure",
            vec![path(binary("init_fail")?)],
            false,
            &["init_fail: exiting with 1", "init: /bin/init_fail (pid 1) exit 1; powering off"],
        ),
        init(
            "an init killed by SIGSEGV: what killed it, failure",
            vec![path(binary("crash")?)],
            false,
            &["init: /bin/crash (pid 1) killed by SIGSEGV (SEGV_MAPERR, address 0x1000", "not-present page"],
        ),
        init(
            "a missing init: a clear error, failure",
            vec!["/bin/no-such-init".into()],
            false,
            &["init: cannot start /bin/no-such-init: /bin/no-such-init: no such file in the initrd (errno ENOENT)"],
        ),
        init(
            "an init that is no program: a clear error, failure",
            vec!["/hello.txt".into()],
            false,
            &["init: cannot start /hello.txt:", "(errno ENOEXEC)"],
        ),
    ];

    // runall: in name order, one line each, the hanging ones killed and
    // reaped (hang_wait's parent waits for a child that spins: its group
    // is killed), the shell still there afterwards with no process left.
    let mix: Vec<(String, PathBuf)> = ["crash", "hang", "hang_wait", "init_fail", "pass"]
        .iter()
        .map(|name| Ok((name.to_string(), binary(name)?)))
        .collect::<Result<_, String>>()?;
    let mix_dir = folder(root, "runall", &mix)?;
    checks.push(Check {
        label: "runall over passing, failing, crashing and hanging programs".to_string(),
        boot: CheckBoot::Script("runall -t 2 /bin; ps; echo alive".to_string()),
        expect_success: false,
        expect_output: text(&[
            "FAIL crash (killed by SIGSEGV, ",
            "FAIL hang (timed out after 2 s)",
            "FAIL hang_wait (timed out after 2 s)",
            "FAIL init_fail (exit 1, ",
            "PASS pass (exit 0, ",
            "1 passed, 4 failed",
            "4 of 5 failed",
            "alive",
        ]),
        cpus: None,
        add: vec![mix_dir],
        mem: None,
    });
    checks.push(Check {
        label: "runall over passing programs succeeds".to_string(),
        boot: CheckBoot::Script("runall /bin/".to_string()),
        expect_success: true,
        expect_output: text(&["PASS pass (exit 0, ", "1 passed, 0 failed"]),
        cpus: None,
        add: vec![folder(root, "runall-pass", &[("pass".to_string(), binary("pass")?)])?],
        mem: None,
    });

    // Stopped processes: ps shows one as T, and runall's time limit ends one.
    let stops: Vec<(String, PathBuf)> = ["stop_self", "stopper"]
        .iter()
        .map(|name| Ok((name.to_string(), binary(name)?)))
        .collect::<Result<_, String>>()?;
    checks.push(Check {
        label: "a stopped process: ps shows it stopped, the time limit ends it".to_string(),
        boot: CheckBoot::Script("run /bin/stopper; ps; runall -t 1 /bin; echo alive".to_string()),
        expect_success: false,
        expect_output: text(&[
            "stopper: the child stopped (SIGSTOP)",
            "  T      stopper.",
            "FAIL stop_self (timed out after 1 s)",
            "PASS stopper (exit 0, ",
            "alive",
        ]),
        cpus: None,
        add: vec![folder(root, "stops", &stops)?],
        mem: None,
    });

    // A large initrd: 60 programs of about 1.5 MiB, with --mem just large
    // enough by the rule xtask enforces (initrd::max_initrd_bytes).
    let big = binary("big")?;
    let copies: Vec<(String, PathBuf)> = (0..BIG_COPIES).map(|i| (format!("big{i:02}"), big.clone())).collect();
    let big_dir = folder(root, "big", &copies)?;
    let size = initrd::archive_size(root, std::slice::from_ref(&big_dir))?;
    let mem_mib = (size + initrd::KERNEL_ROOM + initrd::QEMU_ACPI_DATA).div_ceil(1 << 20) + 4;
    let last = format!("big{:02}", BIG_COPIES - 1);
    checks.push(Check {
        label: format!("a large initrd ({} MiB: {BIG_COPIES} programs) in --mem {mem_mib}M", size >> 20),
        boot: CheckBoot::Script(format!("run /bin/big00; run /bin/{last}; runall -t 30 /bin; mem")),
        expect_success: true,
        expect_output: vec![
            "/bin/big00: 786432 bytes checked, 0 wrong".to_string(),
            format!("/bin/{last}: 786432 bytes checked, 0 wrong"),
            format!("PASS {last} (exit 0, "),
            format!("{BIG_COPIES} passed, 0 failed"),
        ],
        cpus: None,
        add: vec![big_dir],
        mem: Some(format!("{mem_mib}M")),
    });
    Ok(checks)
}
