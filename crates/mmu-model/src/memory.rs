//! Simulated physical memory: sparse, one 4 KiB frame at a time.

use crate::hash::FastMap;

/// Words in a 4 KiB frame.
const WORDS_PER_FRAME: usize = 512;

/// A 4 KiB frame of memory.
type Frame = Box<[u64; WORDS_PER_FRAME]>;

/// Physical memory. Only frames that were written (or handed out by the
/// allocator) are stored; any other word reads as [`pattern`] of its
/// address, so that two physical pages never read alike.
#[derive(Default)]
pub(crate) struct PhysicalMemory {
    frames: FastMap<u64, Frame>,
}

/// What a word of never-written memory holds: a hash of its physical
/// address (splitmix64), so each page reads differently from every other.
pub fn pattern(addr: u64) -> u64 {
    let mut z = addr.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl PhysicalMemory {
    /// Reads the word at `addr` (8-byte aligned).
    pub(crate) fn read(&self, addr: u64) -> u64 {
        debug_assert!(addr.is_multiple_of(8));
        match self.frames.get(&frame_of(addr)) {
            Some(frame) => frame[word_index(addr)],
            None => pattern(addr),
        }
    }

    /// Writes the word at `addr` (8-byte aligned).
    pub(crate) fn write(&mut self, addr: u64, value: u64) {
        debug_assert!(addr.is_multiple_of(8));
        let frame = self.frames.entry(frame_of(addr)).or_insert_with(|| {
            let base = frame_of(addr);
            let mut words = Box::new([0u64; WORDS_PER_FRAME]);
            for (i, word) in words.iter_mut().enumerate() {
                *word = pattern(base + 8 * i as u64);
            }
            words
        });
        frame[word_index(addr)] = value;
    }

    /// Makes the frame at `base` read as zeros.
    pub(crate) fn zero_frame(&mut self, base: u64) {
        self.frames.insert(base, Box::new([0u64; WORDS_PER_FRAME]));
    }

    /// Forgets the frame at `base`: it reads as the pattern again.
    pub(crate) fn forget_frame(&mut self, base: u64) {
        self.frames.remove(&base);
    }
}

fn frame_of(addr: u64) -> u64 {
    addr & !0xfff
}

fn word_index(addr: u64) -> usize {
    ((addr & 0xfff) / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_memory_reads_as_its_address_pattern() {
        let mut memory = PhysicalMemory::default();
        assert_eq!(memory.read(0x1000), pattern(0x1000));
        assert_ne!(pattern(0x1000), pattern(0x2000));
        assert_ne!(pattern(0), pattern(8));
        memory.write(0x1008, 7);
        assert_eq!(memory.read(0x1008), 7);
        // The rest of the frame keeps its pattern once the frame is stored.
        assert_eq!(memory.read(0x1010), pattern(0x1010));
        memory.zero_frame(0x1000);
        assert_eq!(memory.read(0x1010), 0);
        memory.forget_frame(0x1000);
        assert_eq!(memory.read(0x1008), pattern(0x1008));
    }
}
