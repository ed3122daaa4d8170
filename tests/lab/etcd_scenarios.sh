#!/usr/bin/env bash
# Lab tier: the fleet configured from the lab's three-member etcd cluster (lab/etcdlab.py,
# docs/lab.md "Fleet configuration from etcd"): etcd-push (a backend added by one
# `flowpin fleet push`, every LB node applies it within the bound, the row as
# backend-add's), etcd-member-down (a member crashes: the push still reaches every node
# that knows another member; lb3, knowing only that one, stays behind) and etcd-down
# (every member down: the push is refused, forwarding goes on, a node restarted cold
# starts from its cache, the members back: every node converges), 40 flows per VIP (hash
# must break, and a backend added to four moves 1 flow in 5 or fewer: with 20 flows no
# flow broke once), one TAP line per expectation and per etcd check.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "ok 1 # SKIP the lab needs root (network namespaces, XDP)"
	exit 0
fi
if [ ! -x /usr/bin/etcd ]; then
	echo "ok 1 # SKIP needs /usr/bin/etcd (Debian: etcd-server; scripts/deps.sh installs it)"
	exit 0
fi
# shellcheck source=lab/lab-id.bash
source lab/lab-id.bash # removes this lab, and no other, if the runner was killed hard
lab_run --tap --flows 40 etcd-push etcd-member-down etcd-down
