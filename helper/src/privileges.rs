//! Capabilities: what the helper holds, and giving all of it up before touching data from
//! inside a target.

use caps::{CapSet, Capability};
use nix::sys::prctl;

use std::sync::OnceLock;

use caps::CapsHashSet;
use nshelper_model::ErrorKind;
use nshelper_namespaces::NsType;

use crate::failure::Failure;

static STARTING_CAPABILITIES: OnceLock<CapsHashSet> = OnceLock::new();

/// The effective capabilities the helper started with, before it gave any up.
fn starting_capabilities() -> &'static CapsHashSet {
    STARTING_CAPABILITIES.get_or_init(|| caps::read(None, CapSet::Effective).unwrap_or_default())
}

/// Records the capabilities the helper starts with; later checks and messages use them.
pub fn record_starting_capabilities() {
    starting_capabilities();
}

/// The starting capabilities that matter to nshelper, for diagnostics.
pub fn describe_starting_capabilities() -> String {
    let held = starting_capabilities();
    let wanted = [
        Capability::CAP_SYS_ADMIN,
        Capability::CAP_SYS_PTRACE,
        Capability::CAP_SYS_CHROOT,
    ];
    let mut names: Vec<String> = wanted
        .iter()
        .filter(|capability| held.contains(capability))
        .map(|capability| capability.to_string())
        .collect();
    if names.is_empty() {
        return "none of CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_CHROOT".to_owned();
    }
    let others = held.len().saturating_sub(names.len());
    if others > 0 {
        names.push(format!("{others} other capabilities"));
    }
    names.join(", ")
}

/// Whether the helper could enter other processes' namespaces in the usual way when it
/// started.
pub fn can_enter_namespaces() -> bool {
    starting_capabilities().contains(&Capability::CAP_SYS_ADMIN)
}

/// What a call needs, beyond what an unprivileged process has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// setns into a namespace.
    Join,
    /// Opening the namespaces of another user's process.
    OtherUsersProcess,
    /// setns into a mount namespace.
    MountNamespace,
}

impl Need {
    fn capability(self) -> (Capability, &'static str) {
        match self {
            Need::Join => (Capability::CAP_SYS_ADMIN, "to join namespaces"),
            Need::OtherUsersProcess => (
                Capability::CAP_SYS_PTRACE,
                "to open another user's process's namespaces",
            ),
            Need::MountNamespace => (Capability::CAP_SYS_CHROOT, "to join a mount namespace"),
        }
    }
}

/// What joining `kinds` of a process owned by `owner` needs. Joining a user namespace first
/// can itself grant the rest, so with `user` only the ptrace check stands.
pub fn needs_for_process(owner: Option<u32>, kinds: &[NsType]) -> Vec<Need> {
    let mut needs = Vec::new();
    if !kinds.contains(&NsType::User) {
        needs.push(Need::Join);
        if kinds.contains(&NsType::Mnt) {
            needs.push(Need::MountNamespace);
        }
    }
    if owner.is_some_and(|uid| uid != nix::unistd::geteuid().as_raw()) {
        needs.push(Need::OtherUsersProcess);
    }
    needs
}

/// Fails with `permission_denied`, naming every missing capability, when the helper started
/// without what `needs` asks for.
pub fn require(needs: &[Need]) -> Result<(), Failure> {
    let held = starting_capabilities();
    let missing: Vec<String> = needs
        .iter()
        .map(|need| need.capability())
        .filter(|(capability, _)| !held.contains(capability))
        .map(|(capability, why)| format!("{capability} ({why})"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        ErrorKind::PermissionDenied,
        format!("nshelper needs root here: it lacks {}", missing.join(", ")),
    )
    .with_hint("run it as root, for example with sudo"))
}

/// Gives up every capability for good: nothing this process does afterwards, nor anything it
/// might be tricked into executing, runs with privilege.
pub fn drop_all() -> Result<(), String> {
    // Emptying the bounding set needs CAP_SETPCAP, so it goes first. Each capability is
    // dropped without asking first: dropping one the set lacks is harmless, and asking
    // doubled the system calls on every query's path.
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for capability in caps::all() {
            if let Err(e) = caps::drop(None, CapSet::Bounding, capability) {
                // A capability newer than the running kernel is in no set to drop it from.
                if caps::has_cap(None, CapSet::Bounding, capability).unwrap_or(false) {
                    return Err(format!("bounding set: {e}"));
                }
            }
        }
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
    // Processes of the target must not be able to ptrace us or read our memory.
    prctl::set_dumpable(false).map_err(|e| format!("PR_SET_DUMPABLE: {e}"))?;
    let left = caps::read(None, CapSet::Effective).map_err(|e| e.to_string())?;
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("capabilities still held after dropping: {left:?}"))
    }
}
