//! Access rights (SDM §4.6) and the error codes of protection faults (§4.7).

use super::*;
use crate::entry::NO_EXECUTE;
use crate::Mode::{Supervisor, User};
use aspace::{FaultAccess, PageFaultCode};

const P: PageFaultCode = PageFaultCode::PRESENT;
const W: PageFaultCode = PageFaultCode::WRITE;
const U: PageFaultCode = PageFaultCode::USER;
const I: PageFaultCode = PageFaultCode::FETCH;

const VA: u64 = 0x0000_0003_0040_5000;

/// A machine with `VA` mapped by a 4 KiB leaf with `leaf_flags`, the
/// intermediate entries with `TABLE_FLAGS` minus `clear_above` at `level`.
fn mapped(leaf_flags: u64, clear_above: Option<(u8, u64)>) -> SimMachine {
    let (m, space) = setup(SimConfig::four_level());
    map(&m, space, VA, 0x6000, PageSize::Size4K, leaf_flags);
    if let Some((level, bits)) = clear_above {
        update(&m, entry_addr(&m, space.root, VA, level), 0, bits);
    }
    m
}

/// The error code of `access` in `mode`, or `None` if it is allowed.
fn outcome(m: &SimMachine, access: FaultAccess, mode: crate::Mode) -> Option<PageFaultCode> {
    m.translate(VA, access, mode).err().map(|error| error.code().unwrap())
}

use FaultAccess::{Execute, Read, Write};

#[test]
fn user_pages_allow_user_accesses_that_their_flags_allow() {
    let m = mapped(USER | WRITABLE, None);
    for access in [Read, Write, Execute] {
        assert_eq!(outcome(&m, access, User), None, "{access:?}");
    }
    let m = mapped(USER, None);
    assert_eq!(outcome(&m, Read, User), None);
    assert_eq!(outcome(&m, Write, User), Some(P | W | U), "read-only page");
    let m = mapped(USER | NO_EXECUTE, None);
    assert_eq!(outcome(&m, Execute, User), Some(P | U | I), "NX page");
    assert_eq!(outcome(&m, Read, User), None);
}

#[test]
fn user_access_to_a_supervisor_page_faults() {
    let m = mapped(WRITABLE, None);
    assert_eq!(outcome(&m, Read, User), Some(P | U));
    assert_eq!(outcome(&m, Write, User), Some(P | W | U));
    assert_eq!(outcome(&m, Execute, User), Some(P | U | I));
    assert_eq!(outcome(&m, Read, Supervisor), None);
}

#[test]
fn rights_combine_across_levels() {
    for level in 2..=4 {
        // U/S clear above: a supervisor page, whatever the leaf says.
        let m = mapped(USER | WRITABLE, Some((level, USER)));
        assert_eq!(outcome(&m, Read, User), Some(P | U), "U/S clear at level {level}");
        // R/W clear above: read-only, whatever the leaf says.
        let m = mapped(USER | WRITABLE, Some((level, WRITABLE)));
        assert_eq!(outcome(&m, Read, User), None);
        assert_eq!(outcome(&m, Write, User), Some(P | W | U), "R/W clear at level {level}");
        // XD set above: not executable, whatever the leaf says.
        let (m, space) = setup(SimConfig::four_level());
        map(&m, space, VA, 0x6000, PageSize::Size4K, USER | WRITABLE);
        update(&m, entry_addr(&m, space.root, VA, level), NO_EXECUTE, 0);
        assert_eq!(outcome(&m, Execute, User), Some(P | U | I), "XD set at level {level}");
        assert_eq!(outcome(&m, Execute, Supervisor), Some(P | I));
    }
}

#[test]
fn supervisor_writes_to_read_only_pages_fault_only_with_cr0_wp() {
    for leaf_flags in [0, USER] {
        let m = mapped(leaf_flags, None);
        assert_eq!(outcome(&m, Write, Supervisor), Some(P | W), "WP on by default");
        m.set_cr0_wp(false);
        assert_eq!(outcome(&m, Write, Supervisor), None, "WP off: supervisor writes ignore R/W");
        assert_eq!(outcome(&m, Write, User), Some(P | W | U), "WP does not concern user mode");
        m.set_cr0_wp(true);
        assert_eq!(outcome(&m, Write, Supervisor), Some(P | W));
    }
}

#[test]
fn smep_forbids_supervisor_fetches_from_user_pages() {
    let m = mapped(USER | WRITABLE, None);
    assert_eq!(outcome(&m, Execute, Supervisor), None, "SMEP off by default");
    m.set_smep(true);
    assert_eq!(outcome(&m, Execute, Supervisor), Some(P | I));
    assert_eq!(outcome(&m, Read, Supervisor), None, "SMEP does not concern data");
    assert_eq!(outcome(&m, Execute, User), None);
    let kernel_page = mapped(WRITABLE, None);
    kernel_page.set_smep(true);
    assert_eq!(outcome(&kernel_page, Execute, Supervisor), None);
}

#[test]
fn smap_forbids_supervisor_data_accesses_to_user_pages_unless_ac() {
    let m = mapped(USER | WRITABLE, None);
    assert_eq!(outcome(&m, Read, Supervisor), None, "SMAP off by default");
    m.set_smap(true);
    assert_eq!(outcome(&m, Read, Supervisor), Some(P));
    assert_eq!(outcome(&m, Write, Supervisor), Some(P | W));
    assert_eq!(outcome(&m, Execute, Supervisor), None, "SMAP does not concern fetches");
    assert_eq!(outcome(&m, Read, User), None);
    m.set_rflags_ac(true);
    assert_eq!(outcome(&m, Read, Supervisor), None);
    assert_eq!(outcome(&m, Write, Supervisor), None);
    m.set_rflags_ac(false);
    assert_eq!(outcome(&m, Read, Supervisor), Some(P));
}

#[test]
fn the_fetch_bit_is_reported_only_with_nxe_or_smep() {
    let (m, _) = setup(SimConfig::four_level());
    let unmapped = |m: &SimMachine| m.fetch_at(0x9000_0000, Supervisor).unwrap_err().code().unwrap();
    assert_eq!(unmapped(&m), I, "NXE on");
    m.set_nxe(false);
    assert_eq!(unmapped(&m), PageFaultCode::empty(), "neither NXE nor SMEP");
    m.set_smep(true);
    assert_eq!(unmapped(&m), I, "SMEP on");
}

#[test]
fn without_nxe_every_page_is_executable() {
    let mut config = SimConfig::four_level();
    config.features.nx = false;
    let (m, space) = setup(config);
    map(&m, space, VA, 0x6000, PageSize::Size4K, USER);
    assert_eq!(outcome(&m, Execute, User), None);
}

#[test]
fn large_pages_carry_the_same_rights() {
    let (m, space) = setup(SimConfig::four_level());
    map(&m, space, 0x4000_0000, 0x4000_0000, PageSize::Size1G, USER | NO_EXECUTE);
    map(&m, space, 0x20_0000, 0x20_0000, PageSize::Size2M, WRITABLE);
    assert_eq!(m.fetch_at(0x4123_4000, User).unwrap_err().code(), Some(P | U | I));
    assert_eq!(m.write_u64_at(0x4123_4000, 0, User).unwrap_err().code(), Some(P | W | U));
    assert_eq!(m.read_u64_at(0x2f_fff8, User).unwrap_err().code(), Some(P | U));
    assert!(m.write_u64_at(0x2f_fff8, 0, Supervisor).is_ok());
}
