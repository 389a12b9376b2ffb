//! Capabilities: what the helper holds, and giving all of it up before touching data from
//! inside a target.

use caps::{CapSet, Capability};
use nix::sys::prctl;

use std::sync::OnceLock;

static COULD_ENTER_NAMESPACES: OnceLock<bool> = OnceLock::new();

/// Whether the helper could enter other processes' namespaces in the usual way when it
/// started, before it gave up its capabilities.
pub fn can_enter_namespaces() -> bool {
    *COULD_ENTER_NAMESPACES.get_or_init(|| {
        caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).unwrap_or(false)
    })
}

/// Gives up every capability for good: nothing this process does afterwards, nor anything it
/// might be tricked into executing, runs with privilege.
pub fn drop_all() -> Result<(), String> {
    // Emptying the bounding set needs CAP_SETPCAP, so it goes first.
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        caps::clear(None, CapSet::Bounding).map_err(|e| format!("bounding set: {e}"))?;
    }
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| format!("cannot drop capabilities ({set:?}): {e}"))?;
    }
    prctl::set_no_new_privs().map_err(|e| format!("PR_SET_NO_NEW_PRIVS: {e}"))?;
    let left = caps::read(None, CapSet::Effective).map_err(|e| e.to_string())?;
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("capabilities still held after dropping: {left:?}"))
    }
}
