//! Threads: preemption, join, sleep, yield, SSE state across switches, the
//! address-space slot and its hooks, the stack canary, the listings.

use crate::arch::cpu::{disable_interrupts, rdtsc, without_interrupts};
use crate::arch::sse::read_mxcsr;
use crate::arch::tsc;
use crate::thread::{self, stack, AddressSpaceId, StackOverflow, ThreadState};
use crate::{check, check_eq, kernel_test};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

/// The time-stamp counter value `ms` milliseconds from now.
fn deadline_in_ms(ms: u64) -> u64 {
    rdtsc() + ms * tsc::ticks_per_ms()
}

fn context_switches() -> u64 {
    crate::percpu::current().context_switches.load(Ordering::Relaxed)
}

/// Two threads that never yield: each counts, and watches the other's
/// count change between two of its own steps (which on one CPU means it was
/// preempted and the other ran). Each must see that three times; without
/// preemption the first one would spin until its deadline.
fn busy_threads_preempt_each_other() -> Result<(), String> {
    struct Shared {
        counts: [AtomicU64; 2],
        done: [AtomicBool; 2],
    }
    let shared = Arc::new(Shared {
        counts: [AtomicU64::new(0), AtomicU64::new(0)],
        done: [AtomicBool::new(false), AtomicBool::new(false)],
    });
    let deadline = deadline_in_ms(5000);
    let busy = |me: usize, shared: Arc<Shared>| {
        move || {
            let other = 1 - me;
            let mut last_seen = shared.counts[other].load(Ordering::Relaxed);
            let mut times_preempted = 0;
            // Keep counting after reaching the goal until the other thread
            // reached it too: it needs to see this count move.
            while !(shared.done[me].load(Ordering::Relaxed) && shared.done[other].load(Ordering::Relaxed)) {
                shared.counts[me].fetch_add(1, Ordering::Relaxed);
                let seen = shared.counts[other].load(Ordering::Relaxed);
                if seen != last_seen {
                    times_preempted += 1;
                    last_seen = seen;
                }
                if times_preempted >= 3 {
                    shared.done[me].store(true, Ordering::Relaxed);
                }
                if rdtsc() > deadline {
                    break;
                }
            }
            times_preempted
        }
    };
    let switches_before = context_switches();
    // Both on this CPU: the test is about preemption between them.
    let here = crate::percpu::current().id;
    let first = thread::spawn_pinned("busy-0", here, busy(0, shared.clone()));
    let second = thread::spawn_pinned("busy-1", here, busy(1, shared.clone()));
    let (first, second) = (first.join(), second.join());
    check!(first >= 3 && second >= 3, "preempted {first} and {second} times within 5 s (3 each expected)");
    check!(context_switches() - switches_before >= 6, "only {} switches", context_switches() - switches_before);
    Ok(())
}
kernel_test!(busy_threads_preempt_each_other);

/// Stacks of exited threads go back to the heap: fifty threads created and
/// joined leave the heap as it was. The threads run on this CPU, so that
/// each one's stack is released (by the switch back to this thread) before
/// the next is made; on another CPU the release can come after the next
/// spawn, which then takes a new stack.
fn exited_threads_give_their_memory_back() -> Result<(), String> {
    let here = crate::percpu::current().id;
    let used_before = crate::mem::heap::stats().used;
    for round in 0..50u64 {
        check_eq!(thread::spawn_pinned("short-lived", here, move || round).join(), round);
    }
    let used_after = crate::mem::heap::stats().used;
    let stack_bytes = stack::THREAD_STACK_SIZE + stack::GUARD_SIZE;
    check!(
        used_after < used_before + stack_bytes,
        "heap use grew from {used_before} to {used_after} bytes (a stack is {stack_bytes})"
    );
    Ok(())
}
kernel_test!(exited_threads_give_their_memory_back);

fn times_two_plus_two(argument: u64) -> u64 {
    argument * 2 + 2
}

fn exit_from_a_nested_call() -> ! {
    thread::exit(7)
}

fn join_returns_the_exit_value() -> Result<(), String> {
    check_eq!(thread::spawn("answer", || 42).join(), 42);
    check_eq!(thread::spawn_fn("fn-and-arg", times_two_plus_two, 20).join(), 42);
    check_eq!(thread::spawn("explicit-exit", || exit_from_a_nested_call()).join(), 7);
    // Joining a thread that has already exited returns at once. (When it
    // exits is up to the host's scheduling of its CPU: waited for, up to 5 s.)
    let early = thread::spawn("early", || 99);
    super::wait_for(500, 10, || (early.thread().state() == ThreadState::Exited).then_some(()));
    check_eq!(early.thread().state(), ThreadState::Exited);
    check_eq!(early.join(), 99);
    Ok(())
}
kernel_test!(join_returns_the_exit_value);

fn sleep_sleeps_at_least_the_time_asked() -> Result<(), String> {
    let ticks_per_ms = tsc::ticks_per_ms();
    for ms in [1, 15, 30] {
        let start = rdtsc();
        thread::sleep_ms(ms);
        let slept_ms = (rdtsc() - start) / ticks_per_ms;
        check!(slept_ms >= ms, "sleep_ms({ms}) returned after {slept_ms} ms");
        check!(slept_ms < ms + 1000, "sleep_ms({ms}) took {slept_ms} ms");
    }
    // A sleeping thread is seen sleeping (looked for up to 5 s: when it
    // first runs is up to the host), then finishes.
    static STOP: AtomicBool = AtomicBool::new(false);
    STOP.store(false, Ordering::SeqCst);
    let sleeper = thread::spawn("sleeper", || {
        while !STOP.load(Ordering::SeqCst) {
            thread::sleep_ms(20);
        }
        1
    });
    let seen_asleep =
        super::wait_for(500, 10, || (sleeper.thread().state() == ThreadState::Sleeping).then_some(())).is_some();
    STOP.store(true, Ordering::SeqCst);
    check!(seen_asleep, "the sleeper was never seen sleeping in 5 s");
    check_eq!(sleeper.join(), 1);
    Ok(())
}
kernel_test!(sleep_sleeps_at_least_the_time_asked);

/// Two threads log their letter and yield, with interrupts off so that only
/// the yields switch: the log must alternate strictly.
fn yield_alternates() -> Result<(), String> {
    const ROUNDS: usize = 20;
    let log = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let worker = |me: usize, letter: u8| {
        let (log, started) = (log.clone(), started.clone());
        move || {
            // Interrupts stay off from here to the exit (the thread's own
            // state, not its neighbours': a switch leaves them as they are).
            disable_interrupts();
            started[me].store(true, Ordering::Relaxed);
            while !started[1 - me].load(Ordering::Relaxed) {
                thread::yield_now();
            }
            for _ in 0..ROUNDS {
                log.lock().push(letter);
                thread::yield_now();
            }
            0
        }
    };
    // Both on this CPU: yielding alternates only between threads sharing one.
    let here = crate::percpu::current().id;
    let a = thread::spawn_pinned("yield-a", here, worker(0, b'a'));
    let b = thread::spawn_pinned("yield-b", here, worker(1, b'b'));
    a.join();
    b.join();
    let log = log.lock();
    check_eq!(log.len(), 2 * ROUNDS);
    let repeated = log.windows(2).position(|pair| pair[0] == pair[1]);
    check!(repeated.is_none(), "no strict alternation: {:?}", core::str::from_utf8(&log));
    Ok(())
}
kernel_test!(yield_alternates);

/// Loads `seed + n` into both halves of every xmm register n, spins until
/// `deadline` (being preempted meanwhile), and returns the bits that differ
/// afterwards (0 when all sixteen registers kept their values).
fn hold_xmm_registers(seed: u64, deadline: u64) -> u64 {
    let differing: u64;
    // SAFETY: only the registers the macro and these operands declare are
    // touched; rdtsc is harmless.
    unsafe {
        with_xmm_pattern!(
            seed,
            differing,
            ["2:", "rdtsc", "shl rdx, 32", "or rax, rdx", "cmp rax, {deadline}", "jb 2b"],
            deadline = in(reg) deadline,
            out("rax") _,
            out("rdx") _,
        );
    }
    differing
}

/// A floating-point sum long enough to be preempted in the middle.
fn harmonic_sum(terms: u32, scale: f64) -> f64 {
    let mut sum = 0.0;
    for k in 1..=terms {
        sum += core::hint::black_box(scale) / k as f64;
    }
    sum
}

/// Two threads keep distinct values in all xmm registers and in f64 sums
/// across many preemptions.
fn sse_state_survives_preemption() -> Result<(), String> {
    let worker = |seed: u64, scale: f64| {
        move || {
            let reference = harmonic_sum(20_000, scale);
            let mut failures = 0;
            let mut switches_while_held = 0;
            for _ in 0..4 {
                let before = context_switches();
                if hold_xmm_registers(seed, deadline_in_ms(35)) != 0 {
                    failures += 1;
                }
                switches_while_held += context_switches() - before;
                if harmonic_sum(20_000, scale).to_bits() != reference.to_bits() {
                    failures += 1;
                }
            }
            failures << 32 | switches_while_held
        }
    };
    // Both on this CPU, so that each preempts the other.
    let here = crate::percpu::current().id;
    let first = thread::spawn_pinned("sse-1", here, worker(0x1111_0000_0000_0000, 1.0));
    let second = thread::spawn_pinned("sse-2", here, worker(0x2222_0000_0000_0000, 3.0));
    for (name, result) in [("sse-1", first.join()), ("sse-2", second.join())] {
        let (failures, switches) = (result >> 32, result & 0xffff_ffff);
        check_eq!(failures, 0);
        check!(switches >= 4, "{name}: only {switches} switches while its registers were live");
    }
    Ok(())
}
kernel_test!(sse_state_survives_preemption);

fn write_mxcsr(value: u32) {
    // SAFETY: the callers pass the default MXCSR with only the rounding
    // control changed, which is valid.
    unsafe { asm!("ldmxcsr [{}]", in(reg) &value, options(nostack, preserves_flags)) };
}

/// Bits 13-14 of MXCSR: the rounding control.
const ROUNDING_MASK: u32 = 0x6000;
const ROUND_TOWARD_ZERO: u32 = 0x6000;

/// One thread rounds toward zero, the other to nearest; they yield to each
/// other ten times, and each must keep its own rounding mode (the switch
/// saves MXCSR with the rest of the SSE state) and compute with it.
fn sse_control_state_is_per_thread() -> Result<(), String> {
    let tenth = || (core::hint::black_box(1.0f64) / core::hint::black_box(10.0f64)).to_bits();
    let rounds_toward_zero = thread::spawn("round-to-zero", move || {
        write_mxcsr((read_mxcsr() & !ROUNDING_MASK) | ROUND_TOWARD_ZERO);
        let mut kept = 0;
        for _ in 0..10 {
            thread::yield_now();
            // 1/10 rounded toward zero ends in ...9999, to nearest in ...999a.
            if read_mxcsr() & ROUNDING_MASK == ROUND_TOWARD_ZERO && tenth() == 0x3fb9_9999_9999_9999 {
                kept += 1;
            }
        }
        kept
    });
    let rounds_to_nearest = thread::spawn("round-to-nearest", move || {
        let mut kept = 0;
        for _ in 0..10 {
            thread::yield_now();
            if read_mxcsr() & ROUNDING_MASK == 0 && tenth() == 0x3fb9_9999_9999_999a {
                kept += 1;
            }
        }
        kept
    });
    check_eq!(rounds_toward_zero.join(), 10);
    check_eq!(rounds_to_nearest.join(), 10);
    Ok(())
}
kernel_test!(sse_control_state_is_per_thread);

static SWITCHES_INTO_SEVEN: AtomicU64 = AtomicU64::new(0);
static SWITCHES_OUT_OF_SEVEN: AtomicU64 = AtomicU64::new(0);

/// Hooks that count switches in and out of address space 7 and name it.
struct CountSeven;

impl thread::AddressSpaceHooks for CountSeven {
    fn switch(&self, from: Option<AddressSpaceId>, to: Option<AddressSpaceId>) {
        if to == Some(7) {
            SWITCHES_INTO_SEVEN.fetch_add(1, Ordering::Relaxed);
        }
        if from == Some(7) {
            SWITCHES_OUT_OF_SEVEN.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn membership(&self, _space: AddressSpaceId, _thread: thread::ThreadId, _joined: bool) {}

    fn write_name(&self, id: AddressSpaceId, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        write!(out, "space-{id}")
    }

    fn loaded_on(&self, _cpu: u32) -> Option<AddressSpaceId> {
        None
    }
}

/// A thread moved into address space 7 creates a child: the child starts in
/// 7, the listing names it, and switches in and out of 7 call the hooks.
fn created_thread_inherits_address_space() -> Result<(), String> {
    let (into_before, out_of_before) =
        (SWITCHES_INTO_SEVEN.load(Ordering::Relaxed), SWITCHES_OUT_OF_SEVEN.load(Ordering::Relaxed));
    let result = thread::with_address_space_hooks_override(&CountSeven, || {
        let parent = thread::spawn("in-space-7", || {
            thread::set_current_address_space(Some(7));
            let child = thread::spawn("child-of-7", || {
                // Nothing else is ready while both sleep: the CPU switches to its
                // idle thread (default address space) and back.
                thread::sleep_ms(20);
                let mut listing = String::new();
                let _ = thread::format_threads(&mut listing);
                let listed = listing.lines().any(|line| line.contains("child-of-7") && line.ends_with("space-7"));
                let slot = thread::current_address_space().map_or(u64::MAX, u64::from);
                slot | (listed as u64) << 32
            });
            let result = child.join();
            thread::set_current_address_space(None);
            result
        });
        parent.join()
    });
    check_eq!(result & 0xffff_ffff, 7);
    check!(result >> 32 == 1, "the listing did not show the child in space-7");
    let into = SWITCHES_INTO_SEVEN.load(Ordering::Relaxed) - into_before;
    let out_of = SWITCHES_OUT_OF_SEVEN.load(Ordering::Relaxed) - out_of_before;
    // Into 7: the parent's move, and the switch from the idle thread to the
    // child when it wakes. Out of 7: the switch to the idle thread while the
    // child sleeps, and the parent's move back to the default.
    check!(into >= 2 && out_of >= 2, "hook called {into} times into and {out_of} times out of space 7");
    check_eq!(thread::current_address_space(), None);
    Ok(())
}
kernel_test!(created_thread_inherits_address_space);

/// The canary check finds a word of the guard page overwritten. (A real
/// overflow is caught at the next switch and stops the kernel with "stack
/// overflow in thread T", which a test run cannot survive; this checks the
/// detection on a thread that has not run yet.)
fn stack_canary_detects_an_overflow() -> Result<(), String> {
    // Made, pinned to this CPU, with interrupts off until the check is
    // done: it cannot run meanwhile.
    let (victim, outcome) = without_interrupts(|| {
        let victim = thread::spawn_pinned("victim", crate::percpu::current().id, || 5);
        let thread = victim.thread();
        let intact_before = thread.check_stack();
        // The guard page's highest word: the first an overflowing stack writes.
        let word = (thread.canary_address() + (stack::CANARY_WORDS as u64 - 1) * 8) as *mut u64;
        // SAFETY: the word is in the victim's guard page, which nothing else
        // uses; the victim has not run yet (interrupts are off), and the
        // word is restored before it can.
        let saved = unsafe { word.read_volatile() };
        // SAFETY: as above.
        unsafe { word.write_volatile(0x1234) };
        let overwritten = thread.check_stack();
        // SAFETY: as above.
        unsafe { word.write_volatile(saved) };
        let outcome = (intact_before, overwritten, thread.check_stack(), thread.id());
        (victim, outcome)
    });
    let (intact_before, overwritten, intact_after, id) = outcome;
    check_eq!(intact_before, Ok(()));
    check_eq!(overwritten, Err(StackOverflow { id, name: String::from("victim") }));
    let message = alloc::format!("{}", overwritten.unwrap_err());
    check!(message.starts_with("stack overflow in thread"), "message {message:?}");
    check_eq!(intact_after, Ok(()));
    check_eq!(victim.join(), 5);
    // The running thread's canary is intact too.
    check_eq!(thread::current().check_stack(), Ok(()));
    Ok(())
}
kernel_test!(stack_canary_detects_an_overflow);

fn listings_show_threads_and_cpus() -> Result<(), String> {
    // The sleeper naps in short turns until told to stop. How soon it first
    // runs is up to the host (a busy host may not run its CPU for a while),
    // so the listings are read until they catch it asleep, for up to 5 s.
    static STOP: AtomicBool = AtomicBool::new(false);
    STOP.store(false, Ordering::SeqCst);
    let sleeper = thread::spawn("listed-sleeper", || {
        while !STOP.load(Ordering::SeqCst) {
            thread::sleep_ms(20);
        }
        0
    });
    let caught = super::wait_for(500, 10, || {
        let snapshot = thread::threads_snapshot();
        let mut threads = String::new();
        let _ = thread::format_threads(&mut threads);
        let line = threads.lines().find(|line| line.contains("listed-sleeper") && line.contains("sleeping"))?;
        let asleep = snapshot.iter().any(|info| info.name == "listed-sleeper" && info.state == ThreadState::Sleeping);
        asleep.then(|| (snapshot, String::from(line)))
    });
    let outcome = (|| {
        let (snapshot, line) = caught.ok_or("the listings never showed the sleeper asleep in 5 s")?;
        let entry = snapshot.iter().find(|info| info.name == "listed-sleeper").ok_or("the sleeper is not listed")?;
        check_eq!(entry.address_space, None);
        check!(snapshot.iter().any(|info| info.name == "main" && info.state == ThreadState::Running));
        check!(snapshot.iter().any(|info| info.name == "idle0"));
        check!(line.ends_with("default"), "line {line:?}");
        Ok::<(), String>(())
    })();
    STOP.store(true, Ordering::SeqCst);
    outcome?;

    let mut cpus = String::new();
    let _ = thread::format_cpus(&mut cpus);
    let cpu0 = cpus.lines().nth(1).unwrap_or("");
    check!(cpu0.contains(" main ") && cpu0.ends_with("default"), "cpu line {cpu0:?}");
    check!(crate::percpu::current().timer_ticks.load(Ordering::Relaxed) > 0, "no timer ticks counted");
    check_eq!(sleeper.join(), 0);
    Ok(())
}
kernel_test!(listings_show_threads_and_cpus);
