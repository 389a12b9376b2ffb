//! The address decoder against real kernel bytes: the RTM_GETADDR dump of the scene built by
//! `scripts/capture-netlink-scene.sh` (see `tests/data/README.md`), cross-checked against
//! `ip -j addr` taken right after it in the same namespace.

mod common;

use common::{datagrams, decoded, raw_links, GETADDR};
use nshelper_netlink::addrs::addrs_from_dump;
use nshelper_netlink::wire::{decode_addr, messages, RawAddr, NLMSG_DONE, RTM_NEWADDR};

fn raw_addrs() -> Vec<RawAddr> {
    decoded(GETADDR, RTM_NEWADDR, decode_addr)
}

const IFA_F_NODAD: u8 = 0x02;
const IFA_F_PERMANENT: u8 = 0x80;

#[test]
fn the_capture_is_eleven_addresses_then_done() {
    let datagrams = datagrams(GETADDR);
    assert_eq!(
        datagrams.iter().map(|d| d.len()).collect::<Vec<_>>(),
        [872, 20]
    );
    let kinds: Vec<u16> = datagrams
        .iter()
        .flat_map(|d| messages(d).map(|m| m.unwrap().kind))
        .collect();
    assert_eq!(kinds.len(), 12);
    assert!(kinds[..11].iter().all(|&k| k == RTM_NEWADDR));
    assert_eq!(kinds[11], NLMSG_DONE);
}

#[test]
fn ipv4_comes_first_with_local_and_label_ipv6_after_with_address_only() {
    let addrs = raw_addrs();
    let families: Vec<u8> = addrs.iter().map(|a| a.family).collect();
    assert_eq!(families, [2, 2, 2, 2, 10, 10, 10, 10, 10, 10, 10]);
    for addr in &addrs {
        if addr.family == 2 {
            assert!(addr.local.is_some() && addr.label.is_some(), "{addr:?}");
        } else {
            assert_eq!((&addr.local, &addr.label), (&None, &None), "{addr:?}");
            assert_eq!(addr.address.as_ref().map(Vec::len), Some(16));
        }
        assert_eq!(
            addr.broadcast.is_some(),
            addr.label.as_deref() == Some(b"vb:one")
        );
        assert_ne!(addr.flags & IFA_F_PERMANENT, 0, "{addr:?}");
    }
    // `ip addr add 10.0.0.1/24 broadcast 10.0.0.255 dev vb label vb:one`
    let vb_one = &addrs[1];
    assert_eq!((vb_one.ifindex, vb_one.prefixlen, vb_one.scope), (2, 24, 0));
    assert_eq!(vb_one.local.as_deref(), Some(&[10, 0, 0, 1][..]));
    assert_eq!(vb_one.address, vb_one.local);
    assert_eq!(vb_one.broadcast.as_deref(), Some(&[10, 0, 0, 255][..]));
    // `ip addr add 192.0.2.1 peer 192.0.2.2/32 dev tun0`: IFA_ADDRESS is the peer.
    let tun0 = &addrs[3];
    assert_eq!(tun0.ifindex, 7);
    assert_eq!(tun0.local.as_deref(), Some(&[192, 0, 2, 1][..]));
    assert_eq!(tun0.address.as_deref(), Some(&[192, 0, 2, 2][..]));
    // `nodad` shows in the 8-bit flags of the header.
    let global6 = &addrs[5];
    assert_eq!(global6.flags, IFA_F_PERMANENT | IFA_F_NODAD);
    assert_eq!(
        global6.address.as_ref().unwrap()[..4],
        [0x20, 0x01, 0x0d, 0xb8]
    );
}

/// What `ip -j addr` printed: ifindex, ifname, family, local, prefixlen, scope, broadcast,
/// label, address (the peer).
type IpAddr = (
    u32,
    &'static str,
    &'static str,
    &'static str,
    u8,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

#[rustfmt::skip]
const IP_SAYS: [IpAddr; 11] = [
    (1, "lo", "inet", "127.0.0.1", 8, "host", None, Some("lo"), None),
    (1, "lo", "inet6", "::1", 128, "host", None, None, None),
    (2, "vb", "inet", "10.0.0.1", 24, "global", Some("10.0.0.255"), Some("vb:one"), None),
    (2, "vb", "inet", "10.0.1.1", 24, "global", None, Some("vb"), None),
    (2, "vb", "inet6", "2001:db8::1", 64, "global", None, None, None),
    (2, "vb", "inet6", "fe80::3ca0:10ff:fe2b:e2fd", 64, "link", None, None, None),
    (3, "va", "inet6", "fe80::c471:90ff:fec5:dd5", 64, "link", None, None, None),
    (4, "br0", "inet6", "fe80::c471:90ff:fec5:dd5", 64, "link", None, None, None),
    (5, "mv0", "inet6", "fe80::404c:d4ff:fef1:8f51", 64, "link", None, None, None),
    (6, "vx0", "inet6", "fe80::c89c:8dff:fe91:fc18", 64, "link", None, None, None),
    (7, "tun0", "inet", "192.0.2.1", 32, "global", None, Some("tun0"), Some("192.0.2.2")),
];

#[test]
fn the_model_matches_what_ip_printed_in_its_order() {
    let addrs = addrs_from_dump(raw_addrs(), &raw_links());
    assert_eq!(addrs.len(), IP_SAYS.len());
    for (addr, expected) in addrs.iter().zip(IP_SAYS) {
        let (ifindex, ifname, family, local, prefixlen, scope, broadcast, label, peer) = expected;
        assert_eq!(addr.ifindex, ifindex, "{local}");
        assert_eq!(addr.ifname.as_deref(), Some(ifname), "{local}");
        assert_eq!(addr.family, family, "{local}");
        assert_eq!(addr.local, local);
        assert_eq!(addr.prefixlen, prefixlen, "{local}");
        assert_eq!(addr.scope, scope, "{local}");
        assert_eq!(addr.broadcast.as_deref(), broadcast, "{local}");
        assert_eq!(addr.label.as_deref(), label, "{local}");
        assert_eq!(addr.address.as_deref(), peer, "{local}");
    }
}

#[test]
fn without_the_links_addresses_keep_their_index_but_have_no_name() {
    let addrs = addrs_from_dump(raw_addrs(), &[]);
    assert_eq!(addrs.len(), 11);
    assert!(addrs.iter().all(|a| a.ifname.is_none()));
    assert_eq!(addrs[10].ifindex, 7);
}
