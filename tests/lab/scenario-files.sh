#!/usr/bin/env bash
# Lab tier, no root needed: every shipped scenario file validates, and each kind of
# bad scenario file is refused before anything starts with FILE:LINE: FIELD: message.
set -uo pipefail
cd "$(dirname "$0")/../.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)) failed=1; echo "not ok $n - $1"; }

for f in lab/scenarios/*.yaml; do
	if out=$(/usr/bin/python3 lab/run --check "$f" 2>&1); then
		ok "$f validates"
	else
		not_ok "$f validates: $out"
	fi
done

# One bad file per case: the line to write at line 5 (after a valid header), and the
# message lab/run must print for it.
header='name: bad
traffic: {flows: 10, size: 300000, rate: 20000}
expect: {none: any, table: any, hash: any, hash+table: any, full: any, full+ticket: any}
events:'
check_bad() { # description, line 5, expected "LINE: FIELD: message" fragment
	local file="$tmp/bad.yaml"
	printf '%s\n%s\n' "$header" "$2" >"$file"
	# The real run path, not --check: the refusal must come before any lab exists.
	out=$(/usr/bin/python3 lab/run "$file" 2>&1)
	rc=$?
	if [ "$rc" -eq 2 ] && grep -qF -- "$file:$3" <<<"$out" && ! grep -q 'bringing up' <<<"$out"; then
		ok "refused: $1"
	else
		not_ok "refused: $1 (status $rc, wanted '$file:$3', got: $out)"
	fi
}
check_bad "unknown event" "  - {at: 5, explode: {}}" "5: events[0]: unknown event 'explode'"
check_bad "negative time" "  - {at: -1, route: {to: lb2}}" "5: events[0].at: must be a number"
check_bad "time after the transfers" "  - {at: 99, route: {to: lb2}}" \
	"5: events[0].at: 99.0 s is after the transfers end"
check_bad "unknown LB node" "  - {at: 5, route: {to: lb9}}" "5: events[0].route.to: no LB node 'lb9'"
check_bad "bad backend action" "  - {at: 5, backend: {action: grow, id: 2}}" \
	"5: events[0].backend.action: one of add, drain, remove"
check_bad "backend id out of range" "  - {at: 5, backend: {action: add, id: 9}}" \
	"5: events[0].backend.id: backend id must be 1..5"
check_bad "bad lb-restart how" "  - {at: 5, lb-restart: {node: lb2, how: reboot}}" \
	"5: events[0].lb-restart.how: one of kill, term, down"
check_bad "lb-restart without how" "  - {at: 5, lb-restart: {node: lb2}}" \
	"5: events[0].lb-restart.how: missing"
check_bad "lb-upgrade without node" "  - {at: 5, lb-upgrade: {}}" \
	"5: events[0].lb-upgrade.node: missing"
check_bad "lb-upgrade of an unknown node" "  - {at: 5, lb-upgrade: {node: lb7}}" \
	"5: events[0].lb-upgrade.node: no LB node 'lb7'"
check_bad "lb-upgrade with a how" "  - {at: 5, lb-upgrade: {node: lb2, how: kill}}" \
	"5: events[0].lb-upgrade.how: unknown key"
check_bad "unknown key in an event" "  - {at: 5, route: {to: lb2, via: x}}" \
	"5: events[0].route.via: unknown key"
check_bad "YAML syntax" "  - {at: 5, route: {to: lb2}" "6: yaml:"
# BGP events (lab/bgp.py)
check_bad "unknown VIP in a BGP event" "  - {at: 5, bgp-withdraw: {node: lb1, vip: [full, nope]}}" \
	"5: events[0].bgp-withdraw.vip: no VIP 'nope'"
check_bad "bgp-maintenance without action" "  - {at: 5, bgp-maintenance: {node: lb1}}" \
	"5: events[0].bgp-maintenance.action: missing"
check_bad "BGP event on an unknown node" "  - {at: 5, bgp-drain: {node: lb7}}" \
	"5: events[0].bgp-drain.node: no LB node 'lb7'"
check_bad "prepend count out of range" "  - {at: 5, bgp-prepend: {node: lb1, count: 99}}" \
	"5: events[0].bgp-prepend.count: must be a whole number in [0, 8], got 99"
check_bad "prepend without count" "  - {at: 5, bgp-prepend: {node: lb1}}" \
	"5: events[0].bgp-prepend.count: missing"
check_bad "negative MED" "  - {at: 5, bgp-med: {node: lb1, med: -1}}" \
	"5: events[0].bgp-med.med: must be a whole number in [0, 4294967295]"
check_bad "bad bgp-cut how" "  - {at: 5, bgp-cut: {node: lb1, how: unplug}}" \
	"5: events[0].bgp-cut.how: one of block, kill"
check_bad "bad lb-fail how" "  - {at: 5, lb-fail: {node: lb1, how: melt}}" \
	"5: events[0].lb-fail.how: one of link, crash"
check_bad "unknown key in a BGP event" "  - {at: 5, bgp-announce: {node: lb1, community: x}}" \
	"5: events[0].bgp-announce.community: unknown key"

# Whole files: the BGP policy key, and BGP in a statically routed scenario.
check_bad_file() { # description, file text, expected fragment, [lab/run option]
	local file="$tmp/bad.yaml"
	printf '%s\n' "$2" >"$file"
	out=$(/usr/bin/python3 lab/run ${4:+"$4"} "$file" 2>&1)
	rc=$?
	if [ "$rc" -eq 2 ] && grep -qF -- "$file$3" <<<"$out" && ! grep -q 'bringing up' <<<"$out"; then
		ok "refused: $1"
	else
		not_ok "refused: $1 (status $rc, wanted '$file$3', got: $out)"
	fi
}
head3='name: bad
traffic: {flows: 10, size: 300000, rate: 20000}
expect: {none: any, table: any, hash: any, hash+table: any, full: any, full+ticket: any}'
check_bad_file "prepend for an unknown node" "$head3
bgp: {prepend: {lb1: 1, lb9: 2}}" ":4: bgp.prepend.lb9: no LB node 'lb9'"
check_bad_file "unknown key under bgp" "$head3
bgp: {localpref: {lb1: 1}}" ":4: bgp.localpref: unknown key"
check_bad_file "damping without flowpin driving BIRD" "$head3
bgp: {damping: false}" ":4: bgp.damping: needs flowpin: true"
check_bad_file "unknown health key" "$head3
health: {interval_ms: 200, every: 1}" ":4: health.every: unknown key"
check_bad_file "route_changes not a number" "$head3
route_changes: {max: lots}" ":4: route_changes.max: must be a whole number"
check_bad_file "health-flap without for" "$head3
events:
  - {at: 5, health-flap: {node: lb1}}" ":5: events[0].health-flap.for: missing"
check_bad_file "counter that the LB has not" "$head3
counters: {session_hit: {min: 1}, tickets_galore: {min: 1}}" ":4: counters.tickets_galore: no LB counter 'tickets_galore'"
check_bad_file "unknown counter bound" "$head3
counters:
  session_hit: {least: 1}" ":5: counters.session_hit.least: unknown key"
check_bad_file "negative counter bound" "$head3
counters: {session_hit: {max: -1}}" ":4: counters.session_hit.max: must be a whole number"
check_bad_file "expectation of the ticket column missing" 'name: bad
traffic: {flows: 10, size: 300000, rate: 20000}
expect: {none: any, table: any, hash: any, hash+table: any, full: any}' ":3: expect.full+ticket: missing"
check_bad_file "BGP event with a resilient group (static routing)" "$head3
route: {ecmp: [lb1, lb2], group: resilient}
events:
  - {at: 5, bgp-drain: {node: lb1}}" ":6: events: bgp-drain needs BGP routing"
check_bad_file "BGP scenario with --static-routes" "$head3
events:
  - {at: 5, bgp-withdraw: {node: lb1}}" ": uses BGP events or policy: not with --static-routes" \
	--static-routes
# QUIC scenarios (traffic.quic): their own columns, the client's moves only there.
check_bad_file "quic-move in a TCP scenario" "$head3
events:
  - {at: 5, quic-move: {how: rebind}}" ":5: events[0].quic-move: needs QUIC traffic (traffic.quic: true)"
headq='name: bad
traffic: {quic: true, flows: 10, size: 300000, rate: 20000}'
expq='expect: {hash/quic: any, hash+table/quic: any, full/quic: any, hash/quic-lb: any,
  hash+table/quic-lb: any, full/quic-lb: any}'
check_bad_file "bad quic-move how" "$headq
$expq
events:
  - {at: 5, quic-move: {how: teleport}}" ":6: events[0].quic-move.how: one of rebind, migrate"
check_bad_file "TCP mode columns in a QUIC scenario" "$headq
expect: {none: any, table: any, hash: any, hash+table: any, full: any}" \
	":3: expect.none: unknown key"
check_bad_file "a QUIC column without its expectation" "$headq
expect: {hash/quic: any, hash+table/quic: any, full/quic: any}" \
	":3: expect.hash/quic-lb: missing (every mode's expectation is stated)"
# Two sites (sites: 2): site b's nodes and backends, the pop event, BGP only.
check_bad_file "pop event without the second site" "$head3
events:
  - {at: 5, pop: {to: b}}" ":5: events[0].pop: needs the second site (sites: 2)"
check_bad_file "site b's node without the second site" "$head3
events:
  - {at: 5, route: {to: lb4}}" ":5: events[0].route.to: no LB node 'lb4' (known: lb1, lb2, lb3; lb4, lb5 with sites: 2)"
check_bad_file "site b's backend without the second site" "$head3
events:
  - {at: 5, backend: {action: drain, id: 6}}" ":5: events[0].backend.id: backend id must be 1..5 (b1..b5), got 6"
check_bad_file "three sites" "$head3
sites: 3" ":4: sites: 1 or 2, got 3"
check_bad_file "pop to an unknown site" "$head3
sites: 2
events:
  - {at: 5, pop: {to: c}}" ":6: events[0].pop.to: one of a, b, got 'c'"
check_bad_file "bad pop how" "$head3
sites: 2
events:
  - {at: 5, pop: {to: b, how: teleport}}" ":6: events[0].pop.how: one of withdraw, prepend"
check_bad_file "pop without to" "$head3
sites: 2
events:
  - {at: 5, pop: {how: prepend}}" ":6: events[0].pop.to: missing"
check_bad_file "a route over both sites" "$head3
sites: 2
route: {ecmp: [lb1, lb4]}" ":5: route: the nodes of one site"
check_bad_file "backend id past site b's" "$head3
sites: 2
backends: {active: [1, 8]}" ":5: backends.active: backend id must be 1..5 (b1..b5) or 6..7 (site b), got 8"
check_bad_file "two sites with --static-routes" "$head3
sites: 2" ": uses BGP events or policy: not with --static-routes" --static-routes
# Scenarios from etcd (lab/etcdlab.py)
check_bad_file "etcd-member in a scenario from files" "$head3
events:
  - {at: 5, etcd-member: {action: stop, members: [1]}}" \
	":5: events[0].etcd-member: needs a scenario run from etcd (etcd: {})"
check_bad_file "etcd member out of range" "$head3
etcd: {}
events:
  - {at: 5, etcd-member: {action: stop, members: [4]}}" \
	":6: events[0].etcd-member.members: a list of 1, 2, 3, or all, got [4]"
check_bad_file "bad etcd-member action" "$head3
etcd: {}
events:
  - {at: 5, etcd-member: {action: reboot, members: all}}" \
	":6: events[0].etcd-member.action: one of stop, start, got 'reboot'"
check_bad_file "endpoints of an unknown node" "$head3
etcd: {endpoints: {lb9: [1]}}" ":4: etcd.endpoints.lb9: no LB node 'lb9'"
check_bad_file "an endpoint twice" "$head3
etcd: {endpoints: {lb1: [2, 2]}}" ":4: etcd.endpoints.lb1: must list etcd members, each once"
check_bad_file "unknown key under etcd" "$head3
etcd: {apply_in: 3}" ":4: etcd.apply_in: unknown key"
check_bad_file "etcd with flowpin driving BIRD (per-node configs)" "$head3
bgp: {flowpin: true}
etcd: {}" ":5: etcd: not with bgp.flowpin"
check_bad_file "lab/run --etcd with per-node configs" "$head3
bgp: {flowpin: true}" ": not from etcd (--etcd): its nodes' configs differ" --etcd
check_bad_file "etcd-path without the second site" "$head3
etcd: {}
events:
  - {at: 5, etcd-path: {site: b, action: cut}}" ":6: events[0].etcd-path: needs the second site (sites: 2)"
check_bad_file "etcd-path of site a (the members' own)" "$head3
sites: 2
etcd: {}
events:
  - {at: 5, etcd-path: {site: a, action: cut}}" ":7: events[0].etcd-path.site: b (the members are site a's"
check_bad_file "bad etcd-path action" "$head3
sites: 2
etcd: {}
events:
  - {at: 5, etcd-path: {site: b, action: sever}}" ":7: events[0].etcd-path.action: one of cut, restore, got 'sever'"
check_bad_file "etcd-path in a scenario from files" "$head3
sites: 2
events:
  - {at: 5, etcd-path: {site: b, action: cut}}" ":6: events[0].etcd-path: needs a scenario run from etcd (etcd: {})"
check_bad_file "endpoints of site b's node without the second site" "$head3
etcd: {endpoints: {lb4: [1]}}" ":4: etcd.endpoints.lb4: no LB node 'lb4' (known: lb1, lb2, lb3)"

echo "1..$n"
exit $failed
