#!/usr/bin/env bash
# Builds a fixed scene of interfaces, addresses, routes and neighbours in a private network
# namespace and captures one raw dump of each (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE,
# RTM_GETNEIGH) with capture-netlink.py, for crates/netlink/tests/.
#
# Run it only inside a private world, never on a host's own namespaces:
#
#   unshare --net --mount --pid --fork --mount-proc --propagation private \
#       bash scripts/capture-netlink-scene.sh OUTDIR
#
# Writes into OUTDIR:
#   getlink-scene.bin, getaddr-scene.bin, getroute-scene.bin, getneigh-scene.bin
#       the captures;
#   ip-*.json
#       what iproute2 printed for the same scene right after, for reference (iproute2 prints
#       raw bytes of names that are not UTF-8, so read those files leniently).
set -euo pipefail

out=${1:?usage: capture-netlink-scene.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)

# Refuse to run anywhere but a fresh private world (this shell is pid 1 of its own pid
# namespace, and the network namespace has nothing but lo): this script creates and moves
# links.
if [ "$$" != 1 ] || [ "$(ip -o link show | wc -l)" != 1 ]; then
  echo "capture-netlink-scene: run me only as pid 1 of a fresh private world made by unshare (see header)" >&2
  exit 1
fi
mkdir -p "$out"

ip link set lo up

# A veth pair with both ends here; va in a bridge, vb carries a macvlan and a vxlan.
ip link add name va type veth peer name vb
ip link add name br0 type bridge
ip link set va master br0
ip link add name mv0 link vb type macvlan mode bridge
ip link add name vx0 type vxlan id 42 dstport 4789 dev vb
ip tuntap add dev tun0 mode tun

# A veth whose peer lives in another network namespace: this end carries IFLA_LINK_NETNSID.
unshare --net sleep 60 &
other=$!
trap 'kill "$other" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ "$(readlink /proc/$other/ns/net 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] && break
  sleep 0.05
done
ip link add name vhost type veth peer name vguest
ip link set vguest netns "$other"

# A name that is not valid UTF-8: 'v' 0xff.
ip link add name $'v\xff' type veth peer name vz

# An alias, an alternative name and a queue length that is not the default.
ip link set va alias "uplink to br0"
ip link property add dev va altname va-alt
ip link set vb txqlen 500

for dev in va vb br0 mv0 vx0 vhost $'v\xff'; do
  ip link set "$dev" up
done

# Addresses: one with a label and a broadcast, one without a broadcast, a point-to-point
# address with a peer, and a global IPv6 address (the veths also get link-local ones).
ip addr add 10.0.0.1/24 broadcast 10.0.0.255 dev vb label vb:one
ip addr add 10.0.1.1/24 dev vb
ip addr add 192.0.2.1 peer 192.0.2.2/32 dev tun0
ip -6 addr add 2001:db8::1/64 dev vb nodad

# Routes in main and in table 100, of several types and protocols.
ip route add default via 10.0.0.2 dev vb
ip route add 10.9.0.0/24 via 10.0.0.3 dev vb table 100
ip route add unreachable 203.0.113.0/24 table 100
ip route add 10.8.0.0/16 dev vb proto static metric 7 src 10.0.0.1
ip route add 10.7.7.7 dev vb proto 200
ip route add blackhole 198.51.100.0/24
ip route add 10.6.0.0/16 via inet6 fe80::1 dev vb
ip -6 route add 2001:db8:1::/48 via 2001:db8::2 dev vb metric 50
ip -6 route add prohibit 2001:db8:2::/48

# Neighbours: permanent, noarp (which `ip neigh` hides by default) and stale.
ip neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev vb nud permanent
ip neigh add 10.0.0.8 lladdr 02:00:00:00:00:08 dev vb nud noarp
ip neigh add 10.0.0.7 lladdr 02:00:00:00:00:07 dev vb nud stale
ip -6 neigh add 2001:db8::9 lladdr 02:00:00:00:00:0a dev vb nud permanent

# Let duplicate address detection of the link-local addresses finish, so that the counters
# and addresses hold still while the captures and iproute2 look at them.
sleep 3

python3 "$here/capture-netlink.py" link "$out/getlink-scene.bin"
ip -s -j -d link show >"$out/ip-s-d-link.json"
python3 "$here/capture-netlink.py" addr "$out/getaddr-scene.bin"
ip -j addr show >"$out/ip-addr.json"
python3 "$here/capture-netlink.py" route "$out/getroute-scene.bin"
ip -j route show table all >"$out/ip-route.json"
ip -6 -j route show table all >"$out/ip-6-route.json"
ip -d -j route show table all >"$out/ip-d-route.json"
ip -d -6 -j route show table all >"$out/ip-d-6-route.json"
python3 "$here/capture-netlink.py" neigh "$out/getneigh-scene.bin"
ip -j neigh show >"$out/ip-neigh.json"
ip -j neigh show nud all >"$out/ip-neigh-all.json"
ip -s -j -d link show >"$out/ip-s-d-link-after.json"
