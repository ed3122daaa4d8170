#!/usr/bin/env bash
# Lab tier: the tunnel health probe through the real kernel path (docs/backend.md,
# "Tunnel probe": the tunnel health check of LB nodes).
#
#   lb (eth0: 10.0.0.1, 10.0.0.99, fd00:f::1, fd00:f::99) --- veth --- be (eth0: 10.0.0.11, fd00:f::11)
#
# be runs the real agent (`flowpin backend up`, lb_sources 10.0.0.1 and fd00:f::1); on
# lb, build/lab/fpprobe (lib/tunnelprobe.c on a connected UDP socket bound to a source
# address) probes be's encapsulation port. With the agent: IPv4 and IPv6 probes come
# back as replies, with the veth's checksum offload on (the sender's checksum left to
# the stack) and off on lb's side (full checksums, verified in software by lb's stack on
# receipt: a wrong one would be a timeout). From 10.0.0.99 / fd00:f::99, not in
# lb_sources, the probe is dropped and counted (not_allowed), never answered, and not
# refused either. After `flowpin backend down` the same probes get ECONNREFUSED: the
# kernel's port unreachable, what the health check reads as "agent down" (the test can
# fail: the same probe, two outcomes).
# Everything lives in namespaces this script creates, removed on exit (trap).
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (network namespaces, tc BPF)"
	exit 0
fi

FLOWPIN=$PWD/build/flowpin
PROBE=$PWD/build/lab/fpprobe
p=fppr$$
tmp=$(mktemp -d /tmp/flowpin-probe-ns.XXXXXX)
# shellcheck source=tests/lab/netns.bash
source tests/lab/netns.bash
# shellcheck source=tests/lab/backend_tap.bash
source tests/lab/backend_tap.bash

[ -x "$PROBE" ] || die "$PROBE not built (make all)"

counter() { # name
	"$FLOWPIN" backend stats --pin-root "$tmp/bpf/be" | awk -v c="$1" '$1 == c { print $2 }'
}

probe() { # source backend: prints fpprobe's line
	# 3 s: a fresh veth's first IPv6 neighbour solicitation goes unanswered (about 1 s
	# lost, agent or not); a probe that should time out waits 1 s.
	in_ns lb "$PROBE" --timeout "$([ "$want" = timeout ] && echo 1000 || echo 3000)" "$1" "$2" 2>&1
}

expect() { # want source backend description
	local got want=$1
	got=$(probe "$2" "$3")
	if [ "${got%% *}" = "$1" ]; then
		tap ok "$4 ($2 -> $3: $got)"
	else
		tap fail "$4" "$2 -> $3: got '$got', want '$1'"
	fi
}

# ---- topology -----------------------------------------------------------------------
netns_add lb be
set -e
ip -n "$p-lb" link add eth0 type veth peer name eth0 netns "$p-be"
ip -n "$p-lb" addr add 10.0.0.1/24 dev eth0
ip -n "$p-lb" addr add 10.0.0.99/24 dev eth0 # not an LB source: the stranger
ip -n "$p-lb" addr add fd00:f::1/64 dev eth0 nodad
ip -n "$p-lb" addr add fd00:f::99/64 dev eth0 nodad
ip -n "$p-be" addr add 10.0.0.11/24 dev eth0
ip -n "$p-be" addr add fd00:f::11/64 dev eth0 nodad
ip -n "$p-lb" link set eth0 up
ip -n "$p-be" link set eth0 up
set +e

mkdir -p "$tmp/bpf" && mount -t bpf bpf "$tmp/bpf" || die "cannot mount bpffs on $tmp/bpf"
cat >"$tmp/flowpin.yaml" <<EOF2
hash_key: 000102030405060708090a0b0c0d0e0f
encap_port: 6080
lb_sources:
  - 10.0.0.1
  - fd00:f::1
vips:
  - name: web
    address: 10.100.0.1
    port: 8080
    protocol: tcp
    backends:
      - id: 1
        address: 10.0.0.11
EOF2

echo "1..12"

# ---- 0. no agent yet: refused (the baseline the agent changes) --------------------------
expect refused 10.0.0.1 10.0.0.11 "no agent: IPv4 probe refused (port unreachable)"
expect refused fd00:f::1 fd00:f::11 "no agent: IPv6 probe refused (port unreachable)"

ip netns exec "$p-be" "$FLOWPIN" backend up --config "$tmp/flowpin.yaml" --dev eth0 \
	--pin-root "$tmp/bpf/be" >"$tmp/agent.log" 2>&1 &
agent=$!
pids+=("$agent")
wait_for "$tmp/bpf/be/backend/counters" 10 || die "agent on be did not come up"

# ---- 1. with the agent: replies, offloaded checksums (veth default) ----------------------
expect reply 10.0.0.1 10.0.0.11 "agent up: IPv4 probe reflected"
expect reply fd00:f::1 fd00:f::11 "agent up: IPv6 probe reflected"

# ---- 2. full checksums, verified by lb's stack in software -------------------------------
# Both ends: a veth with RX checksumming on marks a NONE skb as verified.
in_ns lb ethtool -K eth0 tx off rx off >/dev/null || die "ethtool on lb's eth0"
in_ns be ethtool -K eth0 tx off rx off >/dev/null || die "ethtool on be's eth0"
csum_errors() { # lb's UDP checksum errors, IPv4 + IPv6
	in_ns lb awk '$1 == "Udp:" && $2 ~ /^[0-9]/ { n += $8 } $1 == "Udp6InCsumErrors" { n += $2 }
		END { print n + 0 }' /proc/net/snmp /proc/net/snmp6
}
errors=$(csum_errors)
expect reply 10.0.0.1 10.0.0.11 "checksum offload off: IPv4 reply's UDP checksum verifies"
expect reply fd00:f::1 fd00:f::11 "checksum offload off: IPv6 reply's UDP checksum verifies"
reflected=$(counter tunnel_probe)
if [ "$reflected" = 4 ] && [ "$(csum_errors)" = "$errors" ]; then
	tap ok "four probes counted as tunnel_probe, no UDP checksum error on lb"
else
	tap fail "four probes counted as tunnel_probe, no UDP checksum error on lb" "tunnel_probe: $reflected" \
		"lb's UDP InCsumErrors: $errors -> $(csum_errors)"
fi

# ---- 3. from outside lb_sources: dropped, counted, never answered --------------------------
denied=$(counter not_allowed)
expect timeout 10.0.0.99 10.0.0.11 "IPv4 probe from a stranger dropped (no reply, no refusal)"
expect timeout fd00:f::99 fd00:f::11 "IPv6 probe from a stranger dropped (no reply, no refusal)"
if [ "$(counter not_allowed)" -eq $((denied + 2)) ] && [ "$(counter tunnel_probe)" = 4 ]; then
	tap ok "the strangers' probes counted as not_allowed, none reflected"
else
	tap fail "the strangers' probes counted as not_allowed, none reflected" \
		"not_allowed: $denied -> $(counter not_allowed)" "tunnel_probe: $(counter tunnel_probe)"
fi

# ---- 4. agent down: the kernel refuses ------------------------------------------------------
"$FLOWPIN" backend down --pin-root "$tmp/bpf/be" >"$tmp/down.log" 2>&1 ||
	die "flowpin backend down failed"
wait "$agent" 2>/dev/null
expect refused 10.0.0.1 10.0.0.11 "agent down: IPv4 probe refused (ECONNREFUSED)"
expect refused fd00:f::1 fd00:f::11 "agent down: IPv6 probe refused (ECONNREFUSED)"

if [ "$failed" -gt 0 ]; then
	for f in "$tmp"/*.log; do
		sed "s|^|# $(basename "$f"): |" "$f"
	done
fi
exit $((failed > 0))
