use std::os::fd::{AsRawFd, BorrowedFd};

use neli::{
    consts::{
        nl::NlmF,
        rtnl::{Ifla, Nud, RtAddrFamily, RtScope, RtTable, Rtm, Rtn, Rtprot},
        socket::NlFamily,
    },
    nl::{NlPayload, NlmsghdrBuilder},
    rtnl::{IfaddrmsgBuilder, IfinfomsgBuilder, NdmsgBuilder, RtattrBuilder, RtmsgBuilder},
    socket::synchronous::NlSocketHandle,
    types::{Buffer, RtBuffer},
    utils::Groups,
    Size, ToBytes,
};
use nix::{
    errno::Errno,
    sys::socket::{recv, MsgFlags, NetlinkAddr},
};

use crate::{
    error::NetlinkError,
    wire::{
        self, Message, RawAddr, RawLink, RawNeighbor, RawRoute, NLMSG_DONE, NLMSG_ERROR,
        NLMSG_NOOP, NLMSG_OVERRUN,
    },
};

/// A dump that keeps being interrupted by changes is retried this many times in all.
const DUMP_ATTEMPTS: u32 = 5;
/// Large enough for the 32 KiB datagrams the kernel builds for dumps; a datagram that does
/// not fit grows the buffer and the dump starts again. At 128 KiB, glibc's calloc maps
/// fresh zero pages instead of clearing heap memory, so a small dump touches one page of
/// it, not sixteen.
const INITIAL_RECEIVE_BUFFER: usize = 128 * 1024;

/// A route-netlink socket of the network namespace it was opened in.
///
/// Built on neli's `NlSocketHandle`, never `NlRouter`, which starts a thread (and a
/// multi-threaded process can no longer join a mount or user namespace). The handle's own
/// read buffers, which this code never uses, are shrunk to nothing at build time
/// (`.cargo/config.toml`): otherwise every socket zeroes 96 KiB, a cost a walk over a
/// thousand namespaces pays a thousand times.
pub struct RouteSocket {
    handle: NlSocketHandle,
    port: u32,
    next_seq: u32,
    buffer: Vec<u8>,
    /// When reading must stop. A dump runs in the kernel while it is read, one datagram
    /// per receive, so checking between receives bounds it.
    deadline: Option<std::time::Instant>,
    /// Whether a long dump is received on a second thread while this one decodes it.
    overlap: bool,
    /// The sequence number of a link dump without statistics asked for ahead, by
    /// [`RouteSocket::request_links_without_stats`], and not read yet.
    requested: Option<u32>,
}

fn connect() -> Result<(NlSocketHandle, u32), NetlinkError> {
    let socket = NlSocketHandle::connect(NlFamily::Route, None, Groups::empty())
        .map_err(|e| NetlinkError::Socket(e.to_string()))?;
    // Connected to the kernel (port 0), the socket refuses datagrams from any other socket:
    // a process inside the target cannot forge replies, whatever header fields it writes.
    nix::sys::socket::connect(socket.as_raw_fd(), &NetlinkAddr::new(0, 0))
        .map_err(|e| NetlinkError::Socket(format!("connect to the kernel: {e}")))?;
    let port = socket.pid();
    Ok((socket, port))
}

impl RouteSocket {
    /// Opens the socket. A netlink socket belongs to the namespace it was created in, so
    /// call this after joining the target's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let (handle, port) = connect()?;
        Ok(RouteSocket {
            handle,
            port,
            next_seq: 1,
            buffer: Vec::new(),
            deadline: None,
            overlap: false,
            requested: None,
        })
    }

    /// Asks for the link dump without statistics now, to be read by the next
    /// [`RouteSocket::dump_links_without_stats`]: the kernel makes its first datagram (all
    /// of a small namespace's links) while taking the request, so a caller with time to wait
    /// gets the rest of the dump sooner. Any other request first reads this one to its end.
    pub fn request_links_without_stats(&mut self) -> Result<(), NetlinkError> {
        self.settle_request();
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.send_getlink_skipping_stats(seq)
            .map_err(|reason| NetlinkError::Send {
                request: "RTM_GETLINK",
                reason,
            })?;
        self.requested = Some(seq);
        Ok(())
    }

    /// Reads a request made ahead to its end, keeping nothing: the kernel runs one dump per
    /// socket at a time.
    fn settle_request(&mut self) {
        if let Some(seq) = self.requested.take() {
            let _ = self.collect("RTM_GETLINK", seq, &mut |_| Ok(None::<()>));
        }
    }

    /// Every link of the socket's network namespace, without their statistics.
    pub fn dump_links_without_stats(&mut self) -> Result<Vec<RawLink>, NetlinkError> {
        let ahead = self.requested.take();
        self.dump_ahead(
            ahead,
            "RTM_GETLINK",
            Self::send_getlink_skipping_stats,
            |message| {
                if message.kind == wire::RTM_NEWLINK {
                    wire::decode_link(message.payload).map(Some)
                } else {
                    Ok(None)
                }
            },
        )
    }

    /// Every link of the socket's network namespace.
    pub fn dump_links(&mut self) -> Result<Vec<RawLink>, NetlinkError> {
        self.dump("RTM_GETLINK", Self::send_getlink, |message| {
            if message.kind == wire::RTM_NEWLINK {
                wire::decode_link(message.payload).map(Some)
            } else {
                Ok(None)
            }
        })
    }

    /// Every link of the socket's network namespace, each passed to `map` as it is decoded
    /// (with its statistics asked for when `stats`): only what `map` makes is kept.
    pub fn dump_links_mapped<T>(
        &mut self,
        stats: bool,
        mut map: impl FnMut(&RawLink) -> T,
    ) -> Result<Vec<T>, NetlinkError> {
        let send = if stats {
            Self::send_getlink
        } else {
            Self::send_getlink_skipping_stats
        };
        self.dump("RTM_GETLINK", send, |message| {
            if message.kind == wire::RTM_NEWLINK {
                wire::decode_link(message.payload).map(|raw| Some(map(&raw)))
            } else {
                Ok(None)
            }
        })
    }

    /// The link dump of the socket's namespace, undecoded: each message's header is looked
    /// at only to find where the dump ends, and to ask again if it was interrupted. For a
    /// process to read on behalf of another, which decodes it with [`RawDump::links_mapped`].
    pub fn dump_links_raw(&mut self, stats: bool) -> Result<RawDump, NetlinkError> {
        const REQUEST: &str = "RTM_GETLINK";
        self.settle_request();
        let send = if stats {
            Self::send_getlink
        } else {
            Self::send_getlink_skipping_stats
        };
        let dump = (|| {
            for _ in 0..DUMP_ATTEMPTS {
                let seq = self.next_seq;
                self.next_seq = self.next_seq.wrapping_add(1);
                send(self, seq).map_err(|reason| NetlinkError::Send {
                    request: REQUEST,
                    reason,
                })?;
                let mut reader = DumpReader::<()>::new(REQUEST, seq, self.port);
                let mut datagrams = Vec::new();
                let whole = loop {
                    let len = self.receive(REQUEST)?;
                    datagrams.push(self.buffer[..len].to_vec());
                    if let Some(end) = reader.absorb(&self.buffer[..len], &mut |_| Ok(None))? {
                        break end.is_some();
                    }
                };
                if whole {
                    return Ok(RawDump {
                        seq,
                        port: self.port,
                        datagrams,
                    });
                }
            }
            Err(NetlinkError::Interrupted {
                request: REQUEST,
                attempts: DUMP_ATTEMPTS,
            })
        })();
        self.release_buffer();
        dump
    }

    /// Every address of every family of the socket's network namespace.
    pub fn dump_addrs(&mut self) -> Result<Vec<RawAddr>, NetlinkError> {
        self.dump("RTM_GETADDR", Self::send_getaddr, |message| {
            if message.kind == wire::RTM_NEWADDR {
                wire::decode_addr(message.payload).map(Some)
            } else {
                Ok(None)
            }
        })
    }

    /// Every route of every table and every family of the socket's network namespace.
    pub fn dump_routes(&mut self) -> Result<Vec<RawRoute>, NetlinkError> {
        self.dump("RTM_GETROUTE", Self::send_getroute, |message| {
            if message.kind == wire::RTM_NEWROUTE {
                wire::decode_route(message.payload).map(Some)
            } else {
                Ok(None)
            }
        })
    }

    /// Every entry of the neighbour tables (ARP and NDP) of the socket's network namespace;
    /// proxy entries are not included.
    pub fn dump_neighbors(&mut self) -> Result<Vec<RawNeighbor>, NetlinkError> {
        self.dump("RTM_GETNEIGH", Self::send_getneigh, |message| {
            if message.kind == wire::RTM_NEWNEIGH {
                wire::decode_neighbor(message.payload).map(Some)
            } else {
                Ok(None)
            }
        })
    }

    /// The nsid that the socket's network namespace gives to the network namespace open as
    /// `netns`, or `None` when it has given it none. Asks with `RTM_GETNSID`, which never
    /// assigns an nsid. A file that is not a network namespace is a kernel error (`EINVAL`).
    pub fn nsid_of(&mut self, netns: BorrowedFd<'_>) -> Result<Option<i32>, NetlinkError> {
        let answer = self.ask_nsid(netns);
        self.release_buffer();
        answer
    }

    fn ask_nsid(&mut self, netns: BorrowedFd<'_>) -> Result<Option<i32>, NetlinkError> {
        const REQUEST: &str = "RTM_GETNSID";
        self.settle_request();
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let fd = u32::try_from(netns.as_raw_fd()).map_err(|_| NetlinkError::Send {
            request: REQUEST,
            reason: "negative file descriptor".to_owned(),
        })?;
        self.send_request(
            Rtm::Getnsid,
            NlmF::REQUEST,
            seq,
            Buffer::from(wire::getnsid_request_payload(fd)),
        )
        .map_err(|reason| NetlinkError::Send {
            request: REQUEST,
            reason,
        })?;
        let port = self.port;
        loop {
            let len = self.receive(REQUEST)?;
            for message in wire::messages(&self.buffer[..len]) {
                let message = message?;
                if message.seq != seq || message.port != port {
                    continue;
                }
                match message.kind {
                    wire::RTM_NEWNSID => return Ok(wire::decode_nsid(message.payload)?),
                    NLMSG_ERROR => {
                        let code = message.error_code()?;
                        return Err(if code < 0 {
                            NetlinkError::Kernel {
                                request: REQUEST,
                                errno: Errno::from_raw(-code),
                            }
                        } else {
                            // An acknowledgement without the answer, which the request
                            // did not ask for.
                            NetlinkError::NoReply { request: REQUEST }
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    fn send_request<P: Size + ToBytes + std::fmt::Debug>(
        &self,
        kind: Rtm,
        flags: NlmF,
        seq: u32,
        payload: P,
    ) -> Result<(), String> {
        let request = NlmsghdrBuilder::default()
            .nl_type(kind)
            .nl_flags(flags)
            .nl_seq(seq)
            .nl_payload(NlPayload::Payload(payload))
            .build()
            .map_err(|e| e.to_string())?;
        self.handle.send(&request).map_err(|e| e.to_string())
    }

    fn send_getaddr(&self, seq: u32) -> Result<(), String> {
        let ifaddrmsg = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Unspecified)
            .ifa_prefixlen(0)
            .ifa_scope(RtScope::Universe)
            .ifa_index(0)
            .build()
            .map_err(|e| e.to_string())?;
        self.send_request(Rtm::Getaddr, NlmF::REQUEST | NlmF::DUMP, seq, ifaddrmsg)
    }

    fn send_getroute(&self, seq: u32) -> Result<(), String> {
        // AF_UNSPEC: the kernel runs the dump of every family, and without a table
        // attribute every table comes back. rtm_flags stay 0: RTM_F_CLONED would ask for
        // the route cache instead.
        let rtmsg = RtmsgBuilder::default()
            .rtm_family(RtAddrFamily::Unspecified)
            .rtm_dst_len(0)
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(RtTable::Unspec)
            .rtm_protocol(Rtprot::Unspec)
            .rtm_scope(RtScope::Universe)
            .rtm_type(Rtn::Unspec)
            .build()
            .map_err(|e| e.to_string())?;
        self.send_request(Rtm::Getroute, NlmF::REQUEST | NlmF::DUMP, seq, rtmsg)
    }

    fn send_getneigh(&self, seq: u32) -> Result<(), String> {
        // ndm_flags stay 0: NTF_PROXY would ask for the proxy entries instead.
        let ndmsg = NdmsgBuilder::default()
            .ndm_family(RtAddrFamily::Unspecified)
            .ndm_index(0)
            .ndm_state(Nud::NONE)
            .ndm_type(Rtn::Unspec)
            .build()
            .map_err(|e| e.to_string())?;
        self.send_request(Rtm::Getneigh, NlmF::REQUEST | NlmF::DUMP, seq, ndmsg)
    }

    fn send_getlink(&self, seq: u32) -> Result<(), String> {
        // The kernel answers a link dump with only DONE unless ifi_type is set, so set it
        // explicitly rather than trusting a builder default.
        let ifinfomsg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_type(0.into())
            .rtattrs(RtBuffer::new())
            .build()
            .map_err(|e| e.to_string())?;
        self.send_request(Rtm::Getlink, NlmF::REQUEST | NlmF::DUMP, seq, ifinfomsg)
    }

    /// A link dump without the statistics: the kernel then skips gathering every counter
    /// of every device, and sends far fewer bytes (`RTEXT_FILTER_SKIP_STATS`).
    fn send_getlink_skipping_stats(&self, seq: u32) -> Result<(), String> {
        const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
        let mask = RtattrBuilder::default()
            .rta_type(Ifla::ExtMask)
            .rta_payload(Buffer::from(RTEXT_FILTER_SKIP_STATS.to_ne_bytes().to_vec()))
            .build()
            .map_err(|e| e.to_string())?;
        let mut attributes = RtBuffer::new();
        attributes.push(mask);
        let ifinfomsg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_type(0.into())
            .rtattrs(attributes)
            .build()
            .map_err(|e| e.to_string())?;
        self.send_request(Rtm::Getlink, NlmF::REQUEST | NlmF::DUMP, seq, ifinfomsg)
    }

    /// Sends a dump request and decodes every reply until `NLMSG_DONE`, starting again
    /// when the kernel flags the dump as interrupted.
    /// Discards every datagram queued on the socket; the replies of an abandoned dump would
    /// otherwise be read, and skipped, one by one.
    fn drain(&mut self) {
        let fd = self.handle.as_raw_fd();
        let mut scratch = [0u8; 4096];
        while let Ok(size) = recv(
            fd,
            &mut scratch,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
        ) {
            if size == 0 {
                break;
            }
        }
    }

    /// Hands the receive buffer back for the next socket: a walk keeps a socket for every
    /// namespace open at once, and they must not each keep a buffer.
    fn release_buffer(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        if !buffer.is_empty() {
            RECEIVE_BUFFER.with(|spare| *spare.borrow_mut() = buffer);
        }
    }

    fn dump<T>(
        &mut self,
        request: &'static str,
        send: fn(&Self, u32) -> Result<(), String>,
        decode: impl FnMut(&Message<'_>) -> Result<Option<T>, wire::WireError>,
    ) -> Result<Vec<T>, NetlinkError> {
        self.settle_request();
        self.dump_ahead(None, request, send, decode)
    }

    /// As `dump`, whose first attempt reads the request made ahead with sequence number
    /// `ahead`, if any.
    fn dump_ahead<T>(
        &mut self,
        ahead: Option<u32>,
        request: &'static str,
        send: fn(&Self, u32) -> Result<(), String>,
        decode: impl FnMut(&Message<'_>) -> Result<Option<T>, wire::WireError>,
    ) -> Result<Vec<T>, NetlinkError> {
        let items = self.dump_inner(request, send, ahead, decode);
        self.release_buffer();
        items
    }

    fn dump_inner<T>(
        &mut self,
        request: &'static str,
        send: fn(&Self, u32) -> Result<(), String>,
        mut ahead: Option<u32>,
        mut decode: impl FnMut(&Message<'_>) -> Result<Option<T>, wire::WireError>,
    ) -> Result<Vec<T>, NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = match ahead.take() {
                Some(seq) => seq,
                None => {
                    let seq = self.next_seq;
                    self.next_seq = self.next_seq.wrapping_add(1);
                    send(self, seq).map_err(|reason| NetlinkError::Send { request, reason })?;
                    seq
                }
            };
            match self.collect(request, seq, &mut decode) {
                Ok(Some(items)) => return Ok(items),
                Ok(None) => continue,
                // The receive queue overflowed and part of the dump is lost: start again on a
                // fresh socket, which has nothing queued (route sockets need no privilege).
                // A datagram larger than the buffer was lost; the buffer has grown to fit it.
                Err(NetlinkError::Receive {
                    errno: Errno::EMSGSIZE,
                    ..
                }) => continue,
                // The receive queue overflowed and part of the dump is lost: drop what is
                // still queued and ask again on the same socket. (A fresh socket would belong
                // to whatever namespace this process is in now, not necessarily this one.)
                Err(NetlinkError::Receive {
                    errno: Errno::ENOBUFS,
                    ..
                })
                | Err(NetlinkError::Kernel {
                    errno: Errno::ENOBUFS,
                    ..
                }) => {
                    self.drain();
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        Err(NetlinkError::Interrupted {
            request,
            attempts: DUMP_ATTEMPTS,
        })
    }

    /// Reads one dump to its end. `None` means the dump was interrupted and must be redone.
    fn collect<T>(
        &mut self,
        request: &'static str,
        seq: u32,
        decode: &mut impl FnMut(&Message<'_>) -> Result<Option<T>, wire::WireError>,
    ) -> Result<Option<Vec<T>>, NetlinkError> {
        let mut dump = DumpReader::new(request, seq, self.port);
        loop {
            let len = self.receive(request)?;
            if let Some(end) = dump.absorb(&self.buffer[..len], decode)? {
                return Ok(end);
            }
            // A full first datagram means a long dump: a short one (a namespace of a few
            // links) is not worth a thread.
            if self.overlap && len >= OVERLAP_AFTER {
                return self.collect_overlapped(dump, decode);
            }
        }
    }

    /// The rest of a dump, received on a second thread and decoded on this one as it comes.
    fn collect_overlapped<T>(
        &mut self,
        mut dump: DumpReader<T>,
        decode: &mut impl FnMut(&Message<'_>) -> Result<Option<T>, wire::WireError>,
    ) -> Result<Option<Vec<T>>, NetlinkError> {
        let receiver = Receiver {
            fd: self.handle.as_raw_fd(),
            request: dump.request,
            seq: dump.seq,
            port: dump.port,
            deadline: self.deadline,
        };
        let request = dump.request;
        // Full datagrams go one way, emptied buffers come back to be filled again.
        let (full_sender, full) = std::sync::mpsc::sync_channel(OVERLAP_QUEUE);
        let (empty, empty_receiver) = std::sync::mpsc::channel();
        let outcome = std::thread::scope(|scope| {
            let started = std::thread::Builder::new()
                .spawn_scoped(scope, move || receiver.run(&full_sender, &empty_receiver));
            if started.is_err() {
                // No thread to be had (a cgroup's pids.max, say): the rest is read here.
                return None;
            }
            let outcome = loop {
                match full.recv() {
                    Ok(Ok((buffer, len))) => {
                        let absorbed = dump.absorb(&buffer[..len], decode);
                        let _ = empty.send(buffer);
                        match absorbed {
                            Ok(Some(end)) => break Ok(end),
                            Ok(None) => {}
                            Err(error) => break Err(error),
                        }
                    }
                    Ok(Err(error)) => break Err(error),
                    // The receiver stopped at what ends the dump, which decoding rejected.
                    Err(_) => break Err(NetlinkError::Truncated { request }),
                }
            };
            // A receiver still at work fails its next send, and stops.
            drop(full);
            Some(outcome)
        });
        match outcome {
            Some(outcome) => {
                if outcome.is_err() {
                    // Whatever went wrong (a datagram larger than the receiver's buffers,
                    // say), the dump's next attempt is read the plain way.
                    self.overlap = false;
                }
                outcome
            }
            None => loop {
                let len = self.receive(request)?;
                if let Some(end) = dump.absorb(&self.buffer[..len], decode)? {
                    return Ok(end);
                }
            },
        }
    }

    /// Lets a long dump be received on a thread of its own while the calling thread
    /// decodes what has come: the kernel builds a dump while it is read, so the two then
    /// run side by side. Only for a process that will not fork again and holds no
    /// privilege (the thread copies the caller's credentials), and when a core is idle.
    pub fn set_overlap(&mut self, overlap: bool) {
        self.overlap = overlap;
    }

    /// Makes every read after `deadline` fail with [`NetlinkError::TimedOut`].
    pub fn set_deadline(&mut self, deadline: std::time::Instant) {
        self.deadline = Some(deadline);
    }

    /// Receives one datagram into the buffer. A datagram larger than the buffer is lost: the
    /// buffer grows to its size, and the caller starts over.
    fn receive(&mut self, request: &'static str) -> Result<usize, NetlinkError> {
        if self
            .deadline
            .is_some_and(|deadline| std::time::Instant::now() >= deadline)
        {
            return Err(NetlinkError::TimedOut { request });
        }
        if self.buffer.is_empty() {
            self.buffer = RECEIVE_BUFFER.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
            if self.buffer.is_empty() {
                self.buffer = vec![0; INITIAL_RECEIVE_BUFFER];
            }
        }
        let fd = self.handle.as_raw_fd();
        loop {
            // MSG_TRUNC makes recv return the datagram's real size, so that a short buffer
            // shows, without a second call to peek at every datagram.
            let size = match recv(fd, &mut self.buffer, MsgFlags::MSG_TRUNC) {
                Ok(size) => size,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(NetlinkError::Receive { request, errno }),
            };
            if size == 0 {
                return Err(NetlinkError::Truncated { request });
            }
            if size > self.buffer.len() {
                self.buffer.resize(size, 0);
                return Err(NetlinkError::Receive {
                    request,
                    errno: Errno::EMSGSIZE,
                });
            }
            return Ok(size);
        }
    }
}

/// A link dump as the kernel sent it, datagram by datagram, with the sequence number and
/// port its messages answer: read by one process, decoded by another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDump {
    pub seq: u32,
    pub port: u32,
    pub datagrams: Vec<Vec<u8>>,
}

impl RawDump {
    /// The links of the dump, each passed to `map` as it is decoded, as
    /// [`RouteSocket::dump_links_mapped`] does. Checked as strictly as a dump read here: a
    /// dump that does not end, or ends interrupted or in an error, is an error.
    pub fn links_mapped<T>(
        &self,
        mut map: impl FnMut(&RawLink) -> T,
    ) -> Result<Vec<T>, NetlinkError> {
        const REQUEST: &str = "RTM_GETLINK";
        let mut reader = DumpReader::new(REQUEST, self.seq, self.port);
        let mut decode = |message: &Message<'_>| {
            if message.kind == wire::RTM_NEWLINK {
                wire::decode_link(message.payload).map(|raw| Some(map(&raw)))
            } else {
                Ok(None)
            }
        };
        for datagram in &self.datagrams {
            if let Some(end) = reader.absorb(datagram, &mut decode)? {
                return end.ok_or(NetlinkError::Interrupted {
                    request: REQUEST,
                    attempts: 1,
                });
            }
        }
        Err(NetlinkError::Truncated { request: REQUEST })
    }
}

/// A first datagram at least this long starts an overlapped read (see
/// [`RouteSocket::set_overlap`]). The kernel fills datagrams of up to 32 KiB.
const OVERLAP_AFTER: usize = 16 * 1024;
/// Datagrams received ahead of decoding, at most.
const OVERLAP_QUEUE: usize = 16;
/// The overlapped receiver's buffers: twice the largest datagram a dump is built in.
const OVERLAP_BUFFER: usize = 64 * 1024;

/// Type of what the overlapped receiver hands over: a buffer and the length received.
type Received = Result<(Vec<u8>, usize), NetlinkError>;

/// The thread of an overlapped read: receives the rest of one dump, datagram by datagram,
/// and looks at each only to see whether it ends the dump.
struct Receiver {
    fd: std::os::fd::RawFd,
    request: &'static str,
    seq: u32,
    port: u32,
    deadline: Option<std::time::Instant>,
}

impl Receiver {
    fn run(
        &self,
        full: &std::sync::mpsc::SyncSender<Received>,
        empty: &std::sync::mpsc::Receiver<Vec<u8>>,
    ) {
        let request = self.request;
        loop {
            if self
                .deadline
                .is_some_and(|deadline| std::time::Instant::now() >= deadline)
            {
                let _ = full.send(Err(NetlinkError::TimedOut { request }));
                return;
            }
            let mut buffer = empty.try_recv().unwrap_or_else(|_| vec![0; OVERLAP_BUFFER]);
            let size = loop {
                match recv(self.fd, &mut buffer, MsgFlags::MSG_TRUNC) {
                    Ok(size) => break size,
                    Err(Errno::EINTR) => continue,
                    Err(errno) => {
                        let _ = full.send(Err(NetlinkError::Receive { request, errno }));
                        return;
                    }
                }
            };
            if size == 0 {
                let _ = full.send(Err(NetlinkError::Truncated { request }));
                return;
            }
            if size > buffer.len() {
                let _ = full.send(Err(NetlinkError::Receive {
                    request,
                    errno: Errno::EMSGSIZE,
                }));
                return;
            }
            let last = self.ends_dump(&buffer[..size]);
            if full.send(Ok((buffer, size))).is_err() || last {
                return;
            }
        }
    }

    /// Whether `datagram` holds what ends this dump for [`DumpReader::absorb`] (or what it
    /// will reject): nothing more is to be received after it.
    fn ends_dump(&self, datagram: &[u8]) -> bool {
        wire::messages(datagram).any(|message| match message {
            Ok(message) if message.seq != self.seq || message.port != self.port => false,
            Ok(message) => match message.kind {
                NLMSG_DONE | NLMSG_OVERRUN => true,
                NLMSG_ERROR => message.error_code().map_or(true, |code| code < 0),
                _ => false,
            },
            Err(_) => true,
        })
    }
}

thread_local! {
    /// One receive buffer, handed from socket to socket: a walk over a thousand namespaces
    /// holds a thousand sockets, which must not each zero a buffer of their own.
    static RECEIVE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drop for RouteSocket {
    fn drop(&mut self) {
        self.release_buffer();
    }
}

impl AsRawFd for RouteSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.handle.as_raw_fd()
    }
}

/// The replies to one dump request, datagram by datagram: kept apart from the socket so
/// that what is accepted, skipped and retried can be shown on bytes alone.
pub struct DumpReader<T> {
    request: &'static str,
    seq: u32,
    port: u32,
    items: Vec<T>,
    interrupted: bool,
}

impl<T> DumpReader<T> {
    pub fn new(request: &'static str, seq: u32, port: u32) -> Self {
        DumpReader {
            request,
            seq,
            port,
            items: Vec::new(),
            interrupted: false,
        }
    }

    /// Takes in one datagram. `Some(Some(items))` once the dump is complete, `Some(None)`
    /// when it ended interrupted by concurrent changes and must be asked again, `None`
    /// while more is to come.
    #[allow(clippy::type_complexity)]
    pub fn absorb(
        &mut self,
        datagram: &[u8],
        decode: &mut impl FnMut(&Message<'_>) -> Result<Option<T>, wire::WireError>,
    ) -> Result<Option<Option<Vec<T>>>, NetlinkError> {
        let request = self.request;
        for message in wire::messages(datagram) {
            let message = message?;
            // Replies to an earlier, abandoned attempt can still be queued.
            if message.seq != self.seq || message.port != self.port {
                continue;
            }
            self.interrupted |= message.flags & wire::NLM_F_DUMP_INTR != 0;
            match message.kind {
                NLMSG_NOOP => {}
                NLMSG_DONE | NLMSG_ERROR => {
                    let code = message.error_code()?;
                    if code < 0 {
                        return Err(NetlinkError::Kernel {
                            request,
                            errno: Errno::from_raw(-code),
                        });
                    }
                    if message.kind == NLMSG_DONE {
                        let items = std::mem::take(&mut self.items);
                        return Ok(Some((!self.interrupted).then_some(items)));
                    }
                }
                NLMSG_OVERRUN => {
                    return Err(NetlinkError::Kernel {
                        request,
                        errno: Errno::ENOBUFS,
                    })
                }
                _ => self.items.extend(decode(&message)?),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, flags: u16, seq: u32, port: u32, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(((16 + payload.len()) as u32).to_ne_bytes());
        bytes.extend(kind.to_ne_bytes());
        bytes.extend(flags.to_ne_bytes());
        bytes.extend(seq.to_ne_bytes());
        bytes.extend(port.to_ne_bytes());
        bytes.extend(payload);
        while bytes.len() % 4 != 0 {
            bytes.push(0);
        }
        bytes
    }

    const MULTI: u16 = 2;
    const ITEM: u16 = 16;

    fn count(message: &Message<'_>) -> Result<Option<u32>, wire::WireError> {
        Ok(Some(message.payload.len() as u32))
    }

    #[test]
    fn a_dump_flagged_interrupted_must_be_asked_again() {
        let mut reader = DumpReader::new("test", 7, 42);
        let first = message(ITEM, MULTI | wire::NLM_F_DUMP_INTR, 7, 42, &[0; 4]);
        assert_eq!(reader.absorb(&first, &mut count).unwrap(), None);
        let done = message(NLMSG_DONE, MULTI, 7, 42, &0i32.to_ne_bytes());
        assert_eq!(reader.absorb(&done, &mut count).unwrap(), Some(None));
    }

    #[test]
    fn a_clean_dump_keeps_its_items_and_ends_at_done() {
        let mut reader = DumpReader::new("test", 7, 42);
        let mut datagram = message(ITEM, MULTI, 7, 42, &[0; 8]);
        datagram.extend(message(ITEM, MULTI, 7, 42, &[0; 4]));
        datagram.extend(message(NLMSG_DONE, MULTI, 7, 42, &0i32.to_ne_bytes()));
        assert_eq!(
            reader.absorb(&datagram, &mut count).unwrap(),
            Some(Some(vec![8, 4]))
        );
    }

    #[test]
    fn replies_of_another_request_or_port_are_skipped() {
        let mut reader = DumpReader::new("test", 7, 42);
        let mut datagram = message(ITEM, MULTI, 6, 42, &[0; 8]);
        datagram.extend(message(ITEM, MULTI, 7, 41, &[0; 12]));
        datagram.extend(message(NLMSG_DONE, MULTI, 6, 42, &0i32.to_ne_bytes()));
        assert_eq!(reader.absorb(&datagram, &mut count).unwrap(), None);
        let done = message(NLMSG_DONE, MULTI, 7, 42, &0i32.to_ne_bytes());
        assert_eq!(
            reader.absorb(&done, &mut count).unwrap(),
            Some(Some(vec![]))
        );
    }

    #[test]
    fn errors_and_overruns_end_the_dump() {
        let mut reader = DumpReader::<u32>::new("test", 7, 42);
        let failed = message(NLMSG_DONE, MULTI, 7, 42, &(-1i32).to_ne_bytes());
        assert!(matches!(
            reader.absorb(&failed, &mut count),
            Err(NetlinkError::Kernel {
                errno: Errno::EPERM,
                ..
            })
        ));
        let mut reader = DumpReader::<u32>::new("test", 7, 42);
        let overrun = message(NLMSG_OVERRUN, 0, 7, 42, &[]);
        assert!(matches!(
            reader.absorb(&overrun, &mut count),
            Err(NetlinkError::Kernel {
                errno: Errno::ENOBUFS,
                ..
            })
        ));
    }

    #[test]
    fn the_overlapped_receiver_stops_where_the_dump_reader_ends_the_dump() {
        let receiver = Receiver {
            fd: -1,
            request: "test",
            seq: 7,
            port: 42,
            deadline: None,
        };
        let item = message(ITEM, MULTI, 7, 42, &[0; 12]);
        let done = message(NLMSG_DONE, MULTI, 7, 42, &0i32.to_ne_bytes());
        let other_done = message(NLMSG_DONE, MULTI, 6, 42, &0i32.to_ne_bytes());
        let failed = message(NLMSG_ERROR, 0, 7, 42, &(-1i32).to_ne_bytes());
        let ack = message(NLMSG_ERROR, 0, 7, 42, &0i32.to_ne_bytes());
        let overrun = message(NLMSG_OVERRUN, 0, 7, 42, &[]);
        let cases: [(Vec<u8>, bool); 7] = [
            (item.clone(), false),
            ([item.clone(), done.clone()].concat(), true),
            // An abandoned dump's end, or an acknowledgement, ends nothing.
            ([item.clone(), other_done].concat(), false),
            (ack, false),
            (failed, true),
            (overrun, true),
            // What the reader will reject: nothing more is worth receiving.
            (item[..20].to_vec(), true),
        ];
        for (datagram, ends) in cases {
            assert_eq!(receiver.ends_dump(&datagram), ends, "{datagram:?}");
            // The reader agrees: it has an answer exactly where the receiver stops.
            let mut reader = DumpReader::<u32>::new("test", 7, 42);
            assert_eq!(
                !matches!(reader.absorb(&datagram, &mut count), Ok(None)),
                ends,
                "{datagram:?}"
            );
        }
    }
}
