#!/usr/bin/env bash
# Runs inside a private world made by `make demo`: makes a container-like process with a
# veth to this world, then shows what nshelper sees inside it.
set -euo pipefail
nshelper=$1

unshare --net --pid --mount --uts --fork --mount-proc sleep 60 &
launcher=$!
container=""
for _ in $(seq 100); do
  container=$(tr -d ' ' </proc/$launcher/task/$launcher/children 2>/dev/null || true)
  [ -n "$container" ] && break
  sleep 0.05
done
[ -n "$container" ] || { echo "demo: the container did not start" >&2; exit 1; }

ip link add name demo-host type veth peer name eth0 netns "$container"
ip link set demo-host up
nsenter -t "$container" -n ip link set eth0 up

echo "+ nshelper query links --pid $container --pretty"
"$nshelper" query links --pid "$container" --pretty
kill "$launcher"
