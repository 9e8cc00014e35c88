//! Locks that are safe to share with interrupt handlers.
//!
//! A plain spin lock taken by a thread can deadlock the CPU if an interrupt
//! arrives while it is held and the handler (or the thread it preempts to)
//! wants the same lock. [`IrqMutex`] masks interrupts for as long as the
//! lock is held, and restores the previous state when the guard is dropped.

use crate::arch::cpu;
use core::ops::{Deref, DerefMut};

/// A spin lock that keeps maskable interrupts off while held.
pub struct IrqMutex<T> {
    inner: spin::Mutex<T>,
}

/// Holds an [`IrqMutex`]; interrupts are off until it is dropped.
pub struct IrqMutexGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    interrupts_were_enabled: bool,
}

impl<T> IrqMutex<T> {
    /// A new unlocked lock.
    pub const fn new(value: T) -> Self {
        IrqMutex { inner: spin::Mutex::new(value) }
    }

    /// Masks interrupts, then takes the lock.
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let interrupts_were_enabled = cpu::interrupts_enabled();
        cpu::disable_interrupts();
        IrqMutexGuard { guard: Some(self.inner.lock()), interrupts_were_enabled }
    }

    /// [`IrqMutex::try_lock`] for a caller whose interrupts are off
    /// already (a trap handler): nothing to save or restore.
    pub fn try_lock_interrupts_off(&self) -> Option<IrqMutexGuard<'_, T>> {
        debug_assert!(!cpu::interrupts_enabled(), "interrupts are off");
        self.inner.try_lock().map(|guard| IrqMutexGuard { guard: Some(guard), interrupts_were_enabled: false })
    }

    /// Takes the lock if it is free, without waiting.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let interrupts_were_enabled = cpu::interrupts_enabled();
        cpu::disable_interrupts();
        match self.inner.try_lock() {
            Some(guard) => Some(IrqMutexGuard { guard: Some(guard), interrupts_were_enabled }),
            None => {
                restore_interrupts(interrupts_were_enabled);
                None
            }
        }
    }
}

fn restore_interrupts(were_enabled: bool) {
    if were_enabled {
        // SAFETY: interrupts were enabled when the lock was taken, so the
        // IDT and every handler were ready then and still are.
        unsafe { cpu::enable_interrupts() };
    }
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard is present until drop")
    }
}

impl<T> DerefMut for IrqMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard is present until drop")
    }
}

impl<T> Drop for IrqMutexGuard<'_, T> {
    fn drop(&mut self) {
        // Release the lock before interrupts may arrive again.
        drop(self.guard.take());
        restore_interrupts(self.interrupts_were_enabled);
    }
}

/// A value set once, at boot, and read without a lock ever after: how the
/// lower layers hold what a higher one registers with them (the fault
/// handler, the address-space hooks, the guard-page observer).
pub struct SetOnce<T>(spin::Once<T>);

impl<T> SetOnce<T> {
    /// Not set yet.
    pub const fn new() -> Self {
        SetOnce(spin::Once::new())
    }

    /// Sets the value; refused (false, nothing changed) when it is set already.
    pub fn set(&self, value: T) -> bool {
        let mut set = false;
        self.0.call_once(|| {
            set = true;
            value
        });
        set
    }

    /// The value, once set.
    pub fn get(&self) -> Option<&T> {
        self.0.get()
    }
}
