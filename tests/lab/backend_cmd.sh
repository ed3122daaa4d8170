#!/usr/bin/env bash
# Lab tier: `flowpin backend up/down/stats` as an operator sees them, in a network
# namespace this script creates (removed on exit, also on failure).
#   - bad input (config without lb_sources, unknown device) is refused with a message
#     naming the place, and changes nothing;
#   - up prints every sysctl it changes as old -> new, binds the VIPs, attaches, pins;
#     SIGTERM restores every sysctl to its old value, removes the VIPs it added (not one
#     that was there before), the filter, the qdisc it created and the pins;
#   - a second up on the same pin root is refused while the first runs;
#   - down after a SIGKILLed agent removes its filter and pins.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (network namespaces, tc BPF)"
	exit 0
fi

FLOWPIN=$PWD/build/flowpin
ns=fpbc$$
tmp=$(mktemp -d /tmp/flowpin-backend-cmd.XXXXXX)
agent=

cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
	for pid in $(ip netns pids "$ns" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null # started by this script, in its namespace
	done
	ip netns del "$ns" 2>/dev/null
	umount "$tmp/bpf" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# shellcheck source=tests/lab/backend_tap.bash
source tests/lab/backend_tap.bash
expect() { # description command... : ok when the command succeeds
	local what=$1
	shift
	if "$@"; then tap ok "$what"; else tap fail "$what" "check failed: $*"; fi
}
in_ns() { ip netns exec "$ns" "$@"; }
sysctl_get() { in_ns cat "/proc/sys/$1"; }
# Everything `up` may touch, as one string to compare before/after.
snapshot() {
	{
		in_ns ip -o addr show dev lo | awk '{ print $4 }' | sort
		for k in net/ipv4/conf/all/arp_ignore net/ipv4/conf/eth0/arp_ignore \
			net/ipv4/conf/all/arp_announce net/ipv4/conf/eth0/arp_announce \
			net/ipv4/conf/all/rp_filter net/ipv4/conf/eth0/rp_filter \
			net/ipv4/conf/eth0/forwarding net/ipv6/conf/eth0/forwarding; do
			echo "$k=$(sysctl_get "$k")"
		done
		in_ns tc qdisc show dev eth0
		in_ns tc filter show dev eth0 ingress
		ls -R "$tmp/bpf"
	} 2>&1
}

ip netns add "$ns" || exit 1
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth1
ip -n "$ns" link set eth0 up
ip -n "$ns" link set eth1 up
ip -n "$ns" addr add 10.0.0.11/24 dev eth0
# Start from values up must change (strict rp_filter) and a VIP that is already there.
in_ns sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
ip -n "$ns" addr add 10.100.0.2/32 dev lo
mkdir -p "$tmp/bpf" && mount -t bpf bpf "$tmp/bpf" || exit 1
root=$tmp/bpf/b # the pin root is the operator's (shared with `flowpin lb`): up leaves it
mkdir "$root"

# No hash_key: backends never hash, so they need none.
cat >"$tmp/good.yaml" <<EOF
lb_sources: [10.0.0.1]
vips:
  - {name: a, address: 10.100.0.1, port: 80, protocol: tcp, backends: [{id: 1, address: 10.0.0.11}]}
  - {name: b, address: 10.100.0.1, port: 443, protocol: tcp, backends: [{id: 1, address: 10.0.0.11}]}
  - {name: c, address: 10.100.0.2, port: 80, protocol: tcp, backends: [{id: 1, address: 10.0.0.11}]}
  - {name: d, address: "fd00:100::1", port: 80, protocol: tcp, backends: [{id: 1, address: 10.0.0.11}]}
EOF
grep -v lb_sources "$tmp/good.yaml" >"$tmp/no-sources.yaml"

echo "1..12"
before=$(snapshot)

# ---- bad input changes nothing ----------------------------------------------------------
out=$(in_ns "$FLOWPIN" backend up --config "$tmp/no-sources.yaml" --dev eth0 --pin-root "$root" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "no-sources.yaml:1: lb_sources: missing" <<<"$out" && [ "$(snapshot)" = "$before" ]; then
	tap ok "config without lb_sources: refused, names the file and field, nothing changed"
else
	tap fail "config without lb_sources: refused, names the file and field, nothing changed" \
		"exit $rc: $out" "$(diff <(echo "$before") <(snapshot))"
fi
out=$(in_ns "$FLOWPIN" backend up --config "$tmp/good.yaml" --dev nosuch0 --pin-root "$root" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q -- "--dev nosuch0" <<<"$out" && [ "$(snapshot)" = "$before" ]; then
	tap ok "unknown device: refused, named, nothing changed"
else
	tap fail "unknown device: refused, named, nothing changed" "exit $rc: $out"
fi
in_ns "$FLOWPIN" backend up --config "$tmp/good.yaml" >/dev/null 2>&1
expect "missing --dev is a usage error (exit 2)" test $? -eq 2

# ---- up ------------------------------------------------------------------------------------
ip netns exec "$ns" "$FLOWPIN" backend up --config "$tmp/good.yaml" --dev eth0 --pin-root "$root" \
	>"$tmp/up.log" 2>&1 &
agent=$!
wait_for "$root/backend/counters" || { echo "Bail out! agent did not come up"; cat "$tmp/up.log"; exit 1; }
sleep 0.2
if grep -q "sysctl net.ipv4.conf.all.rp_filter: 1 -> 2" "$tmp/up.log" &&
	grep -q "sysctl net.ipv4.conf.eth0.arp_ignore: 0 -> 1" "$tmp/up.log" &&
	grep -q "sysctl net.ipv4.conf.eth0.forwarding: 0 -> 1" "$tmp/up.log" &&
	[ "$(sysctl_get net/ipv4/conf/all/rp_filter)" = 2 ] &&
	[ "$(sysctl_get net/ipv4/conf/all/arp_announce)" = 2 ]; then
	tap ok "up prints each sysctl change as old -> new and applies it"
else
	tap fail "up prints each sysctl change as old -> new and applies it" "$(cat "$tmp/up.log")"
fi
lo=$(in_ns ip -o addr show dev lo)
if grep -q "10.100.0.1/32" <<<"$lo" && grep -q "fd00:100::1/128" <<<"$lo" &&
	[ "$(grep -c "bound on lo" "$tmp/up.log")" = 2 ] &&
	grep -q "VIP 10.100.0.2: already on lo" "$tmp/up.log"; then
	tap ok "VIPs bound on lo once each (/32, /128); one already there is left alone"
else
	tap fail "VIPs bound on lo once each (/32, /128); one already there is left alone" "$lo" \
		"$(cat "$tmp/up.log")"
fi
expect "tc ingress filter attached" bash -c "ip netns exec $ns tc filter show dev eth0 ingress | grep -q fp_backend"
stats=$("$FLOWPIN" backend stats --pin-root "$root")
if grep -q "^syn_local " <<<"$stats" && grep -q "^not_allowed " <<<"$stats"; then
	tap ok "stats reads the pinned counters"
else
	tap fail "stats reads the pinned counters" "$stats"
fi
out=$(in_ns "$FLOWPIN" backend up --config "$tmp/good.yaml" --dev eth0 --pin-root "$root" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "running already (pid $agent)" <<<"$out"; then
	tap ok "a second up on the same pin root is refused"
else
	tap fail "a second up on the same pin root is refused" "exit $rc: $out"
fi

# ---- SIGTERM undoes everything ----------------------------------------------------------
kill "$agent"
wait "$agent"
rc=$?
agent=
after=$(snapshot)
if [ $rc -eq 0 ] && [ "$after" = "$before" ]; then
	tap ok "SIGTERM: sysctls restored, added VIPs removed, filter, qdisc and pins gone"
else
	tap fail "SIGTERM: sysctls restored, added VIPs removed, filter, qdisc and pins gone" \
		"exit $rc" "$(diff <(echo "$before") <(echo "$after"))" "$(cat "$tmp/up.log")"
fi

# ---- down: a live agent, then a dead one ---------------------------------------------------
ip netns exec "$ns" "$FLOWPIN" backend up --config "$tmp/good.yaml" --dev eth0 --pin-root "$root" \
	>"$tmp/up2.log" 2>&1 &
agent=$!
wait_for "$root/backend/counters" || { echo "Bail out! agent did not come up"; exit 1; }
sleep 0.2
out=$("$FLOWPIN" backend down --pin-root "$root" 2>&1)
if ! kill -0 "$agent" 2>/dev/null && [ "$(snapshot)" = "$before" ]; then
	tap ok "down stops the running agent, which undoes everything"
else
	tap fail "down stops the running agent, which undoes everything" "$out" \
		"$(diff <(echo "$before") <(snapshot))"
fi
wait "$agent" 2>/dev/null
agent=
ip netns exec "$ns" "$FLOWPIN" backend up --config "$tmp/good.yaml" --dev eth0 --pin-root "$root" \
	>"$tmp/up3.log" 2>&1 &
agent=$!
wait_for "$root/backend/counters" || { echo "Bail out! agent did not come up"; exit 1; }
sleep 0.2
kill -KILL "$agent"
wait "$agent" 2>/dev/null
agent=
# From another network namespace the recorded ifindex means nothing: refused.
out=$("$FLOWPIN" backend down --pin-root "$root" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "another network namespace" <<<"$out" && [ -e "$root/backend/state" ]; then
	tap ok "down from another network namespace refuses to touch devices there"
else
	tap fail "down from another network namespace refuses to touch devices there" "exit $rc: $out"
fi
out=$(in_ns "$FLOWPIN" backend down --pin-root "$root" 2>&1)
if ! in_ns tc filter show dev eth0 ingress | grep -q fp_backend && [ ! -e "$root/backend" ] &&
	grep -q "still in place" <<<"$out"; then
	tap ok "down after a SIGKILLed agent removes filter and pins, says what it cannot undo"
else
	tap fail "down after a SIGKILLed agent removes filter and pins, says what it cannot undo" \
		"$out" "$(in_ns tc filter show dev eth0 ingress)" "$(ls -R "$root")"
fi
exit $((failed > 0))
