//! The `log` crate's backend: records go to the serial console as
//! `[   0.012345] INFO  target: message`, stamped with the time since boot.

use crate::arch::tsc;
use log::{LevelFilter, Log, Metadata, Record};

struct SerialLogger;

static LOGGER: SerialLogger = SerialLogger;

impl Log for SerialLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = tsc::nanos_since_boot() / 1000;
        crate::println!(
            "[{:4}.{:06}] {:5} {}: {}",
            micros / 1_000_000,
            micros % 1_000_000,
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the serial logger with `level`. Later calls only change the level.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
