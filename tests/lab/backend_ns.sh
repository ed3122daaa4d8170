#!/usr/bin/env bash
# Lab tier: the backend agent (`flowpin backend up`) with real TCP stacks.
#
#   cl (10.1.0.2) --- lb (10.1.0.1 | br0 10.0.0.1) --- b1 (10.0.0.11), b2 (10.0.0.12)
#
# lb is a userspace stand-in for an LB node (tests/lab/backend_ns_lb.py relay): it wraps
# the client's packets for the VIP 10.100.0.1:8080 in flowpin's wire format and sends
# them to the hop list in $tmp/hops. b1 and b2 run the real agent and a line-echo
# server on the VIP; replies go straight back to the client (DSR, lb only routes them).
#
# One connection is opened through b2, then the hop list becomes [b1, b2] mid-connection:
# b1 has no socket for it and must forward to b2, and the connection must survive. A new
# connection with [b1, b2] is a SYN delivered at b1. An encapsulated SYN from a source
# not in lb_sources is dropped. The same moves with an IPv6 outer header (the fabric has
# fd00:f::/64 too) check the cross-family decapsulation in the real stack and the IPv6
# forward. Last, the hop list [b1] alone (no second chance) must reset the first
# connection: the test shows it can fail.
# Everything lives in namespaces this script creates, removed on exit (trap).
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (network namespaces, tc BPF)"
	exit 0
fi

FLOWPIN=$PWD/build/flowpin
PY=/usr/bin/python3
HELPER=$PWD/tests/lab/backend_ns_lb.py
VIP=10.100.0.1
PORT=8080
p=fpbk$$
tmp=$(mktemp -d /tmp/flowpin-backend-ns.XXXXXX)
# shellcheck source=tests/lab/netns.bash
source tests/lab/netns.bash
# shellcheck source=tests/lab/backend_tap.bash
source tests/lab/backend_tap.bash

counter() { # backend name
	"$FLOWPIN" backend stats --pin-root "$tmp/bpf/$1" | awk -v c="$2" '$1 == c { print $2 }'
}



# ---- topology -----------------------------------------------------------------------
netns_add cl lb b1 b2
set -e
ip -n "$p-cl" link add eth0 type veth peer name vc netns "$p-lb"
ip -n "$p-b1" link add eth0 type veth peer name vb1 netns "$p-lb"
ip -n "$p-b2" link add eth0 type veth peer name vb2 netns "$p-lb"
ip -n "$p-lb" link add br0 type bridge
for dev in vb1 vb2; do
	ip -n "$p-lb" link set "$dev" master br0
	ip -n "$p-lb" link set "$dev" up
done
ip -n "$p-lb" link set vc up
ip -n "$p-lb" link set br0 up
ip -n "$p-lb" addr add 10.1.0.1/24 dev vc
ip -n "$p-lb" addr add 10.0.0.1/24 dev br0
ip -n "$p-lb" addr add 10.0.0.99/24 dev br0 # not an LB source: the stranger
ip -n "$p-lb" addr add fd00:f::1/64 dev br0 nodad
# The VIP is the relay's business: the lb kernel drops it silently (no ICMP, no RST).
ip -n "$p-lb" route add blackhole "$VIP/32"
in_ns lb sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
	net.ipv4.conf.br0.rp_filter=0 net.ipv4.conf.vc.rp_filter=0
ip -n "$p-cl" link set eth0 up
ip -n "$p-cl" addr add 10.1.0.2/24 dev eth0
ip -n "$p-cl" route add default via 10.1.0.1
# veth leaves TCP checksums to "hardware": the relay reads raw frames, so compute them.
in_ns cl ethtool -K eth0 tx off >/dev/null
for b in 1 2; do
	ip -n "$p-b$b" link set eth0 up
	ip -n "$p-b$b" addr add "10.0.0.1$b/24" dev eth0
	ip -n "$p-b$b" addr add "fd00:f::1$b/64" dev eth0 nodad
	ip -n "$p-b$b" route add default via 10.0.0.1
done
set +e

# ---- agents, servers, relay ---------------------------------------------------------------
mkdir -p "$tmp/bpf" && mount -t bpf bpf "$tmp/bpf" || die "cannot mount bpffs on $tmp/bpf"
cat >"$tmp/flowpin.yaml" <<EOF
hash_key: 000102030405060708090a0b0c0d0e0f
encap_port: 6080
lb_sources:
  - 10.0.0.1
  - fd00:f::1
vips:
  - name: web
    address: $VIP
    port: $PORT
    protocol: tcp
    backends:
      - id: 1
        address: 10.0.0.11
      - id: 2
        address: 10.0.0.12
      # The same two hosts by their IPv6 fabric addresses: the relay's IPv6 hop lists
      # name these, and a backend forwards only to a configured backend of the VIP.
      - id: 3
        address: fd00:f::11
      - id: 4
        address: fd00:f::12
EOF
for b in b1 b2; do
	ip netns exec "$p-$b" "$FLOWPIN" backend up --config "$tmp/flowpin.yaml" --dev eth0 \
		--pin-root "$tmp/bpf/$b" >"$tmp/agent-$b.log" 2>&1 &
	pids+=($!)
done
for b in b1 b2; do
	wait_for "$tmp/bpf/$b/backend/counters" 10 || die "agent on $b did not come up"
	ip netns exec "$p-$b" "$PY" "$HELPER" serve "$b" "$VIP" "$PORT" >"$tmp/server-$b.log" 2>&1 &
	pids+=($!)
done
echo "10.0.0.12" >"$tmp/hops"
ip netns exec "$p-lb" "$PY" "$HELPER" relay vc "$VIP" 10.0.0.1 fd00:f::1 "$tmp/hops" 6080 >"$tmp/relay.log" 2>&1 &
pids+=($!)
sleep 0.5 # servers listening, relay bound

echo "1..9"

# ---- 1. a connection through b2 ---------------------------------------------------------
mkdir "$tmp/a" "$tmp/b"
ip netns exec "$p-cl" "$PY" "$HELPER" client "$VIP" "$PORT" "$tmp/a" 3 >"$tmp/client-a.log" 2>&1 &
pids+=($!)
got=$(step "$tmp/a" 1)
syn_b2=$(counter b2 syn_local)
if [ "$got" = "b2:msg-1" ] && [ "${syn_b2:-0}" -ge 1 ]; then
	tap ok "SYN delivered at b2, connection answers from b2 (DSR)"
else
	tap fail "SYN delivered at b2, connection answers from b2 (DSR)" "reply: $got" \
		"b2 syn_local: $syn_b2"
fi

# ---- 2. hop list [b1, b2]: b1 has no socket, forwards, the connection survives ----------
echo "10.0.0.11 10.0.0.12" >"$tmp/hops"
fwd_before=$(counter b1 forwarded)
est_before=$(counter b2 established_local)
got=$(step "$tmp/a" 2)
fwd_after=$(counter b1 forwarded)
est_after=$(counter b2 established_local)
if [ "$got" = "b2:msg-2" ] && [ "$fwd_after" -gt "$fwd_before" ] &&
	[ "$est_after" -gt "$est_before" ]; then
	tap ok "segment of an established connection sent to b1 is forwarded to b2 and delivered"
else
	tap fail "segment of an established connection sent to b1 is forwarded to b2 and delivered" \
		"reply: $got" "b1 forwarded: $fwd_before -> $fwd_after" \
		"b2 established_local: $est_before -> $est_after"
fi
if [ "$(counter b1 last_resort)" = 0 ] && [ "$(counter b1 loop_guard)" = 0 ]; then
	tap ok "b1 neither delivered nor looped the forwarded segments"
else
	tap fail "b1 neither delivered nor looped the forwarded segments" \
		"b1 last_resort $(counter b1 last_resort), loop_guard $(counter b1 loop_guard)"
fi

# ---- 3. a new connection with [b1, b2] lands on b1 -------------------------------------------
ip netns exec "$p-cl" "$PY" "$HELPER" client "$VIP" "$PORT" "$tmp/b" 1 >"$tmp/client-b.log" 2>&1 &
pids+=($!)
got=$(step "$tmp/b" 1)
if [ "$got" = "b1:msg-1" ] && [ "$(counter b1 syn_local)" -ge 1 ]; then
	tap ok "new connection: SYN delivered at b1, answered by b1"
else
	tap fail "new connection: SYN delivered at b1, answered by b1" "reply: $got" \
		"b1 syn_local: $(counter b1 syn_local)"
fi

# ---- 4. an encapsulated SYN from a source not in lb_sources ---------------------------------
denied_before=$(counter b1 not_allowed)
syn_before=$(counter b1 syn_local)
in_ns lb "$PY" "$HELPER" syn 10.0.0.99 10.0.0.11 6080 10.1.0.2 "$VIP" "$PORT"
sleep 0.5
denied_after=$(counter b1 not_allowed)
syn_after=$(counter b1 syn_local)
if [ "$denied_after" -eq $((denied_before + 1)) ] && [ "$syn_after" -eq "$syn_before" ]; then
	tap ok "encapsulated SYN from 10.0.0.99 (not an LB source) dropped and counted"
else
	tap fail "encapsulated SYN from 10.0.0.99 (not an LB source) dropped and counted" \
		"b1 not_allowed: $denied_before -> $denied_after" \
		"b1 syn_local: $syn_before -> $syn_after"
fi
# The same SYN from the LB's address is delivered: the drop above was the source check.
in_ns lb "$PY" "$HELPER" syn 10.0.0.1 10.0.0.11 6080 10.1.0.2 "$VIP" "$PORT"
sleep 0.5
if [ "$(counter b1 syn_local)" -eq $((syn_after + 1)) ]; then
	tap ok "the same SYN from the LB source is delivered"
else
	tap fail "the same SYN from the LB source is delivered" \
		"b1 syn_local: $syn_after -> $(counter b1 syn_local)"
fi

# ---- 5. IPv6 outer header: cross-family decapsulation and an IPv6 forward --------------------
echo "fd00:f::12" >"$tmp/hops"
mkdir "$tmp/c"
ip netns exec "$p-cl" "$PY" "$HELPER" client "$VIP" "$PORT" "$tmp/c" 2 >"$tmp/client-c.log" 2>&1 &
pids+=($!)
got=$(step "$tmp/c" 1)
if [ "$got" = "b2:msg-1" ]; then
	tap ok "IPv4 in IPv6 to b2: decapsulated into the stack, connection answers from b2"
else
	tap fail "IPv4 in IPv6 to b2: decapsulated into the stack, connection answers from b2" \
		"reply: $got" "b2 syn_local: $(counter b2 syn_local)"
fi
echo "fd00:f::11 fd00:f::12" >"$tmp/hops"
fwd_before=$(counter b1 forwarded)
got=$(step "$tmp/c" 2)
if [ "$got" = "b2:msg-2" ] && [ "$(counter b1 forwarded)" -gt "$fwd_before" ]; then
	tap ok "IPv6 outer: b1 forwards the unknown segment to b2 over IPv6, connection survives"
else
	tap fail "IPv6 outer: b1 forwards the unknown segment to b2 over IPv6, connection survives" \
		"reply: $got" "b1 forwarded: $fwd_before -> $(counter b1 forwarded)"
fi

# ---- 6. without the second hop the first connection breaks (the test can fail) --------------
echo "10.0.0.11" >"$tmp/hops"
last_before=$(counter b1 last_resort)
got=$(step "$tmp/a" 3)
if [ "$got" = "reset" ] && [ "$(counter b1 last_resort)" -gt "$last_before" ]; then
	tap ok "hop list [b1] alone: b1 delivers as last resort and its stack resets the connection"
else
	tap fail "hop list [b1] alone: b1 delivers as last resort and its stack resets the connection" \
		"client: $got" "b1 last_resort: $last_before -> $(counter b1 last_resort)"
fi

if [ "$failed" -gt 0 ]; then
	for f in "$tmp"/*.log; do
		sed "s|^|# $(basename "$f"): |" "$f"
	done
	for b in b1 b2; do
		"$FLOWPIN" backend stats --pin-root "$tmp/bpf/$b" | sed "s|^|# $b: |"
	done
fi
exit $((failed > 0))
