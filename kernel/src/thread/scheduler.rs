//! The scheduler: per-CPU round-robin run queues, preemption by the local
//! APIC timer, sleeping, blocking and waking, and the idle thread. Each
//! timer tick also counts a tick of CPU time to the thread it interrupts
//! (user or system, [`Thread::cpu_time`]) and runs the hook a higher layer
//! installs ([`install_tick_hook`]: the user programs' timers).
//!
//! Each CPU runs the threads of its own run queue. A thread stays on the CPU
//! it was placed on at spawn ([`place_new_thread`]: the least loaded of the
//! CPUs it may run on), so a wake-up queues it there and, when that is another
//! CPU whose idle thread is not polling ([`idle_loop`]), sends it the
//! reschedule IPI so that it does not sleep through it. A
//! thread moves only when it asks to ([`migrate_current`]: a user program's
//! `sched_setaffinity`): it switches away, and the switch queues it on its
//! new CPU.
//!
//! Every function here that touches a run queue, a thread's scheduling state
//! or the per-CPU slots runs with interrupts off, so the timer interrupt never
//! finds a lock held by the code it interrupted. Lock order: a CPU's sleepers,
//! then a thread's scheduling state, then a run queue.
//!
//! A switch happens in [`schedule`]: the running thread has already recorded
//! why it stops (Ready: preempted or yielding; Blocked; Sleeping; Exited), the
//! next thread comes from the front of the run queue (or the idle thread), and
//! after the registers are switched the thread that now runs finishes the
//! job in [`finish_switch`]: it re-queues the thread it replaced if that one
//! is still ready, or releases its stack if it exited. Doing this after the
//! switch, not before, means no CPU can pick a thread whose registers are not
//! saved yet.

use super::stack::{self, Stack};
use super::state::{self, on, AddressSpaceId, Entry, Thread, ThreadStack, ThreadState};
use crate::arch::apic;
use crate::arch::cpu::{disable_interrupts, enable_interrupts, rdtsc, without_interrupts};
use crate::arch::frame::TrapFrame;
use crate::arch::switch::{switch_context, SwitchContext};
use crate::arch::syscall::MSR_FS_BASE;
use crate::arch::trap::register_handler;
use crate::arch::tsc;
use crate::percpu::{self, PerCpu};
use crate::sync::SetOnce;
use alloc::sync::Arc;
use core::arch::asm;
use core::sync::atomic::Ordering;

/// A new thread on a fresh stack, not yet placed or queued; it starts in
/// [`thread_first_run`].
pub(super) fn new_thread(name: &str, is_idle: bool, stack: Stack, entry: Option<Entry>) -> Arc<Thread> {
    // SAFETY: the stack is fresh, writable, and owned by the thread made here,
    // which frees it only after its last switch away.
    let context = unsafe { SwitchContext::new_thread(stack.top(), thread_first_run) };
    let canary_address = stack.canary_address();
    let thread =
        Thread::new(name, is_idle, ThreadState::Ready, context, ThreadStack::Owned(stack), canary_address, entry);
    thread.cpu.store(crate::percpu::current().id, Ordering::Relaxed);
    thread
}

/// Sets threads up on the boot CPU: the running boot code becomes thread
/// "main" (on the boot stack), then as [`init_cpu`].
pub fn init(tick_ms: u64) {
    state::TICK_NANOS.store(tick_ms * 1_000_000, Ordering::Relaxed);
    let (bottom, _top) = crate::arch::boot::boot_stack();
    init_cpu(tick_ms, "main", bottom);
}

/// Makes the running code thread `name` of this CPU (its stack's lowest
/// address is `stack_bottom`: the canary goes there), creates the CPU's idle
/// thread, enables the local APIC and starts its timer with a period of
/// `tick_ms` (preemption begins once interrupts are enabled). Call once per
/// CPU, interrupts off, after `percpu` and the heap are set up.
pub fn init_cpu(tick_ms: u64, name: &str, stack_bottom: u64) {
    let cpu = percpu::current();
    let apic_id = apic::init();
    cpu.apic_id.store(apic_id, Ordering::Relaxed);

    let first = adopt_running_code(cpu, name, stack_bottom);
    *on(cpu).current.lock() = Some(first);
    let idle_stack = Stack::new(stack::IDLE_STACK_SIZE).expect("no memory for the idle stack");
    let idle = new_thread(&alloc::format!("idle{}", cpu.id), true, idle_stack, None);
    *on(cpu).idle.lock() = Some(idle);

    if cpu.id == 0 {
        register_handler(apic::TIMER_VECTOR, timer_interrupt).expect("the timer vector is free");
        register_handler(apic::SPURIOUS_VECTOR, |_| {}).expect("the spurious vector is free");
        register_handler(apic::RESCHEDULE_VECTOR, reschedule_interrupt).expect("the reschedule vector is free");
    }
    apic::start_timer(tick_ms);
}

/// Sets threads up on an application processor: its local APIC, and the
/// running start-up code (on the stack whose lowest address is
/// `stack_bottom`) becomes the CPU's idle thread, which [`run_idle`] then
/// runs. Interrupts off, after `percpu` is set up on this CPU.
pub fn init_application_processor(tick_ms: u64, stack_bottom: u64) {
    let cpu = percpu::current();
    let apic_id = apic::init();
    cpu.apic_id.store(apic_id, Ordering::Relaxed);
    // SAFETY: the lowest words of the start-up stack are unused: the code
    // runs near its top.
    unsafe { stack::write_canary(stack_bottom) };
    let idle = Thread::new(
        &alloc::format!("idle{}", cpu.id),
        true,
        ThreadState::Running,
        SwitchContext::empty(),
        ThreadStack::Adopted,
        stack_bottom,
        None,
    );
    idle.cpu.store(cpu.id, Ordering::Relaxed);
    *on(cpu).current.lock() = Some(idle.clone());
    *on(cpu).idle.lock() = Some(idle);
    apic::start_timer(tick_ms);
}

/// Runs the idle loop as the current thread (an application processor's
/// start-up code, once [`init_application_processor`] made it the idle thread).
pub fn run_idle() -> ! {
    idle_loop(percpu::current())
}

/// The reschedule IPI: another CPU queued a thread here. Asks for a switch
/// at the end of this interrupt (the idle thread wakes from `hlt` anyway).
fn reschedule_interrupt(_frame: &mut TrapFrame) {
    apic::end_of_interrupt();
    let cpu = percpu::current();
    if !on(cpu).run_queue.lock().is_empty() {
        cpu.need_resched.store(true, Ordering::Relaxed);
    }
}

/// Makes a thread of the code that is running now, on the stack whose
/// lowest address is `bottom`.
fn adopt_running_code(cpu: &PerCpu, name: &str, bottom: u64) -> Arc<Thread> {
    // SAFETY: the lowest words of the running stack are writable and unused:
    // start-up code runs near the top of its stack.
    unsafe { stack::write_canary(bottom) };
    let thread =
        Thread::new(name, false, ThreadState::Running, SwitchContext::empty(), ThreadStack::Adopted, bottom, None);
    thread.cpu.store(cpu.id, Ordering::Relaxed);
    on(cpu).threads_placed.fetch_add(1, Ordering::AcqRel);
    thread
}

/// The timer interrupt: end of interrupt, then a scheduler tick.
fn timer_interrupt(frame: &mut TrapFrame) {
    apic::end_of_interrupt();
    timer_tick(percpu::current(), crate::arch::trap::from_user(frame));
}

/// The length of a timer tick, in nanoseconds.
pub fn tick_nanos() -> u64 {
    state::TICK_NANOS.load(Ordering::Relaxed)
}

/// What a higher layer runs on every timer tick of every CPU, interrupts
/// off, before the tick decides whether to switch: it must only look at
/// what it can read without a lock and wake threads ([`WaitQueue::wake_all`]).
static TICK_HOOK: SetOnce<fn()> = SetOnce::new();

/// Installs the tick hook; refused (false) when one is installed already.
pub fn install_tick_hook(hook: fn()) -> bool {
    TICK_HOOK.set(hook)
}

/// One timer tick on `cpu` (interrupts off), which found the running
/// thread in ring 3 (`in_user`) or in the kernel: counts it, and the
/// thread's CPU time; wakes the sleepers whose time has come; runs the
/// tick hook; and asks for a switch when another thread is ready (round
/// robin: the time slice is one tick).
fn timer_tick(cpu: &PerCpu, in_user: bool) {
    cpu.timer_ticks.fetch_add(1, Ordering::Relaxed);
    if let Some(running) = on(cpu).current.lock().as_ref() {
        running.ticks[if in_user { 0 } else { 1 }].fetch_add(1, Ordering::Relaxed);
    }
    let now = rdtsc();
    {
        let mut sleepers = on(cpu).sleepers.lock();
        let mut index = 0;
        while index < sleepers.len() {
            if sleepers[index].scheduling.lock().wake_at_tsc <= now {
                let thread = sleepers.swap_remove(index);
                wake(&thread);
            } else {
                index += 1;
            }
        }
    }
    if let Some(hook) = TICK_HOOK.get() {
        hook();
    }
    if !on(cpu).run_queue.lock().is_empty() {
        cpu.need_resched.store(true, Ordering::Relaxed);
    }
}

/// Called by `thread_preempt_on_interrupt_exit` (see [`crate::arch::switch`])
/// on the interrupted thread's own stack, interrupts off: the running thread
/// goes back to the run queue and the next one runs. Returns when the thread
/// is chosen again.
#[no_mangle]
extern "C" fn thread_preempt_current() {
    let cpu = percpu::current();
    cpu.need_resched.store(false, Ordering::Relaxed);
    set_current_state(cpu, ThreadState::Ready);
    schedule();
}

fn current_thread(cpu: &PerCpu) -> Arc<Thread> {
    on(cpu).current.lock().clone().expect("threads are set up on this CPU")
}

fn set_current_state(cpu: &PerCpu, state: ThreadState) {
    current_thread(cpu).scheduling.lock().state = state;
}

/// Puts a new thread on its CPU's run queue.
pub(super) fn make_ready(thread: &Arc<Thread>) {
    without_interrupts(|| {
        thread.scheduling.lock().state = ThreadState::Ready;
        enqueue(thread.clone());
    })
}

/// Queues `thread` on the CPU it belongs to (the one it last ran on, or
/// was placed on at spawn), and wakes that CPU: an idle thread that is
/// polling there sees the queue at once (see [`idle_loop`]); another CPU that
/// is not polling gets the reschedule IPI.
fn enqueue(thread: Arc<Thread>) {
    let here = percpu::current();
    let cpu = percpu::by_id(thread.cpu()).unwrap_or(here);
    on(cpu).run_queue.lock().push_back(thread);
    // After the push: an idle thread that stops polling before this looks
    // finds the thread in its queue itself, or is sent the IPI.
    let polled = on(cpu)
        .idle_poll
        .compare_exchange(state::IDLE_POLLING, state::IDLE_WOKEN, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if cpu.id != here.id && !polled {
        apic::send_ipi(cpu.apic_id.load(Ordering::Relaxed), apic::RESCHEDULE_VECTOR);
    }
}

/// The CPU a new thread should start on, counted as placed there: among the
/// running CPUs whose bits `cpus` sets (all of them when it sets none), the
/// one with the fewest threads placed on it that have not exited; ties go
/// to the lowest id, the boot CPU first.
pub(super) fn place_new_thread(cpus: u64) -> u32 {
    let allowed = |cpu: &&PerCpu| cpu.id < 64 && cpus & (1 << cpu.id) != 0;
    let least_loaded = |candidates: &mut dyn Iterator<Item = &'static PerCpu>| {
        candidates.min_by_key(|cpu| (on(cpu).threads_placed.load(Ordering::Acquire), cpu.id))
    };
    let chosen =
        least_loaded(&mut percpu::all_cpus().filter(allowed)).or_else(|| least_loaded(&mut percpu::all_cpus()));
    match chosen {
        Some(cpu) => {
            on(cpu).threads_placed.fetch_add(1, Ordering::AcqRel);
            cpu.id
        }
        None => 0,
    }
}

/// Makes a blocked or sleeping thread ready (interrupts off). A thread whose
/// registers are not saved yet (still switching away) is only marked ready:
/// [`finish_switch`] queues it.
fn wake(thread: &Arc<Thread>) {
    let mut scheduling = thread.scheduling.lock();
    if matches!(scheduling.state, ThreadState::Blocked | ThreadState::Sleeping) {
        scheduling.state = ThreadState::Ready;
        if !scheduling.on_cpu {
            enqueue(thread.clone());
        }
    }
}

/// Gives this CPU to the next thread (interrupts off). The running thread's
/// state must already say why it stops; if it is Ready and nothing else is,
/// it just continues. Returns when the running thread is resumed.
pub(super) fn schedule() {
    let cpu = percpu::current();
    cpu.need_resched.store(false, Ordering::Relaxed);
    let previous = current_thread(cpu);
    let still_ready = previous.scheduling.lock().state == ThreadState::Ready;
    let queued = on(cpu).run_queue.lock().pop_front();
    let next = match queued {
        Some(thread) => thread,
        // A thread that moves to another CPU leaves this one even to idle.
        None if still_ready && previous.cpu() == cpu.id => {
            previous.scheduling.lock().state = ThreadState::Running;
            return;
        }
        None => on(cpu).idle.lock().clone().expect("the idle thread exists"),
    };
    if Arc::ptr_eq(&next, &previous) {
        previous.scheduling.lock().state = ThreadState::Running;
        return;
    }
    switch_to(cpu, previous, next);
}

/// Switches from `previous` (running) to `next`.
fn switch_to(cpu: &'static PerCpu, previous: Arc<Thread>, next: Arc<Thread>) {
    if let Err(overflow) = previous.check_stack() {
        panic!("{overflow}");
    }
    loop {
        let mut scheduling = next.scheduling.lock();
        if !scheduling.on_cpu {
            scheduling.on_cpu = true;
            scheduling.state = ThreadState::Running;
            break;
        }
        // Another CPU is still saving this thread's registers.
        drop(scheduling);
        core::hint::spin_loop();
    }
    next.cpu.store(cpu.id, Ordering::Relaxed);
    // The CPU has the running thread's address space loaded: the switch
    // needs one only when the two threads' spaces differ.
    switch_address_space(*previous.address_space.lock(), *next.address_space.lock());
    load_user_state(cpu, &next);
    cpu.context_switches.fetch_add(1, Ordering::Relaxed);

    let from = previous.context();
    let to = next.context();
    // The Arcs go to the per-CPU slots, not stay on this stack: a thread that
    // exits never returns from the switch, so its stack's locals never drop.
    *on(cpu).previous.lock() = Some(previous);
    *on(cpu).current.lock() = Some(next);
    // SAFETY: interrupts are off; `from` is the running thread's context and
    // `to` was saved by its last switch away (or made at its creation), with
    // `on_cpu` now claimed by this CPU; both threads are kept alive by the
    // per-CPU slots.
    unsafe { switch_context(from, to) };
    finish_switch(percpu::current());
}

/// Makes this CPU ready for `next`'s entries from ring 3: its kernel entry
/// stack, its user tag, context and attention flag, and its FS base when it runs user code (kernel code never uses FS,
/// so a kernel thread leaves it as it is). Interrupts off.
fn load_user_state(cpu: &PerCpu, next: &Thread) {
    let entry_stack = next.user_entry_stack.load(Ordering::Relaxed);
    cpu.user_entry_stack.store(entry_stack, Ordering::Relaxed);
    cpu.user_tag.store(next.user_tag.load(Ordering::Relaxed), Ordering::Relaxed);
    cpu.user_context.store(next.user_context.load(Ordering::Relaxed), Ordering::Relaxed);
    cpu.user_attention.store(next.user_attention.load(Ordering::Relaxed), Ordering::Relaxed);
    if entry_stack != 0 {
        // SAFETY: FS_BASE is only the user's thread pointer; the kernel
        // does not use FS.
        unsafe { crate::arch::cpu::write_msr(MSR_FS_BASE, next.user_fs_base.load(Ordering::Relaxed)) };
    }
}

/// Has the address-space layer load `to` in place of `from` (the space of
/// the thread that ran until now, which the CPU has loaded), if they differ
/// (interrupts off). The layer keeps the one record of what each CPU has
/// loaded; the scheduler keeps none.
pub(super) fn switch_address_space(from: Option<AddressSpaceId>, to: Option<AddressSpaceId>) {
    if from != to {
        if let Some(hooks) = state::hooks() {
            hooks.switch(from, to);
        }
    }
}

/// Run by the thread just switched to: hands the thread it replaced back to
/// the run queue (still ready) or releases its stack (exited). Interrupts off.
fn finish_switch(cpu: &PerCpu) {
    let Some(previous) = on(cpu).previous.lock().take() else { return };
    let mut scheduling = previous.scheduling.lock();
    scheduling.on_cpu = false;
    match scheduling.state {
        ThreadState::Ready if !previous.is_idle => {
            drop(scheduling);
            if previous.cpu() == cpu.id {
                on(cpu).run_queue.lock().push_back(previous);
            } else {
                // Moved by `migrate_current`: queued on its new CPU.
                enqueue(previous);
            }
        }
        ThreadState::Exited => {
            drop(scheduling);
            let stack = core::mem::replace(&mut *previous.stack.lock(), ThreadStack::Released);
            drop(stack);
        }
        _ => {}
    }
}

/// Where every new thread starts (from `thread_start_trampoline`, interrupts
/// off): finishes the switch, enables interrupts, runs the thread's code and
/// exits with its result. Idle threads run the idle loop instead.
pub(super) extern "C" fn thread_first_run() -> ! {
    let cpu = percpu::current();
    finish_switch(cpu);
    let me = current_thread(cpu);
    if me.is_idle {
        drop(me);
        idle_loop(cpu)
    }
    let entry = me.entry.lock().take().expect("a new thread has its entry");
    drop(me);
    // SAFETY: threads run only after `init`, when the IDT and timer handler are ready.
    unsafe { enable_interrupts() };
    let value = entry();
    exit(value)
}

/// How long an idle CPU watches for a thread to be queued before it halts,
/// in nanoseconds (as Linux's guest halt polling, `cpuidle-haltpoll`, whose
/// default is 200 µs): a thread queued meanwhile starts at once, and the CPU
/// that queued it sends no interrupt, whose delivery to a halted CPU costs
/// tens of microseconds under an emulator.
const IDLE_POLL_NANOS: u64 = 200_000;

/// The idle thread: watches for a queued thread for [`IDLE_POLL_NANOS`],
/// then halts until an interrupt, and gives the CPU away as soon as a thread
/// is ready.
fn idle_loop(cpu: &PerCpu) -> ! {
    loop {
        let threads = on(cpu);
        threads.idle_poll.store(state::IDLE_POLLING, Ordering::SeqCst);
        let deadline = tsc::nanos_since_boot().saturating_add(IDLE_POLL_NANOS);
        while threads.idle_poll.load(Ordering::SeqCst) == state::IDLE_POLLING
            && !cpu.need_resched.load(Ordering::Relaxed)
            && tsc::nanos_since_boot() < deadline
        {
            core::hint::spin_loop();
        }
        // From here on a queuer sends the IPI; the queue is looked at below.
        threads.idle_poll.store(state::IDLE_BUSY, Ordering::SeqCst);
        disable_interrupts();
        if on(cpu).run_queue.lock().is_empty() {
            // SAFETY: `sti` takes effect after `hlt` starts, so an interrupt
            // cannot slip in between the check above and the halt; the
            // handlers are ready (threads run only after `init`).
            unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
        } else {
            set_current_state(cpu, ThreadState::Ready);
            schedule();
        }
    }
}

/// Gives the CPU to the next ready thread, if any; the caller stays ready
/// and runs again after the others had their turn.
pub fn yield_now() {
    without_interrupts(|| {
        set_current_state(percpu::current(), ThreadState::Ready);
        schedule();
    })
}

/// Moves the running thread to CPU `target` (ignored unless online): it
/// leaves this CPU at once, runs on `target` from its next turn there and
/// stays there (a wake-up queues it there).
pub fn migrate_current(target: u32) {
    let Some(to) = percpu::by_id(target) else { return };
    without_interrupts(|| {
        let here = percpu::current();
        if here.id == target {
            return;
        }
        let thread = current_thread(here);
        on(here).threads_placed.fetch_sub(1, Ordering::AcqRel);
        on(to).threads_placed.fetch_add(1, Ordering::AcqRel);
        thread.cpu.store(target, Ordering::Relaxed);
        thread.scheduling.lock().state = ThreadState::Ready;
        drop(thread);
        schedule();
    })
}

/// Sleeps for at least `ms` milliseconds (woken by the first timer tick
/// after the time has passed). `sleep_ms(0)` yields.
pub fn sleep_ms(ms: u64) {
    if ms == 0 {
        yield_now();
        return;
    }
    let wake_at = rdtsc() + ms * tsc::ticks_per_ms();
    without_interrupts(|| {
        let cpu = percpu::current();
        let me = current_thread(cpu);
        {
            let mut scheduling = me.scheduling.lock();
            scheduling.state = ThreadState::Sleeping;
            scheduling.wake_at_tsc = wake_at;
        }
        on(cpu).sleepers.lock().push(me);
        schedule();
    })
}

/// Ends the running thread with exit value `value`: wakes its joiners and
/// never returns. Its stack is freed by the next thread to run.
pub fn exit(value: u64) -> ! {
    disable_interrupts();
    let cpu = percpu::current();
    let me = current_thread(cpu);
    assert!(!me.is_idle, "the idle thread cannot exit");
    let joiners = {
        let mut exit = me.exit.lock();
        exit.value = Some(value);
        core::mem::take(&mut exit.joiners)
    };
    me.scheduling.lock().state = ThreadState::Exited;
    on(cpu).threads_placed.fetch_sub(1, Ordering::AcqRel);
    state::notify_membership(*me.address_space.lock(), me.id(), false);
    for joiner in &joiners {
        wake(joiner);
    }
    drop(joiners);
    drop(me);
    schedule();
    unreachable!("an exited thread was resumed");
}

/// Blocks until `thread` has exited; returns its exit value.
pub(super) fn wait_for_exit(thread: &Arc<Thread>) -> u64 {
    loop {
        let value = without_interrupts(|| {
            let mut exit = thread.exit.lock();
            if let Some(value) = exit.value {
                return Some(value);
            }
            let cpu = percpu::current();
            let me = current_thread(cpu);
            me.scheduling.lock().state = ThreadState::Blocked;
            exit.joiners.push(me);
            drop(exit);
            schedule();
            None
        });
        if let Some(value) = value {
            return value;
        }
    }
}

/// Threads waiting for a condition that other threads make true: each
/// waiter checks the condition with the queue's lock held and blocks if it
/// does not hold yet; whoever makes it true calls [`WaitQueue::wake_all`]
/// after. A wake between the check and the block is not lost: the waiter
/// is queued before it releases the lock, and a woken thread that has not
/// switched out yet just goes on.
pub struct WaitQueue {
    waiters: spin::Mutex<alloc::vec::Vec<Arc<Thread>>>,
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> WaitQueue {
        WaitQueue { waiters: spin::Mutex::new(alloc::vec::Vec::new()) }
    }

    /// Blocks until `ready` returns a value, and returns it. `ready` runs
    /// with the queue's lock held and interrupts off: it may take other
    /// locks, but not this queue's.
    pub fn wait_until<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        loop {
            let found = without_interrupts(|| {
                let mut waiters = self.waiters.lock();
                if let Some(value) = ready() {
                    return Some(value);
                }
                let cpu = percpu::current();
                let me = current_thread(cpu);
                me.scheduling.lock().state = ThreadState::Blocked;
                waiters.push(me);
                drop(waiters);
                schedule();
                None
            });
            if let Some(value) = found {
                return value;
            }
        }
    }

    /// Wakes every waiter (each checks its condition again).
    pub fn wake_all(&self) {
        without_interrupts(|| {
            let waiters = core::mem::take(&mut *self.waiters.lock());
            for waiter in &waiters {
                wake(waiter);
            }
        })
    }
}

impl Default for WaitQueue {
    fn default() -> Self {
        WaitQueue::new()
    }
}
