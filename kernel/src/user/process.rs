//! Processes: a program running in ring 3 in an address space of its own.
//!
//! A process is one `paging` address space (see [`super::load`]), one
//! thread, its open files and its memory bookkeeping (the program break).
//! [`spawn`] builds the space and starts the thread; the thread moves into
//! the space, copies the initial stack in through [`super::copy`] and runs
//! the program with `thread::run_user` until `exit_group` or a fatal signal
//! ends it. Then the thread leaves the space, destroys it and ends the
//! process ([`end`]): its children are orphaned (their parent becomes the
//! nearest living ancestor that is a child subreaper (`PR_SET_CHILD_SUBREAPER`),
//! else the init, pid 1, while one runs ([`spawn_init`]), which reaps them
//! with `wait4` as Linux's init does; else the kernel, pid 0, which reaps
//! them as they end; each gets its parent-death signal), its parent gets
//! `SIGCHLD`,
//! and it stays a zombie until its parent reaps it with `wait4` (a process
//! the shell started is reaped by the shell's [`wait`]).
//!
//! [`fork`] clones the running process: the address space copy-on-write
//! (`address_space::fork`), the open files shared, signal actions and mask
//! copied; the child's thread starts from the parent's system-call frame
//! with RAX = 0.

use super::copy;
use super::errno::Errno;
use super::fdtable::FileTable;
use super::layout;
use super::load::{self, LoadError};
use super::sigstate::{
    bit, code, JobReport, JobState, ProcessOptions, Sent, SigAction, Signal, SignalExtras, SignalInfo, SA_NOCLDSTOP,
    SA_NOCLDWAIT, SIG_IGN,
};
use super::timerstate::{PosixTimer, Timers, Usage};
use crate::address_space::{self, Space};
use crate::arch::frame::TrapFrame;
use crate::fs;
use crate::sync::IrqMutex;
use crate::thread::{self, JoinHandle, ThreadId};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
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

impl ExitStatus {
    /// The status `wait4` reports (`WEXITSTATUS` in bits 8..16, or
    /// `WTERMSIG` in the low 7 bits).
    pub fn wait_status(self) -> u32 {
        match self {
            ExitStatus::Exited(code) => (code as u32) << 8,
            ExitStatus::Killed { info, .. } => info.signal.0 & 0x7f,
        }
    }
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
    limits[RLIMIT_NOFILE] = RLimit { cur: super::fdtable::MAX_FILES as u64, max: super::fdtable::MAX_FILES as u64 };
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
    /// Each thread's blocked signals (`rt_sigprocmask`), bit `n - 1` for
    /// signal `n`, by tid: see [`ProcessState::mask`].
    pub masks: BTreeMap<u32, u64>,
    /// Signals sent to the process and not delivered yet (any of its
    /// threads that does not block one may take it).
    pub pending: u64,
    /// Signals sent to one thread (`tkill`, `tgkill`) and not delivered
    /// yet, by tid: only that thread takes them.
    pub thread_pending: BTreeMap<u32, u64>,
    /// Each signal's action (`rt_sigaction`), signal `n` at `n - 1`.
    pub actions: [SigAction; 64],
    /// The threads, by tid (the first one's tid is the pid), each with its
    /// `set_tid_address` word (0: none), zeroed and woken when it ends.
    pub threads: BTreeMap<u32, u64>,
    /// `set_robust_list`: the head and its length.
    pub robust_list: (u64, u64),
    /// The entry point and initial stack, until the thread starts.
    start: Option<(u64, StackImage)>,
    /// Set once the process has ended.
    pub exit: Option<ExitStatus>,
    /// The alternate signal stack, each pending signal's sender, the
    /// process group and session, the trap that ended the process
    /// (`user::signal`).
    pub signal_extras: SignalExtras,
    /// The parent's pid (0: the kernel: the shell or the boot started it,
    /// or its parent ended with no init running; [`INIT_PID`]: the init
    /// adopted it).
    pub parent: u32,
    /// The shell's `run` waits for this process (so it is not reaped at exit).
    pub shell_waits: bool,
    /// True once the process's thread has finished with it: a zombie.
    pub ended: bool,
    /// The signal the parent gets when this process ends (`SIGCHLD`, or the
    /// low byte of `clone`'s flags).
    pub exit_signal: u32,
    /// What the process used and no longer counts elsewhere: the CPU time
    /// of its threads that ended, the faults of the spaces it left
    /// (`execve`, exit). See [`usage`].
    pub used: Usage,
    /// What the children it waited for used, with theirs (`RUSAGE_CHILDREN`).
    pub children_used: Usage,
    /// The interval timers (`alarm`, `setitimer`).
    pub timers: Timers,
    /// The POSIX timers (`timer_create`), by id.
    pub posix_timers: BTreeMap<i32, PosixTimer>,
    /// Stopped or not, and the stop or continue the parent has not waited
    /// for (`user::jobs`).
    pub job: JobState,
    /// What `prctl` set: the name, the parent-death signal, dumpable,
    /// no-new-privs, child subreaper.
    pub options: ProcessOptions,
}

impl ProcessState {
    /// The running thread's blocked signals (0 when it is not one of this
    /// process's threads).
    pub fn mask(&self) -> u64 {
        current_tid().and_then(|tid| self.masks.get(&tid).copied()).unwrap_or(0)
    }

    /// The signals the running thread may take: those sent to the process
    /// and those sent to it alone.
    pub fn pending_here(&self) -> u64 {
        let own = current_tid().and_then(|tid| self.thread_pending.get(&tid).copied()).unwrap_or(0);
        self.pending | own
    }

    /// True when any signal waits, for the process or for one of its threads.
    pub fn any_pending(&self) -> bool {
        self.pending != 0 || self.thread_pending.values().any(|&signals| signals != 0)
    }

    /// Takes `signal` from the running thread's own pending signals if it
    /// is there, else from the process's.
    pub fn take_pending(&mut self, signal: u32) {
        if let Some(own) = current_tid().and_then(|tid| self.thread_pending.get_mut(&tid)) {
            if *own & bit(signal) != 0 {
                *own &= !bit(signal);
                return;
            }
        }
        self.pending &= !bit(signal);
    }

    /// Discards `signals` wherever they are pending (for the process and
    /// for each thread), as Linux's `prepare_signal` flushes stop and
    /// continue signals from every queue.
    pub fn discard_pending(&mut self, signals: u64) {
        self.pending &= !signals;
        for own in self.thread_pending.values_mut() {
            *own &= !signals;
        }
    }

    /// The running thread's blocked signals, to change.
    pub fn mask_mut(&mut self) -> &mut u64 {
        let tid = current_tid().unwrap_or(0);
        self.masks.entry(tid).or_insert(0)
    }

    /// True when a blocked system call of the running thread should give
    /// up (`ERESTARTSYS`): a signal would be delivered now (pending, not
    /// blocked, not ignored), or the process is stopped. Pending signals
    /// that are ignored are discarded on the way, as Linux never queues them.
    pub fn interrupted(&mut self) -> bool {
        if self.job.stopped {
            return true;
        }
        let pending = self.pending_here();
        if pending == 0 {
            return false;
        }
        let mut ready = pending & !self.mask();
        let mut bits = ready;
        while bits != 0 {
            let signal = bits.trailing_zeros() + 1;
            bits &= bits - 1;
            if self.actions[signal as usize - 1].ignores(Signal(signal)) {
                self.take_pending(signal);
                ready &= !bit(signal);
            }
        }
        ready != 0
    }
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
    /// Set when the whole process is ending (`exit_group`, a fatal signal):
    /// every thread leaves at its next way back to ring 3. Read without a
    /// lock on the trap path.
    pub exiting: AtomicBool,
    /// The arguments the program was started with, each followed by a NUL
    /// (`/proc/self/cmdline`).
    pub cmdline: Vec<u8>,
    /// When the process started (`fork`; `execve` keeps it), in nanoseconds
    /// since boot.
    pub started: u64,
    /// `/proc/self/oom_score_adj` (-1000..=1000; kept by `fork` and
    /// `execve`, as Linux keeps it).
    pub oom_score_adj: AtomicI32,
    /// False only when no signal is pending, the process is not stopped and
    /// it is not ending: set under the state's lock by whatever makes a
    /// signal pending, stops the process or ends it ([`Process::note_signal`]),
    /// cleared under it by [`super::signal::deliver_pending`] when it finds
    /// none of them. The way back from a system call skips the lock while it
    /// is false, and a trap's way back to ring 3 skips the user layer's
    /// check (each thread of the process holds it as its attention flag,
    /// `thread::set_user_tag`).
    pub signal_hint: AtomicBool,
}

impl Process {
    /// Notes that a signal may be pending, the process stopped or ending (see
    /// [`Process::signal_hint`]); called with the state's lock held.
    pub fn note_signal(&self) {
        self.signal_hint.store(true, Ordering::Release);
    }

    /// True once the whole process is ending.
    pub fn exiting(&self) -> bool {
        self.exiting.load(Ordering::SeqCst)
    }

    /// How many threads the process has.
    pub fn thread_count(&self) -> usize {
        self.state.lock().threads.len()
    }
}

/// Every process that has not been waited for, by pid.
static PROCESSES: IrqMutex<BTreeMap<u32, Arc<Process>>> = IrqMutex::new(BTreeMap::new());
/// The process (pid) and the user thread (tid) each kernel thread runs.
static BY_THREAD: IrqMutex<BTreeMap<ThreadId, (u32, u32)>> = IrqMutex::new(BTreeMap::new());
/// The next pid (1 is the first program run: the init, when one runs).
static NEXT_PID: AtomicU32 = AtomicU32::new(1);
/// The init's pid, [`INIT_PID`], once [`spawn_init`] started it (0: no init).
static INIT: AtomicU32 = AtomicU32::new(0);
/// The pid of the init (`init=` on the kernel command line).
pub const INIT_PID: u32 = 1;

/// Why [`spawn`] could not start a program.
#[derive(Debug)]
pub enum SpawnError {
    /// No such file in the initrd.
    NotFound(String),
    /// The file is not a program this kernel runs, or its space could not be built.
    Load(LoadError),
    /// [`spawn_init`] after another program took pid 1.
    InitPidTaken,
}

impl SpawnError {
    /// The error number `execve` would return.
    pub fn errno(&self) -> Errno {
        match self {
            SpawnError::NotFound(_) => Errno::ENOENT,
            SpawnError::Load(error) => error.errno(),
            SpawnError::InitPidTaken => Errno::EAGAIN,
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotFound(path) => write!(f, "{path}: no such file in the initrd"),
            SpawnError::Load(error) => write!(f, "{error}"),
            SpawnError::InitPidTaken => write!(f, "pid {INIT_PID} is taken: a program ran before the init"),
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

/// The arguments `argv` as `/proc/self/cmdline` shows them: each followed
/// by a NUL.
fn cmdline_of(argv: &[&[u8]]) -> Vec<u8> {
    argv.iter().flat_map(|arg| arg.iter().copied().chain([0])).collect()
}

/// Starts the program at `path` with arguments `argv` (`argv[0]` included)
/// in a new process.
pub fn spawn(path: &str, argv: &[&[u8]]) -> Result<Running, SpawnError> {
    spawn_with(path, argv, || Ok(NEXT_PID.fetch_add(1, Ordering::Relaxed)))
}

/// Starts the program at `path` as the init: process [`INIT_PID`], which
/// adopts the orphans of the processes that end while it runs. Only the
/// first program started since boot can be the init
/// ([`SpawnError::InitPidTaken`] otherwise).
pub fn spawn_init(path: &str, argv: &[&[u8]]) -> Result<Running, SpawnError> {
    let running = spawn_with(path, argv, || {
        NEXT_PID
            .compare_exchange(INIT_PID, INIT_PID + 1, Ordering::SeqCst, Ordering::SeqCst)
            .map(|_| INIT_PID)
            .map_err(|_| SpawnError::InitPidTaken)
    })?;
    INIT.store(INIT_PID, Ordering::SeqCst);
    Ok(running)
}

/// [`spawn`] with the pid `take_pid` gives, taken once the program is found.
fn spawn_with(
    path: &str,
    argv: &[&[u8]],
    take_pid: impl FnOnce() -> Result<u32, SpawnError>,
) -> Result<Running, SpawnError> {
    let (file, full_path) = find_program(path)?;
    let pid = take_pid()?;
    let program = full_path.rsplit('/').next().unwrap_or("program");
    let envp: [&[u8]; 1] = [b"PATH=/bin"];
    let loaded = load::load(file, &load::space_name(program, pid), argv, &envp, full_path.as_bytes())
        .map_err(SpawnError::Load)?;
    let state = ProcessState {
        brk_start: loaded.brk,
        brk: loaded.brk,
        files: FileTable::with_console(),
        rlimits: default_rlimits(),
        masks: BTreeMap::from([(pid, 0)]),
        pending: 0,
        thread_pending: BTreeMap::new(),
        actions: [SigAction::default(); 64],
        threads: BTreeMap::from([(pid, 0)]),
        robust_list: (0, 0),
        start: Some((loaded.entry, loaded.image)),
        signal_extras: SignalExtras::leader(pid),
        exit: None,
        parent: 0,
        shell_waits: true,
        ended: false,
        exit_signal: SIGCHLD,
        used: Usage::default(),
        children_used: Usage::default(),
        timers: Timers::default(),
        posix_timers: BTreeMap::new(),
        job: JobState::default(),
        options: ProcessOptions::default(),
    };
    let process = Arc::new(Process {
        pid,
        path: full_path.clone(),
        space: loaded.space,
        state: IrqMutex::new(state),
        exiting: AtomicBool::new(false),
        signal_hint: AtomicBool::new(false),
        cmdline: cmdline_of(argv),
        started: crate::arch::tsc::nanos_since_boot(),
        oom_score_adj: AtomicI32::new(0),
    });
    PROCESSES.lock().insert(pid, process.clone());
    let thread = thread::spawn(program, move || process_main(pid));
    Ok(Running { process, thread })
}

/// Waits for `running` to end, reaps it and returns how it ended. (Its
/// children, if it leaves any running, go on as orphans.)
pub fn wait(running: Running) -> ExitStatus {
    running.thread.join();
    // The first thread is done; the process ends with its last thread.
    let pid = running.process.pid;
    EVENTS.wait_until(|| {
        let process = PROCESSES.lock().get(&pid).cloned();
        process.is_none_or(|process| process.state.lock().ended).then_some(())
    });
    // The process now under its pid (an `execve` replaces the record).
    let process = PROCESSES.lock().remove(&running.process.pid);
    process.and_then(|process| process.state.lock().exit).unwrap_or(ExitStatus::Exited(0))
}

/// `SIGCHLD`.
const SIGCHLD: u32 = 17;

/// Woken whenever a process ends, stops or continues, or a signal is made
/// pending: parents blocked in `wait4` and stopped threads look again.
static EVENTS: thread::WaitQueue = thread::WaitQueue::new();

/// Blocks until `ready` returns a value (checked with the event queue's lock
/// held, so no wake is lost between the check and the block; it may take
/// process locks but not the queue's), and returns it. The conditions are
/// made true by whoever wakes the queue afterwards ([`post`], [`job_change`]).
pub fn wait_for_event<T>(ready: impl FnMut() -> Option<T>) -> T {
    EVENTS.wait_until(ready)
}

/// Makes `signal` pending for `target` (for its thread `thread` alone,
/// when given) with `sent` as its `siginfo`, and wakes the threads that
/// wait (a blocked call, a futex wait, a stopped thread) so that they look
/// again. The plain mechanism, under the rules `user::signal::send`
/// applies; do not call it with the process table locked.
pub fn post(target: &Process, thread: Option<u32>, signal: u32, sent: Sent) {
    if signal == 0 || signal > 64 {
        return;
    }
    {
        let mut state = target.state.lock();
        match thread {
            Some(tid) if state.threads.contains_key(&tid) => {
                *state.thread_pending.entry(tid).or_insert(0) |= bit(signal)
            }
            // A thread that has ended (the leader, found by the pid) takes
            // nothing: the signal is lost, as in Linux's ended leader's
            // own queue.
            Some(_) => return,
            None => state.pending |= bit(signal),
        }
        state.signal_extras.sent[signal as usize - 1] = sent;
        target.note_signal();
    }
    super::futex::nudge_all();
    EVENTS.wake_all();
}

/// Changes the job state of `child` with `change` and, when it says the
/// state changed, makes `SIGCHLD` pending for the parent with `notice`
/// (unless the parent ignores it or asked for none with `SA_NOCLDSTOP`, as
/// Linux's `do_notify_parent_cldstop`). Both happen under the process
/// table's lock, which a parent's wait holds while it looks, so that it
/// never sees the one without the other; then the waiters are woken.
/// Returns what `change` said.
pub fn job_change(child: &Process, change: impl FnOnce(&mut ProcessState) -> bool, notice: Sent) -> bool {
    let table = PROCESSES.lock();
    let (changed, parent) = {
        let mut state = child.state.lock();
        let changed = change(&mut state);
        if changed {
            // A stop or a continuation: the way back looks again.
            child.note_signal();
        }
        (changed, state.parent)
    };
    if changed {
        if let Some(parent) = table.get(&parent).filter(|parent| parent.pid != child.pid) {
            let mut state = parent.state.lock();
            let action = state.actions[SIGCHLD as usize - 1];
            if action.handler != SIG_IGN && action.flags & SA_NOCLDSTOP == 0 {
                state.pending |= bit(SIGCHLD);
                state.signal_extras.sent[SIGCHLD as usize - 1] = notice;
                parent.note_signal();
            }
        }
    }
    drop(table);
    if changed {
        super::futex::nudge_all();
        EVENTS.wake_all();
    }
    changed
}

/// True when `process` is the init (pid [`INIT_PID`], started by
/// [`spawn_init`]): signals whose action is the default do not reach it.
pub fn is_init(process: &Process) -> bool {
    process.pid == INIT_PID && INIT.load(Ordering::SeqCst) == INIT_PID
}

/// Destroys `space` once no CPU has it loaded (the thread that left it may
/// still be switching away on another CPU for a few instructions).
fn destroy_space(space: &Space) {
    let name = String::from(space.name());
    for _ in 0..10_000 {
        match address_space::destroy(&name) {
            Err(aspace::AspaceError::Busy { .. }) => thread::yield_now(),
            Err(error) => {
                crate::println!("process: the address space '{name}' could not be destroyed: {error}");
                return;
            }
            Ok(()) => return,
        }
    }
    crate::println!("process: the address space '{name}' stayed busy; left in place");
}

/// The end of `process`, on its own thread, after it left its space:
/// destroys the space, orphans its children, tells its parent, and reaps
/// itself when nobody will.
fn end(process: &Arc<Process>) {
    if process.exiting() {
        ENDING.fetch_sub(1, Ordering::SeqCst);
    }
    let faults = faults_of(&process.space);
    let peak = peak_of(&process.space);
    {
        let mut state = process.state.lock();
        state.used.minor_faults += faults;
        state.used.peak_pages = state.used.peak_pages.max(peak);
        // Its timers end with it.
        state.timers = Timers::default();
        state.posix_timers.clear();
    }
    destroy_space(&process.space);
    let (parent, shell_waits, exit_signal) = {
        let mut state = process.state.lock();
        state.exit.get_or_insert(ExitStatus::Exited(0));
        // Linux's exit_files: the descriptors close at exit, not when the
        // zombie is reaped (a pipe's reader sees the end of file now).
        state.files.close_all();
        (state.parent, state.shell_waits, state.exit_signal)
    };
    let ended_status = process.state.lock().exit.unwrap_or(ExitStatus::Exited(0));
    let mut table = PROCESSES.lock();
    // A zombie from here, and its parent's signal pending below, both under
    // the table's lock: a parent's wait never sees one without the other.
    process.state.lock().ended = true;
    // Children go to the nearest living ancestor that asked to be a
    // subreaper (`PR_SET_CHILD_SUBREAPER`), else to the init while it runs
    // (it reaps them with wait4, and hears of those already ended by
    // SIGCHLD), else to the kernel, which reaps those already ended now.
    let adopter = new_parent(&table, process);
    let mut orphans_ended = Vec::new();
    let mut death_signals = Vec::new();
    for child in table.values() {
        let mut state = child.state.lock();
        if state.parent == process.pid {
            state.parent = adopter;
            if state.ended && !state.shell_waits {
                orphans_ended.push(child.pid);
            }
            if state.options.pdeath_signal != 0 && !state.ended {
                death_signals.push((child.clone(), state.options.pdeath_signal));
            }
        }
    }
    let mut notices: Vec<(Arc<Process>, u32, Sent)> = Vec::new();
    if adopter == 0 {
        for pid in orphans_ended {
            table.remove(&pid);
        }
    } else if let Some(reaper) = table.get(&adopter).filter(|_| !orphans_ended.is_empty()) {
        let sent = Sent { code: code::CLD_EXITED, sender: orphans_ended[0], status: 0 };
        notices.push((reaper.clone(), SIGCHLD, sent));
    }
    // Linux's do_notify_parent: a parent whose SIGCHLD is ignored or has
    // SA_NOCLDWAIT leaves no zombie to wait for (the child is reaped now;
    // with SIG_IGN no signal is sent either).
    let (auto_reap, ignored) = match table.get(&parent) {
        Some(parent) if parent.pid != process.pid && exit_signal == SIGCHLD => {
            let action = parent.state.lock().actions[SIGCHLD as usize - 1];
            (action.handler == SIG_IGN || action.flags & SA_NOCLDWAIT != 0, action.handler == SIG_IGN)
        }
        _ => (false, false),
    };
    if auto_reap {
        table.remove(&process.pid);
    }
    match table.get(&parent) {
        Some(parent) if ignored && parent.pid != process.pid => {}
        Some(parent) if parent.pid != process.pid && (1..=64).contains(&exit_signal) => {
            let sent = match ended_status {
                ExitStatus::Exited(status) => {
                    Sent { code: code::CLD_EXITED, sender: process.pid, status: status as i32 }
                }
                ExitStatus::Killed { info, .. } => {
                    Sent { code: code::CLD_KILLED, sender: process.pid, status: info.signal.0 as i32 }
                }
            };
            let mut state = parent.state.lock();
            state.pending |= bit(exit_signal);
            state.signal_extras.sent[exit_signal as usize - 1] = sent;
            parent.note_signal();
        }
        Some(parent) if parent.pid != process.pid => {}
        // The kernel is the parent: nobody waits but the shell, if it does.
        _ if !shell_waits => {
            table.remove(&process.pid);
        }
        _ => {}
    }
    drop(table);
    for (target, signal, sent) in notices {
        post(&target, None, signal, sent);
    }
    // `PR_SET_PDEATHSIG`: as Linux's `reparent_leader`, from the parent.
    for (child, signal) in death_signals {
        post(&child, None, signal, Sent { code: code::SI_USER, sender: process.pid, status: 0 });
    }
    super::futex::nudge_all();
    EVENTS.wake_all();
}

/// Who adopts the children of `process` as it ends: the nearest living
/// ancestor that is a child subreaper, else the init while it runs, else 0
/// (the kernel).
fn new_parent(table: &BTreeMap<u32, Arc<Process>>, process: &Process) -> u32 {
    let mut ancestor = process.state.lock().parent;
    // A bounded walk: a parent chain is short, and never a circle.
    for _ in 0..1024 {
        let Some(candidate) = table.get(&ancestor).filter(|candidate| candidate.pid != process.pid) else { break };
        let state = candidate.state.lock();
        if state.options.child_subreaper && !state.ended && !candidate.exiting() {
            return candidate.pid;
        }
        ancestor = state.parent;
    }
    let init = INIT.load(Ordering::SeqCst);
    match table.get(&init) {
        Some(init) if init.pid != process.pid && !init.state.lock().ended => init.pid,
        _ => 0,
    }
}

/// Which children a wait looks at (`wait4`'s pid, `waitid`'s idtype and id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitTarget {
    /// Any child.
    Any,
    /// The child with this pid.
    Pid(u32),
    /// The children in this process group.
    Group(u32),
}

/// What a wait accepts (`WEXITED`, `WSTOPPED`/`WUNTRACED`, `WCONTINUED`,
/// `WNOHANG`, `WNOWAIT`).
#[derive(Clone, Copy, Debug, Default)]
pub struct WaitOptions {
    /// An ended child (reaped unless `no_wait`).
    pub exited: bool,
    /// A child that stopped and was not waited for since.
    pub stopped: bool,
    /// A child that continued and was not waited for since.
    pub continued: bool,
    /// Return at once when no child is ready.
    pub no_hang: bool,
    /// Leave the child as it is (`WNOWAIT`): a later wait sees it again.
    pub no_wait: bool,
}

/// What happened to the child a wait found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEvent {
    /// It ended so.
    Ended(ExitStatus),
    /// A signal stopped it.
    Stopped(u32),
    /// `SIGCONT` continued it.
    Continued,
}

/// A child a wait found: its pid, what happened, and (for an ended one)
/// what it and its waited children used.
#[derive(Clone)]
pub struct Waited {
    /// The child's record (its credentials give `si_uid`).
    pub child: Arc<Process>,
    /// The child's pid.
    pub pid: u32,
    /// What happened.
    pub event: WaitEvent,
    /// Its usage with its waited children's (zero unless it ended).
    pub used: Usage,
}

/// The wait of `wait4` and `waitid`, as Linux's `do_wait`: the first child
/// of `process` that `target` names and that has something `options`
/// accept; an ended child is reaped (its usage added to the parent's
/// children's) unless `no_wait`. `ECHILD` when no child matches; `Ok(None)`
/// with `no_hang` when none is ready; `ERESTARTSYS` when a signal comes
/// first (or the process is stopped) while it blocks.
pub fn wait_child(process: &Process, target: WaitTarget, options: WaitOptions) -> Result<Option<Waited>, Errno> {
    let me = process.pid;
    let waited = EVENTS.wait_until(|| {
        let mut table = PROCESSES.lock();
        let mut any = false;
        let mut found = None;
        for child in table.values() {
            let mut state = child.state.lock();
            let matches = match target {
                WaitTarget::Any => true,
                WaitTarget::Pid(pid) => child.pid == pid,
                WaitTarget::Group(pgid) => state.signal_extras.pgid == pgid,
            };
            if state.parent != me || !matches {
                continue;
            }
            any = true;
            if state.ended {
                if options.exited {
                    // An ended process's own usage is all in `used`.
                    let used = state.used.plus(state.children_used);
                    let exit = state.exit.unwrap_or(ExitStatus::Exited(0));
                    found = Some(Waited { child: child.clone(), pid: child.pid, event: WaitEvent::Ended(exit), used });
                    break;
                }
                continue;
            }
            let event = match state.job.report {
                Some(JobReport::Stopped(signal)) if options.stopped && state.job.stopped => WaitEvent::Stopped(signal),
                Some(JobReport::Continued) if options.continued => WaitEvent::Continued,
                _ => continue,
            };
            if !options.no_wait {
                state.job.report = None;
            }
            found = Some(Waited { child: child.clone(), pid: child.pid, event, used: Usage::default() });
            break;
        }
        if !any {
            return Some(Err(Errno::ECHILD));
        }
        if let Some(waited) = found {
            if matches!(waited.event, WaitEvent::Ended(_)) && !options.no_wait {
                table.remove(&waited.pid);
            }
            return Some(Ok(Some(waited)));
        }
        drop(table);
        if options.no_hang {
            return Some(Ok(None));
        }
        process.state.lock().interrupted().then_some(Err(Errno::ERESTARTSYS))
    })?;
    if let Some(waited) =
        waited.as_ref().filter(|waited| matches!(waited.event, WaitEvent::Ended(_)) && !options.no_wait)
    {
        let mut state = process.state.lock();
        state.children_used = state.children_used.plus(waited.used);
    }
    Ok(waited)
}
/// `struct rusage` (144 bytes): the counters this kernel keeps are filled
/// in (CPU times, the resident set's high-water mark, minor faults); the
/// rest are 0.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss: i64,
    ixrss: i64,
    idrss: i64,
    isrss: i64,
    minflt: i64,
    majflt: i64,
    rest: [i64; 8],
}

impl From<Usage> for Rusage {
    fn from(usage: Usage) -> Rusage {
        // A `struct timeval`: seconds and microseconds.
        let timeval = |nanos: u64| [(nanos / 1_000_000_000) as i64, (nanos % 1_000_000_000 / 1000) as i64];
        Rusage {
            utime: timeval(usage.user),
            stime: timeval(usage.system),
            minflt: usage.minor_faults as i64,
            // In kilobytes.
            maxrss: (usage.peak_pages * 4) as i64,
            ..Rusage::default()
        }
    }
}

/// The faults handled in `space` so far.
fn faults_of(space: &Space) -> u64 {
    address_space::paging_of(&space.lock()).map_or(0, |paging| paging.counters().faults_handled)
}

/// The most pages `space` has had resident at once.
fn peak_of(space: &Space) -> u64 {
    address_space::paging_of(&space.lock()).map_or(0, |paging| paging.counters().peak_anonymous_frames)
}

/// What `process` has used so far (`RUSAGE_SELF`): the CPU time of its
/// threads, running and ended, and its faults, in every space it had.
pub fn usage(process: &Process) -> Usage {
    let threads: Vec<ThreadId> =
        BY_THREAD.lock().iter().filter(|(_, &(pid, _))| pid == process.pid).map(|(&thread, _)| thread).collect();
    let mut live =
        Usage { minor_faults: faults_of(&process.space), peak_pages: peak_of(&process.space), ..Usage::default() };
    for thread in threads {
        if let Some((user, system)) = thread::cpu_time(thread) {
            live.user += user;
            live.system += system;
        }
    }
    process.state.lock().used.plus(live)
}

/// What the running thread has used (`RUSAGE_THREAD`): its CPU time, and
/// its process's faults when it is the process's only thread (faults are
/// not counted by thread).
pub fn thread_usage(process: &Process) -> Usage {
    let (user, system) = thread::current().cpu_time();
    let minor_faults = if process.thread_count() == 1 { usage(process).minor_faults } else { 0 };
    Usage { user, system, minor_faults, peak_pages: usage(process).peak_pages }
}

/// `clone` flags this kernel honours for a new process (no `CLONE_VM`: that
/// is a thread, not supported yet).
const CLONE_SETTLS: u64 = 0x0008_0000;
const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
const CSIGNAL: u64 = 0xff;

/// `fork`, `vfork` (the same here: the child gets a copy, and the parent is
/// not suspended) and `clone` without `CLONE_VM`: a child process whose
/// space is a copy-on-write clone of `process`'s, starting from `frame`
/// (the parent's system call) with RAX = 0; `prepare` sees the child
/// before its thread starts (the memory layer drops its locks: a child
/// inherits none). Returns the child's pid.
#[allow(clippy::too_many_arguments)]
pub fn fork(
    process: &Arc<Process>,
    frame: &TrapFrame,
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
    prepare: impl FnOnce(&Process),
) -> Result<u64, Errno> {
    const SUPPORTED: u64 = CSIGNAL | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID;
    if flags & !SUPPORTED != 0 {
        return Err(Errno::ENOSYS); // threads and namespaces: not yet
    }
    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    let program = process.path.rsplit('/').next().unwrap_or("program");
    let space = address_space::fork(&process.space, &load::space_name(program, pid)).map_err(|_| Errno::ENOMEM)?;
    // Later guard pages are unmapped in the child too (one made while the
    // fork copied the regions may be missed).
    if address_space::harden::is_hardened(process.space.id()) {
        address_space::harden::mark_hardened(space.id());
    }
    let state = {
        let parent = process.state.lock();
        ProcessState {
            brk_start: parent.brk_start,
            brk: parent.brk,
            files: parent.files.clone(),
            rlimits: parent.rlimits,
            masks: BTreeMap::from([(pid, parent.mask())]),
            pending: 0,
            thread_pending: BTreeMap::new(),
            actions: parent.actions,
            threads: BTreeMap::from([(pid, if flags & CLONE_CHILD_CLEARTID != 0 { child_tid } else { 0 })]),
            robust_list: (0, 0),
            start: None,
            signal_extras: parent.signal_extras.for_child(),
            exit: None,
            parent: process.pid,
            shell_waits: false,
            ended: false,
            exit_signal: (flags & CSIGNAL) as u32,
            // A child starts with nothing used and no timer (Linux's rules).
            used: Usage::default(),
            children_used: Usage::default(),
            timers: Timers::default(),
            posix_timers: BTreeMap::new(),
            job: JobState::default(),
            options: parent.options.for_child(),
        }
    };
    let child = Arc::new(Process {
        pid,
        path: process.path.clone(),
        space,
        state: IrqMutex::new(state),
        exiting: AtomicBool::new(false),
        signal_hint: AtomicBool::new(false),
        cmdline: process.cmdline.clone(),
        started: crate::arch::tsc::nanos_since_boot(),
        oom_score_adj: AtomicI32::new(process.oom_score_adj.load(Ordering::Relaxed)),
    });
    prepare(&child);
    PROCESSES.lock().insert(pid, child);
    if flags & CLONE_PARENT_SETTID != 0 {
        // In the parent's memory (shared by both until a write copies it).
        let _ = copy::write_value(parent_tid, &pid);
    }
    let mut start = alloc::boxed::Box::new(*frame);
    start.rax = 0;
    // The parent's MXCSR, which the child's thread loads on its way out.
    start.sse.mxcsr = crate::arch::sse::mxcsr_after(frame.sse.mxcsr);
    if stack != 0 {
        start.rsp = stack;
    }
    let fs_base = if flags & CLONE_SETTLS != 0 { tls } else { thread::user_fs_base() };
    let set_tid = (flags & CLONE_CHILD_SETTID != 0).then_some(child_tid);
    let cpus = super::affinity::inherit(current_tid().unwrap_or(process.pid), pid);
    thread::spawn_within(program, cpus, move || child_main(pid, start, fs_base, set_tid));
    Ok(pid as u64)
}

/// A forked child's thread: into its space, then the parent's frame.
fn child_main(pid: u32, frame: alloc::boxed::Box<TrapFrame>, fs_base: u64, set_tid: Option<u64>) -> u64 {
    user_thread_main(pid, pid, *frame, fs_base, set_tid)
}

/// A user thread's kernel thread from a saved frame (a forked child's first
/// thread, or a new thread of a process): into the process's space, then
/// the frame, then [`thread_finished`].
fn user_thread_main(pid: u32, tid: u32, frame: TrapFrame, fs_base: u64, set_tid: Option<u64>) -> u64 {
    let Some(process) = PROCESSES.lock().get(&pid).cloned() else { return 0 };
    join_thread(&process, tid);
    if address_space::move_current_thread(Some(&process.space)).is_ok() {
        if let Some(address) = set_tid {
            let _ = copy::write_value(address, &tid);
        }
        drop(process);
        // SAFETY: the thread runs in the process's space, where the frame
        // (its RIP and RSP) was made.
        unsafe { thread::run_user_frame(&frame, fs_base) };
    } else {
        process.state.lock().exit.get_or_insert(ExitStatus::Killed {
            info: SignalInfo { signal: super::sigstate::Signal::SIGKILL, code: 0, addr: 0 },
            rip: frame.rip,
        });
        drop(process);
    }
    thread_finished(pid, tid);
    0
}

/// The end of thread `tid` of process `pid`, on its kernel thread, back
/// from user mode: its `set_tid_address` word is zeroed and woken (what
/// `pthread_join` waits for), and the last thread to end leaves the space
/// and ends the process.
fn thread_finished(pid: u32, tid: u32) {
    leave_thread();
    super::affinity::forget(tid);
    let process = PROCESSES.lock().get(&pid).cloned();
    let Some(process) = process else {
        let _ = address_space::move_current_thread(None);
        return;
    };
    let (user, system) = thread::current().cpu_time();
    let (clear_tid, last) = {
        let mut state = process.state.lock();
        state.used.user += user;
        state.used.system += system;
        let clear_tid = state.threads.remove(&tid).unwrap_or(0);
        state.masks.remove(&tid);
        state.thread_pending.remove(&tid);
        (clear_tid, state.threads.is_empty())
    };
    if clear_tid != 0 && !last && copy::write_value(clear_tid, &0u32).is_ok() {
        super::futex::wake_one(process.space.id(), clear_tid);
    }
    // Only the last thread leaves the space here, since it is destroyed
    // next. Any other exits inside it (the scheduler's exit ends its
    // membership), so the switch to the next thread, often its joiner in
    // the same space, loads no other root.
    if last {
        let _ = address_space::move_current_thread(None);
        end(&process);
    }
}

/// `clone` with `CLONE_VM | CLONE_THREAD` (what `pthread_create` passes): a
/// new thread of `process`, starting from `frame` with RAX = 0 on `stack`,
/// with FS base `tls` under `CLONE_SETTLS` (else the caller's). Returns its
/// tid. Flags outside what threads need are refused as Linux refuses them
/// (`EINVAL` for `CLONE_THREAD` without `CLONE_SIGHAND`, `CLONE_SIGHAND`
/// without `CLONE_VM`); `CLONE_VM` without `CLONE_THREAD` (a process sharing
/// memory) answers `ENOSYS`.
pub fn spawn_thread(
    process: &Arc<Process>,
    frame: &TrapFrame,
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> Result<u64, Errno> {
    const CLONE_VM: u64 = 0x100;
    const CLONE_FS: u64 = 0x200;
    const CLONE_FILES: u64 = 0x400;
    const CLONE_SIGHAND: u64 = 0x800;
    const CLONE_THREAD: u64 = 0x1_0000;
    const CLONE_SYSVSEM: u64 = 0x4_0000;
    const CLONE_DETACHED: u64 = 0x40_0000;
    const THREAD_FLAGS: u64 = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_CHILD_SETTID
        | CLONE_DETACHED;
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_THREAD == 0 || flags & !THREAD_FLAGS != 0 {
        return Err(Errno::ENOSYS);
    }
    if process.exiting() {
        return Err(Errno::EAGAIN);
    }
    let tid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    let clear_tid = if flags & CLONE_CHILD_CLEARTID != 0 { child_tid } else { 0 };
    {
        // The new thread starts with its creator's signal mask.
        let mut state = process.state.lock();
        let mask = state.mask();
        state.threads.insert(tid, clear_tid);
        state.masks.insert(tid, mask);
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = copy::write_value(parent_tid, &tid);
    }
    let mut start = *frame;
    start.rax = 0;
    // The creator's MXCSR, which the new thread loads on its way out.
    start.sse.mxcsr = crate::arch::sse::mxcsr_after(frame.sse.mxcsr);
    if stack != 0 {
        start.rsp = stack;
    }
    let fs_base = if flags & CLONE_SETTLS != 0 { tls } else { thread::user_fs_base() };
    let set_tid = (flags & CLONE_CHILD_SETTID != 0).then_some(child_tid);
    let pid = process.pid;
    let program = process.path.rsplit('/').next().unwrap_or("program");
    let start = alloc::boxed::Box::new(start);
    let cpus = super::affinity::inherit(current_tid().unwrap_or(pid), tid);
    thread::spawn_within(program, cpus, move || user_thread_main(pid, tid, *start, fs_base, set_tid));
    Ok(tid as u64)
}

/// The running thread's tid.
pub fn current_tid() -> Option<u32> {
    // The tag's low half (see `hold_in_thread`), read without a lock.
    let tag = thread::user_tag();
    (tag != 0).then_some(tag as u32)
}

/// `set_tid_address(address)`: the running thread's word to zero and wake
/// when it ends; returns its tid.
pub fn set_tid_address(process: &Process, address: u64) -> u64 {
    let tid = current_tid().unwrap_or(process.pid);
    process.state.lock().threads.insert(tid, address);
    tid as u64
}

/// `exit(status)`: ends the running thread; the last thread's `exit` ends
/// the process with `status`, as `exit_group` does.
pub fn exit_thread(status: u8) -> ! {
    if let Some(process) = current() {
        let alone = process.thread_count() <= 1;
        drop(process);
        if alone {
            exit_current(ExitStatus::Exited(status));
        }
    }
    thread::leave_user(0)
}

/// Reads a NULL-terminated array of string pointers (`argv`, `envp`) from
/// user memory; a NULL array is empty. `E2BIG` past `ARG_MAX` bytes.
fn read_strings(array: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut strings = Vec::new();
    if array == 0 {
        return Ok(strings);
    }
    let mut total = 0usize;
    for index in 0u64.. {
        let pointer: u64 = copy::read_value(array.checked_add(index * 8).ok_or(Errno::EFAULT)?)?;
        if pointer == 0 {
            break;
        }
        let string = copy::read_string(pointer, exec::ARG_MAX as usize).map_err(|error| match error {
            Errno::ENAMETOOLONG => Errno::E2BIG,
            other => other,
        })?;
        total += string.len() + 1 + 8;
        if total > exec::ARG_MAX as usize {
            return Err(Errno::E2BIG);
        }
        strings.push(string);
    }
    Ok(strings)
}

/// The file `execve` runs for `path`: `/proc/self/exe` is the program
/// itself; other `/proc` files and directories are not executable
/// (`EACCES`), nor are initrd files outside `bin/` (mode 0444, see `stat`);
/// a missing file is `ENOENT`.
fn exec_target(process: &Process, path: &str) -> Result<(&'static fs::File, String), Errno> {
    let path = if path == "/proc/self/exe" { process.path.as_str() } else { path };
    if path.starts_with("/proc") {
        return Err(Errno::EACCES);
    }
    let (file, full_path) = find_program(path).map_err(|error| error.errno())?;
    if !full_path.starts_with("/bin/") {
        return Err(Errno::EACCES);
    }
    Ok((file, full_path))
}

/// Tells the address spaces of successive `execve`s apart.
static EXEC_GENERATION: AtomicU32 = AtomicU32::new(1);

/// `execve(path, argv, envp)`: replaces the running program of `process`
/// by the one at `path`, in a new address space; the old one is destroyed.
/// What `execve` keeps, as on Linux: the pid, the parent and children, the
/// open files except those marked close-on-exec, the signal mask and
/// pending signals, ignored signals (caught ones return to their default),
/// the resource limits. On success `frame` is the new program's first
/// state; every error is returned before anything of the old program is
/// touched, except a new stack that cannot be written: then `Ok(false)`,
/// and the caller kills the process with SIGSEGV, as Linux does past its
/// point of no return.
pub fn execve(process: &Arc<Process>, frame: &mut TrapFrame, path: u64, argv: u64, envp: u64) -> Result<bool, Errno> {
    let path = copy::read_string(path, 4095)?;
    let argv = read_strings(argv)?;
    let envp = read_strings(envp)?;
    let path = String::from_utf8(path).map_err(|_| Errno::ENOENT)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if process.thread_count() > 1 {
        // Linux ends the other threads first (de_thread); not done here yet.
        return Err(Errno::EAGAIN);
    }
    let (file, full_path) = exec_target(process, &path)?;
    let program = full_path.rsplit('/').next().unwrap_or("program");
    let generation = EXEC_GENERATION.fetch_add(1, Ordering::Relaxed);
    let name = alloc::format!("{}-{generation}", load::space_name(program, process.pid));
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let envp: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    let loaded = load::load(file, &name, &argv, &envp, full_path.as_bytes()).map_err(|error| error.errno())?;
    if address_space::move_current_thread(Some(&loaded.space)).is_err() {
        destroy_space(&loaded.space);
        return Err(Errno::ENOMEM);
    }
    // Past the point of no return: the old space is left.
    let old_faults = faults_of(&process.space);
    let old_peak = peak_of(&process.space);
    let state = {
        let old = process.state.lock();
        let mut files = old.files.clone();
        files.close_on_exec();
        let mut actions = old.actions;
        for action in actions.iter_mut() {
            if action.handler > 1 {
                *action = SigAction::default(); // caught: back to the default
            }
        }
        ProcessState {
            brk_start: loaded.brk,
            brk: loaded.brk,
            files,
            rlimits: old.rlimits,
            masks: BTreeMap::from([(current_tid().unwrap_or(process.pid), old.mask())]),
            pending: old.pending,
            // The calling thread's own pending signals stay (Linux keeps
            // them); the other threads are gone with theirs.
            thread_pending: current_tid()
                .and_then(|tid| old.thread_pending.get(&tid).map(|&signals| (tid, signals)))
                .into_iter()
                .collect(),
            actions,
            // The thread that called `execve` goes on alone, under its tid.
            threads: BTreeMap::from([(current_tid().unwrap_or(process.pid), 0)]),
            robust_list: (0, 0),
            start: None,
            exit: None,
            parent: old.parent,
            shell_waits: old.shell_waits,
            ended: false,
            exit_signal: old.exit_signal,
            // The usage goes on, and the interval timers are kept.
            used: Usage {
                minor_faults: old.used.minor_faults + old_faults,
                peak_pages: old.used.peak_pages.max(old_peak),
                ..old.used
            },
            children_used: old.children_used,
            timers: old.timers,
            // The POSIX timers are not (Linux's exit_itimers at exec).
            posix_timers: BTreeMap::new(),
            job: old.job,
            options: old.options.for_exec(),
            signal_extras: {
                let mut extras = old.signal_extras.for_child();
                extras.alt_stack = Default::default();
                extras
            },
        }
    };
    let replacement = Arc::new(Process {
        pid: process.pid,
        path: full_path,
        space: loaded.space,
        state: IrqMutex::new(state),
        exiting: AtomicBool::new(false),
        signal_hint: AtomicBool::new(process.signal_hint.load(Ordering::Acquire)),
        cmdline: cmdline_of(&argv),
        started: process.started,
        oom_score_adj: AtomicI32::new(process.oom_score_adj.load(Ordering::Relaxed)),
    });
    // The calling thread holds the new program's process from now on.
    hold_in_thread(Some(&replacement), current_tid().unwrap_or(process.pid));
    PROCESSES.lock().insert(process.pid, replacement);
    destroy_space(&process.space);
    thread::set_user_fs_base(0);
    let stack = copy::write(loaded.image.rsp(), loaded.image.bytes());
    *frame = crate::arch::syscall::first_frame(loaded.entry, loaded.image.rsp());
    Ok(stack.is_ok())
}

/// The parent of `process` (0: the kernel; [`INIT_PID`]: the init, once
/// it adopted an orphan).
pub fn parent_of(process: &Process) -> u32 {
    process.state.lock().parent
}

/// The command name (`comm`) of `process`: what `PR_SET_NAME` set, else the
/// program's file name cut to 15 bytes, as Linux keeps it.
pub fn comm(process: &Process) -> Vec<u8> {
    if let Some(name) = process.state.lock().options.comm {
        let end = name.iter().position(|&byte| byte == 0).unwrap_or(name.len());
        return name[..end].to_vec();
    }
    let name = process.path.rsplit('/').next().unwrap_or("");
    name.as_bytes()[..name.len().min(15)].to_vec()
}

/// The processes that have not been waited for.
pub fn all() -> Vec<Arc<Process>> {
    PROCESSES.lock().values().cloned().collect()
}

/// The process the running thread belongs to, if it runs a program: the
/// thread's own reference ([`join_thread`]), cloned without a lock, so that
/// a system call finds its process in a few instructions.
pub fn current() -> Option<Arc<Process>> {
    let pointer = thread::user_context() as *const Process;
    if pointer.is_null() {
        return None;
    }
    // SAFETY: the context is `Arc::into_raw` of this thread's reference to
    // its process (`hold_in_thread`), which only this thread gives back, so
    // it lives at least until this clone is made.
    unsafe {
        Arc::increment_strong_count(pointer);
        Some(Arc::from_raw(pointer))
    }
}

/// What `look` answers of the running thread's process, if the thread runs
/// a program: the process borrowed from the thread's own reference, with
/// no count taken (no locked instruction), for the checks every trap from
/// ring 3 makes on its way back, interrupts off. `look` must not end the
/// thread's hold on its process (exec, exit): it only reads.
pub fn look_at_current<R>(look: impl FnOnce(&Process) -> R) -> Option<R> {
    let pointer = thread::user_context() as *const Process;
    // SAFETY: a non-null context is `Arc::into_raw` of this thread's
    // reference to its process (`hold_in_thread`), which only this thread
    // gives back, and `look` does not: the process lives through the call.
    (!pointer.is_null()).then(|| look(unsafe { &*pointer }))
}

/// Makes the running kernel thread hold `process` (or nothing) as its
/// context, under the tag of user thread `tid`, and gives up the reference
/// it held before.
fn hold_in_thread(process: Option<&Arc<Process>>, tid: u32) {
    let (tag, context, attention) = match process {
        Some(process) => {
            let tag = u64::from(process.pid) << 32 | u64::from(tid);
            (tag, Arc::into_raw(process.clone()) as usize, &raw const process.signal_hint)
        }
        None => (0, 0, core::ptr::null()),
    };
    let old = thread::set_user_tag(tag, context, attention) as *const Process;
    if !old.is_null() {
        // SAFETY: the reference `hold_in_thread` gave the thread, just
        // taken out of its context.
        drop(unsafe { Arc::from_raw(old) });
    }
}

/// The running kernel thread now runs user thread `tid` of `process`.
fn join_thread(process: &Arc<Process>, tid: u32) {
    BY_THREAD.lock().insert(thread::current().id(), (process.pid, tid));
    hold_in_thread(Some(process), tid);
}

/// The running kernel thread runs no user thread any more.
fn leave_thread() {
    hold_in_thread(None, 0);
    BY_THREAD.lock().remove(&thread::current().id());
}

/// The process's thread: moves into its space, builds the initial stack and
/// runs the program until it ends. Returns 0 (the status is in the process).
fn process_main(pid: u32) -> u64 {
    let Some(process) = PROCESSES.lock().get(&pid).cloned() else { return 0 };
    join_thread(&process, pid);
    let started = start(&process);
    if let Err(info) = started {
        process.state.lock().exit.get_or_insert(ExitStatus::Killed { info, rip: 0 });
    }
    drop(process);
    thread_finished(pid, pid);
    0
}

/// Enters the process's space, copies the initial stack and runs the
/// program; `Err` when the stack cannot be written (the process gets
/// SIGSEGV, as on Linux when `execve` cannot build the stack).
fn start(process: &Arc<Process>) -> Result<(), SignalInfo> {
    let segv = SignalInfo { signal: super::sigstate::Signal::SIGSEGV, code: 0, addr: 0 };
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

/// Ends the running process with `status` (`exit_group`, a fatal signal):
/// records it, tells every other thread to leave (at its next way back to
/// ring 3, or out of a wait), and leaves user mode; never returns to the
/// program.
pub fn exit_current(status: ExitStatus) -> ! {
    if let Some(process) = current() {
        {
            let mut state = process.state.lock();
            state.exit.get_or_insert(status);
            if !process.exiting.swap(true, Ordering::SeqCst) {
                ENDING.fetch_add(1, Ordering::SeqCst);
            }
            // The other threads' traps look at the process on their way back.
            process.note_signal();
        }
        drop(process);
        super::futex::nudge_all();
        // Its stopped threads, if any, leave their wait to end.
        EVENTS.wake_all();
    }
    thread::leave_user(0)
}

/// Leaves user mode when the running thread's process is ending (called on
/// the way back to ring 3).
pub fn leave_if_exiting() {
    // No process is ending (the common case): nothing to look up.
    if ENDING.load(Ordering::SeqCst) == 0 {
        return;
    }
    let exiting = current().is_some_and(|process| process.exiting());
    if exiting {
        thread::leave_user(0);
    }
}

/// How many processes have started to end (`exit_group`, a fatal signal)
/// and not ended yet: while none has, the way back to ring 3 looks nothing up.
static ENDING: AtomicU32 = AtomicU32::new(0);
