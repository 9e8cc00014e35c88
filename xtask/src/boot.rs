//! How a kernel is built and booted: the options every subcommand shares,
//! the kernel build, the QEMU command line, and a run whose output is
//! captured. The subcommands (`run`, `test`, `gdb`, `bench`) sit above it.

use crate::initrd;
use std::env;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The status QEMU exits with when the kernel writes 0x10 to the debug-exit port.
pub(crate) const QEMU_SUCCESS_STATUS: i32 = 33;
/// The status QEMU exits with when the kernel writes 0x11 (its failure path).
/// A triple fault under `-no-reboot` exits with 0 instead.
pub(crate) const QEMU_FAILURE_STATUS: i32 = 35;
/// rustc flags for the kernel. No red zone (interrupts may arrive on our own
/// code's stacks), static relocation (the image runs where it is linked),
/// the kernel code model (the image is linked in the top 2 GiB, where
/// sign-extended 32-bit addresses reach it), abort on panic (no unwinder),
/// frame pointers (backtraces in fault reports).
pub(crate) const KERNEL_RUSTFLAGS: &str =
    "-C relocation-model=static -C code-model=kernel -C no-redzone=yes -C panic=abort -C force-frame-pointers=yes";
pub(crate) const KERNEL_TARGET: &str = "x86_64-unknown-linux-gnu";
pub(crate) const QEMU: &str = "qemu-system-x86_64";
pub(crate) const QEMU_INSTALL: &str = "apt-get update && apt-get install -y qemu-system-x86";
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 300;
/// The longest kernel command line, in bytes. QEMU's PVH loader copies the
/// line, unchecked, into a 4096-byte buffer with its NUL, so a longer one
/// overwrites the boot information after it; the kernel refuses such a line
/// at boot (`MAX_COMMAND_LINE` in kernel/src/boot_info.rs), and xtask
/// before it.
pub(crate) const MAX_KERNEL_CMDLINE: usize = 4095;

/// Command-line options shared by the subcommands.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) release: bool,
    /// Build the kernel with its in-kernel tests (feature `ktest`), as
    /// `cargo xtask test` does; the kernel `run` boots has none.
    pub(crate) ktest: bool,
    pub(crate) smp: u32,
    pub(crate) mem: String,
    pub(crate) la57: bool,
    pub(crate) timeout: Duration,
    /// Extra kernel options (`log=debug frames=100`), before any mode.
    pub(crate) cmdline: String,
    /// Shell commands for a non-interactive run.
    pub(crate) script: Option<String>,
    /// Host files and folders packed into the initrd under `bin/` (`--add`).
    pub(crate) add: Vec<PathBuf>,
    /// `--init PROGRAM [ARGS...]`: the program to run as process 1 instead
    /// of the shell, and its arguments.
    pub(crate) init: Option<Vec<String>>,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            release: false,
            ktest: false,
            smp: 2,
            mem: "512M".to_string(),
            la57: false,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            cmdline: String::new(),
            script: None,
            add: Vec::new(),
            init: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().cloned().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--release" => options.release = true,
                "--ktest" => options.ktest = true,
                "--la57" => options.la57 = true,
                "--smp" => options.smp = value("--smp")?.parse().map_err(|e| format!("--smp: {e}"))?,
                "--mem" => options.mem = value("--mem")?,
                "--timeout" => {
                    let secs: u64 = value("--timeout")?.parse().map_err(|e| format!("--timeout: {e}"))?;
                    options.timeout = Duration::from_secs(secs);
                }
                "--cmdline" => options.cmdline = value("--cmdline")?,
                "--add" => options.add.push(PathBuf::from(value("--add")?)),
                "--" => {
                    let rest: Vec<&str> = args.by_ref().map(String::as_str).collect();
                    options.script = Some(rest.join(" "));
                }
                // The program and its arguments: the rest of the line.
                "--init" => {
                    let rest: Vec<String> = args.by_ref().cloned().collect();
                    if rest.is_empty() {
                        return Err("--init needs a program (--init PROGRAM [ARGS...])".to_string());
                    }
                    options.init = Some(rest);
                }
                other => return Err(format!("unknown option {other:?}\n{}", usage())),
            }
        }
        let script_in_cmdline = options.cmdline.split_whitespace().any(|word| word.starts_with("script="));
        if options.init.is_some() && (options.script.is_some() || script_in_cmdline) {
            return Err("--init and a script: the init runs instead of the shell; give one".to_string());
        }
        if let Some(init) = &options.init {
            init_boot(init)?;
        }
        check_kernel_cmdline(&options.cmdline).map_err(|e| format!("--cmdline: {e}"))?;
        if options.script.is_some() && options.cmdline.split_whitespace().any(|word| word.starts_with("script=")) {
            return Err("--cmdline has a script= and commands follow --: give the commands in one place".to_string());
        }
        Ok(options)
    }

    /// The kernel command line: extra options, then the mode.
    pub(crate) fn kernel_cmdline(&self, mode: Option<&str>) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if !self.cmdline.is_empty() {
            parts.push(&self.cmdline);
        }
        if let Some(mode) = mode {
            parts.push(mode);
        }
        parts.join(" ")
    }

    /// [`kernel_cmdline`](Options::kernel_cmdline), refused when it is too
    /// long for the kernel.
    pub(crate) fn checked_kernel_cmdline(&self, mode: Option<&str>) -> Result<String, String> {
        let cmdline = self.kernel_cmdline(mode);
        check_kernel_cmdline(&cmdline)?;
        Ok(cmdline)
    }
}

/// Refuses a kernel command line longer than [`MAX_KERNEL_CMDLINE`].
pub(crate) fn check_kernel_cmdline(cmdline: &str) -> Result<(), String> {
    if cmdline.len() <= MAX_KERNEL_CMDLINE {
        return Ok(());
    }
    Err(format!(
        "the kernel command line is {} bytes, longer than the {MAX_KERNEL_CMDLINE} bytes QEMU's PVH loader holds; \
         give a script after -- instead (it goes to the kernel as an initrd file, up to {} bytes)",
        cmdline.len(),
        initrd::MAX_SCRIPT_BYTES
    ))
}

/// The kernel mode that runs the initrd file holding the script.
pub(crate) fn script_file_mode() -> String {
    format!("script=@{}", initrd::SCRIPT_NAME)
}

/// How `--init PROGRAM [ARGS...]` boots: the kernel's `init=` mode, and
/// the host file to pack as `/bin/NAME` when PROGRAM is one.
///
/// PROGRAM is a host file when one exists at that path: it is packed into
/// the initrd as `/bin/NAME` (NAME its file name) and run from there.
/// Otherwise it must be an absolute path of the initrd (`/bin/NAME`, from
/// `initrd/` or `--add`), passed on as it is; the kernel says so when it
/// has no such file. The arguments go on the kernel command line after
/// `--` as words: one holding white space or a control character cannot
/// be carried, and is refused.
pub(crate) fn init_boot(init: &[String]) -> Result<(String, Option<PathBuf>), String> {
    let (program, args) = init.split_first().ok_or("--init needs a program")?;
    let word = |text: &str| !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    let host = Path::new(program);
    let (path, file) = if host.is_file() {
        let name = host.file_name().and_then(|n| n.to_str()).ok_or(format!("--init {program}: not UTF-8"))?;
        (format!("/{}/{name}", initrd::ADDED_DIR), Some(host.to_path_buf()))
    } else if program.starts_with('/') {
        (program.clone(), None)
    } else {
        return Err(format!(
            "--init {program}: no such host file (a program already in the initrd is named by its path, such as /bin/NAME)"
        ));
    };
    if !word(&path) {
        return Err(format!("--init {program}: the kernel command line cannot carry a path holding white space"));
    }
    if let Some(arg) = args.iter().find(|arg| !word(arg)) {
        return Err(format!(
            "--init: the argument {arg:?} is empty or holds white space; the kernel command line carries the init's \
             arguments as words"
        ));
    }
    let mut mode = format!("init={path}");
    if !args.is_empty() {
        mode.push_str(" -- ");
        mode.push_str(&args.join(" "));
    }
    Ok((mode, file))
}

/// What a boot with `--init` needs: the kernel command line with its
/// `init=`, and an initrd holding the program (removed when dropped).
pub(crate) struct InitBoot {
    pub(crate) cmdline: String,
    pub(crate) initrd: initrd::ScriptArchive,
}

impl InitBoot {
    /// Packs the init (when it is a host file) into an initrd of its own;
    /// refuses, before any boot, a command line too long or an initrd too
    /// large for `--mem`.
    pub(crate) fn new(options: &Options, init: &[String]) -> Result<InitBoot, String> {
        let (mode, file) = init_boot(init)?;
        let cmdline = options.checked_kernel_cmdline(Some(&mode))?;
        let initrd = initrd::build_for_init(&workspace_root(), &options.add, file.as_deref())?;
        initrd::check_file_fits(initrd.path(), &options.mem)?;
        Ok(InitBoot { cmdline, initrd })
    }

    /// The QEMU command for this boot.
    pub(crate) fn command(&self, options: &Options, elf: &Path) -> Command {
        qemu_command_with_initrd(options, elf, &self.cmdline, self.initrd.path())
    }
}

/// What a scripted boot needs: the kernel command line, which names the
/// script file, and the initrd holding it (removed when this is dropped).
pub(crate) struct ScriptedBoot {
    pub(crate) cmdline: String,
    pub(crate) initrd: initrd::ScriptArchive,
}

impl ScriptedBoot {
    /// Packs `script` into an initrd of its own; refuses, before any boot,
    /// a script or command line too large.
    pub(crate) fn new(options: &Options, script: &str) -> Result<ScriptedBoot, String> {
        let cmdline = options.checked_kernel_cmdline(Some(&script_file_mode()))?;
        let initrd = initrd::build_with_script(&workspace_root(), script, &options.add)?;
        initrd::check_file_fits(initrd.path(), &options.mem)?;
        Ok(ScriptedBoot { cmdline, initrd })
    }

    /// The QEMU command for this boot.
    pub(crate) fn command(&self, options: &Options, elf: &Path) -> Command {
        qemu_command_with_initrd(options, elf, &self.cmdline, self.initrd.path())
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

pub(crate) fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Builds the kernel and returns the path of its ELF image.
pub(crate) fn build_kernel(options: &Options) -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = root.join("target/kernel");
    let mut command = Command::new(cargo());
    command
        .current_dir(&root)
        .args(["build", "-p", "nacre-kernel", "--target", KERNEL_TARGET, "--target-dir"])
        .arg(&target_dir)
        .env("RUSTFLAGS", KERNEL_RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if options.release {
        command.arg("--release");
    }
    if options.ktest {
        command.args(["--features", "ktest"]);
    }
    let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("kernel build failed".to_string());
    }
    let profile = if options.release { "release" } else { "debug" };
    let elf = target_dir.join(KERNEL_TARGET).join(profile).join("nacre");
    println!("xtask: kernel image {}", elf.display());
    // Every boot gets the initrd: the archive of the initrd/ folder.
    let initrd = initrd::build(&root, &options.add)?;
    initrd::check_file_fits(&initrd, &options.mem)?;
    println!("xtask: initrd {}", initrd.display());
    Ok(elf)
}

/// Makes sure QEMU is installed; as root, installs it.
pub(crate) fn ensure_qemu() -> Result<(), String> {
    let found =
        env::var_os("PATH").map(|paths| env::split_paths(&paths).any(|dir| dir.join(QEMU).is_file())).unwrap_or(false);
    ensure_installed(QEMU, found, QEMU_INSTALL)
}

/// Makes sure the static C library and gcc are there (the user-program
/// checks build with `gcc -static`); as root, installs them.
pub(crate) fn ensure_static_gcc() -> Result<(), String> {
    let found = Command::new("gcc").arg("--version").output().is_ok_and(|o| o.status.success())
        && Path::new("/usr/lib/x86_64-linux-gnu/libc.a").exists();
    ensure_installed("gcc with the static C library", found, STATIC_GCC_INSTALL)
}

/// What to run for [`ensure_static_gcc`].
const STATIC_GCC_INSTALL: &str = "apt-get update && apt-get install -y gcc libc6-dev";

/// `Ok` when `what` is `found`; otherwise prints `install` and, as root,
/// runs it.
fn ensure_installed(what: &str, found: bool, install: &str) -> Result<(), String> {
    if found {
        return Ok(());
    }
    eprintln!("xtask: {what} is not installed; install it with:\n    {install}");
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false);
    if !is_root {
        return Err(format!("{what} is missing"));
    }
    eprintln!("xtask: running as root, installing it now");
    let status = Command::new("sh")
        .args(["-c", install])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("installing {what} failed"))
    }
}

/// The QEMU command line for booting `elf` with kernel command line `cmdline`.
///
/// Machine: q35 (the modern chipset, PCIe, with the local and I/O APICs the
/// SMP layer uses). CPU: `max` (1 GiB pages, SMEP, SMAP under TCG) with LA57
/// hidden unless asked for, because the kernel enables 5-level paging at boot
/// whenever the CPU offers it.
pub(crate) fn qemu_command(options: &Options, elf: &Path, cmdline: &str) -> Command {
    qemu_command_with_initrd(options, elf, cmdline, &workspace_root().join(initrd::ARCHIVE_PATH))
}

/// [`qemu_command`] with the initrd `initrd` (a scripted run's).
pub(crate) fn qemu_command_with_initrd(options: &Options, elf: &Path, cmdline: &str, initrd: &Path) -> Command {
    let mut command = Command::new(QEMU);
    let cpu = if options.la57 { "max" } else { "max,la57=off" };
    command
        .args(["-machine", "q35", "-cpu", cpu])
        .args(["-smp", &options.smp.to_string(), "-m", &options.mem])
        .args(["-no-reboot", "-display", "none"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        // Serial on stdio without QEMU catching Ctrl-C, so it reaches the
        // shell; multiplexed with the monitor, so Ctrl-A X still quits.
        .args(["-chardev", "stdio,id=char0,signal=off,mux=on", "-serial", "chardev:char0", "-mon", "chardev=char0"])
        .arg("-kernel")
        .arg(elf)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", cmdline]);
    command
}

/// What a captured QEMU run produced.
pub(crate) struct CapturedRun {
    /// QEMU's exit status (None when it was killed).
    pub(crate) status: Option<i32>,
    /// Every line the kernel printed.
    pub(crate) lines: Vec<String>,
    pub(crate) timed_out: bool,
}

impl CapturedRun {
    pub(crate) fn kernel_succeeded(&self) -> bool {
        self.status == Some(QEMU_SUCCESS_STATUS)
    }

    pub(crate) fn contains(&self, text: &str) -> bool {
        self.lines.iter().any(|line| line.contains(text))
    }
}

/// Runs QEMU without standard input, echoing and collecting its output,
/// killing it after `timeout`.
pub(crate) fn run_captured(mut command: Command, timeout: Duration) -> Result<CapturedRun, String> {
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child: Child = command.spawn().map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            println!("{text}");
            let _ = std::io::stdout().flush();
            if sender.send(text).is_err() {
                break;
            }
            line.clear();
        }
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting for {QEMU}: {e}"))? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            eprintln!("xtask: timed out after {} s; stopping QEMU", timeout.as_secs());
            let _ = child.kill();
            break child.wait().map_err(|e| format!("waiting for {QEMU}: {e}"))?;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    let lines = receiver.try_iter().collect();
    Ok(CapturedRun { status: status.code(), lines, timed_out })
}

pub(crate) fn usage() -> String {
    "usage: cargo xtask <build|run|test|usertests|initchecks|gdb|bench|plot|compare|ubench|selftests|imports|syscalls|lab|grade> [--release] [--smp N] [--mem SIZE] [--la57] \
     [--timeout SECS] [--cmdline OPTS] [--add FILE_OR_DIR]... [-- \"cmd1; cmd2\" | --init PROGRAM [ARGS...]]"
        .to_string()
}

/// How a check of `cargo xtask test` boots.
pub(crate) enum CheckBoot {
    /// With a script, as `cargo xtask run -- "..."` does.
    Script(String),
    /// With this kernel command line, given to QEMU as it is.
    RawCmdline(String),
    /// With `--init PROGRAM [ARGS...]` (these words), as `cargo xtask run --init` does.
    Init(Vec<String>),
}

/// A check of `cargo xtask test` after the in-kernel tests: a boot and the
/// outcome it must have (the scripted checks and the generated ones of
/// `main.rs`, the user-program checks of `usertest.rs`).
pub(crate) struct Check {
    /// How the check is named in the output.
    pub(crate) label: String,
    /// How it boots.
    pub(crate) boot: CheckBoot,
    /// True when the boot must end with the kernel's success status.
    pub(crate) expect_success: bool,
    /// Text the output must hold.
    pub(crate) expect_output: Vec<String>,
    /// CPUs, when not the default.
    pub(crate) cpus: Option<u32>,
    /// Host files packed under `bin/` (`--add`).
    pub(crate) add: Vec<PathBuf>,
    /// RAM (`--mem`), when not the default.
    pub(crate) mem: Option<String>,
}
