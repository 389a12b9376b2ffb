//! The limit probe of issue 6: the kernel's own cost of listing links, for `make bench` to
//! compare nshelper with.
//!
//! In this one process and its one thread, for each network namespace: `setns` into it, open
//! a new `NETLINK_ROUTE` socket, send one `RTM_GETLINK` dump request and read datagrams until
//! `NLMSG_DONE`, looking only at each message header's length and type. Nothing is decoded,
//! nothing is printed but one line at the end:
//!
//! ```text
//! namespaces=1001 bytes=2834560 elapsed_us=27950
//! ```
//!
//! `elapsed_us` runs from the start of `main`, so it includes finding and opening the
//! namespaces. Any failure (a namespace that cannot be joined, a kernel error in a dump, a
//! datagram that does not fit) prints one line on stderr and exits with status 1.
//!
//! ```text
//! limit-probe [--skip-stats] [--self] [--netns-dir DIR]... [--netns PATH]...
//! ```
//!
//! - with no `--self`, `--netns-dir` or `--netns`: every network namespace that nshelper's
//!   `--all` finds, through the same discovery code (`discover_network_namespaces`);
//! - `--self`: the namespace the probe started in (first);
//! - `--netns-dir DIR`: every file in DIR (e.g. `/run/netns`), in name order;
//! - `--netns PATH`: that namespace file; may be repeated;
//! - `--skip-stats`: ask the kernel to leave the link statistics out
//!   (`IFLA_EXT_MASK` = `RTEXT_FILTER_SKIP_STATS`), as nshelper does without `--stats`.

#![forbid(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::socket::{
    recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
};
use nix::sys::stat::Mode;
use nshelper_namespaces::{discover_network_namespaces, FoundNetns, ProcRoot};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const IFINFOMSG_LEN: usize = 16;
const IFLA_EXT_MASK: u16 = 29;
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
/// The kernel builds dump datagrams of at most 32 KiB; twice that leaves room to spare, and a
/// datagram that still does not fit is an error rather than a silently short count.
const RECEIVE_BUFFER: usize = 64 * 1024;

const USAGE: &str =
    "usage: limit-probe [--skip-stats] [--self] [--netns-dir DIR]... [--netns PATH]...";

#[derive(Default)]
struct Options {
    skip_stats: bool,
    own: bool,
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<Self, String> {
        let mut options = Options::default();
        while let Some(arg) = args.next() {
            match arg.to_str() {
                Some("--skip-stats") => options.skip_stats = true,
                Some("--self") => options.own = true,
                Some("--netns-dir") => options
                    .dirs
                    .push(args.next().ok_or("--netns-dir needs a directory")?.into()),
                Some("--netns") => options
                    .files
                    .push(args.next().ok_or("--netns needs a path")?.into()),
                Some("-h" | "--help") => return Err(USAGE.to_owned()),
                _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
            }
        }
        Ok(options)
    }

    fn discover(&self) -> bool {
        !self.own && self.dirs.is_empty() && self.files.is_empty()
    }
}

fn main() -> ExitCode {
    let start = Instant::now();
    let options = match Options::parse(std::env::args_os().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok((namespaces, bytes)) => {
            println!(
                "namespaces={namespaces} bytes={bytes} elapsed_us={}",
                start.elapsed().as_micros()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("limit-probe: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the namespaces, then visits each: the number visited and the bytes received.
fn run(options: &Options) -> Result<(usize, u64), String> {
    // One descriptor per namespace stays open, as in nshelper's --all.
    raise_descriptor_limit()?;
    let discovered: Vec<FoundNetns>;
    let mut opened: Vec<OwnedFd> = Vec::new();
    let namespaces: Vec<BorrowedFd<'_>> = if options.discover() {
        let proc = ProcRoot::open().map_err(|e| format!("/proc: {e}"))?;
        discovered = discover_network_namespaces(&proc).map_err(|e| format!("discovery: {e}"))?;
        discovered.iter().map(FoundNetns::file).collect()
    } else {
        if options.own {
            opened.push(open_namespace(Path::new("/proc/thread-self/ns/net"))?);
        }
        for dir in &options.dirs {
            let mut paths = std::fs::read_dir(dir)
                .and_then(|entries| {
                    entries
                        .map(|entry| entry.map(|e| e.path()))
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            paths.sort();
            for path in paths {
                opened.push(open_namespace(&path)?);
            }
        }
        for path in &options.files {
            opened.push(open_namespace(path)?);
        }
        opened.iter().map(AsFd::as_fd).collect()
    };

    let request = getlink_request(options.skip_stats);
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    let mut bytes = 0u64;
    for (index, netns) in namespaces.iter().enumerate() {
        setns(netns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("namespace #{index}: setns: {e}"))?;
        bytes +=
            dump_links(&request, &mut buffer).map_err(|e| format!("namespace #{index}: {e}"))?;
    }
    Ok((namespaces.len(), bytes))
}

fn raise_descriptor_limit() -> Result<(), String> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| format!("setrlimit: {e}"))
}

fn open_namespace(path: &Path) -> Result<OwnedFd, String> {
    open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `nlmsghdr` + `ifinfomsg` (family 0, type 0), and with `skip_stats` an `IFLA_EXT_MASK`
/// attribute asking for no statistics.
fn getlink_request(skip_stats: bool) -> Vec<u8> {
    let attribute_len = if skip_stats { 8 } else { 0 };
    let len = NLMSG_HDRLEN + IFINFOMSG_LEN + attribute_len;
    let mut request = Vec::with_capacity(len);
    request.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    request.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // seq
    request.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills it in
                                                    // ifinfomsg: family, pad, type, index, flags, change: all zero.
    request.extend_from_slice(&[0; IFINFOMSG_LEN]);
    if skip_stats {
        request.extend_from_slice(&8u16.to_ne_bytes());
        request.extend_from_slice(&IFLA_EXT_MASK.to_ne_bytes());
        request.extend_from_slice(&RTEXT_FILTER_SKIP_STATS.to_ne_bytes());
    }
    request
}

/// One link dump on a new socket of the current network namespace: the bytes received.
fn dump_links(request: &[u8], buffer: &mut [u8]) -> Result<u64, String> {
    let socket = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|e| format!("socket: {e}"))?;
    let fd = socket.as_raw_fd();
    // The kernel binds the socket on its first send.
    let sent = send(fd, request, MsgFlags::empty()).map_err(|e| format!("send: {e}"))?;
    if sent != request.len() {
        return Err(format!("send: {sent} of {} bytes", request.len()));
    }
    let mut bytes = 0u64;
    loop {
        // MSG_TRUNC: the datagram's real length, even when the buffer is shorter.
        let len = match recv(fd, buffer, MsgFlags::MSG_TRUNC) {
            Ok(len) => len,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("recv: {e}")),
        };
        if len > buffer.len() {
            return Err(format!("a {len}-byte datagram does not fit the buffer"));
        }
        if len == 0 {
            return Err("the socket closed before NLMSG_DONE".to_owned());
        }
        bytes += len as u64;
        if scan(&buffer[..len])? {
            return Ok(bytes);
        }
    }
}

/// Walks one datagram's message headers: whether it holds `NLMSG_DONE`.
fn scan(datagram: &[u8]) -> Result<bool, String> {
    let mut offset = 0;
    let mut done = false;
    while offset + NLMSG_HDRLEN <= datagram.len() {
        let header = &datagram[offset..offset + NLMSG_HDRLEN];
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        if len < NLMSG_HDRLEN || offset + len > datagram.len() {
            return Err(format!("malformed message header (length {len})"));
        }
        match kind {
            NLMSG_DONE => done = true,
            NLMSG_OVERRUN => return Err("NLMSG_OVERRUN".to_owned()),
            NLMSG_ERROR => {
                let code = datagram
                    .get(offset + NLMSG_HDRLEN..offset + NLMSG_HDRLEN + 4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or("short NLMSG_ERROR")?;
                if code != 0 {
                    return Err(format!("RTM_GETLINK: {}", Errno::from_raw(-code)));
                }
            }
            _ => {}
        }
        offset += (len + 3) & !3;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_link_dump() {
        let plain = getlink_request(false);
        assert_eq!(plain.len(), 32);
        assert_eq!(u32::from_ne_bytes(plain[0..4].try_into().unwrap()), 32);
        assert_eq!(u16::from_ne_bytes([plain[4], plain[5]]), RTM_GETLINK);
        assert_eq!(u16::from_ne_bytes([plain[6], plain[7]]), 0x301);
        let skip = getlink_request(true);
        assert_eq!(skip.len(), 40);
        assert_eq!(u32::from_ne_bytes(skip[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes([skip[34], skip[35]]), IFLA_EXT_MASK);
        assert_eq!(u32::from_ne_bytes(skip[36..40].try_into().unwrap()), 8);
    }

    #[test]
    fn the_scan_stops_at_done_and_fails_on_errors() {
        let message = |kind: u16, extra: &[u8]| {
            let mut m = ((16 + extra.len()) as u32).to_ne_bytes().to_vec();
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(&[0; 10]);
            m.extend_from_slice(extra);
            m
        };
        let mut datagram = message(16, &[1, 2]);
        datagram.extend_from_slice(&[0, 0]); // padding to 4
        assert_eq!(scan(&datagram), Ok(false));
        datagram.extend(message(NLMSG_DONE, &0i32.to_ne_bytes()));
        assert_eq!(scan(&datagram), Ok(true));
        assert!(scan(&message(NLMSG_ERROR, &(-1i32).to_ne_bytes())).is_err());
        assert!(scan(&[40, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
