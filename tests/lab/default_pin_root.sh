#!/usr/bin/env bash
# Lab tier: `flowpin lb up` and `flowpin backend up` with the DEFAULT pin root
# (/sys/fs/bpf/flowpin) on a machine where bpffs was never mounted at /sys/fs/bpf.
#
# Such a machine is made with `unshare --net --mount --propagation private` and
# `umount -R /sys/fs/bpf` inside it: /sys/fs/bpf is then the read-only sysfs directory a
# fresh Debian has, in this test's own mount and network namespaces only (the host's
# /sys/fs/bpf and interfaces are never touched; both namespaces die with the script).
# Both daemons start at the same moment, so both race to mount bpffs; then each must
# run, there must be exactly one bpffs at /sys/fs/bpf holding both pin directories, and
# `stats` and `down` from other processes (default pin root too) must find the pins.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (mount and network namespaces, XDP, tc BPF)"
	exit 0
fi

tmp=$(mktemp -d /tmp/flowpin-default-pin-root.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export FLOWPIN=$PWD/build/flowpin TMP=$tmp

cat >"$tmp/flowpin.yaml" <<EOF
hash_key: 000102030405060708090a0b0c0d0e0f
allow_example_key: true
table_size: 307
lb_sources:
  - 10.99.0.1
vips:
  - name: web
    address: 198.51.100.10
    port: 80
    protocol: tcp
    backends:
      - { id: 1, address: 10.99.0.2 }
EOF

# Runs inside the private namespaces; prints TAP.
cat >"$tmp/inside.sh" <<'INSIDE'
set -uo pipefail
source tests/lab/backend_tap.bash
pins=/sys/fs/bpf/flowpin
lb_pid= backend_pid=
finish() {
	# Both daemons were started by this script, in its own namespaces.
	[ -n "$lb_pid" ] && kill "$lb_pid" 2>/dev/null
	[ -n "$backend_pid" ] && kill "$backend_pid" 2>/dev/null
	wait 2>/dev/null
}
trap finish EXIT
logs() { for f in "$TMP"/*.log; do [ -f "$f" ] && sed "s|^|$(basename "$f"): |" "$f"; done; }

umount -R /sys/fs/bpf 2>/dev/null
fstype=$(stat -f -c %T /sys/fs/bpf)
if [ "$fstype" != bpf_fs ] && ! mkdir /sys/fs/bpf/probe 2>/dev/null; then
	tap ok "/sys/fs/bpf is not a bpffs ($fstype) and nothing can be created in it"
else
	tap fail "cannot simulate a fresh machine: /sys/fs/bpf is $fstype"
	exit 1
fi

ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.99.0.1/24 dev v0
ip addr add 10.99.0.2/24 dev v1
ip link set v0 up
ip link set v1 up
sysctl -qw net.ipv4.ip_forward=1

"$FLOWPIN" lb up --config "$TMP/flowpin.yaml" --dev v0 --xdp-mode generic \
	--run-dir "$TMP/run" >"$TMP/lb.log" 2>&1 &
lb_pid=$!
"$FLOWPIN" backend up --config "$TMP/flowpin.yaml" --dev v1 >"$TMP/backend.log" 2>&1 &
backend_pid=$!

# The pid file is claimed first; the program is pinned once the verifier has passed it,
# which takes seconds on a loaded machine (the LB program is ~700k verified insns).
if wait_for "$TMP/run/v0.pid" 10 && wait_for "$pins/v0/prog" 60 &&
	kill -0 "$lb_pid" 2>/dev/null; then
	tap ok "lb up with the default pin root runs"
else
	tap fail "lb up with the default pin root runs" "$(logs)"
fi
if wait_for "$pins/backend/state" 10 && kill -0 "$backend_pid" 2>/dev/null; then
	tap ok "backend up with the default pin root runs"
else
	tap fail "backend up with the default pin root runs" "$(logs)"
fi
mounts=$(findmnt -n -t bpf -o TARGET /sys/fs/bpf | wc -l)
if [ "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs ] && [ "$mounts" -eq 1 ] &&
	[ -e "$pins/v0/prog" ] && [ -e "$pins/backend/counters" ]; then
	tap ok "one bpffs at /sys/fs/bpf holds both pin directories"
else
	tap fail "one bpffs at /sys/fs/bpf holds both pin directories" \
		"bpf mounts at /sys/fs/bpf: $mounts" "$(ls -R /sys/fs/bpf 2>&1)" "$(logs)"
fi
if out=$("$FLOWPIN" lb stats --dev v0 2>&1); then
	tap ok "lb stats from another process finds the default pins"
else
	tap fail "lb stats from another process finds the default pins" "$out"
fi
if out=$("$FLOWPIN" backend stats 2>&1); then
	tap ok "backend stats from another process finds the default pins"
else
	tap fail "backend stats from another process finds the default pins" "$out"
fi
if out=$("$FLOWPIN" lb down --dev v0 --run-dir "$TMP/run" 2>&1) && wait "$lb_pid" &&
	[ ! -e "$pins/v0" ]; then
	tap ok "lb down stops the daemon and removes its pins"
else
	tap fail "lb down stops the daemon and removes its pins" "$out" "$(logs)"
fi
lb_pid=
if out=$("$FLOWPIN" backend down 2>&1) && wait "$backend_pid" &&
	[ ! -e "$pins/backend/state" ]; then
	tap ok "backend down stops the agent and removes its pins"
else
	tap fail "backend down stops the agent and removes its pins" "$out" "$(logs)"
fi
backend_pid=
[ "$failed" -eq 0 ]
INSIDE

unshare --net --mount --propagation private bash "$tmp/inside.sh"
rc=$?
# A failure before the first line of TAP still shows up (run-tests.sh counts the exit).
exit "$rc"
