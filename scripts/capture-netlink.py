#!/usr/bin/env python3
"""Capture one raw rtnetlink dump from the kernel, for nshelper-netlink's tests.

Usage: capture-netlink.py [KIND] OUTFILE

KIND is one of (default: link):

    link    RTM_GETLINK,  struct ifinfomsg with family AF_UNSPEC
    addr    RTM_GETADDR,  struct ifaddrmsg with family AF_UNSPEC
    route   RTM_GETROUTE, struct rtmsg with family AF_UNSPEC: every family, every table
    neigh   RTM_GETNEIGH, struct ndmsg with family AF_UNSPEC: ARP and NDP tables

Sends that single request with NLM_F_REQUEST|NLM_F_DUMP and sequence number 1 on a
NETLINK_ROUTE socket, in the network namespace this process runs in, and writes every
datagram the kernel sends back, raw and unmodified, to OUTFILE. It stops after the datagram
that contains NLMSG_DONE. The request headers are all zero apart from the family, as
nshelper-netlink sends them.

OUTFILE framing, repeated once per datagram, in the order received:

    u32 little-endian   length of the datagram in bytes
    length bytes        the datagram exactly as recv() returned it

The netlink messages inside the datagrams are in host byte order (little-endian on
x86_64), as the kernel wrote them. Standard library only.
"""

import socket
import struct
import sys

NETLINK_ROUTE = 0
RTM_GETLINK = 18
RTM_GETADDR = 22
RTM_GETROUTE = 26
RTM_GETNEIGH = 30
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_HDRLEN = 16
AF_UNSPEC = 0
RECV_BUFFER = 1 << 20  # 1 MiB: large enough that no datagram is truncated
SEQ = 1

# KIND: (message type, family header)
REQUESTS = {
    # struct ifinfomsg: family u8, pad u8, type u16, index i32, flags u32, change u32.
    "link": (RTM_GETLINK, struct.pack("=BxHiII", AF_UNSPEC, 0, 0, 0, 0)),
    # struct ifaddrmsg: family u8, prefixlen u8, flags u8, scope u8, index u32.
    "addr": (RTM_GETADDR, struct.pack("=BBBBI", AF_UNSPEC, 0, 0, 0, 0)),
    # struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type (u8 each),
    # flags u32.
    "route": (RTM_GETROUTE, struct.pack("=BBBBBBBBI", AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)),
    # struct ndmsg: family u8, pad u8, pad u16, ifindex i32, state u16, flags u8, type u8.
    "neigh": (RTM_GETNEIGH, struct.pack("=BxxxiHBB", AF_UNSPEC, 0, 0, 0, 0)),
}


def request(kind: str) -> bytes:
    message_type, family_header = REQUESTS[kind]
    header = struct.pack(
        "=IHHII",
        NLMSG_HDRLEN + len(family_header),
        message_type,
        NLM_F_REQUEST | NLM_F_DUMP,
        SEQ,
        0,  # port 0: the kernel
    )
    return header + family_header


def message_types(datagram: bytes):
    """Yields (type, payload) for each message; raises on a malformed length."""
    offset = 0
    while offset + NLMSG_HDRLEN <= len(datagram):
        length, kind, _flags, _seq, _port = struct.unpack_from("=IHHII", datagram, offset)
        if length < NLMSG_HDRLEN or offset + length > len(datagram):
            raise ValueError(f"bad netlink message length {length} at offset {offset}")
        yield kind, datagram[offset + NLMSG_HDRLEN : offset + length]
        offset += (length + 3) & ~3


def main() -> int:
    args = sys.argv[1:]
    if len(args) == 1:
        args.insert(0, "link")
    if len(args) != 2 or args[0] not in REQUESTS:
        print(f"usage: capture-netlink.py [{'|'.join(REQUESTS)}] OUTFILE", file=sys.stderr)
        return 2
    kind, out_path = args
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        sock.bind((0, 0))
        sock.sendto(request(kind), (0, 0))
        datagrams = []
        done = False
        while not done:
            # recvmsg reports MSG_TRUNC in its flags if a datagram did not fit.
            data, _ancdata, flags, _address = sock.recvmsg(RECV_BUFFER)
            if flags & socket.MSG_TRUNC:
                raise RuntimeError("a datagram was truncated")
            datagrams.append(data)
            for message_type, payload in message_types(data):
                if message_type == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    raise RuntimeError(f"the kernel answered with error {code}")
                if message_type == NLMSG_DONE:
                    done = True
    finally:
        sock.close()
    with open(out_path, "wb") as out:
        for data in datagrams:
            out.write(struct.pack("<I", len(data)))
            out.write(data)
    total = sum(len(d) for d in datagrams)
    print(f"{out_path}: {kind} dump, {len(datagrams)} datagrams, {total} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
