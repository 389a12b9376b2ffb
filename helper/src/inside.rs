//! What runs in the query process, inside a target's namespaces, with no capabilities once
//! its netlink socket exists. Its report crosses the pipe as JSON; only the parent turns it
//! into the contract's shapes.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nshelper_model::{ErrorKind, Link, NamespaceInodes, NetnsContents, Target, TargetResult};
use nshelper_namespaces::{socket_netns_cookie, NsType, Report, StopError, WalkStop};
use nshelper_netlink::{addrs, links, neighbors, routes, NetlinkError, RawDump, RouteSocket};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::failure::Failure;
use crate::parallel::{map_in_parallel, workers};
use crate::privileges;

/// What to read inside each namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub links: bool,
    pub addrs: bool,
    pub routes: bool,
    pub neighbors: bool,
    pub stats: bool,
    pub cookie: bool,
    /// Map the nsid of every known namespace, not only those the links refer to.
    pub all_nsids: bool,
    /// Keep only the veths among the links.
    pub veths_only: bool,
}

/// A network namespace the call knows, offered to every query process so that it can name
/// the namespaces its own nsids refer to.
pub struct KnownNetns {
    pub inode: u64,
    /// Shared with the plan that joins it: a thousand namespaces are a thousand descriptors.
    pub file: Arc<OwnedFd>,
    /// Whether this is the helper's own network namespace.
    pub own: bool,
}

/// As [`encoded_keeping`] for a finishing walk's stops, encoded on every core (see
/// [`write_pieces_in_parallel`]). One result may hold thousands of links: those are cut into
/// runs, so that even a single result is encoded on every core.
fn stops_encoded_in_parallel<K: 'static>(stops: Vec<FinishedStop>, kept: K) -> Report {
    Report::Encoder(Box::new(move |pipe| {
        let links: usize = stops.iter().map(FinishedStop::link_count).sum();
        let run = links.div_ceil(workers()).max(MIN_LINK_RUN);
        let written = stop_pieces(&stops, run)
            .map_err(std::io::Error::other)
            .and_then(|pieces| write_pieces_in_parallel(pipe, &pieces));
        std::mem::forget(stops);
        std::mem::forget(kept);
        written
    }))
}

/// Fewer links than this are not worth a run, and a thread, of their own.
const MIN_LINK_RUN: usize = 512;

/// A part of a report that is encoded on its own: the report is its pieces' bytes in order.
enum Piece<'a> {
    /// Written as it is: brackets, commas, and the parts of a result around its links.
    Text(Vec<u8>),
    /// One stop of the walk, encoded whole.
    Stop(&'a FinishedStop),
    /// A run of one result's links, separated by commas.
    Links(&'a [Link]),
}

impl Piece<'_> {
    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self {
            Piece::Text(text) => out.write_all(text),
            Piece::Stop(stop) => {
                serde_json::to_writer(&mut *out, stop).map_err(std::io::Error::other)
            }
            Piece::Links(links) => write_items(out, links),
        }
    }
}

impl FinishedStop {
    fn link_count(&self) -> usize {
        self.result
            .as_ref()
            .and_then(|result| result.contents.links.as_ref())
            .map_or(0, Vec::len)
    }
}

/// The pieces of `stops` as one JSON list, each result with more than `run` links cut
/// around them. The bytes are serde_json's for the list: what is written around the links
/// follows the fields of `FinishedStop`, `TargetResult` and `NetnsContents` in their order,
/// which a unit test holds to serde_json's.
fn stop_pieces(stops: &[FinishedStop], run: usize) -> serde_json::Result<Vec<Piece<'_>>> {
    let mut pieces = vec![Piece::Text(b"[".to_vec())];
    for (at, stop) in stops.iter().enumerate() {
        if at > 0 {
            pieces.push(Piece::Text(b",".to_vec()));
        }
        let cut = stop.result.as_ref().and_then(|result| {
            let links = result.contents.links.as_ref()?;
            (links.len() > run).then_some((result, links))
        });
        let Some((result, links)) = cut else {
            pieces.push(Piece::Stop(stop));
            continue;
        };
        let mut head = b"{\"result\":{\"target\":".to_vec();
        serde_json::to_writer(&mut head, &result.target)?;
        head.extend_from_slice(b",\"namespaces\":");
        serde_json::to_writer(&mut head, &result.namespaces)?;
        head.extend_from_slice(b",\"links\":[");
        pieces.push(Piece::Text(head));
        for (at, links) in links.chunks(run).enumerate() {
            if at > 0 {
                pieces.push(Piece::Text(b",".to_vec()));
            }
            pieces.push(Piece::Links(links));
        }
        let mut tail = b"]".to_vec();
        let contents = &result.contents;
        if let Some(addrs) = &contents.addrs {
            tail.extend_from_slice(b",\"addrs\":");
            serde_json::to_writer(&mut tail, addrs)?;
        }
        if let Some(routes) = &contents.routes {
            tail.extend_from_slice(b",\"routes\":");
            serde_json::to_writer(&mut tail, routes)?;
        }
        if let Some(neighbors) = &contents.neighbors {
            tail.extend_from_slice(b",\"neighbors\":");
            serde_json::to_writer(&mut tail, neighbors)?;
        }
        tail.extend_from_slice(b"},\"failure\":");
        serde_json::to_writer(&mut tail, &stop.failure)?;
        tail.push(b'}');
        pieces.push(Piece::Text(tail));
    }
    pieces.push(Piece::Text(b"]".to_vec()));
    Ok(pieces)
}

/// Writes `pieces` in order, cut into one share per core by weight (a link's worth for each
/// link, and one more for each whole stop): the first share straight into `pipe`, the
/// others each into a buffer of its own meanwhile, written after it in order.
fn write_pieces_in_parallel(pipe: &mut dyn Write, pieces: &[Piece<'_>]) -> std::io::Result<()> {
    let weights: Vec<usize> = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(_) => 0,
            Piece::Stop(stop) => 1 + stop.link_count(),
            Piece::Links(links) => links.len(),
        })
        .collect();
    let mut start = 0;
    let groups: Vec<(&[Piece<'_>], usize)> = share_ends(&weights, workers())
        .into_iter()
        .map(|end| {
            let group = (&pieces[start..end], weights[start..end].iter().sum());
            start = end;
            group
        })
        .collect();
    let (first, others) = groups
        .split_first()
        .map_or((&[][..], &[][..]), |((f, _), o)| (*f, o));
    std::thread::scope(|scope| -> std::io::Result<()> {
        // A share whose thread the system refuses is encoded here, in its turn, as is one
        // with no weight (brackets and commas).
        let others: Vec<_> = others
            .iter()
            .map(|&(group, weight)| {
                if weight == 0 {
                    return Err(group);
                }
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || {
                        let mut buffer = Vec::new();
                        write_group(&mut buffer, group).map(|()| buffer)
                    })
                    .map_err(|_| group)
            })
            .collect();
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, &mut *pipe);
        write_group(&mut out, first)?;
        for other in others {
            match other {
                Ok(thread) => {
                    let buffer = thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                    out.write_all(&buffer)?;
                }
                Err(group) => write_group(&mut out, group)?,
            }
        }
        out.flush()
    })
}

/// Where each of at most `shares` shares of pieces weighing `weights` ends: after the piece
/// that brings it to its part of the total. The last ends with the pieces; none is empty.
fn share_ends(weights: &[usize], shares: usize) -> Vec<usize> {
    let total: usize = weights.iter().sum();
    let shares = shares.min(total).max(1);
    let mut ends = Vec::with_capacity(shares);
    let mut sum = 0;
    for (at, weight) in weights.iter().enumerate() {
        sum += weight;
        if ends.len() + 1 < shares && sum * shares >= total * (ends.len() + 1) {
            ends.push(at + 1);
        }
    }
    // A heavy piece can end several parts at once: the shares after it would be empty.
    if ends.last() != Some(&weights.len()) {
        ends.push(weights.len());
    }
    ends
}

fn write_group(out: &mut impl Write, pieces: &[Piece<'_>]) -> std::io::Result<()> {
    pieces.iter().try_for_each(|piece| piece.write(out))
}

/// `items` as JSON, separated by commas.
fn write_items<T: Serialize>(out: &mut impl Write, items: &[T]) -> std::io::Result<()> {
    for (at, item) in items.iter().enumerate() {
        if at > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, item).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// The query process's report to the parent, parsed strictly: it comes from a process
/// that read data from inside a target.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsideReport {
    pub namespaces: NamespaceInodes,
    pub contents: NetnsContents,
    /// The nsids this namespace gives to known namespaces: `(nsid, inode)`.
    pub nsids: Vec<(i32, u64)>,
    pub cookie: Option<u64>,
}

/// The body of the query process: reads what is wanted and encodes the report, or the
/// failure, for the pipe.
pub fn run(
    wanted: Wanted,
    known: &[KnownNetns],
    inodes: &[(NsType, u64)],
) -> Result<Report, Vec<u8>> {
    match read(wanted, known, inodes) {
        Ok(report) => Ok(encoded(report)),
        Err(failure) => Err(serde_json::to_vec(&failure).unwrap_or_default()),
    }
}

/// A report that is encoded as JSON straight into the pipe.
fn encoded<T: Serialize + 'static>(value: T) -> Report {
    encoded_keeping(value, ())
}

/// As [`encoded`], and `kept` lives until the process ends.
fn encoded_keeping<T: Serialize + 'static, K: 'static>(value: T, kept: K) -> Report {
    Report::Encoder(Box::new(move |pipe| {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, pipe);
        serde_json::to_writer(&mut out, &value).map_err(std::io::Error::other)?;
        out.flush()?;
        // The process ends as soon as the pipe is closed: freeing thousands of links, or
        // closing a socket per namespace, first would only hold the end of the report, and
        // the parent, back. The kernel closes what is left at exit.
        std::mem::forget(value);
        std::mem::forget(kept);
        Ok(())
    }))
}

fn read(
    wanted: Wanted,
    known: &[KnownNetns],
    inodes: &[(NsType, u64)],
) -> Result<InsideReport, Failure> {
    // The socket must be made here, after setns: it belongs to the namespace it was
    // created in. Creating it is the last thing that may need privilege.
    let mut socket = RouteSocket::open()?;
    privileges::drop_all().map_err(|e| Failure::new(ErrorKind::ChildFailed, e))?;
    // One namespace, read by a process that forks no more: a long dump is received and
    // decoded side by side.
    socket.set_overlap(workers() > 1);
    read_with(socket, wanted, known, inodes)
}

/// One namespace's outcome in a walk, in the order of the walk.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkOutcome {
    pub report: Option<InsideReport>,
    pub failure: Option<Failure>,
}

/// A walker that finishes its targets' results itself: the parent then prints them as they
/// come, checking only that each is one well-formed JSON value, instead of parsing every
/// link and writing it out again.
pub struct Finishing<'a> {
    /// The walked targets, in the order of the walk.
    pub targets: &'a [Target],
    /// Whether the last stop of the walk is the helper's own network namespace, visited only
    /// to name the peers that live there.
    pub own_netns_stop: bool,
}

/// One namespace's outcome in a finishing walk: its result as the document prints it.
#[derive(Debug, Serialize)]
struct FinishedStop {
    result: Option<TargetResult>,
    failure: Option<Failure>,
}

/// [`FinishedStop`] as the parent reads it: the result is checked to be one JSON value and
/// kept as text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintedStop<'a> {
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
    pub failure: Option<Failure>,
}

/// The body of the walker, once it holds a socket in every namespace: gives up every
/// privilege, then reads each namespace through its socket.
pub fn run_walk(
    wanted: &[Wanted],
    finishing: Option<Finishing<'_>>,
    known: &[KnownNetns],
    timeout: Duration,
    relay: Option<Relay<'_>>,
    mut stops: Vec<WalkStop<RouteSocket, NetlinkError>>,
) -> Result<Report, Vec<u8>> {
    if let Err(reason) = privileges::drop_all() {
        let failure = Failure::new(ErrorKind::ChildFailed, reason);
        return Err(serde_json::to_vec(&failure).unwrap_or_default());
    }
    let own_netns_stop = match &finishing {
        Some(finishing) if finishing.own_netns_stop => stops.pop(),
        _ => None,
    };
    // Every namespace is read apart from the others, and mostly by the kernel, so the
    // namespaces are shared out among the cores; only the crowded ones wait for the rest.
    // With fewer namespaces than cores, the idle cores receive long dumps instead.
    let overlap = stops.len() < workers();
    let (mut read, crowded): (Vec<Read>, Vec<bool>) = map_in_parallel(stops, workers(), |stop| {
        read_stop(stop, wanted, known, timeout, overlap, relay)
    })
    .into_iter()
    .unzip();
    close_in_background(
        read.iter_mut()
            .zip(&crowded)
            .filter(|(_, crowded)| !**crowded)
            .filter_map(|(entry, _)| entry.as_mut().ok().and_then(|(_, socket)| socket.take()))
            .collect(),
    );
    map_crowded_nsids(&mut read, &crowded, known, timeout);
    if let Some(finishing) = finishing {
        return finish_walk(read, finishing.targets, own_netns_stop, known, timeout);
    }
    let outcomes: Vec<WalkOutcome> = read
        .into_iter()
        .map(|entry| match entry {
            Ok((report, _)) => WalkOutcome {
                report: Some(report),
                failure: None,
            },
            Err(failure) => WalkOutcome {
                report: None,
                failure: Some(failure),
            },
        })
        .collect();
    Ok(encoded(outcomes))
}

/// Where the parent hands the walker the link dump of the helper's own namespace (see
/// [`relay_own_links`]): the walk's stop that is that namespace, and the pipe's read end.
#[derive(Debug, Clone, Copy)]
pub struct Relay<'a> {
    pub stop: usize,
    pub pipe: BorrowedFd<'a>,
}

/// Whether a namespace's links can come from a relayed dump: they are all that is read.
pub fn relayable(wanted: &Wanted) -> bool {
    wanted.links && !wanted.addrs && !wanted.routes && !wanted.neighbors
}

/// Run by the parent once the walker is forked, without privilege: dumps the links of its
/// own namespace, undecoded, and writes them into `pipe` for the walker, which decodes them
/// as its own. The kernel's dump of a host's namespace, with a veth to every container, is
/// a walk's longest (its nsid lookups grow with the square of the veths); made here, it
/// runs while the walker still joins namespaces, which takes no lock the dump needs. Any
/// failure only closes the pipe early, and the walker then dumps the namespace itself.
pub fn relay_own_links(pipe: OwnedFd, stats: bool, deadline: Instant) {
    let Ok(mut socket) = RouteSocket::open() else {
        return;
    };
    socket.set_deadline(deadline);
    let Ok(dump) = socket.dump_links_raw(stats) else {
        return;
    };
    drop(socket);
    let _ = write_before(pipe.as_fd(), &relay_frame(&dump), deadline);
}

/// The relay's bytes: seq, port and the number of datagrams, then each datagram after its
/// length, every number a native-endian u32 (both ends are this process's image).
fn relay_frame(dump: &RawDump) -> Vec<u8> {
    let size: usize = dump.datagrams.iter().map(|d| d.len() + 4).sum();
    let mut bytes = Vec::with_capacity(12 + size);
    let count = u32::try_from(dump.datagrams.len()).unwrap_or(u32::MAX);
    for number in [dump.seq, dump.port, count] {
        bytes.extend(number.to_ne_bytes());
    }
    for datagram in &dump.datagrams {
        bytes.extend(
            u32::try_from(datagram.len())
                .unwrap_or(u32::MAX)
                .to_ne_bytes(),
        );
        bytes.extend(datagram);
    }
    bytes
}

/// The dump in a relay's bytes, if they are whole and nothing follows.
fn relay_unframe(bytes: &[u8]) -> Option<RawDump> {
    fn number(rest: &mut &[u8]) -> Option<u32> {
        let (head, tail) = rest.split_first_chunk::<4>()?;
        *rest = tail;
        Some(u32::from_ne_bytes(*head))
    }
    let mut rest = bytes;
    let (seq, port, count) = (number(&mut rest)?, number(&mut rest)?, number(&mut rest)?);
    let mut datagrams = Vec::new();
    for _ in 0..count {
        let len = usize::try_from(number(&mut rest)?).ok()?;
        let (datagram, tail) = rest.split_at_checked(len)?;
        datagrams.push(datagram.to_vec());
        rest = tail;
    }
    rest.is_empty().then_some(RawDump {
        seq,
        port,
        datagrams,
    })
}

/// Writes all of `bytes` into the non-blocking `pipe`, waiting for room until `deadline`.
fn write_before(pipe: BorrowedFd<'_>, bytes: &[u8], deadline: Instant) -> Result<(), Errno> {
    let mut at = 0;
    while at < bytes.len() {
        match nix::unistd::write(pipe, &bytes[at..]) {
            Ok(written) => at += written,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => wait_for(pipe, PollFlags::POLLOUT, deadline)?,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Reads the relay to its end (the parent closes it), waiting until `deadline` at most.
/// `None` when it ends short: the walker then dumps the namespace itself.
fn relayed_links(pipe: BorrowedFd<'_>, deadline: Instant) -> Option<RawDump> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match nix::unistd::read(pipe, &mut chunk) {
            Ok(0) => return relay_unframe(&bytes),
            Ok(read) => bytes.extend_from_slice(&chunk[..read]),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => wait_for(pipe, PollFlags::POLLIN, deadline).ok()?,
            Err(_) => return None,
        }
    }
}

/// Waits until `pipe` is ready for `events` (or closed at the other end), or `deadline`.
fn wait_for(pipe: BorrowedFd<'_>, events: PollFlags, deadline: Instant) -> Result<(), Errno> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Errno::ETIMEDOUT);
        }
        let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pipe, events)];
        match poll(&mut fds, wait) {
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(()),
            Err(errno) => return Err(errno),
        }
    }
}

/// A namespace read by the walker, with the socket it was read through while that is
/// still needed (to map nsids once every namespace is read).
type Read = Result<(InsideReport, Option<RouteSocket>), Failure>;

/// Reads one stop of a walk, and maps the few nsids its links name; whether it names too
/// many for that (see [`map_crowded_nsids`]).
fn read_stop(
    stop: WalkStop<RouteSocket, NetlinkError>,
    wanted: &[Wanted],
    known: &[KnownNetns],
    timeout: Duration,
    overlap: bool,
    relay: Option<Relay<'_>>,
) -> (Read, bool) {
    // The relay is read even for a stop that failed: the parent waits to write all of it.
    let relayed = relay
        .filter(|relay| relay.stop == stop.index)
        .and_then(|relay| relayed_links(relay.pipe, Instant::now() + timeout));
    let (mut socket, inodes) = match stop.opened {
        Ok(opened) => opened,
        Err(StopError::Namespaces(error)) => return (Err(Failure::from(error)), false),
        Err(StopError::Open(error)) => return (Err(Failure::from(error)), false),
    };
    // Each namespace has the whole timeout to itself (after any wait for the relay): a slow
    // one fails alone.
    socket.set_deadline(Instant::now() + timeout);
    socket.set_overlap(overlap);
    let wanted = wanted.get(stop.index).copied().unwrap_or_default();
    let (mut report, mut socket) =
        match read_contents(socket, wanted, known, &inodes, false, relayed) {
            Ok(read) => read,
            Err(failure) => return (Err(failure), false),
        };
    let mut nsids = nsids_to_map(&report);
    if nsids.len() > DIRECT_NSIDS {
        return (Ok((report, Some(socket))), true);
    }
    socket.set_deadline(Instant::now() + timeout);
    match map_nsids(&mut socket, known, &mut nsids, &mut report) {
        Ok(()) => (Ok((report, Some(socket))), false),
        Err(failure) => (Err(failure), false),
    }
}

/// Closes `sockets` on a thread of their own, while the walker goes on to finish its
/// report. Closing a thousand sockets takes milliseconds; left to the walker's exit, they
/// would hold back the parent, which waits for that exit. Whatever is still open when the
/// report is out is closed by the exit, as before.
fn close_in_background(sockets: Vec<RouteSocket>) {
    if sockets.len() < 2 {
        return;
    }
    // If no thread can be started, the sockets come back in the error and are closed here.
    let _ = std::thread::Builder::new().spawn(move || drop(sockets));
}

/// Names the walk's peers, then encodes every result as the document prints it.
fn finish_walk(
    read: Vec<Read>,
    targets: &[Target],
    own_netns_stop: Option<WalkStop<RouteSocket, NetlinkError>>,
    known: &[KnownNetns],
    timeout: Duration,
) -> Result<Report, Vec<u8>> {
    let mut reports: Vec<InsideReport> = Vec::with_capacity(read.len());
    let mut failures: Vec<Option<Failure>> = Vec::with_capacity(read.len());
    // The sockets still open are left for the exit, after the report is out, while the
    // parent checks it.
    let mut sockets = Vec::new();
    for entry in read {
        match entry {
            Ok((report, socket)) => {
                reports.push(report);
                sockets.extend(socket);
                failures.push(None);
            }
            Err(failure) => failures.push(Some(failure)),
        }
    }
    let own_links =
        own_netns_stop.and_then(|stop| own_links_if_named(stop, &reports, known, timeout));
    name_peers(
        &mut reports.iter_mut().collect::<Vec<_>>(),
        own_links
            .as_ref()
            .map(|(inode, links)| (*inode, links.as_slice())),
    );
    let mut reports = reports.into_iter();
    let finished: Vec<FinishedStop> = failures
        .into_iter()
        .zip(targets)
        .map(|(failure, target)| match failure {
            Some(failure) => FinishedStop {
                result: None,
                failure: Some(failure),
            },
            None => match reports.next() {
                Some(report) => FinishedStop {
                    result: Some(TargetResult {
                        target: target.clone(),
                        namespaces: report.namespaces,
                        contents: report.contents,
                    }),
                    failure: None,
                },
                None => FinishedStop {
                    result: None,
                    failure: Some(Failure::new(
                        ErrorKind::ChildFailed,
                        "a report went missing",
                    )),
                },
            },
        })
        .collect();
    Ok(stops_encoded_in_parallel(finished, sockets))
}

/// The links of the helper's own namespace, read through the walk's last stop, when a
/// walked veth has its peer there and no walked namespace is that one.
fn own_links_if_named(
    stop: WalkStop<RouteSocket, NetlinkError>,
    reports: &[InsideReport],
    known: &[KnownNetns],
    timeout: Duration,
) -> Option<(u64, Vec<Link>)> {
    let own = known.iter().find(|k| k.own)?.inode;
    let walked = reports
        .iter()
        .any(|report| report.namespaces.get("net") == Some(&own));
    if walked || !reports.iter().any(|report| has_peer_in(report, own)) {
        return None;
    }
    let (mut socket, _) = stop.opened.ok()?;
    socket.set_deadline(Instant::now() + timeout);
    let raw = socket.dump_links_without_stats().ok()?;
    Some((own, links::links_from_dump(raw, own, false)))
}

/// Whether the report's veths have a peer in namespace `inode`.
pub fn has_peer_in(report: &InsideReport, inode: u64) -> bool {
    report.nsids.iter().any(|(nsid, netns)| {
        *netns == inode
            && report
                .contents
                .links
                .iter()
                .flatten()
                .any(|link| link.link_netnsid == Some(*nsid))
    })
}

/// Names the namespace and interface at the other end of every veth whose peer lives in
/// another namespace, from the nsids each report mapped and the links of all reports (and
/// `also`, the links of one more namespace).
pub fn name_peers(reports: &mut [&mut InsideReport], also: Option<(u64, &[Link])>) {
    let nsid_maps: Vec<HashMap<i32, u64>> = reports
        .iter()
        .map(|report| report.nsids.iter().copied().collect())
        .collect();
    // Only the namespaces that hold some veth's peer need their names listed: a namespace
    // of 5,000 veths paired among themselves needs none.
    let mut wanted: HashSet<u64> = HashSet::new();
    for (report, nsids) in reports.iter().zip(&nsid_maps) {
        for link in report.contents.links.iter().flatten() {
            if let (Some(nsid), Some(_)) = (link.link_netnsid, &link.peer) {
                wanted.extend(nsids.get(&nsid));
            }
        }
    }
    let mut names: HashMap<u64, HashMap<u32, (String, Option<String>)>> = HashMap::new();
    if let Some((inode, links)) = also.filter(|(inode, _)| wanted.contains(inode)) {
        names.insert(inode, links.iter().map(name_entry).collect());
    }
    for report in reports.iter() {
        let (Some(inode), Some(links)) = (report.namespaces.get("net"), &report.contents.links)
        else {
            continue;
        };
        if wanted.contains(inode) {
            names.insert(*inode, links.iter().map(name_entry).collect());
        }
    }
    for (report, nsids) in reports.iter_mut().zip(&nsid_maps) {
        let Some(links) = report.contents.links.as_mut() else {
            continue;
        };
        for link in links {
            let (Some(nsid), Some(peer)) = (link.link_netnsid, link.peer.as_mut()) else {
                continue;
            };
            let Some(inode) = nsids.get(&nsid) else {
                continue;
            };
            peer.netns = Some(*inode);
            if let Some((name, hex)) = names.get(inode).and_then(|n| n.get(&peer.ifindex)) {
                peer.ifname = Some(name.clone());
                peer.ifname_hex = hex.clone();
            }
        }
    }
}

fn name_entry(link: &Link) -> (u32, (String, Option<String>)) {
    (link.ifindex, (link.ifname.clone(), link.ifname_hex.clone()))
}

/// Reads what is wanted through a socket of the namespace, without privilege.
fn read_with(
    socket: RouteSocket,
    wanted: Wanted,
    known: &[KnownNetns],
    inodes: &[(NsType, u64)],
) -> Result<InsideReport, Failure> {
    read_contents(socket, wanted, known, inodes, true, None).map(|(report, _)| report)
}

/// Reads what is wanted; maps the nsids its links name only when `map_now`, so that a walk
/// can map them later, knowing every namespace's links.
fn read_contents(
    mut socket: RouteSocket,
    wanted: Wanted,
    known: &[KnownNetns],
    inodes: &[(NsType, u64)],
    map_now: bool,
    relayed: Option<RawDump>,
) -> Result<(InsideReport, RouteSocket), Failure> {
    let netns_inode = inodes
        .iter()
        .find(|(kind, _)| *kind == NsType::Net)
        .map_or(0, |(_, inode)| *inode);
    // Names of interfaces are needed by addresses, routes and neighbours too.
    let mut contents = NetnsContents::default();
    if wanted.addrs || wanted.routes || wanted.neighbors {
        // Their interfaces are named from the raw links.
        let raw_links = if wanted.stats {
            socket.dump_links()?
        } else {
            socket.dump_links_without_stats()?
        };
        if wanted.addrs {
            contents.addrs = Some(addrs::addrs_from_dump(socket.dump_addrs()?, &raw_links));
        }
        if wanted.routes {
            contents.routes = Some(routes::routes_from_dump(socket.dump_routes()?, &raw_links));
        }
        if wanted.neighbors {
            contents.neighbors = Some(neighbors::neighbors_from_dump(
                socket.dump_neighbors()?,
                &raw_links,
            ));
        }
        if wanted.links {
            contents.links = Some(links::links_from_dump(raw_links, netns_inode, wanted.stats));
        }
    } else if wanted.links {
        // Each link is made as it is decoded, while the rest of the dump may still be on
        // its way (see `RouteSocket::set_overlap`).
        let draft = |raw: &_| links::draft_link(raw, wanted.stats);
        // A dump the parent relayed is checked as strictly as one read here; if it does not
        // hold, the namespace is dumped again through its own socket.
        let drafts = match relayed.and_then(|dump| dump.links_mapped(draft).ok()) {
            Some(drafts) => drafts,
            None => socket.dump_links_mapped(wanted.stats, draft)?,
        };
        contents.links = Some(links::finish_links(drafts, netns_inode));
    }
    if let Some(links) = contents.links.as_mut().filter(|_| wanted.veths_only) {
        links.retain(|link| link.kind.as_deref() == Some("veth"));
    }
    let cookie = if wanted.cookie {
        let cookie = socket_netns_cookie(&socket).map_err(|errno| {
            Failure::new(ErrorKind::Netlink, format!("SO_NETNS_COOKIE: {errno}"))
        })?;
        Some(cookie)
    } else {
        None
    };
    let namespaces = inodes
        .iter()
        .map(|(kind, inode)| (kind.name().to_owned(), *inode))
        .collect();
    let mut report = InsideReport {
        namespaces,
        contents,
        nsids: Vec::new(),
        cookie,
    };
    if wanted.all_nsids {
        for candidate in known {
            if let Some(nsid) = socket.nsid_of(candidate.file.as_fd())? {
                report.nsids.push((nsid, candidate.inode));
            }
        }
    } else if map_now {
        let mut wanted = nsids_to_map(&report);
        map_nsids(&mut socket, known, &mut wanted, &mut report)?;
    }
    Ok((report, socket))
}

/// A namespace that names at most this many others asks the kernel about each directly:
/// cheap, since the kernel's search is over that namespace's few nsids.
const DIRECT_NSIDS: usize = 4;

/// Maps the nsids of the walk's crowded namespaces, those whose links name more than
/// [`DIRECT_NSIDS`] others, once every other namespace is read and mapped. A namespace that
/// names many others (a host with a veth to every container) would ask the kernel once per
/// known namespace, each time searching all its nsids: quadratic. Instead its veths are
/// paired with the other ends: veth p, whose peer is q under nsid n, is in the namespace X
/// whose veth q peers with (this namespace, p). Only a pairing that is the same for every
/// veth under n, and unique, counts; the rest ask the kernel.
fn map_crowded_nsids(read: &mut [Read], crowded: &[bool], known: &[KnownNetns], timeout: Duration) {
    let crowded: Vec<usize> = crowded
        .iter()
        .enumerate()
        .filter_map(|(at, crowded)| crowded.then_some(at))
        .collect();
    if crowded.is_empty() {
        return;
    }
    // (namespace of the peer, peer ifindex, ifindex) → the namespaces holding such a veth.
    let mut ends: HashMap<(u64, u32, u32), Vec<u64>> = HashMap::new();
    for (report, _) in read.iter().flatten() {
        let Some(inode) = report.namespaces.get("net").copied() else {
            continue;
        };
        let nsids: HashMap<i32, u64> = report.nsids.iter().copied().collect();
        for link in report.contents.links.iter().flatten() {
            let (Some(nsid), Some(peer)) = (link.link_netnsid, link.link_index) else {
                continue;
            };
            if let Some(peer_netns) = nsids.get(&nsid) {
                ends.entry((*peer_netns, peer, link.ifindex))
                    .or_default()
                    .push(inode);
            }
        }
    }
    for at in crowded {
        let Ok((report, Some(socket))) = &mut read[at] else {
            continue;
        };
        socket.set_deadline(Instant::now() + timeout);
        let Some(inode) = report.namespaces.get("net").copied() else {
            continue;
        };
        let mut paired: HashMap<i32, Option<u64>> = HashMap::new();
        for link in report.contents.links.iter().flatten() {
            let (Some(nsid), Some(peer)) = (link.link_netnsid, link.link_index) else {
                continue;
            };
            let holder = match ends.get(&(inode, link.ifindex, peer)).map(Vec::as_slice) {
                Some([only]) => Some(*only),
                _ => None,
            };
            paired
                .entry(nsid)
                .and_modify(|seen| {
                    if *seen != holder {
                        *seen = None;
                    }
                })
                .or_insert(holder);
        }
        for (nsid, holder) in &paired {
            if let Some(holder) = holder {
                report.nsids.push((*nsid, *holder));
            }
        }
        let mut wanted = nsids_to_map(report);
        if let Err(failure) = map_nsids(socket, known, &mut wanted, report) {
            read[at] = Err(failure);
        }
    }
}

/// The nsids the report's links name, which must be mapped to namespaces.
fn nsids_to_map(report: &InsideReport) -> Vec<i32> {
    // A host's report names thousands of nsids for thousands of veths: a set, not a scan
    // per link, or the walk grows with the square of the namespaces.
    let mapped: HashSet<i32> = report.nsids.iter().map(|(nsid, _)| *nsid).collect();
    let mut nsids: Vec<i32> = report
        .contents
        .links
        .iter()
        .flatten()
        .filter_map(|link| link.link_netnsid)
        .filter(|nsid| !mapped.contains(nsid))
        .collect();
    nsids.sort_unstable();
    nsids.dedup();
    nsids
}

/// Asks the kernel which of the known namespaces each nsid names. Known namespaces come
/// with the helper's own first: most peers live there, so most searches end at once.
fn map_nsids(
    socket: &mut RouteSocket,
    known: &[KnownNetns],
    wanted: &mut Vec<i32>,
    report: &mut InsideReport,
) -> Result<(), Failure> {
    for candidate in known {
        if wanted.is_empty() {
            break;
        }
        if let Some(nsid) = socket.nsid_of(candidate.file.as_fd())? {
            if let Ok(at) = wanted.binary_search(&nsid) {
                wanted.remove(at);
                report.nsids.push((nsid, candidate.inode));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(report: Report) -> Vec<u8> {
        let mut out = Vec::new();
        match report {
            Report::Encoder(encode) => encode(&mut out).unwrap(),
            Report::Bytes(bytes) => out = bytes,
        }
        out
    }

    fn link(ifindex: u32) -> Link {
        serde_json::from_value(serde_json::json!({
            "ifindex": ifindex, "ifname": format!("v\"{ifindex}\u{7f}"), "kind": "veth",
            "flags": ["BROADCAST", "UP"], "mtu": 1500, "operstate": "UP",
            "address": "02:00:00:00:00:01", "master": null, "link_index": ifindex + 1,
            "link_netnsid": null, "link": null, "alias": null, "altnames": [], "txqlen": 1000,
            "broadcast": "ff:ff:ff:ff:ff:ff", "link_type": "ether",
            "peer": {"ifindex": ifindex + 1, "netns": 4026531840u64, "ifname": "p"}
        }))
        .unwrap()
    }

    fn stop(links: Option<usize>, addrs: bool, failure: bool) -> FinishedStop {
        let contents: NetnsContents = serde_json::from_value(serde_json::json!({
            "addrs": if addrs { serde_json::json!([{"ifindex": 1, "ifname": "lo",
                "family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]) }
                else { serde_json::Value::Null },
            "routes": if addrs { serde_json::json!([]) } else { serde_json::Value::Null },
            "neighbors": if addrs { serde_json::json!([{"ifindex": 2, "dev": "eth0",
                "family": "inet", "dst": "10.0.0.2", "lladdr": null, "state": ["STALE"]}]) }
                else { serde_json::Value::Null },
        }))
        .unwrap();
        let target = match links {
            Some(count) if count % 2 == 1 => Target::Pid { pid: 4242 },
            _ => Target::Netns {
                name: Some("big \"links\":[]".into()),
                path: "/run/netns/big".into(),
            },
        };
        let result = TargetResult {
            target,
            namespaces: [("net".to_owned(), 4026532393)].into(),
            contents: NetnsContents {
                links: links.map(|count| (1..=count as u32).map(link).collect()),
                ..contents
            },
        };
        FinishedStop {
            result: (!failure).then_some(result),
            failure: failure.then(|| Failure::new(ErrorKind::Timeout, "slow")),
        }
    }

    #[test]
    fn a_walks_stops_cut_into_pieces_and_encoded_on_every_core_are_serde_jsons_bytes() {
        let shapes = [
            vec![],
            vec![stop(Some(1), false, false)],
            vec![stop(Some(7), false, false)],
            vec![stop(Some(0), true, false), stop(None, true, false)],
            vec![
                stop(Some(7), true, false),
                stop(None, false, true),
                stop(Some(3), false, false),
            ],
            vec![stop(Some(1200), false, false)],
        ];
        for stops in shapes {
            let expected = serde_json::to_vec(&stops).unwrap();
            for run in [1, 2, 3, 512, 10_000] {
                let pieces = stop_pieces(&stops, run).unwrap();
                let mut out = Vec::new();
                write_pieces_in_parallel(&mut out, &pieces).unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    String::from_utf8(expected.clone()).unwrap(),
                    "run {run}"
                );
            }
            assert_eq!(written(stops_encoded_in_parallel(stops, ())), expected);
        }
    }

    #[test]
    fn shares_end_at_their_part_of_the_weight_and_none_is_empty() {
        assert_eq!(share_ends(&[0, 600, 0, 600, 0], 2), [2, 5]);
        assert_eq!(share_ends(&[1; 8], 4), [2, 4, 6, 8]);
        // One heavy piece among weightless ones: two shares, not four with two empty.
        assert_eq!(share_ends(&[0, 10, 0], 4), [2, 3]);
        assert_eq!(share_ends(&[0, 0], 4), [2]);
        assert_eq!(share_ends(&[], 2), [0]);
        assert_eq!(share_ends(&[5, 5], 1), [2]);
    }

    #[test]
    fn a_large_result_is_cut_into_runs_of_links() {
        let stops = vec![stop(Some(1200), false, false)];
        let pieces = stop_pieces(&stops, 600).unwrap();
        let runs: Vec<usize> = pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Links(links) => Some(links.len()),
                _ => None,
            })
            .collect();
        assert_eq!(runs, [600, 600]);
        // A small result stays whole.
        let stops = vec![stop(Some(7), false, false)];
        let pieces = stop_pieces(&stops, 600).unwrap();
        assert_eq!(
            pieces
                .iter()
                .filter(|piece| matches!(piece, Piece::Stop(_)))
                .count(),
            1
        );
    }

    #[test]
    fn a_relay_comes_back_as_it_was_sent_and_anything_short_of_it_is_refused() {
        let dump = RawDump {
            seq: 7,
            port: 42,
            datagrams: vec![vec![1, 2, 3], Vec::new(), vec![9; 40_000]],
        };
        let bytes = relay_frame(&dump);
        assert_eq!(relay_unframe(&bytes), Some(dump));
        for cut in [0, 4, 11, 12, 15, 16, 18, bytes.len() - 1] {
            assert_eq!(relay_unframe(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(relay_unframe(&longer), None);
    }

    #[test]
    fn the_walker_reads_a_relay_to_its_end_and_gives_up_on_one_left_short() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let dump = RawDump {
            seq: 1,
            port: 2,
            datagrams: vec![vec![5; 300_000]],
        };
        // Larger than the pipe: the writer waits for room while the reader drains it.
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .unwrap();
        let sent = dump.clone();
        let writer = std::thread::spawn(move || {
            write_before(write.as_fd(), &relay_frame(&sent), deadline).unwrap();
        });
        assert_eq!(relayed_links(read.as_fd(), deadline), Some(dump));
        writer.join().unwrap();
        // A parent that gives up closes the pipe early: the walker dumps for itself.
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .unwrap();
        nix::unistd::write(&write, &[1, 0, 0, 0]).unwrap();
        drop(write);
        assert_eq!(relayed_links(read.as_fd(), deadline), None);
        // And one that never writes is waited for only until the deadline.
        let (read, _write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .unwrap();
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(relayed_links(read.as_fd(), soon), None);
        assert!(Instant::now() >= soon);
    }
}
