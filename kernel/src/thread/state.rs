//! What a thread is, and what each CPU's scheduler keeps: the data under
//! the scheduler ([`super::scheduler`]) and the thread API ([`super`]), and
//! the typed hooks through which the address-space layer, which lies above,
//! learns of switches and memberships.

use super::stack::{self, Stack};
use crate::arch::cpu::without_interrupts;
use crate::arch::switch::SwitchContext;
use crate::percpu::{PerCpu, MAX_CPUS};
use crate::sync::SetOnce;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use spin::Mutex;

/// Names an address space (the address-space layer's handle). A thread's
/// slot holds `Option<AddressSpaceId>`; `None` is the default address space.
pub type AddressSpaceId = u32;

/// A thread's number, unique for the kernel's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadId(pub u64);

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a thread is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Waiting in a run queue (or an idle thread not running).
    Ready,
    /// On a CPU.
    Running,
    /// Waiting for an event (another thread's exit).
    Blocked,
    /// Waiting for a time.
    Sleeping,
    /// Finished; its exit value waits for a join.
    Exited,
}

impl ThreadState {
    /// The lowercase name used in listings.
    pub fn name(self) -> &'static str {
        match self {
            ThreadState::Ready => "ready",
            ThreadState::Running => "running",
            ThreadState::Blocked => "blocked",
            ThreadState::Sleeping => "sleeping",
            ThreadState::Exited => "exited",
        }
    }
}

impl fmt::Display for ThreadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The scheduling part of a thread, changed under one lock.
pub(super) struct SchedulingState {
    pub(super) state: ThreadState,
    /// True from the moment a CPU picks the thread until its registers are
    /// saved after it left that CPU: no other CPU may resume it meanwhile.
    pub(super) on_cpu: bool,
    /// For a sleeping thread: the time-stamp counter value to wake at.
    pub(super) wake_at_tsc: u64,
}

/// How a thread ended, and who waits for it.
pub(super) struct ExitState {
    pub(super) value: Option<u64>,
    pub(super) joiners: Vec<Arc<Thread>>,
}

/// The register context, touched only by the context switch.
pub(super) struct ContextCell(UnsafeCell<SwitchContext>);

// SAFETY: the context is read and written only by `switch_context`, on the
// CPU that switches the thread in or out, with interrupts off; the `on_cpu`
// flag keeps two CPUs from doing so at once.
unsafe impl Sync for ContextCell {}

/// The stack a thread runs on.
pub(super) enum ThreadStack {
    /// Allocated at creation, freed once the thread has exited and switched
    /// away for good.
    Owned(Stack),
    /// The stack the CPU's start-up code ran on (the boot stack for thread
    /// "main"), adopted as it is; never freed.
    Adopted,
    /// Released after exit.
    Released,
}

/// The thread's code, run once by its first switch-in.
pub(super) type Entry = Box<dyn FnOnce() -> u64 + Send>;

/// A kernel thread.
pub struct Thread {
    pub(super) id: ThreadId,
    pub(super) name: String,
    pub(super) is_idle: bool,
    pub(super) scheduling: Mutex<SchedulingState>,
    /// The CPU the thread runs or last ran on.
    pub(super) cpu: AtomicU32,
    pub(super) address_space: Mutex<Option<AddressSpaceId>>,
    pub(super) context: ContextCell,
    pub(super) stack: Mutex<ThreadStack>,
    /// Where the checked canary words are (see [`stack`]).
    pub(super) canary_address: u64,
    pub(super) entry: Mutex<Option<Entry>>,
    pub(super) exit: Mutex<ExitState>,
    /// Where entries from ring 3 start on the kernel stack (0: the thread
    /// runs no user code now). Set by [`super::run_user`].
    pub(super) user_entry_stack: AtomicU64,
    /// Where [`super::leave_user`] resumes [`super::run_user`] (0: none).
    pub(super) user_resume: AtomicU64,
    /// The user program's FS base (its thread-local storage), loaded at every
    /// switch to the thread when it runs user code.
    pub(super) user_fs_base: AtomicU64,
    /// A word the layer above keeps for the thread (the user layer: the
    /// process and user thread it runs; 0: none), read without a lock.
    pub(super) user_tag: AtomicU64,
    /// A pointer the layer above keeps for the thread beside its tag (the
    /// user layer: one reference to its process; 0: none), read without a lock.
    pub(super) user_context: AtomicUsize,
    /// The flag the layer above keeps beside the context (the user layer:
    /// its process's [`signal_hint`](crate::user::process::Process::signal_hint);
    /// null: none).
    pub(super) user_attention: AtomicPtr<AtomicBool>,
    /// Timer ticks that found the thread running in ring 3, and in the
    /// kernel: its CPU time, sampled as Linux's tick accounting samples it.
    pub(super) ticks: [AtomicU64; 2],
}

/// The stack canary of a thread was found overwritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackOverflow {
    /// The thread whose stack overflowed.
    pub id: ThreadId,
    /// Its name.
    pub name: String,
}

impl fmt::Display for StackOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack overflow in thread {} ({})", self.id, self.name)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The length of a timer tick, in nanoseconds (set once at boot).
pub(super) static TICK_NANOS: AtomicU64 = AtomicU64::new(0);

/// Every thread that still exists, for the listing.
pub(super) static THREADS: Mutex<Vec<Weak<Thread>>> = Mutex::new(Vec::new());

impl Thread {
    pub(super) fn new(
        name: &str,
        is_idle: bool,
        state: ThreadState,
        context: SwitchContext,
        stack: ThreadStack,
        canary_address: u64,
        entry: Option<Entry>,
    ) -> Arc<Thread> {
        let thread = Arc::new(Thread {
            id: ThreadId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            name: String::from(name),
            is_idle,
            scheduling: Mutex::new(SchedulingState { state, on_cpu: state == ThreadState::Running, wake_at_tsc: 0 }),
            cpu: AtomicU32::new(0),
            address_space: Mutex::new(None),
            context: ContextCell(UnsafeCell::new(context)),
            stack: Mutex::new(stack),
            canary_address,
            entry: Mutex::new(entry),
            exit: Mutex::new(ExitState { value: None, joiners: Vec::new() }),
            user_entry_stack: AtomicU64::new(0),
            user_resume: AtomicU64::new(0),
            user_fs_base: AtomicU64::new(0),
            user_tag: AtomicU64::new(0),
            user_context: AtomicUsize::new(0),
            user_attention: AtomicPtr::new(core::ptr::null_mut()),
            ticks: [AtomicU64::new(0), AtomicU64::new(0)],
        });
        without_interrupts(|| {
            let mut threads = THREADS.lock();
            threads.retain(|weak| weak.strong_count() > 0);
            threads.push(Arc::downgrade(&thread));
        });
        thread
    }

    /// The thread's id.
    pub fn id(&self) -> ThreadId {
        self.id
    }

    /// The bounds `(bottom, top)` of the thread's own stack; `None` for the
    /// boot thread, which runs on the boot stack inside the kernel image.
    pub fn stack_range(&self) -> Option<(u64, u64)> {
        match &*without_interrupts(|| self.stack.lock()) {
            ThreadStack::Owned(stack) => Some((stack.bottom(), stack.top())),
            _ => None,
        }
    }

    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The thread's state.
    pub fn state(&self) -> ThreadState {
        without_interrupts(|| self.scheduling.lock().state)
    }

    /// The CPU the thread runs or last ran on.
    pub fn cpu(&self) -> u32 {
        self.cpu.load(Ordering::Relaxed)
    }

    /// The thread's address-space slot (None = the default address space).
    pub fn address_space(&self) -> Option<AddressSpaceId> {
        without_interrupts(|| *self.address_space.lock())
    }

    /// Checks the stack canary.
    pub fn check_stack(&self) -> Result<(), StackOverflow> {
        if without_interrupts(|| matches!(*self.stack.lock(), ThreadStack::Released)) {
            return Ok(());
        }
        // SAFETY: the canary words lie in the thread's guard page or at the
        // bottom of the boot stack, both readable while the stack is not
        // released (checked just above; only an exited thread's is released).
        if unsafe { stack::canary_intact(self.canary_address) } {
            Ok(())
        } else {
            Err(StackOverflow { id: self.id, name: self.name.clone() })
        }
    }

    /// Where the checked canary words start (see [`stack`]).
    pub fn canary_address(&self) -> u64 {
        self.canary_address
    }

    /// The CPU time the thread used, in nanoseconds, `(user, system)`: the
    /// timer ticks that found it running in ring 3 and in the kernel, each
    /// counted as a whole tick.
    pub fn cpu_time(&self) -> (u64, u64) {
        let tick = TICK_NANOS.load(Ordering::Relaxed);
        (self.ticks[0].load(Ordering::Relaxed) * tick, self.ticks[1].load(Ordering::Relaxed) * tick)
    }

    pub(super) fn context(&self) -> *mut SwitchContext {
        self.context.0.get()
    }
}

/// What the scheduler keeps for one CPU: the thread it runs, its idle
/// thread, its run queue and sleepers.
/// Indexed by CPU id ([`on`]); the per-CPU structure itself knows nothing of
/// threads.
///
/// The timer and reschedule interrupts take these locks, so a holder with
/// interrupts on could be interrupted by a handler that spins on the same
/// lock for ever. The fields are therefore the scheduler's alone, which
/// takes them with interrupts off; other modules go through the methods,
/// which mask interrupts while they hold a lock.
pub struct CpuThreads {
    /// The thread running on this CPU.
    pub(super) current: Mutex<Option<Arc<Thread>>>,
    /// The thread this CPU runs when nothing else is ready.
    pub(super) idle: Mutex<Option<Arc<Thread>>>,
    /// The thread this CPU has just switched away from, handed over to the
    /// thread switched to (which re-queues or releases it once its registers
    /// are saved).
    pub(super) previous: Mutex<Option<Arc<Thread>>>,
    /// Threads ready to run here, in round-robin order.
    pub(super) run_queue: Mutex<VecDeque<Arc<Thread>>>,
    /// Threads of this CPU sleeping until a time-stamp-counter deadline.
    pub(super) sleepers: Mutex<Vec<Arc<Thread>>>,
    /// Threads placed on this CPU that have not exited (idle threads not
    /// counted): the load the scheduler spreads new threads by. Threads never
    /// move, so unlike the run queue it is exact at every instant, even while
    /// a thread is between the queue and the CPU.
    pub(super) threads_placed: AtomicUsize,
    /// What the idle thread is doing: [`IDLE_BUSY`], [`IDLE_POLLING`] (it
    /// watches this word before it halts) or [`IDLE_WOKEN`] (a thread was
    /// queued while it watched: no interrupt is needed to wake it).
    pub(super) idle_poll: AtomicU8,
}

/// [`CpuThreads::idle_poll`]: not polling (running a thread, or halted).
pub const IDLE_BUSY: u8 = 0;
/// [`CpuThreads::idle_poll`]: the idle thread watches the word.
pub const IDLE_POLLING: u8 = 1;
/// [`CpuThreads::idle_poll`]: a thread was queued for the watching idle thread.
pub const IDLE_WOKEN: u8 = 2;

impl CpuThreads {
    const fn new() -> CpuThreads {
        CpuThreads {
            current: Mutex::new(None),
            idle: Mutex::new(None),
            previous: Mutex::new(None),
            run_queue: Mutex::new(VecDeque::new()),
            sleepers: Mutex::new(Vec::new()),
            threads_placed: AtomicUsize::new(0),
            idle_poll: AtomicU8::new(IDLE_BUSY),
        }
    }

    /// The thread running on this CPU, if threads are set up.
    pub fn current_thread(&self) -> Option<Arc<Thread>> {
        without_interrupts(|| self.current.lock().clone())
    }

    /// [`Self::current_thread`] if its lock is free, `None` if it is held:
    /// for a fault report, which may come while this CPU holds it.
    pub fn try_current_thread(&self) -> Option<Option<Arc<Thread>>> {
        without_interrupts(|| self.current.try_lock().map(|current| current.clone()))
    }

    /// Whether this CPU has its idle thread (it has joined the scheduler).
    #[cfg(feature = "ktest")]
    pub fn has_idle_thread(&self) -> bool {
        without_interrupts(|| self.idle.lock().is_some())
    }

    /// How many threads wait in this CPU's run queue.
    pub fn queued(&self) -> usize {
        without_interrupts(|| self.run_queue.lock().len())
    }
}

static CPU_THREADS: [CpuThreads; MAX_CPUS] = [const { CpuThreads::new() }; MAX_CPUS];

/// What the scheduler keeps for `cpu`.
pub fn on(cpu: &PerCpu) -> &'static CpuThreads {
    &CPU_THREADS[cpu.id as usize]
}

/// How the address-space layer, which lies above the threads, follows them:
/// installed once at boot ([`install_address_space_hooks`]).
pub trait AddressSpaceHooks: Sync {
    /// A context switch between threads in different address spaces:
    /// `(from, to)`, interrupts off.
    fn switch(&self, from: Option<AddressSpaceId>, to: Option<AddressSpaceId>);
    /// A thread joined (`true`) or left an address space other than through
    /// `set_current_address_space`: created inside one, or exiting inside one.
    fn membership(&self, space: AddressSpaceId, thread: ThreadId, joined: bool);
    /// Writes the name of an address space (for the `threads` and `cpus` listings).
    fn write_name(&self, space: AddressSpaceId, out: &mut dyn Write) -> fmt::Result;
    /// The address space CPU `cpu` has loaded (`None`: the default one), from
    /// the layer's own per-CPU record (for the `cpus` listing).
    fn loaded_on(&self, cpu: u32) -> Option<AddressSpaceId>;
}

static HOOKS: SetOnce<&'static dyn AddressSpaceHooks> = SetOnce::new();

/// Installs the address-space layer's hooks; refused (false) when some are
/// installed already: they are set once, at boot.
pub fn install_address_space_hooks(hooks: &'static dyn AddressSpaceHooks) -> bool {
    HOOKS.set(hooks)
}

/// Hooks tried instead of the installed ones, for the in-kernel tests of the
/// scheduler only (never in the kernel `run` boots).
#[cfg(feature = "ktest")]
static TEST_OVERRIDE: Mutex<Option<&'static dyn AddressSpaceHooks>> = Mutex::new(None);

/// Runs `body` with `hooks` told of switches, memberships and names instead
/// of the installed hooks.
#[cfg(feature = "ktest")]
pub fn with_address_space_hooks_override<R>(hooks: &'static dyn AddressSpaceHooks, body: impl FnOnce() -> R) -> R {
    *without_interrupts(|| TEST_OVERRIDE.lock()) = Some(hooks);
    let result = body();
    *without_interrupts(|| TEST_OVERRIDE.lock()) = None;
    result
}

/// The installed hooks, if any.
pub(super) fn hooks() -> Option<&'static dyn AddressSpaceHooks> {
    #[cfg(feature = "ktest")]
    if let Some(hooks) = *without_interrupts(|| TEST_OVERRIDE.lock()) {
        return Some(hooks);
    }
    HOOKS.get().copied()
}

/// Tells the hooks that `thread` joined or left address space `slot`.
pub(crate) fn notify_membership(slot: Option<AddressSpaceId>, thread: ThreadId, joined: bool) {
    if let (Some(space), Some(hooks)) = (slot, hooks()) {
        hooks.membership(space, thread, joined);
    }
}
