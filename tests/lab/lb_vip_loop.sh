#!/usr/bin/env bash
# Lab tier: packets to a VIP address that flowpin does not serve must not loop
# (docs/security.md, "Packets addressed to a VIP that flowpin does not serve").
#
#   cl (10.78.0.2) --- rt (10.78.0.1 | 10.77.0.1, 10.100.0.0/24 via lb) --- lb (10.77.0.2,
#                                                             default via rt, forwarding)
#
# The LB node runs `flowpin lb up` for 10.100.0.1:80/tcp (not on the node) and
# 10.100.0.2:80/tcp (configured on the node's lo). One datagram from rt to
# 10.100.0.1:9999 (a port nobody serves), and one ping, must not come back out of lb:
# before the fix the LB's stack routed them back to rt, which sent them to lb again
# until the TTL ran out (one packet, about 30 round trips here). Checked with the
# program attached, then with the program detached after a kill -9 (the daemon's
# blackhole routes keep the kernel from forwarding), and after `lb down` (routes gone,
# nothing attached: the loop is back, which shows this test can fail). The local VIP
# still answers pings itself and gets no blackhole route.
# Everything lives in namespaces this script creates, removed on exit (trap).
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (network namespaces, XDP)"
	exit 0
fi

FLOWPIN=$PWD/build/flowpin
PY=/usr/bin/python3
p=fplp$$
tmp=$(mktemp -d /tmp/flowpin-vip-loop.XXXXXX)
# shellcheck source=tests/lab/netns.bash
source tests/lab/netns.bash
# shellcheck source=tests/lab/backend_tap.bash
source tests/lab/backend_tap.bash

# Packets rt received from lb (its only link): every packet lb sends out.
rx() { in_ns rt cat /sys/class/net/rt0/statistics/rx_packets; }

# Sends one packet from rt ($1: udp or ping) and prints how many came back out of lb.
echoes() {
	local before after
	before=$(rx)
	if [ "$1" = udp ]; then
		in_ns cl bash -c 'echo loop > /dev/udp/10.100.0.1/9999' 2>/dev/null
	else
		# One ICMP echo request (no ping(8) needed).
		in_ns cl "$PY" -c '
import socket, struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
h = struct.pack("!BBHHH", 8, 0, 0, 0x4c50, 1) + b"flowpin-loop-test"
h = h[:2] + struct.pack("!H", csum(h + b"\0" * (len(h) % 2))) + h[4:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).sendto(h, (sys.argv[1], 0))
' "$2" || echo "# cannot send the echo request" >&2
	fi
	sleep 0.5
	after=$(rx)
	echo $((after - before))
}

counter() {
	in_ns lb "$FLOWPIN" lb stats --dev lb0 --pin-root "$tmp/bpf" |
		awk -v c="$1" '$1 == c { print $2 }'
}

netns_add cl rt lb
ip link add cl0 netns "$p-cl" address 02:78:00:00:00:02 type veth peer name rtc \
	netns "$p-rt" address 02:78:00:00:00:01 || die "cannot create the veth pair"
ip link add rt0 netns "$p-rt" address 02:77:00:00:00:01 type veth peer name lb0 \
	netns "$p-lb" address 02:77:00:00:00:02 || die "cannot create the veth pair"
for ns in cl rt lb; do
	in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.conf.default.send_redirects=0
done
in_ns rt sysctl -qw net.ipv4.conf.rt0.send_redirects=0 2>/dev/null
in_ns lb sysctl -qw net.ipv4.conf.lb0.send_redirects=0 2>/dev/null
in_ns rt ip addr add 10.77.0.1/24 dev rt0
in_ns lb ip addr add 10.77.0.2/24 dev lb0
in_ns rt ip link set rt0 up
in_ns cl ip addr add 10.78.0.2/24 dev cl0
in_ns rt ip addr add 10.78.0.1/24 dev rtc
in_ns cl ip link set cl0 up
in_ns rt ip link set rtc up
in_ns cl ip route add default via 10.78.0.1
in_ns cl ip neigh replace 10.78.0.1 lladdr 02:78:00:00:00:01 dev cl0 nud permanent
in_ns rt ip neigh replace 10.78.0.2 lladdr 02:78:00:00:00:02 dev rtc nud permanent
in_ns lb ip link set lb0 up
in_ns rt ip neigh replace 10.77.0.2 lladdr 02:77:00:00:00:02 dev rt0 nud permanent
in_ns lb ip neigh replace 10.77.0.1 lladdr 02:77:00:00:00:01 dev lb0 nud permanent
in_ns lb ip neigh replace 10.77.0.50 lladdr 02:77:00:00:00:50 dev lb0 nud permanent
in_ns rt ip route add 10.100.0.0/24 via 10.77.0.2
in_ns lb ip route add default via 10.77.0.1
in_ns lb ip addr add 10.100.0.2/32 dev lo

cat >"$tmp/flowpin.yaml" <<'EOF'
hash_key: 4c4f4f5054455354204b455920313233
table_size: 251
vips:
  - name: web
    address: 10.100.0.1
    port: 80
    protocol: tcp
    backends:
      - id: 1
        address: 10.77.0.50
  - name: local
    address: 10.100.0.2
    port: 80
    protocol: tcp
    backends:
      - id: 1
        address: 10.77.0.50
EOF
mkdir -p "$tmp/bpf" && mount -t bpf bpf "$tmp/bpf" || die "cannot mount bpffs on $tmp/bpf"
in_ns lb "$FLOWPIN" lb up --config "$tmp/flowpin.yaml" --dev lb0 --pin-root "$tmp/bpf" \
	--run-dir "$tmp/run" >"$tmp/lb.log" 2>&1 &
pids+=($!)
daemon=$!
for ((i = 0; i < 100; i++)); do
	grep -q "^.*up on lb0" "$tmp/lb.log" 2>/dev/null && break
	kill -0 "$daemon" 2>/dev/null || die "flowpin lb up exited"
	sleep 0.1
done
grep -q "up on lb0" "$tmp/lb.log" || die "flowpin lb up did not come up"

echo "1..7"
got=$(echoes udp)
before=$(counter drop_vip_unserved)
tap "$([ "$got" -eq 0 ] && echo ok || echo fail)" \
	"attached: a datagram to an unserved port of a VIP does not come back out" \
	"$got packets came back out of lb"
got=$(echoes ping 10.100.0.1)
tap "$([ "$got" -eq 0 ] && [ "$(counter drop_vip_unserved)" -gt "$before" ] && echo ok || echo fail)" \
	"attached: a ping to a VIP does not come back out, counted as drop_vip_unserved" \
	"$got packets came back out of lb; drop_vip_unserved $before -> $(counter drop_vip_unserved)"
got=$(echoes ping 10.100.0.2)
tap "$([ "$got" -eq 1 ] && echo ok || echo fail)" \
	"attached: a ping to a VIP on the node itself is answered by its stack (one reply)" \
	"$got packets came back out of lb (want 1)"
routes=$(in_ns lb ip route show proto 102)
tap "$([ "$routes" = "blackhole 10.100.0.1 " ] || [ "$routes" = "blackhole 10.100.0.1" ] && echo ok || echo fail)" \
	"lb up installed a blackhole route (proto 102) for the VIP, none for the local one" \
	"routes: $routes"

# A crash: the daemon is gone, the program detached (as a restart does before
# attaching again); the routes stay.
kill -KILL "$daemon"
wait "$daemon" 2>/dev/null
pids=()
in_ns lb ip link set dev lb0 xdp off 2>/dev/null
in_ns lb ip link set dev lb0 xdpgeneric off 2>/dev/null
got=$(echoes udp)
tap "$([ "$got" -eq 0 ] && echo ok || echo fail)" \
	"detached after kill -9: the kernel does not forward the datagram (blackhole route)" \
	"$got packets came back out of lb"

in_ns lb "$FLOWPIN" lb down --dev lb0 --pin-root "$tmp/bpf" --run-dir "$tmp/run" \
	>>"$tmp/lb.log" 2>&1
routes=$(in_ns lb ip route show proto 102)
tap "$([ -z "$routes" ] && echo ok || echo fail)" "lb down removed the blackhole routes" \
	"routes left: $routes"
got=$(echoes udp)
tap "$([ "$got" -gt 10 ] && echo ok || echo fail)" \
	"control: with no program and no route, the datagram loops (this test can fail)" \
	"$got packets came back out of lb (want more than 10)"
exit $((failed > 0))
