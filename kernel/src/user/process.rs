//! Processes: a program running in ring 3 in an address space of its own.
//!
//! A process is one `paging` address space (see [`super::load`]), one
//! thread, its open files and its memory bookkeeping (the program break).
//! [`spawn`] builds the space and starts the thread; the thread moves into
//! the space, copies the initial stack in through [`super::copy`] and runs
//! the program with `thread::run_user` until `exit_group` or a fatal signal
//! ends it; [`wait`] collects the status and destroys the space.

use super::copy;
use super::errno::Errno;
use super::files::FileTable;
use super::layout;
use super::load::{self, LoadError};
use super::signal::{SigAction, SignalInfo};
use crate::address_space::{self, Space};
use crate::fs;
use crate::sync::IrqMutex;
use crate::thread::{self, JoinHandle, ThreadId};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use exec::StackImage;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit` or `exit_group` with this status (the low 8 bits).
    Exited(u8),
    /// A signal ended it; `rip` is where the program was.
    Killed {
        /// The signal and its details.
        info: SignalInfo,
        /// The instruction the program was at.
        rip: u64,
    },
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit {code}"),
            ExitStatus::Killed { info, rip } => {
                write!(f, "killed by {} ({}", info.signal.name(), info.code_name())?;
                if info.addr != 0 || info.signal.0 == 11 {
                    write!(f, ", address {:#x}", info.addr)?;
                }
                write!(f, ", at rip {rip:#x})")
            }
        }
    }
}

/// A resource limit (`struct rlimit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RLimit {
    /// The soft limit.
    pub cur: u64,
    /// The hard limit.
    pub max: u64,
}

/// `RLIM_INFINITY`.
pub const RLIM_INFINITY: u64 = u64::MAX;
/// How many resource limits there are (`RLIM_NLIMITS`).
pub const RLIMIT_COUNT: usize = 16;
/// `RLIMIT_STACK`.
pub const RLIMIT_STACK: usize = 3;
/// `RLIMIT_NOFILE`.
pub const RLIMIT_NOFILE: usize = 7;

/// Linux's defaults for a process started by init (`INIT_RLIMITS`), with
/// the stack limit this kernel grows stacks to.
fn default_rlimits() -> [RLimit; RLIMIT_COUNT] {
    let mut limits = [RLimit { cur: RLIM_INFINITY, max: RLIM_INFINITY }; RLIMIT_COUNT];
    limits[RLIMIT_STACK] = RLimit { cur: layout::STACK_MAX, max: RLIM_INFINITY };
    limits[RLIMIT_NOFILE] = RLimit { cur: super::files::MAX_FILES as u64, max: super::files::MAX_FILES as u64 };
    limits[8] = RLimit { cur: 8 << 20, max: 8 << 20 }; // RLIMIT_MEMLOCK
    limits[4] = RLimit { cur: 0, max: RLIM_INFINITY }; // RLIMIT_CORE
    limits
}

/// What a process holds besides its space, behind one lock.
pub struct ProcessState {
    /// Where the heap starts (the page above the last segment).
    pub brk_start: u64,
    /// The program break (`brk`): the heap is `[brk_start, brk)`.
    pub brk: u64,
    /// Open files.
    pub files: FileTable,
    /// Resource limits (`prlimit64`).
    pub rlimits: [RLimit; RLIMIT_COUNT],
    /// The blocked signals (`rt_sigprocmask`), bit `n - 1` for signal `n`.
    pub signal_mask: u64,
    /// Signals sent and not delivered yet.
    pub pending: u64,
    /// Each signal's action (`rt_sigaction`), signal `n` at `n - 1`.
    pub actions: [SigAction; 64],
    /// `set_tid_address`: cleared (and woken) at exit.
    pub clear_child_tid: u64,
    /// `set_robust_list`: the head and its length.
    pub robust_list: (u64, u64),
    /// The entry point and initial stack, until the thread starts.
    start: Option<(u64, StackImage)>,
    /// Set once the process has ended.
    pub exit: Option<ExitStatus>,
}

/// A process.
pub struct Process {
    /// Its id (also its thread's id for `gettid`).
    pub pid: u32,
    /// The program's file name, as `run` found it (`/bin/hello`).
    pub path: String,
    /// The address space.
    pub space: Arc<Space>,
    /// Everything that changes.
    pub state: IrqMutex<ProcessState>,
}

/// Every process that has not been waited for, by pid.
static PROCESSES: IrqMutex<BTreeMap<u32, Arc<Process>>> = IrqMutex::new(BTreeMap::new());
/// The process each user thread belongs to.
static BY_THREAD: IrqMutex<BTreeMap<ThreadId, u32>> = IrqMutex::new(BTreeMap::new());
/// The next pid (1 is the first program run).
static NEXT_PID: AtomicU32 = AtomicU32::new(1);

/// Why [`spawn`] could not start a program.
#[derive(Debug)]
pub enum SpawnError {
    /// No such file in the initrd.
    NotFound(String),
    /// The file is not a program this kernel runs, or its space could not be built.
    Load(LoadError),
}

impl SpawnError {
    /// The error number `execve` would return.
    pub fn errno(&self) -> Errno {
        match self {
            SpawnError::NotFound(_) => Errno::ENOENT,
            SpawnError::Load(error) => error.errno(),
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotFound(path) => write!(f, "{path}: no such file in the initrd"),
            SpawnError::Load(error @ LoadError::Exec(exec::ExecError::OutsideUserSpace { start, .. }))
                if *start < layout::user_bottom() =>
            {
                write!(
                    f,
                    "{error}: below {:#x} lies the kernel's own map in every address space here, so a program \
                     linked at a fixed low address (gcc -static links at 0x400000) cannot load; \
                     build it position-independent (gcc -static-pie)",
                    layout::user_bottom()
                )
            }
            SpawnError::Load(error) => write!(f, "{error}"),
        }
    }
}

/// The initrd file a path names: `/bin/hello` is the initrd's `bin/hello`;
/// a bare name without a slash is looked up in `bin/` too.
pub fn find_program(path: &str) -> Result<(&'static fs::File, String), SpawnError> {
    let trimmed = path.trim_start_matches('/');
    if let Ok(file) = fs::find(trimmed) {
        return Ok((file, alloc::format!("/{trimmed}")));
    }
    if !trimmed.contains('/') {
        let in_bin = alloc::format!("bin/{trimmed}");
        if let Ok(file) = fs::find(&in_bin) {
            return Ok((file, alloc::format!("/{in_bin}")));
        }
    }
    Err(SpawnError::NotFound(String::from(path)))
}

/// A started process and the right to wait for it.
pub struct Running {
    /// The process.
    pub process: Arc<Process>,
    thread: JoinHandle,
}

/// Starts the program at `path` with arguments `argv` (`argv[0]` included)
/// in a new process.
pub fn spawn(path: &str, argv: &[&[u8]]) -> Result<Running, SpawnError> {
    let (file, full_path) = find_program(path)?;
    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    let program = full_path.rsplit('/').next().unwrap_or("program");
    let envp: [&[u8]; 1] = [b"PATH=/bin"];
    let loaded = load::load(file, &load::space_name(program, pid), argv, &envp, full_path.as_bytes())
        .map_err(SpawnError::Load)?;
    let state = ProcessState {
        brk_start: loaded.brk,
        brk: loaded.brk,
        files: FileTable::with_console(),
        rlimits: default_rlimits(),
        signal_mask: 0,
        pending: 0,
        actions: [SigAction::default(); 64],
        clear_child_tid: 0,
        robust_list: (0, 0),
        start: Some((loaded.entry, loaded.image)),
        exit: None,
    };
    let process = Arc::new(Process { pid, path: full_path.clone(), space: loaded.space, state: IrqMutex::new(state) });
    PROCESSES.lock().insert(pid, process.clone());
    let thread = thread::spawn(program, move || process_main(pid));
    Ok(Running { process, thread })
}

/// Waits for `running` to end, destroys its address space and returns how
/// it ended.
pub fn wait(running: Running) -> ExitStatus {
    running.thread.join();
    let process = running.process;
    let status = process.state.lock().exit.unwrap_or(ExitStatus::Exited(0));
    PROCESSES.lock().remove(&process.pid);
    // The thread left the space before it ended; a CPU may still have it
    // loaded for the few instructions of its next switch.
    let name = String::from(process.space.name());
    for _ in 0..10_000 {
        match address_space::destroy(&name) {
            Err(aspace::AspaceError::Busy { .. }) => thread::yield_now(),
            Err(error) => {
                crate::println!("run: the address space '{name}' could not be destroyed: {error}");
                break;
            }
            Ok(()) => break,
        }
    }
    status
}

/// The processes that have not been waited for.
pub fn all() -> Vec<Arc<Process>> {
    PROCESSES.lock().values().cloned().collect()
}

/// The process the running thread belongs to, if it runs a program.
pub fn current() -> Option<Arc<Process>> {
    let me = thread::current().id();
    let pid = *BY_THREAD.lock().get(&me)?;
    PROCESSES.lock().get(&pid).cloned()
}

/// The process's thread: moves into its space, builds the initial stack and
/// runs the program until it ends. Returns 0 (the status is in the process).
fn process_main(pid: u32) -> u64 {
    let Some(process) = PROCESSES.lock().get(&pid).cloned() else { return 0 };
    let me = thread::current().id();
    BY_THREAD.lock().insert(me, pid);
    let started = start(&process);
    if let Err(info) = started {
        process.state.lock().exit = Some(ExitStatus::Killed { info, rip: 0 });
    }
    BY_THREAD.lock().remove(&me);
    let _ = address_space::move_current_thread(None);
    0
}

/// Enters the process's space, copies the initial stack and runs the
/// program; `Err` when the stack cannot be written (the process gets
/// SIGSEGV, as on Linux when `execve` cannot build the stack).
fn start(process: &Arc<Process>) -> Result<(), SignalInfo> {
    let segv = SignalInfo { signal: super::signal::Signal::SIGSEGV, code: 0, addr: 0 };
    let (entry, image) = process.state.lock().start.take().ok_or(segv)?;
    address_space::move_current_thread(Some(&process.space)).map_err(|_| segv)?;
    copy::write(image.rsp(), image.bytes()).map_err(|_| segv)?;
    let rsp = image.rsp();
    drop(image);
    // SAFETY: the thread runs in the program's space, which maps `entry`
    // and the stack for ring 3.
    unsafe { thread::run_user(entry, rsp, 0) };
    Ok(())
}

/// Ends the running process with `status`: records it and leaves user
/// mode; never returns to the program.
pub fn exit_current(status: ExitStatus) -> ! {
    if let Some(process) = current() {
        let mut state = process.state.lock();
        state.exit.get_or_insert(status);
    }
    thread::leave_user(0)
}
