//! A 4 KiB test page at a fixed virtual address, mapped by hand into the
//! boot page tables for one test and removed afterwards. Until the paging
//! layer exists this is the only way to get a read-only page to fault on.

use crate::arch::cpu::{invlpg, la57_enabled, read_cr3, write_cr3};
use crate::direct_map::phys_to_virt;
use crate::mem::frames;
use alloc::string::String;
use alloc::vec::Vec;
use aspace::PhysAddr;

/// The test page: PML4 slot 128, which the boot tables leave empty.
pub const TEST_PAGE: u64 = 0x0000_4000_0000_0000;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The mapping while it exists.
pub struct TestPage {
    /// The frame behind the page.
    pub frame: PhysAddr,
    /// The page's PTE (through the direct map).
    pub pte: *mut u64,
    /// The entry in the pre-existing tables that now points at the first new table.
    hook_entry: *mut u64,
    /// The tables made for the mapping.
    tables: Vec<PhysAddr>,
}

impl TestPage {
    /// Maps [`TEST_PAGE`] to a fresh zeroed frame, writable or not.
    pub fn map(writable: bool) -> Result<TestPage, String> {
        let frame = frames::alloc_zeroed().ok_or("out of frames")?;
        let levels = if la57_enabled() { 5 } else { 4 };
        let mut table = read_cr3() & ADDRESS_MASK;
        let mut tables = Vec::new();
        let mut hook_entry = core::ptr::null_mut();
        for level in (2..=levels).rev() {
            let index = (TEST_PAGE >> (12 + 9 * (level - 1))) & 511;
            let entry = phys_to_virt(table + index * 8) as *mut u64;
            // SAFETY: `table` is a page table, in the direct map.
            let value = unsafe { entry.read_volatile() };
            if value & PRESENT == 0 {
                let new_table = frames::alloc_zeroed().ok_or("out of frames")?;
                if tables.is_empty() {
                    hook_entry = entry;
                }
                tables.push(new_table);
                // SAFETY: as above; the new entry points at a zeroed table.
                unsafe { entry.write_volatile(new_table.as_u64() | PRESENT | WRITABLE) };
                table = new_table.as_u64();
            } else if value & HUGE != 0 {
                return Err(String::from("the test page's address is inside a huge page"));
            } else {
                table = value & ADDRESS_MASK;
            }
        }
        if tables.is_empty() {
            return Err(String::from("the test page's tables already exist"));
        }
        let pte = phys_to_virt(table + ((TEST_PAGE >> 12) & 511) * 8) as *mut u64;
        // SAFETY: `pte` is in a table made above.
        unsafe { pte.write_volatile(frame.as_u64() | PRESENT | if writable { WRITABLE } else { 0 }) };
        invlpg(TEST_PAGE);
        Ok(TestPage { frame, pte, hook_entry, tables })
    }

    /// Sets or clears the writable bit of the page (and drops its TLB entry).
    pub fn set_writable(&self, writable: bool) {
        // SAFETY: the PTE belongs to this mapping.
        unsafe {
            let value = self.pte.read_volatile();
            self.pte.write_volatile(if writable { value | WRITABLE } else { value & !WRITABLE });
        }
        invlpg(TEST_PAGE);
    }
}

impl Drop for TestPage {
    fn drop(&mut self) {
        // SAFETY: the entry was empty before `map`; emptying it removes the
        // whole branch, and reloading CR3 drops every cached translation of it.
        unsafe {
            self.hook_entry.write_volatile(0);
            write_cr3(read_cr3());
        }
        for table in self.tables.drain(..) {
            let _ = frames::free(table);
        }
        let _ = frames::free(self.frame);
    }
}
