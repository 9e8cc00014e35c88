//! `futex`: threads of a process waiting on a 32-bit word of its memory,
//! and waking each other.
//!
//! A waiter is keyed by its address space and the word's address
//! ([`Key::Private`]): the threads of a process meet there. A call without
//! `FUTEX_PRIVATE_FLAG` on a word of a page shared between address spaces
//! (a `MAP_SHARED` mapping: a file's page or shared memory) is keyed by the
//! word's physical address instead ([`Key::Shared`]), the same in every
//! process that maps the page: processes meet there, as Linux keys such a
//! futex by the page. `FUTEX_WAIT` checks the
//! word and queues in one step under the waiters' lock, so a wake between
//! the check and the sleep is not lost. A wait without a timeout sleeps
//! until woken (by a wake, a signal to the process, or the process
//! ending); one with a timeout looks again every millisecond.
//!
//! Operations: `WAIT`, `WAKE`, `REQUEUE`, `CMP_REQUEUE`, `WAIT_BITSET`,
//! `WAKE_BITSET`, with Linux's checks (`EINVAL` for a misaligned word or a
//! zero bitset, `EFAULT`, `EAGAIN` when the word differs, `ETIMEDOUT`);
//! the others (`WAKE_OP`, the priority-inheritance ones) answer `ENOSYS`.

use super::copy;
use super::errno::{Errno, SysResult};
use crate::sync::IrqMutex;
use crate::thread::{self, AddressSpaceId, WaitQueue};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// A waiter's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// The word's address space and address.
    Private(AddressSpaceId, u64),
    /// The word's physical address (a shared page's word).
    Shared(u64),
}

/// What the caller knows of a word's page: the word's physical address
/// when the page is shared between address spaces (`None` otherwise).
pub type SharedWord<'a> = &'a dyn Fn(u64) -> Option<u64>;

/// One waiting thread.
struct Waiter {
    key: IrqMutex<Key>,
    bitset: u32,
    woken: AtomicBool,
}

/// Every waiting thread, oldest first.
static WAITERS: IrqMutex<Vec<Arc<Waiter>>> = IrqMutex::new(Vec::new());
/// Where waiters without a timeout sleep.
static QUEUE: WaitQueue = WaitQueue::new();

/// Wakes every waiter to look again (a signal came, or a process ends):
/// each goes back to sleep unless it has a reason to return.
pub fn nudge_all() {
    QUEUE.wake_all();
}

/// Wakes up to `count` waiters of `key` whose bitset meets `bitset`.
fn wake(key: Key, count: u64, bitset: u32) -> u64 {
    let mut woken = 0;
    {
        let mut waiters = WAITERS.lock();
        waiters.retain(|waiter| {
            if woken < count && *waiter.key.lock() == key && waiter.bitset & bitset != 0 {
                waiter.woken.store(true, Ordering::SeqCst);
                woken += 1;
                false
            } else {
                true
            }
        });
    }
    if woken > 0 {
        QUEUE.wake_all();
    }
    woken
}

/// Wakes one waiter of `uaddr` in `space`: a thread's `CLONE_CHILD_CLEARTID`
/// word at its end (what `pthread_join` waits on).
pub fn wake_one(space: AddressSpaceId, uaddr: u64) {
    wake(Key::Private(space, uaddr), 1, FUTEX_BITSET_MATCH_ANY);
}

/// `struct timespec`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

/// The deadline a timeout names, in nanoseconds since boot (the clock of
/// `clock_gettime` here): relative for `FUTEX_WAIT`, absolute for
/// `FUTEX_WAIT_BITSET`.
fn deadline(timeout: u64, absolute: bool) -> Result<Option<u64>, Errno> {
    if timeout == 0 {
        return Ok(None);
    }
    let time: Timespec = copy::read_value(timeout)?;
    if time.sec < 0 || !(0..1_000_000_000).contains(&time.nsec) {
        return Err(Errno::EINVAL);
    }
    let nanos = (time.sec as u64).saturating_mul(1_000_000_000).saturating_add(time.nsec as u64);
    let now = crate::arch::tsc::nanos_since_boot();
    Ok(Some(if absolute { nanos } else { now.saturating_add(nanos) }))
}

/// A wait's reason to stop early: a signal to take, or the process ending
/// (`ERESTARTSYS`).
pub type Interrupted<'a> = &'a dyn Fn() -> bool;

fn wait(
    key: Key,
    address: u64,
    expected: u32,
    bitset: u32,
    deadline: Option<u64>,
    interrupted: Interrupted,
) -> SysResult {
    let waiter = Arc::new(Waiter { key: IrqMutex::new(key), bitset, woken: AtomicBool::new(false) });
    {
        // The word is read and the waiter queued under the lock a waker
        // takes: no wake falls in between.
        let mut waiters = WAITERS.lock();
        // A page fault in the copy is handled with the lock held and
        // interrupts off, as any kernel page fault: it never sleeps.
        let mut word = 0u32;
        copy::read(address, bytemuck_u32(&mut word))?;
        if word != expected {
            return Err(Errno::EAGAIN);
        }
        waiters.push(waiter.clone());
    }
    let result = loop {
        if waiter.woken.load(Ordering::SeqCst) {
            break Ok(0);
        }
        if interrupted() {
            break Err(Errno::ERESTARTSYS);
        }
        match deadline {
            Some(deadline) if crate::arch::tsc::nanos_since_boot() >= deadline => break Err(Errno::ETIMEDOUT),
            Some(_) => thread::sleep_ms(1),
            None => QUEUE.wait_until(|| (waiter.woken.load(Ordering::SeqCst) || interrupted()).then_some(())),
        }
    };
    if result.is_err() {
        WAITERS.lock().retain(|other| !Arc::ptr_eq(other, &waiter));
        if waiter.woken.load(Ordering::SeqCst) {
            return Ok(0); // woken after all: the wake counted it
        }
    }
    result
}

/// The bytes of `word`, for `copy::read`.
fn bytemuck_u32(word: &mut u32) -> &mut [u8] {
    // SAFETY: a u32 is 4 initialised bytes, any of whose values is a u32.
    unsafe { core::slice::from_raw_parts_mut(word as *mut u32 as *mut u8, 4) }
}

/// Moves up to `count` waiters of `from` to `to`.
fn requeue(from: Key, to: Key, count: u64) -> u64 {
    let mut moved = 0;
    for waiter in WAITERS.lock().iter() {
        if moved >= count {
            break;
        }
        let mut key = waiter.key.lock();
        if *key == from {
            *key = to;
            moved += 1;
        }
    }
    moved
}

/// `futex(uaddr, op, val, timeout_or_val2, uaddr2, val3)` in address space
/// `space`; `shared_word` says which words lie on shared pages; a wait
/// ends early when `interrupted` says so.
#[allow(clippy::too_many_arguments)]
pub fn futex(
    space: AddressSpaceId,
    uaddr: u64,
    op: u64,
    val: u64,
    timeout: u64,
    uaddr2: u64,
    val3: u64,
    shared_word: SharedWord,
    interrupted: Interrupted,
) -> SysResult {
    let command = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if op & FUTEX_CLOCK_REALTIME != 0 && command != FUTEX_WAIT_BITSET && command != FUTEX_WAIT {
        return Err(Errno::ENOSYS);
    }
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    // Linux's get_futex_key: a private key is the address alone; a shared
    // one needs the page (EFAULT when there is none to be had).
    let key_of = |address: u64| -> Result<Key, Errno> {
        if private {
            return Ok(Key::Private(space, address));
        }
        copy::read_value::<u32>(address)?;
        Ok(shared_word(address).map_or(Key::Private(space, address), Key::Shared))
    };
    let key = key_of(uaddr)?;
    match command {
        FUTEX_WAIT => wait(key, uaddr, val as u32, FUTEX_BITSET_MATCH_ANY, deadline(timeout, false)?, interrupted),
        FUTEX_WAIT_BITSET => {
            if val3 as u32 == 0 {
                return Err(Errno::EINVAL);
            }
            wait(key, uaddr, val as u32, val3 as u32, deadline(timeout, true)?, interrupted)
        }
        FUTEX_WAKE => Ok(wake(key, val.min(i32::MAX as u64), FUTEX_BITSET_MATCH_ANY)),
        FUTEX_WAKE_BITSET => {
            if val3 as u32 == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(wake(key, val.min(i32::MAX as u64), val3 as u32))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            if !uaddr2.is_multiple_of(4) || (val as i32) < 0 || (timeout as i32) < 0 {
                return Err(Errno::EINVAL);
            }
            if command == FUTEX_CMP_REQUEUE {
                let word: u32 = copy::read_value(uaddr)?;
                if word != val3 as u32 {
                    return Err(Errno::EAGAIN);
                }
            }
            let target = key_of(uaddr2)?;
            let woken = wake(key, val, FUTEX_BITSET_MATCH_ANY);
            let moved = requeue(key, target, timeout as u32 as u64);
            Ok(woken + moved)
        }
        _ => Err(Errno::ENOSYS),
    }
}
