#!/usr/bin/env bash
# Lab tier: a backend agent configured from etcd (docs/etcd.md, docs/backend.md), end to end.
#
#   be namespace: etcd (one member, 127.0.0.1) + `flowpin backend up --config etcd://...`
#                 on be0 (10.99.0.10) ==veth== lb0 in the lb namespace (10.99.0.1, the LB
#                 source; 10.99.0.12, the backend a push adds)
#
# What the agent forwards is observed by sending it encapsulated TCP ACKs of no
# connection with the hop list [10.99.0.10, 10.99.0.12] (backend_ns_lb.py ack): it
# forwards them to 10.99.0.12 (counter `forwarded`) only while the config it runs has
# 10.99.0.12 as a backend of the VIP, else drops them (`bad_hop`); its next_hops map
# (bpftool, through the program's map ids) holds exactly the config's pairs.
#
# Checks: the agent starts from PREFIX/config and writes its status ("role": "backend")
# under a lease; `fleet status` lists it current; a push adding 10.99.0.12 is applied by
# the running agent (generation 2, the map, the second chance forwarded, a new VIP bound
# on lo) with no restart (same pid); invalid YAML and a new encap_port are refused,
# named in its status, the running config kept; a push removing the backend makes the
# same ACK bad_hop again (the forward set is the config); with etcd killed the agent
# keeps its program and applies what is pushed once etcd is back; restarted while etcd
# is down it starts from the cached value; killed, its status disappears (lease);
# from a file, `flowpin backend reload` (SIGHUP) applies an edit and refuses a bad one.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (network namespaces, tc BPF)"
	exit 0
fi
for tool in etcd etcdctl bpftool python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..1"
		echo "ok 1 # SKIP needs $tool (Debian: etcd-server, etcd-client, bpftool, python3)"
		exit 0
	fi
done

FLOWPIN=$PWD/build/flowpin
LBPY=$PWD/tests/lab/backend_ns_lb.py
p=fpeb$$
tmp=$(mktemp -d /tmp/flowpin-etcd-backend.XXXXXX)
# shellcheck source=tests/lab/netns.bash
source tests/lab/netns.bash
# shellcheck source=tests/lab/etcd.bash
ETCD_NS=be
source tests/lab/etcd.bash

PORT=$((20000 + ($$ * 7) % 20000))
URL=etcd://127.0.0.1:$PORT/fleet
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }
check() { # description command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

netns_add be lb
ip link add be0 netns "$p-be" type veth peer name lb0 netns "$p-lb" || die "veth"
ip -n "$p-be" addr add 10.99.0.10/24 dev be0
ip -n "$p-be" link set be0 up
ip -n "$p-lb" addr add 10.99.0.1/24 dev lb0
ip -n "$p-lb" addr add 10.99.0.12/24 dev lb0
ip -n "$p-lb" link set lb0 up
mkdir -p "$tmp/bpf" "$tmp/run"
mount -t bpf bpf "$tmp/bpf" || die "bpffs"

be_up() { # config extra-arguments...
	local config=$1
	shift
	ip netns exec "$p-be" "$FLOWPIN" backend up --config "$config" --dev be0 \
		--pin-root "$tmp/bpf" --run-dir "$tmp/run" "$@" >>"$tmp/backend.log" 2>&1 &
	be_pid=$!
	pids+=("$be_pid")
	wait_for 20 grep -q "flowpin backend: up on be0" "$tmp/backend.log" || die "backend up did not come up"
}
be_down() {
	in_ns be "$FLOWPIN" backend down --pin-root "$tmp/bpf" >/dev/null 2>&1
	wait "$be_pid" 2>/dev/null
	cat "$tmp/backend.log" >>"$tmp/backend-all.txt"
	: >"$tmp/backend.log"
}
# The agent's status in etcd, one field ('' when it has none).
node_field() { fleet_node_field be-a "$1"; } # field
field_is() { [ "$(node_field "$1")" = "$2" ]; }
counter() { # name
	in_ns be "$FLOWPIN" backend stats --pin-root "$tmp/bpf" | awk -v c="$1" '$1 == c { print $2 }'
}
# One ACK of no connection for 198.51.100.10:80, second chance to 10.99.0.12; which
# counter moved: forwarded, bad_hop or something else.
second_chance() {
	local f0 b0 f1 b1
	in_ns be ping -c1 -W1 10.99.0.12 >/dev/null 2>&1 # the neighbour a forward needs
	f0=$(counter forwarded) b0=$(counter bad_hop)
	in_ns lb python3 "$LBPY" ack 10.99.0.1 10.99.0.10 10.99.0.12 6080 192.0.2.7 198.51.100.10 80
	for _ in $(seq 30); do
		f1=$(counter forwarded) b1=$(counter bad_hop)
		[ "$f1" != "$f0" ] && { echo forwarded; return; }
		[ "$b1" != "$b0" ] && { echo bad_hop; return; }
		sleep 0.1
	done
	echo none
}
# A map of the running program (next_hops, self_addrs, vips), sorted: addresses, and
# "vip>backend" for next_hops' pairs.
agent_map() { # name
	in_ns be python3 - "$1" <<'EOF'
import sys
import ipaddress, json, re, subprocess
out = subprocess.run(["tc", "-j", "filter", "show", "dev", "be0", "ingress"], capture_output=True, text=True).stdout
ids = [int(m) for m in re.findall(r'"id":\s*(\d+)', out)]
def bpftool(*a):
    return json.loads(subprocess.run(["bpftool", "-j", *a], capture_output=True, text=True).stdout or "null")
pairs = []
for pid in ids:
    prog = bpftool("prog", "show", "id", str(pid))
    for mid in (prog or {}).get("map_ids", []):
        m = bpftool("map", "show", "id", str(mid))
        if m and m.get("name") == sys.argv[1]:
            for e in bpftool("map", "dump", "id", str(mid)) or []:
                k = bytes(int(x, 16) for x in e["key"])
                a = [ipaddress.ip_address(k[i:i + 16]) for i in range(0, len(k), 16)]
                a = [x.ipv4_mapped or x for x in a]
                pairs.append(">".join(str(x) for x in a))
    if pairs:
        break
print(" ".join(sorted(set(pairs))))
EOF
}
next_hops() { agent_map next_hops; }
on_lo() { grep -q "inet $1/32" <<<"$(in_ns be ip -4 addr show dev lo)"; }

config() { # extra-backend-line [encap_port] [extra VIP block]
	cat <<EOF
encap_port: ${2:-6080}
hash_key: 000102030405060708090a0b0c0d0e0f
allow_example_key: true
table_size: 307
lb_sources: [10.99.0.1/32]
vips:
  - name: web
    address: 198.51.100.10
    port: 80
    protocol: tcp
    backends:
      - { id: 1, address: 10.99.0.10 }
      - { id: 2, address: 10.99.0.11 }
$1
${3:-}
EOF
}
config "" >"$tmp/one.yaml"
config "      - { id: 3, address: 10.99.0.12 }" 6080 "  - name: dns
    address: 198.51.100.53
    port: 53
    protocol: udp
    backends:
      - { id: 1, address: 10.99.0.10 }" >"$tmp/added.yaml"
config "      - { id: 3, address: 10.99.0.12 }" 6081 >"$tmp/port.yaml"
printf 'hash_key: 000102030405060708090a0b0c0d0e0f\nvips:\n  - name: web\n    address: [198.51.100.10\n' >"$tmp/broken.yaml"

echo "1..33"
etcd_start

fleet push "$tmp/one.yaml" --config "$URL" >/dev/null 2>&1 || die "fleet push"
rev1=$(config_rev)
be_up "$URL" --node be-a
pid1=$be_pid
check "the agent starts from PREFIX/config revision $rev1" grep -q "etcd: $URL/config revision $rev1: starting with it" "$tmp/backend.log"
check "its status in etcd: role backend, applied revision $rev1" wait_for 10 field_is applied_revision "$rev1"
check "  \"role\": \"backend\", generation 1" bash -c "[ '$(node_field role)' = backend ] && [ '$(node_field generation)' = 1 ]"
fleet status --config "$URL" >"$tmp/fleet1.out"
sed 's/^/# /' "$tmp/fleet1.out"
check "fleet status lists it: be-a backend current" grep -qE "^be-a +backend +$rev1 .* current" "$tmp/fleet1.out"
hops=$(next_hops)
echo "# next_hops: $hops"
check "its next_hops map is the config's 2 pairs" [ "$hops" = "198.51.100.10>10.99.0.10 198.51.100.10>10.99.0.11" ]
check "hostile: a second chance to 10.99.0.12, in no config yet, is dropped (bad_hop)" [ "$(second_chance)" = bad_hop ]

pushed_at=$(date +%s.%N)
fleet push "$tmp/added.yaml" --config "$URL" --base "$rev1" >/dev/null 2>&1
rev2=$(config_rev)
check "a push adding backend 10.99.0.12 (and VIP dns) is applied: status at $rev2" wait_for 10 field_is applied_revision "$rev2"
# A figure, not a bound: from the start of `fleet push` to the agent's applied_at.
echo "# push -> applied by the agent: $(python3 -c "print('%.3f s' % ($(node_field applied_at) - $pushed_at))")"
check "  by the running agent (same pid), generation 2" bash -c "kill -0 $pid1 && [ '$(node_field generation)' = 2 ]"
hops=$(next_hops)
echo "# next_hops: $hops"
check "  its next_hops map has the new pair" [ "$hops" = "198.51.100.10>10.99.0.10 198.51.100.10>10.99.0.11 198.51.100.10>10.99.0.12 198.51.100.53>10.99.0.10" ]
check "  the second chance to 10.99.0.12 is forwarded now" [ "$(second_chance)" = forwarded ]
check "  the new VIP 198.51.100.53 is bound on lo" on_lo 198.51.100.53

etcdctl_ put /fleet/config <"$tmp/broken.yaml" >/dev/null
rev3=$(config_rev)
error_has() { grep -qF -- "$1" <<<"$(node_field error)"; } # not a pipe: grep -q ends early (pipefail)
check "invalid YAML in etcd: refused (refused_revision $rev3)" wait_for 10 field_is refused_revision "$rev3"
check "  named by key and line in its status" error_has "$URL/config:5: yaml:"
status_has() { grep -qF -- "$1" <<<"$(in_ns be "$FLOWPIN" backend status --node be-a --run-dir "$tmp/run" --pin-root "$tmp/bpf" 2>&1)"; }
check "  backend status names it too (refused: revision $rev3)" wait_for 5 status_has "refused: revision $rev3:"
check "  the running config stays (still forwards to 10.99.0.12, applied $rev2)" bash -c "[ '$(second_chance)' = forwarded ] && [ '$(node_field applied_revision)' = $rev2 ]"

fleet push "$tmp/port.yaml" --config "$URL" >/dev/null 2>&1
rev4=$(config_rev)
check "a new encap_port: refused by the agent (refused_revision $rev4)" wait_for 10 field_is refused_revision "$rev4"
echo "# error: $(node_field error | sed -n 1p)"
check "  the error names encap_port and the restart" error_has "$URL/config:1: encap_port: 6081, the running agent has 6080; changing it needs a restart"
check "  the running config stays: VIP dns still on lo" on_lo 198.51.100.53

fleet push "$tmp/one.yaml" --config "$URL" >/dev/null 2>&1
rev5=$(config_rev)
wait_for 10 field_is applied_revision "$rev5"
hops=$(next_hops)
check "a push removing 10.99.0.12: the map is the config's 2 pairs again" [ "$hops" = "198.51.100.10>10.99.0.10 198.51.100.10>10.99.0.11" ]
check "  hostile: the second chance to it is dropped again (bad_hop)" [ "$(second_chance)" = bad_hop ]
check "  VIP dns removed from lo" bash -c "! ip netns exec $p-be ip -4 addr show dev lo | grep -q 198.51.100.53"
self=$(agent_map self_addrs)
echo "# self_addrs: $self; vips: $(agent_map vips)"
check "  and neither a VIP nor an own address of the program (vips, self_addrs)" bash -c "[ '$(agent_map vips)' = 198.51.100.10 ] && ! grep -q 198.51.100.53 <<<'$self' && grep -q 10.99.0.10 <<<'$self'"

# etcd away: the agent keeps its program; back, it applies what was pushed.
etcd_stop
check "etcd killed: the agent says so and keeps running" wait_for 15 grep -q "etcd: $URL unreachable" "$tmp/backend.log"
check "  backend status says etcd is unreachable" wait_for 5 status_has "UNREACHABLE, forwarding with the config applied last"
in_ns be "$FLOWPIN" backend status --node be-a --run-dir "$tmp/run" --pin-root "$tmp/bpf" 2>&1 | sed 's/^/# /'
check "  its tc program stays on be0" bash -c "kill -0 $pid1 && [ -n \"\$(ip netns exec $p-be tc filter show dev be0 ingress)\" ]"
etcd_start
fleet push "$tmp/added.yaml" --config "$URL" >/dev/null 2>&1
rev6=$(config_rev)
check "etcd back: the agent applies the push made since (revision $rev6)" wait_for 20 field_is applied_revision "$rev6"

# Dead agent: its status goes with its lease. Restart while etcd is down: the cache.
kill -KILL "$be_pid"
wait "$be_pid" 2>/dev/null
gone() { [ -z "$(node_field node)" ]; }
check "the agent killed (SIGKILL): its status disappears with the lease" wait_for 20 gone
in_ns be "$FLOWPIN" backend down --pin-root "$tmp/bpf" >/dev/null 2>&1
etcd_stop
cat "$tmp/backend.log" >>"$tmp/backend-all.txt"
: >"$tmp/backend.log"
be_up "$URL" --node be-a
check "restarted with etcd down: starts from the cached value" grep -q "starting from the config applied last" "$tmp/backend.log"
check "  and forwards the second chance as the value applied last says" [ "$(second_chance)" = forwarded ]
be_down
etcd_start

# From a file: `backend reload` (SIGHUP) takes an edit, refuses a bad one.
cp "$tmp/one.yaml" "$tmp/file.yaml"
be_up "$tmp/file.yaml"
cp "$tmp/added.yaml" "$tmp/file.yaml"
in_ns be "$FLOWPIN" backend reload --pin-root "$tmp/bpf" >/dev/null
wait_for 10 grep -q "reload: applied $tmp/file.yaml as generation 2" "$tmp/backend.log"
check "from a file, backend reload applies an edit (second chance forwarded)" [ "$(second_chance)" = forwarded ]
cp "$tmp/port.yaml" "$tmp/file.yaml"
in_ns be "$FLOWPIN" backend reload --pin-root "$tmp/bpf" >/dev/null
wait_for 10 grep -q "reload: $tmp/file.yaml refused" "$tmp/backend.log"
check "  and refuses a new encap_port, naming FILE:LINE" grep -q "$tmp/file.yaml:1: encap_port: 6081" "$tmp/backend.log"
check "  the config stays (second chance still forwarded)" [ "$(second_chance)" = forwarded ]
check "  backend status shows the refusal" grep -qF "$tmp/file.yaml:1: encap_port: 6081" <<<"$(in_ns be "$FLOWPIN" backend status --dev be0 --run-dir "$tmp/run" --pin-root "$tmp/bpf" 2>&1)"
be_down
sed 's/^/# backend: /' "$tmp/backend-all.txt" | grep -E "etcd|applied|refused|reload" | tail -30
