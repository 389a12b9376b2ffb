use std::os::fd::AsRawFd;

use neli::{
    consts::{
        nl::NlmF,
        rtnl::{RtAddrFamily, Rtm},
        socket::NlFamily,
    },
    nl::{NlPayload, NlmsghdrBuilder},
    rtnl::IfinfomsgBuilder,
    socket::synchronous::NlSocketHandle,
    types::RtBuffer,
    utils::Groups,
};
use nix::{
    errno::Errno,
    sys::socket::{recv, MsgFlags},
};

use crate::{
    error::NetlinkError,
    wire::{self, Message, RawLink, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN},
};

/// A dump that keeps being interrupted by changes is retried this many times in all.
const DUMP_ATTEMPTS: u32 = 5;
/// Large enough for the 32 KiB datagrams the kernel builds for dumps; a datagram that does
/// not fit grows the buffer and the dump starts again.
const INITIAL_RECEIVE_BUFFER: usize = 64 * 1024;

/// A route-netlink socket of the network namespace it was opened in.
///
/// Built on neli's `NlSocketHandle`, never `NlRouter`: the router starts a thread, and a
/// multi-threaded process can no longer join a mount or user namespace.
pub struct RouteSocket {
    handle: NlSocketHandle,
    next_seq: u32,
    buffer: Vec<u8>,
}

impl RouteSocket {
    /// Opens the socket. A netlink socket belongs to the namespace it was created in, so
    /// call this after joining the target's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let handle = NlSocketHandle::connect(NlFamily::Route, None, Groups::empty())
            .map_err(|e| NetlinkError::Socket(e.to_string()))?;
        Ok(RouteSocket {
            handle,
            next_seq: 1,
            buffer: vec![0; INITIAL_RECEIVE_BUFFER],
        })
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

    fn send_getlink(&self, seq: u32) -> Result<(), String> {
        // The kernel answers a link dump with only DONE unless ifi_type is set, so set it
        // explicitly rather than trusting a builder default.
        let ifinfomsg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_type(0.into())
            .rtattrs(RtBuffer::new())
            .build()
            .map_err(|e| e.to_string())?;
        let request = NlmsghdrBuilder::default()
            .nl_type(Rtm::Getlink)
            .nl_flags(NlmF::REQUEST | NlmF::DUMP)
            .nl_seq(seq)
            .nl_payload(NlPayload::Payload(ifinfomsg))
            .build()
            .map_err(|e| e.to_string())?;
        self.handle.send(&request).map_err(|e| e.to_string())
    }

    /// Sends a dump request and decodes every reply until `NLMSG_DONE`, starting again
    /// when the kernel flags the dump as interrupted.
    fn dump<T>(
        &mut self,
        request: &'static str,
        send: fn(&Self, u32) -> Result<(), String>,
        mut decode: impl FnMut(&Message<'_>) -> Result<Option<T>, wire::WireError>,
    ) -> Result<Vec<T>, NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            send(self, seq).map_err(|reason| NetlinkError::Send { request, reason })?;
            match self.collect(request, seq, &mut decode)? {
                Some(items) => return Ok(items),
                None => continue,
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
        let port = self.handle.pid();
        let mut items = Vec::new();
        let mut interrupted = false;
        loop {
            let len = self.receive(request)?;
            for message in wire::messages(&self.buffer[..len]) {
                let message = message?;
                // Replies to an earlier, abandoned attempt can still be queued.
                if message.seq != seq || message.port != port {
                    continue;
                }
                interrupted |= message.flags & wire::NLM_F_DUMP_INTR != 0;
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
                            return Ok((!interrupted).then_some(items));
                        }
                    }
                    NLMSG_OVERRUN => {
                        return Err(NetlinkError::Kernel {
                            request,
                            errno: Errno::ENOBUFS,
                        })
                    }
                    _ => items.extend(decode(&message)?),
                }
            }
        }
    }

    /// Receives one datagram whole into the buffer, growing it when the datagram is larger.
    fn receive(&mut self, request: &'static str) -> Result<usize, NetlinkError> {
        let fd = self.handle.as_raw_fd();
        loop {
            let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC;
            let size = match recv(fd, &mut self.buffer, peek) {
                Ok(size) => size,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(NetlinkError::Receive { request, errno }),
            };
            if size == 0 {
                return Err(NetlinkError::Truncated { request });
            }
            if size > self.buffer.len() {
                self.buffer.resize(size, 0);
                continue;
            }
            return match recv(fd, &mut self.buffer, MsgFlags::empty()) {
                Ok(size) => Ok(size),
                Err(errno) => Err(NetlinkError::Receive { request, errno }),
            };
        }
    }
}
