#!/usr/bin/env bash
# Lab tier: an LB node configured from etcd (docs/etcd.md), end to end.
#
#   lb namespace: etcd (one member, 127.0.0.1) + `flowpin lb up --config etcd://...`
#                 on lb0 (generic XDP) ==veth== cl0 in the cl namespace
#
# Checks: `fleet push` writes PREFIX/config and the node starts from it; a push is
# applied as a new generation and `fleet status` shows the node current; a push based on
# a stale revision is refused (nothing written); invalid YAML written straight into etcd
# and a config that changes the hash key are refused by the node, named in its status
# (key and line), the running config stays; a canary goes to the listed node only and a
# push without --canary ends it; with etcd killed the node keeps its program and says
# etcd is unreachable (lb status), and applies what is pushed once etcd is back; a node
# restarted while etcd is down starts from the config it applied last. A fleet of sites
# (`pops`) read from etcd is applied as the node's site (lb up --pop), as a file is: the
# node without --pop refuses it, with --pop a it runs site a's backends only, and a
# value without sites is refused then.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (network namespaces, XDP)"
	exit 0
fi
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
	echo "1..1"
	echo "ok 1 # SKIP needs etcd and etcdctl (Debian: etcd-server, etcd-client)"
	exit 0
fi

FLOWPIN=$PWD/build/flowpin
p=fpet$$
tmp=$(mktemp -d /tmp/flowpin-etcd-node.XXXXXX)
# shellcheck source=tests/lab/netns.bash
source tests/lab/netns.bash
# shellcheck source=tests/lab/etcd.bash
ETCD_NS=lb
source tests/lab/etcd.bash

PORT=$((20000 + $$ % 20000))
URL=etcd://127.0.0.1:$PORT/fleet
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }
check() { # description command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

netns_add lb cl
ip link add lb0 netns "$p-lb" type veth peer name cl0 netns "$p-cl" || die "veth"
ip -n "$p-lb" addr add 10.99.0.1/24 dev lb0
ip -n "$p-lb" link set lb0 up
ip -n "$p-cl" addr add 10.99.0.2/24 dev cl0
ip -n "$p-cl" link set cl0 up
ip netns exec "$p-lb" sysctl -qw net.ipv4.ip_forward=1
mkdir -p "$tmp/bpf" "$tmp/run"
mount -t bpf bpf "$tmp/bpf" || die "bpffs"

lb_up() { # extra lb up arguments...
	ip netns exec "$p-lb" "$FLOWPIN" lb up --config "$URL" --dev lb0 --node lb-a --xdp-mode generic \
		--pin-root "$tmp/bpf" --run-dir "$tmp/run" "$@" >>"$tmp/lb.log" 2>&1 &
	lb_pid=$!
	pids+=("$lb_pid")
}
lb_status() { in_ns lb "$FLOWPIN" lb status --dev lb0 --run-dir "$tmp/run" "$@"; }
# The node's own status in etcd, one field.
node_field() { fleet_node_field lb-a "$1"; } # field
field_is() { [ "$(node_field "$1")" = "$2" ]; }
web_backends() { lb_status --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(len([v for v in d['vips'] if v['name'] == 'web'][0]['backends']))"; }

config() { # extra-backend-line hash-key
	cat <<EOF
hash_key: ${2:-000102030405060708090a0b0c0d0e0f}
table_size: 307
lb_sources: [10.99.0.0/24]
vips:
  - name: web
    address: 198.51.100.10
    port: 80
    protocol: tcp
    backends:
      - { id: 1, address: 10.99.0.10 }
      - { id: 2, address: 10.99.0.11 }
$1
allow_example_key: true
EOF
}
config "" >"$tmp/good.yaml"
config "      - { id: 3, address: 10.99.0.12 }" >"$tmp/better.yaml"
config "      - { id: 4, address: 10.99.0.13 }" >"$tmp/canary.yaml"
config "      - { id: 3, address: 10.99.0.12 }" 00112233445566778899aabbccddeeff >"$tmp/rekeyed.yaml"
printf 'hash_key: 000102030405060708090a0b0c0d0e0f\nvips:\n  - name: web\n    address: [198.51.100.10\n' >"$tmp/broken.yaml"
sites() { # extra site-a backend line
	cat <<EOF
hash_key: 000102030405060708090a0b0c0d0e0f
table_size: 401
lb_sources: [10.99.0.0/24]
pops:
  - {name: a, lbs: [10.99.0.1]}
  - {name: b, lbs: [10.98.0.1]}
vips:
  - name: web
    address: 198.51.100.10
    port: 80
    protocol: tcp
    backends:
      - { id: 1, address: 10.99.0.10, pop: a }
      - { id: 2, address: 10.99.0.11, pop: a }
      - { id: 7, address: 10.98.0.21, pop: b }
$1
allow_example_key: true
EOF
}
sites "" >"$tmp/sites.yaml"
sites "      - { id: 3, address: 10.99.0.12, pop: a }" >"$tmp/sites2.yaml"
sed '/^pops:/,/^vips:/{/^vips:/!d}; s/, pop: [ab]//' "$tmp/sites.yaml" >"$tmp/nosites.yaml"

echo "1..24"
etcd_start

out=$(fleet push "$tmp/good.yaml" --config "$URL" 2>&1)
check "push to an empty prefix: $out" grep -q "revision" <<<"$out"
rev1=$(config_rev)
lb_up
wait_for 20 grep -q "up on lb0" "$tmp/lb.log" || die "lb up did not come up"
check "the node starts from PREFIX/config revision $rev1" grep -q "etcd: $URL/config revision $rev1: starting with it" "$tmp/lb.log"
check "fleet status: lb-a current at $rev1" wait_for 10 field_is applied_revision "$rev1"

fleet push "$tmp/better.yaml" --config "$URL" --base "$rev1" >"$tmp/push2.out" 2>&1
rev2=$(config_rev)
check "a push based on the current revision is written ($rev1 -> $rev2)" [ "$rev2" -gt "$rev1" ]
check "the node applies it (status current at $rev2)" wait_for 10 field_is applied_revision "$rev2"
check "as a new generation with 3 backends of web" [ "$(web_backends)" = 3 ]

out=$(fleet push "$tmp/good.yaml" --config "$URL" --base "$rev1" 2>&1)
rc=$?
echo "# $out"
check "a push based on a stale revision is refused" [ $rc -eq 1 ]
check "nothing written (config still at $rev2)" [ "$(config_rev)" = "$rev2" ]

etcdctl_ put /fleet/config <"$tmp/broken.yaml" >/dev/null
error_has() { node_field error | grep -F -- "$1" >/dev/null; }
check "invalid YAML in etcd: refused, named by key and line" wait_for 10 error_has "$URL/config:5: yaml:"
check "the running config stays (3 backends of web)" [ "$(web_backends)" = 3 ]

fleet push "$tmp/rekeyed.yaml" --config "$URL" >/dev/null 2>&1
rev3=$(config_rev)
check "a new hash key: refused by the node (refused_revision $rev3)" wait_for 10 field_is refused_revision "$rev3"
echo "# error: $(node_field error | sed -n 1,3p)"
check "the error names the hash key" grep -q "config:1: hash_key: .*needs a restart" <<<"$(node_field error)"

fleet push "$tmp/better.yaml" --config "$URL" >/dev/null 2>&1
fleet push "$tmp/canary.yaml" --config "$URL" --canary-nodes lb-a,lb-z >/dev/null 2>&1
check "a canary naming the node: applied from config.canary" wait_for 10 field_is applied_key config.canary

# etcd away: forwarding goes on, lb status says so; back: a push is applied.
etcd_stop
says_unreachable() { lb_status 2>&1 | grep -q 'etcd.*UNREACHABLE'; }
check "etcd killed: lb status says unreachable" wait_for 15 says_unreachable
lb_status >"$tmp/status-down.out" 2>&1
check "etcd down: the program still runs on lb0" bash -c "ip -n $p-lb link show lb0 | grep -q xdp"
sed 's/^/# /' "$tmp/status-down.out" | grep -i etcd
etcd_start
fleet push "$tmp/good.yaml" --config "$URL" >/dev/null 2>&1
rev4=$(config_rev)
check "etcd back: the node applies the push made since (revision $rev4, canary ended)" wait_for 20 field_is applied_revision "$rev4"

# Restart while etcd is down: the node starts from what it applied last.
kill "$lb_pid"
wait "$lb_pid" 2>/dev/null
etcd_stop
lb_up
check "restarted with etcd down: starts from the cached config" wait_for 20 grep -q "starting from the config applied last" "$tmp/lb.log"

# Sites from etcd: as the node's site, or refused.
etcd_start
fleet push "$tmp/sites.yaml" --config "$URL" >/dev/null 2>&1
rev5=$(config_rev)
check "a fleet of sites, node without --pop: refused (--pop required)" wait_for 20 field_is refused_revision "$rev5"
echo "# error: $(node_field error | sed -n 1p)"
check "the error says --pop is required" grep -q "config:[0-9]*: pops: .*--pop NAME is required" <<<"$(node_field error)"
in_ns lb "$FLOWPIN" lb down --dev lb0 --pin-root "$tmp/bpf" --run-dir "$tmp/run" >/dev/null 2>&1
wait "$lb_pid" 2>/dev/null
lb_up --pop a
check "lb up --pop a from etcd: starts with the sites' config" wait_for 20 field_is applied_revision "$rev5"
check "as site a: web has site a's 2 backends" [ "$(web_backends)" = 2 ]
fleet push "$tmp/nosites.yaml" --config "$URL" >/dev/null 2>&1
rev6=$(config_rev)
check "a value without sites: refused by the node of site a" wait_for 10 field_is refused_revision "$rev6"
check "the error says the config has no sites" grep -q "pops: --pop a given, but the config has no sites" <<<"$(node_field error)"
fleet push "$tmp/sites2.yaml" --config "$URL" >&2
rev7=$(config_rev)
wait_for 10 field_is applied_revision "$rev7"
check "a site a backend added in etcd: applied as site a (3 backends of web)" [ "$(web_backends)" = 3 ]
in_ns lb "$FLOWPIN" lb down --dev lb0 --pin-root "$tmp/bpf" --run-dir "$tmp/run" >/dev/null 2>&1
wait "$lb_pid" 2>/dev/null
sed 's/^/# lb: /' "$tmp/lb.log" | tail -40
