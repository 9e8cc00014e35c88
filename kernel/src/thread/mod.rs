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
//! On each context switch between threads whose slots differ, the
//! [`AddressSpaceHooks`] installed at boot are told (interrupts off): the
//! address-space layer, above the threads, loads the right page tables.
//!
//! Inside: [`state`] (what a thread is, what each CPU keeps) under
//! [`scheduler`] under this file (the API).

pub mod scheduler;
pub mod stack;
mod state;

use crate::arch::cpu::without_interrupts;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use stack::Stack;
pub use state::{install_address_space_hooks, on, AddressSpaceHooks, AddressSpaceId, Thread, ThreadId, ThreadState};
use state::{notify_membership, Entry, THREADS};
#[cfg(feature = "ktest")]
pub use state::{with_address_space_hooks_override, StackOverflow};

#[cfg(feature = "ktest")]
pub use scheduler::exit;
pub use scheduler::{migrate_current, sleep_ms, yield_now, WaitQueue};

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
    spawn_placed(name, u64::MAX, Box::new(entry))
}

/// Creates a thread like [`spawn`], pinned to CPU `cpu` (it runs there only).
///
/// # Panics
/// When CPU `cpu` is not running, or the heap cannot hold the stack.
pub fn spawn_pinned(name: &str, cpu: u32, entry: impl FnOnce() -> u64 + Send + 'static) -> JoinHandle {
    assert!(crate::percpu::by_id(cpu).is_some(), "cpu {cpu} is not running");
    spawn_placed(name, 1 << cpu, Box::new(entry))
}

/// Creates a thread like [`spawn`], placed on the least loaded of the CPUs
/// whose bits `cpus` sets (any CPU when none of them runs): a user thread
/// starts within the CPUs its creator may run on, as on Linux.
///
/// # Panics
/// When the heap cannot hold the stack.
pub fn spawn_within(name: &str, cpus: u64, entry: impl FnOnce() -> u64 + Send + 'static) -> JoinHandle {
    spawn_placed(name, cpus, Box::new(entry))
}

fn spawn_placed(name: &str, cpus: u64, entry: Entry) -> JoinHandle {
    let stack = Stack::new(stack::THREAD_STACK_SIZE).expect("no memory for a thread stack");
    let thread = scheduler::new_thread(name, false, stack, Some(entry));
    thread.cpu.store(scheduler::place_new_thread(cpus), Ordering::Relaxed);
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

/// The thread running on this CPU.
///
/// # Panics
/// Before [`scheduler::init`].
pub fn current() -> Arc<Thread> {
    on(crate::percpu::current()).current_thread().expect("threads are not set up yet")
}

/// Runs user code on the running thread until [`leave_user`]: ring 3 at
/// `rip` with stack `rsp` and FS base `fs_base`; returns the value
/// `leave_user` gives. While it runs, every entry from ring 3 (a system call,
/// a trap's preemption) starts on this thread's kernel stack just below this
/// call.
///
/// # Safety
/// The thread's address space must be the user program's (a missing or
/// forbidden page for `rip` or `rsp` ends in a fault the user-trap handler
/// sees, not in kernel memory).
pub unsafe fn run_user(rip: u64, rsp: u64, fs_base: u64) -> u64 {
    let me = current();
    crate::arch::cpu::disable_interrupts();
    me.user_fs_base.store(fs_base, Ordering::Relaxed);
    set_fs_base_register(fs_base);
    // SAFETY: interrupts are off; the two slots live in the thread, which
    // `me` keeps alive until the call returns; the caller's promise for the
    // address space.
    let value =
        unsafe { crate::arch::syscall::run_user(rip, rsp, me.user_resume.as_ptr(), me.user_entry_stack.as_ptr()) };
    finish_user(&me);
    value
}

/// [`run_user`] from a whole saved state (a forked child starts from its
/// parent's system-call frame), with FS base `fs_base`.
///
/// # Safety
/// As for [`run_user`], for the frame's RIP and RSP.
pub unsafe fn run_user_frame(frame: &crate::arch::frame::TrapFrame, fs_base: u64) -> u64 {
    let me = current();
    crate::arch::cpu::disable_interrupts();
    me.user_fs_base.store(fs_base, Ordering::Relaxed);
    set_fs_base_register(fs_base);
    // SAFETY: as in `run_user`.
    let value =
        unsafe { crate::arch::syscall::run_user_frame(frame, me.user_resume.as_ptr(), me.user_entry_stack.as_ptr()) };
    finish_user(&me);
    value
}

/// Back from user code for good: the thread is a kernel thread again.
fn finish_user(me: &Thread) {
    crate::arch::cpu::disable_interrupts();
    me.user_entry_stack.store(0, Ordering::Relaxed);
    me.user_resume.store(0, Ordering::Relaxed);
    crate::percpu::current().user_entry_stack.store(0, Ordering::Relaxed);
    // SAFETY: back on the thread's own kernel code, as before the call.
    unsafe { crate::arch::cpu::enable_interrupts() };
}

/// Ends the running thread's [`run_user`], which returns `value`. Called on
/// the thread's kernel stack (a system call, or a trap sent into the kernel
/// by the user-trap handler); every frame between is abandoned, so the
/// caller must hold nothing that needs dropping.
///
/// # Panics
/// When the thread is not running user code.
pub fn leave_user(value: u64) -> ! {
    let resume = current().user_resume.load(Ordering::Relaxed);
    assert!(resume != 0, "leave_user on a thread that runs no user code");
    // SAFETY: `resume` is what this thread's `run_user` saved, and that
    // call has not returned (it clears the slot when it does).
    unsafe { crate::arch::syscall::leave_user(resume, value) }
}

/// Sets the running user thread's FS base (`arch_prctl(ARCH_SET_FS)`): in
/// the thread, for its next switch-in, and in the register now.
pub fn set_user_fs_base(value: u64) {
    without_interrupts(|| {
        current().user_fs_base.store(value, Ordering::Relaxed);
        set_fs_base_register(value);
    })
}

/// Sets the running thread's user tag, context and attention flag: a word,
/// a pointer and a flag the layer above keeps for it (the user layer: which
/// process and user thread it runs, one reference to that process, and that
/// process's flag), 0 and null for none. The flag must live as long as the
/// context does: a trap reads it on its way back to ring 3
/// ([`PerCpu::user_attention_raised`](crate::percpu::PerCpu::user_attention_raised)).
/// Returns the context it replaces, for its owner to release.
pub fn set_user_tag(tag: u64, context: usize, attention: *const AtomicBool) -> usize {
    let attention = attention.cast_mut();
    // Interrupts off: the thread and its CPU's copy change together.
    without_interrupts(|| {
        let thread = current();
        let cpu = crate::percpu::current();
        thread.user_tag.store(tag, Ordering::Relaxed);
        cpu.user_tag.store(tag, Ordering::Relaxed);
        thread.user_attention.store(attention, Ordering::Relaxed);
        cpu.user_attention.store(attention, Ordering::Relaxed);
        cpu.user_context.store(context, Ordering::Relaxed);
        thread.user_context.swap(context, Ordering::Relaxed)
    })
}

/// The running thread's user tag (see [`set_user_tag`]): its CPU's copy,
/// read without a lock, in one load (no need to keep interrupts out).
pub fn user_tag() -> u64 {
    crate::percpu::running_user_tag()
}

/// The running thread's user context (see [`set_user_tag`]): its CPU's
/// copy, read without a lock, in one load (no need to keep interrupts out).
pub fn user_context() -> usize {
    crate::percpu::running_user_context()
}

/// The running thread's FS base, as user code set it.
pub fn user_fs_base() -> u64 {
    current().user_fs_base.load(Ordering::Relaxed)
}

fn set_fs_base_register(value: u64) {
    // SAFETY: FS_BASE only holds the user's thread pointer; the kernel does
    // not use FS. (The caller checked that `value` is canonical: a
    // non-canonical value raises #GP here.)
    unsafe { crate::arch::cpu::write_msr(crate::arch::syscall::MSR_FS_BASE, value) };
}

/// The thread running on this CPU (`Some(None)` before threads are set
/// up), or `None` when this CPU holds the lock that records it: what a fault
/// report names. The CPU is read with interrupts masked, so the answer is
/// the caller's own thread even where interrupts are on and the caller
/// could move to another CPU.
pub fn try_current() -> Option<Option<Arc<Thread>>> {
    if !crate::percpu::initialized() {
        return Some(None);
    }
    without_interrupts(|| on(crate::percpu::current()).try_current_thread())
}

/// The running thread's address-space slot (None = the default address space).
pub fn current_address_space() -> Option<AddressSpaceId> {
    if !crate::percpu::initialized() {
        return None;
    }
    on(crate::percpu::current()).current_thread().and_then(|thread| thread.address_space())
}

/// Puts the running thread into address space `to` and, when the CPU has
/// another one loaded, calls the switch hook to load `to` at once. The
/// address-space layer's `move_thread` uses it.
pub fn set_current_address_space(to: Option<AddressSpaceId>) {
    without_interrupts(|| {
        let from = core::mem::replace(&mut *current().address_space.lock(), to);
        scheduler::switch_address_space(from, to);
    })
}

/// Writes an address-space slot: "default", the name the hooks give, or
/// `#id` without them.
pub fn write_address_space(out: &mut dyn Write, slot: Option<AddressSpaceId>) -> fmt::Result {
    match (slot, state::hooks()) {
        (None, _) => out.write_str("default"),
        (Some(id), Some(hooks)) => hooks.write_name(id, out),
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

/// The CPU time thread `id` used, in nanoseconds `(user, system)`
/// ([`Thread::cpu_time`]); `None` when it no longer exists.
pub fn cpu_time(id: ThreadId) -> Option<(u64, u64)> {
    // The references are dropped after the lock, as in `threads_snapshot`.
    let threads: Vec<Arc<Thread>> = without_interrupts(|| THREADS.lock().iter().filter_map(Weak::upgrade).collect());
    threads.iter().find(|thread| thread.id == id).map(|thread| thread.cpu_time())
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
        let current = on(cpu).current_thread();
        let state = match &current {
            Some(thread) if thread.is_idle => "idle",
            Some(_) => "running",
            None => "online",
        };
        let thread = match &current {
            Some(thread) => alloc::format!("{} {}", thread.id, thread.name),
            None => String::from("-"),
        };
        let queued = on(cpu).queued();
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
        write_address_space(out, state::hooks().and_then(|hooks| hooks.loaded_on(cpu.id)))?;
        out.write_str("\n")?;
    }
    Ok(())
}
