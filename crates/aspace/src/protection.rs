//! Protection flags of a region, with the Nautilus kernel's values.

use bitflags::bitflags;
use core::fmt;

bitflags! {
    /// What a region allows and how it is managed.
    ///
    /// The first seven values are NK's and keep NK's numbers, so that lab
    /// material reads the same here. Bits from 7 up are Nacre's own.
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Protection: u32 {
        /// Reads are allowed. x86-64 cannot express a present page that is
        /// not readable, so a region without READ is never mapped.
        const READ = 1;
        /// Writes are allowed.
        const WRITE = 2;
        /// Instruction fetches are allowed (otherwise the entry gets NX).
        const EXEC = 4;
        /// Pinned: the region may not be removed or moved (it may be protected).
        const PIN = 8;
        /// Kernel only: supervisor pages (the U/S bit stays clear).
        const KERN = 16;
        /// Reserved by NK for swapping; accepted and stored, not acted on.
        const SWAP = 32;
        /// Build every page-table entry when the region is added, instead of
        /// on first touch (lazy).
        const EAGER = 64;
        /// Anonymous memory: the address space provides the frames (zeroed),
        /// on first touch or, with EAGER, when the region is added, and frees
        /// them when the region (or part of it) is removed or the space is
        /// destroyed. The region's physical address must be 0: there is none.
        /// Always mapped with 4 KiB pages; cannot be moved.
        const ANON = 1 << 7;
        /// Grows down: a fault just below the region (within the address
        /// space's guard gap) extends it downwards, up to the address space's
        /// maximum size, keeping one guard gap clear below it. Only with ANON,
        /// since growing needs memory the address space provides.
        const GROW_DOWN = 1 << 8;
        /// Grows up: the mirror of GROW_DOWN, for faults just above the region.
        const GROW_UP = 1 << 9;
        /// Read-only backing: the memory behind the region may never be
        /// written through it (a shared mapping of a read-only file), so no
        /// edit may add WRITE, and the region cannot be added with WRITE.
        /// The mirror of Linux's missing `VM_MAYWRITE`: `mprotect(PROT_WRITE)`
        /// on such a mapping fails with `EACCES`. Fixed when the region is
        /// added, like the other kind flags.
        const READ_ONLY_BACKING = 1 << 10;
    }
}

impl Protection {
    /// The letters used by the shell, in order, with the flag each stands for.
    pub const LETTERS: [(char, Protection); 11] = [
        ('r', Protection::READ),
        ('w', Protection::WRITE),
        ('x', Protection::EXEC),
        ('p', Protection::PIN),
        ('k', Protection::KERN),
        ('s', Protection::SWAP),
        ('e', Protection::EAGER),
        ('a', Protection::ANON),
        ('d', Protection::GROW_DOWN),
        ('u', Protection::GROW_UP),
        ('o', Protection::READ_ONLY_BACKING),
    ];

    /// What each letter of [`Protection::LETTERS`] means, for help texts.
    pub const LETTER_MEANINGS: [(char, &'static str); 11] = [
        ('r', "read"),
        ('w', "write"),
        ('x', "execute"),
        ('p', "pinned: never removed or moved"),
        ('k', "kernel only (supervisor pages)"),
        ('s', "swap (NK's flag: stored, not acted on)"),
        ('e', "eager: every page mapped when added"),
        ('a', "anonymous: the address space provides zeroed frames (PA 0)"),
        ('d', "grows down on faults below it (with a)"),
        ('u', "grows up on faults above it (with a)"),
        ('o', "read-only backing: w may never be added"),
    ];

    /// The access rights only (READ, WRITE, EXEC, KERN): what the page-table
    /// entries express, as opposed to how the region is managed.
    pub const fn access(self) -> Protection {
        self.intersection(Protection::READ.union(Protection::WRITE).union(Protection::EXEC).union(Protection::KERN))
    }

    /// The flags that say what kind of region this is (ANON, GROW_DOWN,
    /// GROW_UP, READ_ONLY_BACKING): fixed when the region is added, unlike
    /// the rights.
    pub const fn kind(self) -> Protection {
        self.intersection(
            Protection::ANON
                .union(Protection::GROW_DOWN)
                .union(Protection::GROW_UP)
                .union(Protection::READ_ONLY_BACKING),
        )
    }

    /// True when the region grows (GROW_DOWN or GROW_UP).
    pub const fn grows(self) -> bool {
        self.intersects(Protection::GROW_DOWN.union(Protection::GROW_UP))
    }
}

impl fmt::Display for Protection {
    /// Writes the flags as shell letters, `-` for each absent one: `rwxpk-ea---`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for (letter, flag) in Protection::LETTERS {
            f.write_char(if self.contains(flag) { letter } else { '-' })?;
        }
        Ok(())
    }
}

impl fmt::Debug for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protection({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nk_values() {
        assert_eq!(Protection::READ.bits(), 1);
        assert_eq!(Protection::WRITE.bits(), 2);
        assert_eq!(Protection::EXEC.bits(), 4);
        assert_eq!(Protection::PIN.bits(), 8);
        assert_eq!(Protection::KERN.bits(), 16);
        assert_eq!(Protection::SWAP.bits(), 32);
        assert_eq!(Protection::EAGER.bits(), 64);
        assert_eq!(Protection::ANON.bits(), 1 << 7);
        assert_eq!(Protection::GROW_DOWN.bits(), 1 << 8);
        assert_eq!(Protection::GROW_UP.bits(), 1 << 9);
    }

    #[test]
    fn every_letter_has_a_meaning() {
        let letters: alloc::vec::Vec<char> = Protection::LETTERS.iter().map(|(letter, _)| *letter).collect();
        let explained: alloc::vec::Vec<char> = Protection::LETTER_MEANINGS.iter().map(|(letter, _)| *letter).collect();
        assert_eq!(letters, explained);
        // Every flag has a letter: a printed region shows all of its flags.
        let all = Protection::LETTERS.iter().fold(Protection::empty(), |all, (_, flag)| all | *flag);
        assert_eq!(all, Protection::all());
    }

    #[test]
    fn display_letters() {
        let p = Protection::READ | Protection::WRITE | Protection::KERN | Protection::EAGER;
        assert_eq!(alloc::format!("{p}"), "rw--k-e----");
        assert_eq!(p.access(), Protection::READ | Protection::WRITE | Protection::KERN);
        let stack = Protection::READ | Protection::WRITE | Protection::ANON | Protection::GROW_DOWN;
        assert_eq!(alloc::format!("{stack}"), "rw-----ad--");
        assert_eq!(stack.kind(), Protection::ANON | Protection::GROW_DOWN);
        assert!(stack.grows() && !Protection::ANON.grows());
        assert_eq!(alloc::format!("{}", Protection::all()), "rwxpkseaduo");
    }
}
