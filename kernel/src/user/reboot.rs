//! `reboot(magic, magic2, command, arg)`: the way a Linux init powers the
//! machine off. Linux's checks, in its order: `CAP_SYS_BOOT` (`EPERM`),
//! the two magic numbers (`EINVAL`), then the command. Powering off,
//! halting and restarting all end the virtual machine (QEMU runs with
//! `-no-reboot`) with the success status; `LINUX_REBOOT_CMD_CAD_ON` and
//! `CAD_OFF` (what Ctrl-Alt-Del does) are accepted and change nothing;
//! any other command (`KEXEC`, `SW_SUSPEND`, an unknown one) is `EINVAL`.

use super::creds;
use super::errno::{Errno, SysResult};
use super::process::Process;
use crate::qemu::{self, ExitStatus};

/// The system call this module serves, by number.
mod nr {
    pub const REBOOT: u64 = 169;
}

/// `CAP_SYS_BOOT`.
const CAP_SYS_BOOT: u32 = 22;

/// `LINUX_REBOOT_MAGIC1`, and the four `LINUX_REBOOT_MAGIC2*` (dates).
const MAGIC1: u32 = 0xfee1_dead;
const MAGIC2: [u32; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];

/// The commands (`linux/reboot.h`).
mod command {
    pub const RESTART: u32 = 0x0123_4567;
    pub const HALT: u32 = 0xcdef_0123;
    pub const CAD_ON: u32 = 0x89ab_cdef;
    pub const CAD_OFF: u32 = 0;
    pub const POWER_OFF: u32 = 0x4321_fedc;
    pub const RESTART2: u32 = 0xa1b2_c3d4;
}

/// `None` for a number this module does not serve.
pub fn call(process: &Process, number: u64, a: [u64; 6]) -> Option<SysResult> {
    (number == nr::REBOOT).then(|| reboot(process, a[0] as u32, a[1] as u32, a[2] as u32))
}

fn reboot(process: &Process, magic1: u32, magic2: u32, command: u32) -> SysResult {
    if !creds::capable(process, CAP_SYS_BOOT) {
        return Err(Errno::EPERM);
    }
    if magic1 != MAGIC1 || !MAGIC2.contains(&magic2) {
        return Err(Errno::EINVAL);
    }
    match command {
        command::CAD_ON | command::CAD_OFF => Ok(0),
        command::POWER_OFF | command::HALT | command::RESTART | command::RESTART2 => {
            log::info!("reboot: pid {} ends the machine (command {command:#x})", process.pid);
            qemu::exit(ExitStatus::Success)
        }
        _ => Err(Errno::EINVAL),
    }
}
