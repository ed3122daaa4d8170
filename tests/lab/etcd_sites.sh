#!/usr/bin/env bash
# Lab tier: both sites of the two-site lab configured from the lab's etcd cluster
# (lab/etcdlab.py, docs/lab.md "Fleet configuration from etcd"): etcd-push-sites with
# 30 flows per VIP. One fleet config (pops) under one prefix for every LB node of both
# sites (lb up --pop a|b) and for every backend agent. One `flowpin fleet push` changes
# backends in both sites: all five nodes must apply it within 3 s; site b's management
# path to the members (site a's) is cut and a push meanwhile must reach site a only,
# site b's nodes saying UNREACHABLE; the path back, they must catch up within the
# retry backoff's cap. The row must be backend-add's (none and hash break). One TAP
# line per expectation, counter bound and etcd check.
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
lab_run --tap --flows 30 etcd-push-sites
