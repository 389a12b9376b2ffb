use std::fmt;

use nix::sched::CloneFlags;

/// The namespace types nshelper can join, in the order they are joined: user first, so that
/// its capabilities apply to the rest, and mount last, because after it paths resolve in the
/// target's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NsType {
    User,
    Net,
    Uts,
    Ipc,
    Cgroup,
    Pid,
    Mnt,
}

impl NsType {
    pub const ALL: [NsType; 7] = [
        NsType::User,
        NsType::Net,
        NsType::Uts,
        NsType::Ipc,
        NsType::Cgroup,
        NsType::Pid,
        NsType::Mnt,
    ];

    /// The name used in `/proc/PID/ns/` and on nshelper's command line.
    pub fn name(self) -> &'static str {
        match self {
            NsType::User => "user",
            NsType::Net => "net",
            NsType::Uts => "uts",
            NsType::Ipc => "ipc",
            NsType::Cgroup => "cgroup",
            NsType::Pid => "pid",
            NsType::Mnt => "mnt",
        }
    }

    pub fn from_name(name: &str) -> Option<NsType> {
        NsType::ALL.into_iter().find(|kind| kind.name() == name)
    }

    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NsType::User => CloneFlags::CLONE_NEWUSER,
            NsType::Net => CloneFlags::CLONE_NEWNET,
            NsType::Uts => CloneFlags::CLONE_NEWUTS,
            NsType::Ipc => CloneFlags::CLONE_NEWIPC,
            NsType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            NsType::Pid => CloneFlags::CLONE_NEWPID,
            NsType::Mnt => CloneFlags::CLONE_NEWNS,
        }
    }

    /// The type `NS_GET_NSTYPE` reports, where it is one nshelper knows.
    pub fn from_clone_flag(flag: i32) -> Option<NsType> {
        NsType::ALL
            .into_iter()
            .find(|kind| kind.clone_flag().bits() == flag)
    }

    pub(crate) fn index(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_index(index: u8) -> Option<NsType> {
        NsType::ALL.get(usize::from(index)).copied()
    }
}

impl fmt::Display for NsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_flags_round_trip() {
        for kind in NsType::ALL {
            assert_eq!(NsType::from_name(kind.name()), Some(kind));
            assert_eq!(
                NsType::from_clone_flag(kind.clone_flag().bits()),
                Some(kind)
            );
            assert_eq!(NsType::from_index(kind.index()), Some(kind));
        }
        assert_eq!(NsType::from_name("time"), None);
    }

    #[test]
    fn user_is_joined_first_and_mount_last() {
        let mut kinds = [NsType::Mnt, NsType::Net, NsType::User, NsType::Pid];
        kinds.sort();
        assert_eq!(kinds.first(), Some(&NsType::User));
        assert_eq!(kinds.last(), Some(&NsType::Mnt));
    }
}
