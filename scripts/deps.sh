#!/usr/bin/env bash
# Idempotent install of every build, test and lab dependency from Debian packages.
# Runs apt-get update only when something is missing.
set -euo pipefail

packages=(
	make gcc clang llvm pkg-config     # userspace (gnu11) and BPF (clang -target bpf)
	libbpf-dev bpftool                 # BPF loading, skeletons (bpftool gen skeleton)
	libxdp-dev                         # XDP attach modes, shared with xdp-tools users
	libelf-dev zlib1g-dev              # libbpf's own link dependencies
	libyaml-dev                        # config and lab scenario files
	libpcap-dev                        # flowpin replay reads/writes captures
	libcmocka-dev                      # unit and BPF test runner (TAP output)
	iproute2 ethtool tcpdump           # lab: namespaces, veth, nexthop groups
	nginx-light                        # lab: real HTTP servers on the backends
	bird2                              # lab/control: real BGP daemon
	curl                               # lab: checks
	prometheus                         # tests: promtool check metrics lints the /metrics exposition (the daemon is not started: policy-rc.d)
	python3 python3-yaml               # lab orchestration (scenario timelines)
	clang-format cppcheck              # make lint
	libclang-rt-dev                    # clang's libFuzzer, ASan, UBSan runtimes: fuzz tier, make test-sanitize
	libmicrohttpd-dev                  # lb up --metrics: a well-kept HTTP server library instead of hand-written HTTP
	libevent-dev                       # the LB daemon's event loop (signals, timers, sockets), as in tor and memcached
	libcurl4-openssl-dev               # HTTP(S) health checks through curl's multi interface, not a hand-written client
	libjson-c-dev                      # JSON for the control socket and status (json-c, as FRR uses)
	libcap-dev                         # the daemon drops the capabilities it no longer needs after loading
	libssl-dev                         # libcrypto's AES-128-ECB for QUIC-LB connection IDs (lib/quiclb.c): a vetted, constant-time AES, not our own
	gnuplot-nox                        # flowpin sim --out: the fleet simulator's plot (SVG), Debian's gnuplot without X, not a plotting library of our own
	etcd-server etcd-client            # fleet config from etcd (lib/etcd.c over its JSON gateway): the unit tests and the lab run real members; etcdctl sets up auth in tests
	libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev  # lab/fpquic: a real QUIC stack (ngtcp2 0.12, TLS by GnuTLS) for the QUIC-LB scenarios, not a hand-written one
	tor                                # lab/tor.py: a private Tor network (authorities, relays, an exit, a client; tor-gencert makes the authorities' keys) whose exit reaches the website on a VIP (its service is not started: policy-rc.d)
	dnsmasq-base                       # lab: the anycast resolver VIP's DNS server on the backends (the binary alone, no service), which Tor's exit asks
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#packages[@]} packages present"
	exit 0
fi

echo "deps: installing ${missing[*]}"
# Root (a fresh Debian has no sudo) installs directly; anyone else through sudo.
if [ "$(id -u)" -ne 0 ]; then
	if command -v "${SUDO:-sudo}" >/dev/null 2>&1; then
		exec "${SUDO:-sudo}" bash "$0"
	fi
	echo "deps: installing packages needs root, and ${SUDO:-sudo} is not installed: run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian starts nginx (and BIRD, tor, etcd) on install; the lab starts its own instances inside
# namespaces, so keep the host's service manager from starting them.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# etcd-server also enables its service, a member on 127.0.0.1:2379 from the next boot
# on; the tests and the lab run members of their own in private directories and
# namespaces, and a host that had no etcd must not get one serving by surprise.
if [[ " ${missing[*]} " == *" etcd-server "* ]]; then
	systemctl disable etcd.service >/dev/null 2>&1 || true
	update-rc.d etcd disable >/dev/null 2>&1 || true
fi
