//! SMP: every CPU the MADT lists runs, threads are placed and pinned, and
//! TLB shootdowns reach exactly the CPUs that hold an address space.

use crate::address_space;
use crate::arch::smp;
use crate::labs::shootdown as stress;
use crate::percpu;
use crate::thread;
use crate::tlb;
use crate::{check, check_eq, kernel_test};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use aspace::{Protection, Region};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn every_cpu_the_madt_lists_is_running() -> Result<(), String> {
    let processors = smp::find_processors().map_err(|e| format!("MADT: {e:?}"))?;
    let usable = processors.iter().filter(|p| p.usable).count();
    check!(usable >= 1, "the MADT lists no usable processor");
    check_eq!(percpu::all_cpus().count(), usable);
    for cpu in percpu::all_cpus() {
        check!(crate::thread::on(cpu).has_idle_thread(), "cpu {} has no idle thread", cpu.id);
        check!(
            processors.iter().any(|p| p.apic_id == cpu.apic_id.load(Ordering::Relaxed)),
            "cpu {} has an APIC id the MADT does not list",
            cpu.id
        );
    }
    Ok(())
}
kernel_test!(every_cpu_the_madt_lists_is_running);

fn pinned_threads_run_on_their_cpu() -> Result<(), String> {
    for cpu in percpu::all_cpus() {
        let id = cpu.id;
        let ran_on = thread::spawn_pinned("pinned", id, || {
            // Across a few switches: a pinned thread never moves.
            let mut seen = percpu::current().id;
            for _ in 0..5 {
                thread::yield_now();
                if percpu::current().id != seen {
                    seen = u32::MAX;
                }
            }
            seen as u64
        })
        .join();
        check_eq!(ran_on, id as u64);
    }
    Ok(())
}
kernel_test!(pinned_threads_run_on_their_cpu);

/// With every CPU but this one idle, unpinned threads that stay busy land
/// on different CPUs: the least loaded one at each spawn.
fn spawn_spreads_threads_over_the_cpus() -> Result<(), String> {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    RELEASE.store(false, Ordering::SeqCst);
    STARTED.store(0, Ordering::SeqCst);
    let others = percpu::all_cpus().count() - 1;
    // Wait (up to 5 s) until the other CPUs are idle: threads of earlier
    // tests may still be exiting there, which would make them look loaded.
    let here = percpu::current().id;
    let idle = |cpu: &percpu::PerCpu| {
        cpu.id == here
            || (crate::thread::on(cpu).queued() == 0
                && crate::thread::on(cpu).current_thread().is_none_or(|thread| thread.name().starts_with("idle")))
    };
    super::wait_for(5_000, 1, || crate::arch::cpu::without_interrupts(|| percpu::all_cpus().all(idle)).then_some(()));
    let handles: Vec<_> = (0..others)
        .map(|_| {
            thread::spawn("spread", || {
                STARTED.fetch_add(1, Ordering::SeqCst);
                while !RELEASE.load(Ordering::SeqCst) {
                    core::hint::spin_loop();
                }
                percpu::current().id as u64
            })
        })
        .collect();
    while STARTED.load(Ordering::SeqCst) < others {
        thread::yield_now();
    }
    RELEASE.store(true, Ordering::SeqCst);
    let mut cpus: Vec<u64> = handles.into_iter().map(thread::JoinHandle::join).collect();
    cpus.sort_unstable();
    cpus.dedup();
    check_eq!(cpus.len(), others);
    check!(!cpus.contains(&(percpu::current().id as u64)), "a thread was placed on the busy CPU: {cpus:?}");
    Ok(())
}
kernel_test!(spawn_spreads_threads_over_the_cpus);

/// A thread pinned to another CPU sits in a space; edits from here send it
/// one IPI each and it acknowledges each, even with no free frame left.
/// Once it left, edits send none.
fn shootdowns_reach_only_cpus_holding_the_space() -> Result<(), String> {
    static INSIDE: AtomicBool = AtomicBool::new(false);
    static LEAVE: AtomicBool = AtomicBool::new(false);
    INSIDE.store(false, Ordering::SeqCst);
    LEAVE.store(false, Ordering::SeqCst);
    let here = percpu::current().id;
    let Some(other) = percpu::all_cpus().map(|cpu| cpu.id).find(|&id| id != here) else {
        // One CPU: every edit stays local.
        return check_local_only_on_one_cpu();
    };
    let space = stress::create_enterable_space("smp-targets").map_err(|e| format!("{e}"))?;
    let frame = crate::mem::frames::alloc_zeroed().ok_or("no frame")?;
    let region =
        Region::new(stress::TEST_VA, frame.as_u64(), 4096, Protection::READ | Protection::WRITE | Protection::KERN);
    space.lock().add_region(region).map_err(|e| format!("{e}"))?;
    let inside = {
        let space = space.clone();
        thread::spawn_pinned("holder", other, move || {
            address_space::move_current_thread(Some(&space)).expect("entering the test space");
            // Touch the page so that its translation is cached.
            let _ = crate::probe::probe_read(stress::TEST_VA, crate::probe::Width::U64);
            INSIDE.store(true, Ordering::SeqCst);
            while !LEAVE.load(Ordering::SeqCst) {
                core::hint::spin_loop();
            }
            address_space::move_current_thread(None).expect("leaving the test space");
            0
        })
    };
    while !INSIDE.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    let sent = |cpu: u32| tlb::counters(cpu).ipis_sent.load(Ordering::SeqCst);
    let received = |cpu: u32| tlb::counters(cpu).shootdowns_received.load(Ordering::SeqCst);
    let (sent_before, received_before) = (sent(here), received(other));
    let edits = 10;
    // With no frame to spare (exhaustion): a shootdown needs none, so the
    // edits still succeed and reach the other CPU; an edit that needs a
    // page table fails cleanly while the space is live on two CPUs.
    let no_frames = crate::mem::frames::cap_free_frames(0);
    let eager = Region::new(stress::TEST_VA + (1 << 30), frame.as_u64(), 4096, region.prot | Protection::EAGER);
    let refused = space.lock().add_region(eager);
    for round in 0..edits {
        let prot =
            Protection::KERN | if round % 2 == 0 { Protection::READ } else { Protection::READ | Protection::WRITE };
        space.lock().protect_region(region, prot).map_err(|e| format!("{e}"))?;
    }
    drop(no_frames);
    check_eq!(refused, Err(aspace::AspaceError::OutOfMemory));
    // Only the permission decreases need a shootdown: half of the edits.
    let (sent_while_inside, received_while_inside) = (sent(here) - sent_before, received(other) - received_before);
    LEAVE.store(true, Ordering::SeqCst);
    check_eq!(inside.join(), 0);
    let sent_before = sent(here);
    for round in 0..edits {
        let prot =
            Protection::KERN | if round % 2 == 0 { Protection::READ } else { Protection::READ | Protection::WRITE };
        space.lock().protect_region(region, prot).map_err(|e| format!("{e}"))?;
    }
    let sent_after_leaving = sent(here) - sent_before;
    space.lock().remove_region(region).map_err(|e| format!("{e}"))?;
    stress::destroy_when_unloaded(&space).map_err(|e| format!("{e}"))?;
    let _ = crate::mem::frames::free(frame);
    check_eq!(sent_while_inside, edits / 2);
    check!(received_while_inside >= edits / 2, "cpu {other} serviced {received_while_inside} requests");
    check_eq!(sent_after_leaving, 0);
    Ok(())
}
kernel_test!(shootdowns_reach_only_cpus_holding_the_space);

fn check_local_only_on_one_cpu() -> Result<(), String> {
    let sent_before = tlb::counters(0).ipis_sent.load(Ordering::SeqCst);
    let report = stress::run(50, false)?;
    check_eq!(report.violations, 0);
    check_eq!(tlb::counters(0).ipis_sent.load(Ordering::SeqCst), sent_before);
    Ok(())
}

/// A short run of the stress test: no reader sees a stale translation.
fn stress_test_passes_with_shootdowns() -> Result<(), String> {
    let report = stress::run(200, false)?;
    check!(report.violations == 0, "{} stale observations: {:?}", report.violations, report.first_violation);
    check!(report.accesses.iter().all(|&count| count > 0), "a reader made no access: {:?}", report.accesses);
    check_eq!(report.ipis_after_readers_left, 0);
    Ok(())
}
kernel_test!(stress_test_passes_with_shootdowns);

/// The same test without the remote shootdowns must see stale translations
/// (with one CPU there is no remote TLB to go stale, and none is expected).
fn stress_test_catches_missing_shootdowns() -> Result<(), String> {
    let report = stress::run(200, true)?;
    if percpu::all_cpus().count() > 1 {
        check!(report.violations > 0, "no stale observation without shootdowns: {report:?}");
    } else {
        check_eq!(report.violations, 0);
    }
    Ok(())
}
kernel_test!(stress_test_catches_missing_shootdowns);

/// The listing shows every CPU, with a state and an address space.
fn cpus_listing_shows_every_cpu() -> Result<(), String> {
    let mut text = String::new();
    let _ = thread::format_cpus(&mut text);
    check_eq!(text.lines().count(), 1 + percpu::all_cpus().count());
    for line in text.lines().skip(1) {
        check!(line.contains("idle") || line.contains("running"), "no state in {line:?}");
    }
    let mut stats = String::new();
    let _ = tlb::format_tlb_stats(&mut stats);
    check_eq!(stats.lines().count(), 1 + percpu::all_cpus().count());
    Ok(())
}
kernel_test!(cpus_listing_shows_every_cpu);
