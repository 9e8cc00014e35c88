//! How a simulated machine is built.

use core::ops::Range;
use paging::PagingFeatures;

/// Where the default frame pool starts: 32 TiB, far above any physical
/// range a test maps, and below 2^46 so that it is addressable with the
/// default MAXPHYADDR.
pub const DEFAULT_POOL_START: u64 = 0x2000_0000_0000;

/// The default frame pool's size: 256 MiB, 65536 frames.
pub const DEFAULT_POOL_BYTES: u64 = 256 << 20;

/// The shape of a simulated machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The paging features every CPU has.
    pub features: PagingFeatures,
    /// How many CPUs (at least 1).
    pub cpus: usize,
    /// The physical byte range from which `alloc_frame` hands out 4 KiB
    /// frames (rounded inwards to 4 KiB).
    pub frame_pool: Range<u64>,
}

impl SimConfig {
    /// 4-level paging, 1 GiB pages, NX, no PCIDs, MAXPHYADDR 46, one CPU.
    pub fn four_level() -> Self {
        SimConfig {
            features: PagingFeatures { huge_1g: true, la57: false, pcid: false, nx: true, phys_bits: 46 },
            cpus: 1,
            frame_pool: DEFAULT_POOL_START..DEFAULT_POOL_START + DEFAULT_POOL_BYTES,
        }
    }

    /// 5-level paging (LA57), 1 GiB pages, NX, no PCIDs, MAXPHYADDR 52, one CPU.
    pub fn five_level() -> Self {
        let mut config = SimConfig::four_level();
        config.features.la57 = true;
        config.features.phys_bits = 52;
        config
    }

    /// The same machine with `cpus` CPUs.
    pub fn with_cpus(mut self, cpus: usize) -> Self {
        self.cpus = cpus;
        self
    }

    /// The same machine with PCIDs (CR4.PCIDE) on or off.
    pub fn with_pcid(mut self, on: bool) -> Self {
        self.features.pcid = on;
        self
    }
}
