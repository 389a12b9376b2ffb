#!/usr/bin/env bash
# Builds a fixed scene of interfaces in a private network namespace and captures one raw
# RTM_GETLINK dump of it with capture-netlink.py, for crates/netlink/tests/captured.rs.
#
# Run it only inside a private world, never on a host's own namespaces:
#
#   unshare --net --mount --pid --fork --mount-proc --propagation private \
#       bash scripts/capture-netlink-scene.sh OUTFILE
#
# Writes OUTFILE (the capture) and OUTFILE.ip.json (`ip -j -d link` of the same scene, for
# reference: iproute2 prints raw bytes of names that are not UTF-8, so read it leniently).
set -euo pipefail

out=${1:?usage: capture-netlink-scene.sh OUTFILE}
here=$(cd "$(dirname "$0")" && pwd)

# Refuse to run anywhere but a fresh private world (this shell is pid 1 of its own pid
# namespace, and the network namespace has nothing but lo): this script creates and moves
# links.
if [ "$$" != 1 ] || [ "$(ip -o link show | wc -l)" != 1 ]; then
  echo "capture-netlink-scene: run me only as pid 1 of a fresh private world made by unshare (see header)" >&2
  exit 1
fi

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

for dev in va vb br0 mv0 vx0 vhost $'v\xff'; do
  ip link set "$dev" up
done

python3 "$here/capture-netlink.py" "$out"
ip -j -d link show >"$out.ip.json"
