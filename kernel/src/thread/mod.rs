//! Kernel threads: creation, exit and join, sleep and yield, the listing for
//! the shell, and the address-space slot each thread carries.
//!
//! A thread is an [`Arc<Thread>`]: the CPU running it, the run queue or wait
//! list holding it, and its [`JoinHandle`] each own a reference. Scheduling
//! (round robin, preempted by the local APIC timer) lives in [`scheduler`],
//! the stacks in [`stack`], the register switch in
//! [`crate::arch::switch`].
//!
//! Every thread has an address-space slot (`None` = the default address
//! space). A thread created by another starts in its creator's address space.
//! On each context switch between threads whose slots differ, the hook set
//! with [`set_address_space_switch_hook`] is called (interrupts off): the
//! address-space layer installs it to load the right page tables.

pub mod scheduler;
pub mod stack;

use crate::arch::cpu::without_interrupts;
use crate::arch::switch::SwitchContext;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::Mutex;
use stack::Stack;

#[cfg(feature = "ktest")]
pub use scheduler::exit;
pub use scheduler::{sleep_ms, yield_now};

/// Names an address space (the address-space layer's handle). A thread's
/// slot holds `Option<AddressSpaceId>`; `None` is the default address space.
pub type AddressSpaceId = u32;

/// Called on a context switch between threads in different address spaces:
/// `(from, to)`, interrupts off.
pub type AddressSpaceSwitchHook = fn(from: Option<AddressSpaceId>, to: Option<AddressSpaceId>);

/// Told when a thread joins or leaves an address space by being created in
/// it or by exiting in it.
pub type AddressSpaceMembershipHook = fn(space: AddressSpaceId, thread: ThreadId, joined: bool);

/// Writes the name of an address space (for the `threads` and `cpus` listings).
pub type AddressSpaceNameHook = fn(AddressSpaceId, &mut dyn Write) -> fmt::Result;

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
struct SchedulingState {
    state: ThreadState,
    /// True from the moment a CPU picks the thread until its registers are
    /// saved after it left that CPU: no other CPU may resume it meanwhile.
    on_cpu: bool,
    /// For a sleeping thread: the time-stamp counter value to wake at.
    wake_at_tsc: u64,
}

/// How a thread ended, and who waits for it.
struct ExitState {
    value: Option<u64>,
    joiners: Vec<Arc<Thread>>,
}

/// The register context, touched only by the context switch.
struct ContextCell(UnsafeCell<SwitchContext>);

// SAFETY: the context is read and written only by `switch_context`, on the
// CPU that switches the thread in or out, with interrupts off; the `on_cpu`
// flag keeps two CPUs from doing so at once.
unsafe impl Sync for ContextCell {}

/// The stack a thread runs on.
enum ThreadStack {
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
type Entry = Box<dyn FnOnce() -> u64 + Send>;

/// A kernel thread.
pub struct Thread {
    id: ThreadId,
    name: String,
    is_idle: bool,
    scheduling: Mutex<SchedulingState>,
    /// The CPU the thread runs or last ran on.
    cpu: AtomicU32,
    address_space: Mutex<Option<AddressSpaceId>>,
    context: ContextCell,
    stack: Mutex<ThreadStack>,
    /// Where the checked canary words are (see [`stack`]).
    canary_address: u64,
    entry: Mutex<Option<Entry>>,
    exit: Mutex<ExitState>,
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

/// Every thread that still exists, for the listing.
static THREADS: Mutex<Vec<Weak<Thread>>> = Mutex::new(Vec::new());

impl Thread {
    fn new(
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

    fn context(&self) -> *mut SwitchContext {
        self.context.0.get()
    }
}

/// The right to wait for a thread's end and collect its exit value.
pub struct JoinHandle {
    thread: Arc<Thread>,
}

impl JoinHandle {
    /// The thread this handle is for.
    pub fn thread(&self) -> &Arc<Thread> {
        &self.thread
    }

    /// Waits until the thread has exited and returns its exit value.
    pub fn join(self) -> u64 {
        scheduler::wait_for_exit(&self.thread)
    }
}

/// Creates a thread named `name` that runs `entry` and exits with its
/// result, in the creator's address space, on the least loaded CPU (threads
/// do not move between CPUs afterwards).
///
/// # Panics
/// When the heap cannot hold the thread's stack.
pub fn spawn(name: &str, entry: impl FnOnce() -> u64 + Send + 'static) -> JoinHandle {
    spawn_placed(name, None, Box::new(entry))
}

/// Creates a thread like [`spawn`], pinned to CPU `cpu` (it runs there only).
///
/// # Panics
/// When CPU `cpu` is not running, or the heap cannot hold the stack.
pub fn spawn_pinned(name: &str, cpu: u32, entry: impl FnOnce() -> u64 + Send + 'static) -> JoinHandle {
    assert!(crate::percpu::by_id(cpu).is_some(), "cpu {cpu} is not running");
    spawn_placed(name, Some(cpu), Box::new(entry))
}

fn spawn_placed(name: &str, pinned: Option<u32>, entry: Entry) -> JoinHandle {
    let stack = Stack::new(stack::THREAD_STACK_SIZE).expect("no memory for a thread stack");
    let thread = new_thread(name, false, stack, Some(entry));
    thread.cpu.store(scheduler::place_new_thread(pinned), Ordering::Relaxed);
    let address_space = current_address_space();
    // Interrupts off around every lock the scheduler also takes: a holder
    // preempted here would leave it spinning.
    without_interrupts(|| *thread.address_space.lock() = address_space);
    notify_membership(address_space, thread.id, true);
    scheduler::make_ready(&thread);
    JoinHandle { thread }
}

/// Creates a thread that runs `entry(argument)`, like [`spawn`].
#[cfg(feature = "ktest")]
pub fn spawn_fn(name: &str, entry: fn(u64) -> u64, argument: u64) -> JoinHandle {
    spawn(name, move || entry(argument))
}

fn new_thread(name: &str, is_idle: bool, stack: Stack, entry: Option<Entry>) -> Arc<Thread> {
    // SAFETY: the stack is fresh, writable, and owned by the thread made here,
    // which frees it only after its last switch away.
    let context = unsafe { SwitchContext::new_thread(stack.top(), scheduler::thread_first_run) };
    let canary_address = stack.canary_address();
    let thread =
        Thread::new(name, is_idle, ThreadState::Ready, context, ThreadStack::Owned(stack), canary_address, entry);
    thread.cpu.store(crate::percpu::current().id, Ordering::Relaxed);
    thread
}

/// The thread running on this CPU.
///
/// # Panics
/// Before [`scheduler::init`].
pub fn current() -> Arc<Thread> {
    crate::percpu::current().current_thread().expect("threads are not set up yet")
}

/// The running thread's address-space slot (None = the default address space).
pub fn current_address_space() -> Option<AddressSpaceId> {
    if !crate::percpu::initialized() {
        return None;
    }
    crate::percpu::current().current_thread().and_then(|thread| thread.address_space())
}

/// Puts the running thread into address space `to` and, when the CPU has
/// another one loaded, calls the switch hook to load `to` at once. The
/// address-space layer's `move_thread` uses it.
pub fn set_current_address_space(to: Option<AddressSpaceId>) {
    without_interrupts(|| {
        let cpu = crate::percpu::current();
        *current().address_space.lock() = to;
        scheduler::switch_address_space(cpu, to);
    })
}

static SWITCH_HOOK: Mutex<Option<AddressSpaceSwitchHook>> = Mutex::new(None);
static NAME_HOOK: Mutex<Option<AddressSpaceNameHook>> = Mutex::new(None);
static MEMBERSHIP_HOOK: Mutex<Option<AddressSpaceMembershipHook>> = Mutex::new(None);

/// Installs the hook called on each switch between threads of different
/// address spaces (interrupts off); returns the one it replaces.
pub fn set_address_space_switch_hook(hook: Option<AddressSpaceSwitchHook>) -> Option<AddressSpaceSwitchHook> {
    without_interrupts(|| core::mem::replace(&mut *SWITCH_HOOK.lock(), hook))
}

/// Installs the hook told when a thread joins (`true`) or leaves (`false`)
/// an address space other than through `set_current_address_space`: a
/// thread created inside one, and a thread exiting inside one.
pub fn set_address_space_membership_hook(
    hook: Option<AddressSpaceMembershipHook>,
) -> Option<AddressSpaceMembershipHook> {
    without_interrupts(|| core::mem::replace(&mut *MEMBERSHIP_HOOK.lock(), hook))
}

pub(crate) fn notify_membership(slot: Option<AddressSpaceId>, thread: ThreadId, joined: bool) {
    if let (Some(space), Some(hook)) = (slot, without_interrupts(|| *MEMBERSHIP_HOOK.lock())) {
        hook(space, thread, joined);
    }
}

/// Installs the hook that names address spaces in listings; returns the one
/// it replaces.
pub fn set_address_space_name_hook(hook: Option<AddressSpaceNameHook>) -> Option<AddressSpaceNameHook> {
    without_interrupts(|| core::mem::replace(&mut *NAME_HOOK.lock(), hook))
}

fn switch_hook() -> Option<AddressSpaceSwitchHook> {
    without_interrupts(|| *SWITCH_HOOK.lock())
}

/// Writes an address-space slot: "default", the name from the name hook, or
/// `#id` without one.
pub fn write_address_space(out: &mut dyn Write, slot: Option<AddressSpaceId>) -> fmt::Result {
    match (slot, without_interrupts(|| *NAME_HOOK.lock())) {
        (None, _) => out.write_str("default"),
        (Some(id), Some(name)) => name(id, out),
        (Some(id), None) => write!(out, "#{id}"),
    }
}

/// One line of the thread listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The thread's id.
    pub id: ThreadId,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: ThreadState,
    /// The CPU it runs or last ran on.
    pub cpu: u32,
    /// Its address-space slot.
    pub address_space: Option<AddressSpaceId>,
}

/// Every existing thread, by increasing id.
pub fn threads_snapshot() -> Vec<ThreadInfo> {
    let threads: Vec<Arc<Thread>> = without_interrupts(|| THREADS.lock().iter().filter_map(Weak::upgrade).collect());
    let mut infos: Vec<ThreadInfo> = threads
        .iter()
        .map(|thread| ThreadInfo {
            id: thread.id,
            name: thread.name.clone(),
            state: thread.state(),
            cpu: thread.cpu(),
            address_space: thread.address_space(),
        })
        .collect();
    infos.sort_by_key(|info| info.id);
    infos
}

/// Prints the thread listing (the shell's `threads` command).
pub fn format_threads(out: &mut dyn Write) -> fmt::Result {
    writeln!(out, "{:>4}  {:<16}  {:<8}  {:>3}  address space", "id", "name", "state", "cpu")?;
    for info in threads_snapshot() {
        write!(out, "{:>4}  {:<16}  {:<8}  {:>3}  ", info.id.0, info.name, info.state, info.cpu)?;
        write_address_space(out, info.address_space)?;
        out.write_str("\n")?;
    }
    Ok(())
}

/// Prints each CPU with its state (running a thread, or idle), current
/// thread, run-queue length, timer ticks, context switches and address
/// space (the shell's `cpus` command).
pub fn format_cpus(out: &mut dyn Write) -> fmt::Result {
    writeln!(
        out,
        "{:>3}  {:>4}  {:<7}  {:<22}  {:>5}  {:>8}  {:>8}  address space",
        "cpu", "apic", "state", "thread", "queue", "ticks", "switches"
    )?;
    for cpu in crate::percpu::all_cpus() {
        let current = cpu.current_thread();
        let state = match &current {
            Some(thread) if thread.is_idle => "idle",
            Some(_) => "running",
            None => "online",
        };
        let thread = match &current {
            Some(thread) => alloc::format!("{} {}", thread.id, thread.name),
            None => String::from("-"),
        };
        let queued = without_interrupts(|| cpu.run_queue.lock().len());
        write!(
            out,
            "{:>3}  {:>4}  {:<7}  {:<22}  {:>5}  {:>8}  {:>8}  ",
            cpu.id,
            cpu.apic_id.load(Ordering::Relaxed),
            state,
            thread,
            queued,
            cpu.timer_ticks.load(Ordering::Relaxed),
            cpu.context_switches.load(Ordering::Relaxed)
        )?;
        write_address_space(out, cpu.address_space())?;
        out.write_str("\n")?;
    }
    Ok(())
}
