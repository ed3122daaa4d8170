#!/usr/bin/env bash
# Lab tier: TCP connection tickets (docs/backend.md) through real TCP stacks.
#
#   cl (10.1.0.2) --- lb (10.1.0.1 | 10.0.0.1) --- b1 (10.0.0.11)
#
# lb is the userspace stand-in LB of backend_ns.sh (tests/lab/backend_ns_lb.py relay):
# it wraps the client's packets for the VIP 10.100.0.1:8080 and sends them to b1, which
# runs `flowpin backend up` (the VIP has tickets: {bits: 8}, b1 is id 1) and a line-echo
# server; replies go straight back to the client (DSR). b1 sends with TX checksum offload
# off, so every segment leaves with the checksum computed in software after the egress
# program's rewrite: a wrong one would be dropped by the client's stack.
#
# Checks: `backend up` sets tcp_timestamps 1 -> 2 and `down` restores it; a connection
# works end to end with every SYN answered by a SYN cookie (tcp_syncookies=2 on b1, the
# kernel's own counter shows the cookies) and tickets written and restored; every TSecr
# the client echoes (captured on its interface) names b1's id under an independent model
# of the ticket (tests/lab/ticket_sid.py), every checksum b1 sent is right; a client
# without timestamps still connects, counted as such; with the agent gone, the client's
# echoes are not tickets (the check can fail).
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (network namespaces, tc BPF)"
	exit 0
fi
command -v tcpdump >/dev/null || {
	echo "1..1"
	echo "ok 1 # SKIP needs tcpdump"
	exit 0
}

FLOWPIN=$PWD/build/flowpin
PY=/usr/bin/python3
HELPER=$PWD/tests/lab/backend_ns_lb.py
MODEL=$PWD/tests/lab/ticket_sid.py
KEY=5a1f0e9d8c7b6a594837261504f3e2d1
VIP=10.100.0.1
PORT=8080
p=fptk$$
tmp=$(mktemp -d /tmp/flowpin-ticket-ns.XXXXXX)
# shellcheck source=tests/lab/netns.bash
source tests/lab/netns.bash
# shellcheck source=tests/lab/backend_tap.bash
source tests/lab/backend_tap.bash

counter() { # name
	"$FLOWPIN" backend stats --pin-root "$tmp/bpf/b1" | awk -v c="$1" '$1 == c { print $2 }'
}


# One connection of N messages from cl; prints the replies, space-separated.
converse() { # dir steps
	local out=() i
	mkdir -p "$1"
	ip netns exec "$p-cl" "$PY" "$HELPER" client "$VIP" "$PORT" "$1" "$2" >"$1.log" 2>&1 &
	pids+=($!)
	for ((i = 1; i <= $2; i++)); do
		out+=("$(step "$1" "$i")")
	done
	echo "${out[*]}"
}

# The client's segments to the VIP in the capture: "cport tsecr" per ACK with a TSecr.
echoes() {
	sed -n "s/.* 10\.1\.0\.2\.\([0-9]*\) > $VIP\.$PORT: .*ecr \([0-9]*\)\].*/\1 \2/p" \
		"$tmp/capture.txt" | awk '$2 != 0'
}

# ---- topology -----------------------------------------------------------------------
netns_add cl lb b1
set -e
ip -n "$p-cl" link add eth0 type veth peer name vc netns "$p-lb"
ip -n "$p-b1" link add eth0 type veth peer name vb netns "$p-lb"
ip -n "$p-lb" link set vc up
ip -n "$p-lb" link set vb up
ip -n "$p-lb" addr add 10.1.0.1/24 dev vc
ip -n "$p-lb" addr add 10.0.0.1/24 dev vb
ip -n "$p-lb" addr add fd00:f::1/64 dev vb nodad
ip -n "$p-lb" route add blackhole "$VIP/32"
in_ns lb sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
	net.ipv4.conf.vb.rp_filter=0 net.ipv4.conf.vc.rp_filter=0
ip -n "$p-cl" link set eth0 up
ip -n "$p-cl" addr add 10.1.0.2/24 dev eth0
ip -n "$p-cl" route add default via 10.1.0.1
in_ns cl ethtool -K eth0 tx off >/dev/null
ip -n "$p-b1" link set eth0 up
ip -n "$p-b1" addr add 10.0.0.11/24 dev eth0
ip -n "$p-b1" route add default via 10.0.0.1
# Checksums computed in software after tc egress: the rewrite must leave them right.
in_ns b1 ethtool -K eth0 tx off >/dev/null
in_ns b1 sysctl -qw net.ipv4.tcp_timestamps=1 net.ipv4.tcp_syncookies=2
in_ns cl sysctl -qw net.ipv4.tcp_timestamps=1
set +e

mkdir -p "$tmp/bpf" && mount -t bpf bpf "$tmp/bpf" || die "cannot mount bpffs on $tmp/bpf"
cat >"$tmp/flowpin.yaml" <<EOF2
hash_key: $KEY
encap_port: 6080
lb_sources: [10.0.0.1]
vips:
  - name: web
    address: $VIP
    port: $PORT
    protocol: tcp
    tickets: {bits: 8}
    backends:
      - {id: 1, address: 10.0.0.11}
      - {id: 2, address: 10.0.0.12}
EOF2
chmod 600 "$tmp/flowpin.yaml"
ip netns exec "$p-b1" "$FLOWPIN" backend up --config "$tmp/flowpin.yaml" --dev eth0 \
	--pin-root "$tmp/bpf/b1" >"$tmp/agent.log" 2>&1 &
agent=$!
pids+=($agent)
wait_for "$tmp/bpf/b1/backend/counters" 10 || die "agent on b1 did not come up"
ip netns exec "$p-b1" "$PY" "$HELPER" serve b1 "$VIP" "$PORT" >"$tmp/server.log" 2>&1 &
pids+=($!)
echo "10.0.0.11" >"$tmp/hops"
ip netns exec "$p-lb" "$PY" "$HELPER" relay vc "$VIP" 10.0.0.1 fd00:f::1 "$tmp/hops" 6080 >"$tmp/relay.log" 2>&1 &
pids+=($!)
ip netns exec "$p-cl" tcpdump -i eth0 -nn -v -l "tcp and host $VIP" >"$tmp/capture.txt" 2>"$tmp/tcpdump.log" &
pids+=($!)
sleep 1 # server listening, relay bound, capture running

echo "1..7"

# ---- 1. the sysctl --------------------------------------------------------------------
if grep -q "sysctl net.ipv4.tcp_timestamps: 1 -> 2" "$tmp/agent.log" &&
	[ "$(in_ns b1 sysctl -n net.ipv4.tcp_timestamps)" = 2 ]; then
	tap ok "backend up: tcp_timestamps 1 -> 2 (printed), egress filter attached"
else
	tap fail "backend up: tcp_timestamps 1 -> 2 (printed), egress filter attached" \
		"$(cat "$tmp/agent.log")"
fi

# ---- 2. a connection through SYN cookies, tickets both ways ----------------------------
cookies_before=$(in_ns b1 nstat -az TcpExtSyncookiesRecv | awk '/SyncookiesRecv/ { print $2 }')
got=$(converse "$tmp/a" 4)
cookies=$(($(in_ns b1 nstat -az TcpExtSyncookiesRecv | awk '/SyncookiesRecv/ { print $2 }') - ${cookies_before:-0}))
written=$(counter ticket_written)
restored=$(counter ticket_restored)
if [ "$got" = "b1:msg-1 b1:msg-2 b1:msg-3 b1:msg-4" ] && [ "$cookies" -ge 1 ] &&
	[ "${written:-0}" -ge 5 ] && [ "${restored:-0}" -ge 5 ] &&
	[ "$(counter ticket_mismatch)" = 0 ] && [ "$(counter syncookie_local)" -ge 1 ]; then
	tap ok "SYN-cookie connection with tickets: 4 answers, $written tickets written, $restored restored"
else
	tap fail "SYN-cookie connection with tickets" "replies: $got" "cookies received: $cookies" \
		"$("$FLOWPIN" backend stats --pin-root "$tmp/bpf/b1")"
fi

# ---- 3. what the client echoes names b1 (id 1), per the independent model ---------------
sleep 0.5
n_echo=0 bad=()
while read -r cport ecr; do
	n_echo=$((n_echo + 1))
	id=$("$PY" "$MODEL" "$KEY" 8 10.1.0.2 "$cport" "$VIP" "$PORT" "$ecr")
	[ "$id" = 1 ] || bad+=("port $cport ecr $ecr names $id")
done < <(echoes)
if [ "$n_echo" -ge 5 ] && [ ${#bad[@]} -eq 0 ]; then
	tap ok "all $n_echo TSecr values the client echoed name backend 1"
else
	tap fail "all TSecr values the client echoed name backend 1" "echoes: $n_echo" "${bad[@]}"
fi

# ---- 4. every checksum b1 sent was right (computed after the rewrite) --------------------
from_vip=$(grep -c "^ *$VIP\.$PORT > " "$tmp/capture.txt")
wrong=$(grep "^ *$VIP\.$PORT > " "$tmp/capture.txt" | grep -c "incorrect")
if [ "$from_vip" -ge 5 ] && [ "$wrong" = 0 ] && grep -q "^ *$VIP\.$PORT > .*cksum .* (correct)" "$tmp/capture.txt"; then
	tap ok "$from_vip segments from the VIP, every TCP checksum correct"
else
	tap fail "every TCP checksum from the VIP correct" "from VIP: $from_vip, incorrect: $wrong" \
		"$(head -40 "$tmp/capture.txt")"
fi

# ---- 5. a client without timestamps connects, counted -------------------------------------
in_ns cl sysctl -qw net.ipv4.tcp_timestamps=0
nots_before=$(counter ticket_no_timestamp)
written_before=$(counter ticket_written)
got=$(converse "$tmp/b" 2)
if [ "$got" = "b1:msg-1 b1:msg-2" ] && [ "$(counter ticket_no_timestamp)" -gt "$nots_before" ] &&
	[ "$(counter ticket_written)" = "$written_before" ]; then
	tap ok "client without timestamps: answered, no ticket written, counted (ticket_no_timestamp)"
else
	tap fail "client without timestamps" "replies: $got" \
		"$("$FLOWPIN" backend stats --pin-root "$tmp/bpf/b1")"
fi
in_ns cl sysctl -qw net.ipv4.tcp_timestamps=1

# ---- 6. backend down restores the sysctl ----------------------------------------------
kill "$agent"
wait "$agent" 2>/dev/null
if grep -q "sysctl net.ipv4.tcp_timestamps: restored 1" "$tmp/agent.log" &&
	[ "$(in_ns b1 sysctl -n net.ipv4.tcp_timestamps)" = 1 ]; then
	tap ok "agent stopped: tcp_timestamps restored to 1"
else
	tap fail "agent stopped: tcp_timestamps restored to 1" "$(cat "$tmp/agent.log")"
fi

# ---- 7. without the agent, the echoes are no tickets (the model can say no) ---------------
# Straight to b1 now (no agent: no decapsulation), routed by lb.
ip -n "$p-lb" route replace "$VIP/32" via 10.0.0.11
ip -n "$p-b1" addr add "$VIP/32" dev lo 2>/dev/null
: >"$tmp/capture.txt"
got=$(converse "$tmp/c" 3)
sleep 0.5
n_echo=0 named=0
while read -r cport ecr; do
	n_echo=$((n_echo + 1))
	id=$("$PY" "$MODEL" "$KEY" 8 10.1.0.2 "$cport" "$VIP" "$PORT" "$ecr")
	[ "$id" = 1 ] && named=$((named + 1))
done < <(echoes)
if [ "$got" = "b1:msg-1 b1:msg-2 b1:msg-3" ] && [ "$n_echo" -ge 3 ] && [ "$named" -lt "$n_echo" ]; then
	tap ok "without tickets, $((n_echo - named)) of $n_echo echoes name no backend 1"
else
	tap fail "without tickets the echoes are no tickets" "replies: $got" \
		"echoes: $n_echo, naming 1: $named"
fi

if [ "$failed" -gt 0 ]; then
	for f in "$tmp"/*.log; do
		sed "s|^|# $(basename "$f"): |" "$f"
	done
fi
exit $((failed > 0))
