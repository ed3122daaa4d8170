# SPDX-License-Identifier: MIT
"""The lab topology: network namespaces, links, addresses, routes, nginx and flowpin.

    client ──(1500)── router ──(fabric a, bridge, MTU 1700)── lb1 lb2 lb3 (flowpin lb, XDP)
                        │                                └─ b1 .. b5 (flowpin backend, nginx)
                        │                                └─ gw-a ──┐ inter-site link
                        └─(fabric b, two-site lab only)── lb4 lb5  │ (10.97.0.0/30)
                                                         └─ b6 b7  │
                                                         └─ gw-b ──┘

Every name carries a per-run prefix (fl<4 hex>), so two runs or the leftovers of a
crashed run never collide; `Lab.down()` removes everything `Lab.up()` made and is safe
to call at any point of a half-built lab. No interface of the lab is connected to
the host's namespaces, so no packet can leave them.

Addresses (fixed, so a debug session can type them from memory):
  client <-> router   172.16.0.0/16, fd00:16::/64 (client sources 172.16.1.N, fd00:16::1:N)
  fabric a            10.99.0.0/24, fd00:99::/64: router .1, gw-a .9, lbN .1N, bN .2N
  fabric b            10.98.0.0/24, fd00:98::/64: router .1, gw-b .9, lb4 .14, b6 .26 ...
  inter-site link     10.97.0.0/30, fd00:97::/64: gw-a .1, gw-b .2
  VIPs                10.100.0.M/32 and fd00:100::M/128, port 80, M per pinning mode
By default the router learns the VIPs over eBGP from BIRD on every LB node (lab/bgp.py)
and BIRD installs them (/32, /128 per VIP, ECMP when several nodes tie). The static way
(`--static-routes`, and every scenario with a resilient group, which BIRD cannot
program): nexthop objects id N (IPv4) and 10+N (IPv6) for lbN, groups 100 (IPv4) and
110 (IPv6) for ECMP, and one route per VIP prefix.

Namespaces outside the sites (the private Tor network): `Lab.add_client_ns()` links one
more namespace to the router's client side, 172.18.INDEX.0/24 and fd00:18:INDEX::/64.
"""
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(LAB_DIR)
BUILD = os.path.join(ROOT, "build")
FLOWPIN = os.path.join(BUILD, "flowpin")
# The same flowpin with another build of its XDP program (Makefile REBUILT): lb-upgrade.
FLOWPIN_REBUILT = os.path.join(BUILD, "flowpin-rebuilt")
FPCLIENT = os.path.join(BUILD, "lab", "fpclient")
FPQUIC = os.path.join(BUILD, "lab", "fpquic")
EMPTY_XDP = os.path.join(BUILD, "bpf", "empty.bpf.o")

LB_NODES = ["lb1", "lb2", "lb3"]  # site a (every lab)
BACKENDS = ["b1", "b2", "b3", "b4", "b5"]
# Site b, the second site (pop) of the two-site lab (`sites: 2`): its own
# fabric, LB nodes and backends. Names and backend ids are fleet-wide: a ticket or a
# QUIC-LB server ID names one backend of the whole fleet.
LB_NODES_B = ["lb4", "lb5"]
BACKENDS_B = ["b6", "b7"]
ALL_LB_NODES = LB_NODES + LB_NODES_B
ALL_BACKENDS = BACKENDS + BACKENDS_B
SITES = ["a", "b"]
SITE_LB_NODES = {"a": LB_NODES, "b": LB_NODES_B}
SITE_BACKENDS = {"a": BACKENDS, "b": BACKENDS_B}
# Per site: the fabric's IPv4 /24 and IPv6 /64 prefixes (the router is .1, the site's
# gateway to the inter-site link .9, lbN .1N, bN .2N) and the MACs' fifth octet.
SITE_NET = {"a": ("10.99.0", "fd00:99::", 0), "b": ("10.98.0", "fd00:98::", 1)}
# The link between the sites (gw-a <-> gw-b), the cross-site hop's path.
INTERSITE_NET = ("10.97.0", "fd00:97::")
N_SOURCES = 32  # client source addresses per family
# >= 1500 + 2 x FP_MAX_ENCAP_OVERHEAD (92): clients keep 1500; a cross-site hop may carry
# a second encapsulation, so every fabric and the inter-site link have room
# for two.
FABRIC_MTU = 1700
ENCAP_PORT = 6080
HASH_KEY = "0123456789abcdef0123456789abcdef"
# The LB nodes' health checks (docs/config.md "health"), fleet-wide: faster than GLB's
# defaults (2 s, 1 s, 3, 3) so a scenario sees a backend leave within seconds. tcp sees
# nginx die; tunnel (reflected by the backend agent) sees the agent go.
HEALTH = {"interval_ms": 1000, "timeout_ms": 500, "rise": 2, "fall": 2,
          "checks": ["{kind: tcp}", "{kind: tunnel}"]}


def health_bound(h=HEALTH):
    """Seconds from a backend's failure until its checkers call it down, at most: the
    first failing round starts within one interval, `fall` rounds in all, the last one
    may wait for its timeout."""
    return (h["fall"] * h["interval_ms"] + h["timeout_ms"]) / 1000.0

# One VIP per pinning mode; the IPv6 pair covers the extremes. A mode is a pinning
# mode, or "full+ticket": `pinning: full` with `tickets: {}` (TCP connection tickets,
# docs/backend.md; TICKET_MODES).
VIPS = [
    # name, mode, address
    ("none", "none", "10.100.0.1"),
    ("table", "table", "10.100.0.2"),
    ("hash", "hash", "10.100.0.3"),
    ("hash+table", "hash+table", "10.100.0.4"),
    ("full", "full", "10.100.0.5"),
    ("none/v6", "none", "fd00:100::1"),
    ("full/v6", "full", "fd00:100::5"),
    ("full+ticket", "full+ticket", "10.100.0.6"),
]
MODES = ["none", "table", "hash", "hash+table", "full", "full+ticket"]
TICKET_MODES = {"full+ticket": "full"}  # mode -> its VIP's pinning (with tickets: {})

# The client without TCP timestamps (Windows' default): Linux has no per-socket switch,
# net.ipv4.tcp_timestamps is per namespace, so it is a second client namespace behind
# the router (tcp_timestamps=0). Its flows go to the ticket VIP only and are a column of
# their own, which gets no ticket and must behave like `full`: its expectation is
# `full`'s (COLUMNS).
NOTS_CLIENT = "client-nots"
NOTS_VIP = "full+ticket"
NOTS_COLUMN = "full+ticket/no-ts"
# The survival table's columns: (name, the mode whose expectation applies)
COLUMNS = [(name, mode) for name, mode, _ in VIPS] + [(NOTS_COLUMN, "full")]


def vip_pinning(mode):
    """The config's `pinning` of a VIP of this mode, and whether it has tickets."""
    return TICKET_MODES.get(mode, mode), mode in TICKET_MODES

# QUIC (lab/fpquic.c, UDP port 443): the modes that can keep a connection, each without
# and with QUIC-LB connection IDs. A QUIC scenario's columns and `expect:` keys are these
# names. The QUIC-LB VIPs' server IDs are quic_lb_server_id(backend id).
QUIC_PORT = 443
QUIC_LB = {"config_id": 1, "server_id_len": 2, "nonce_len": 6}  # plaintext CIDs, 9 octets
QUIC_VIPS = [
    # name, pinning, address, QUIC-LB config (None: random CIDs, 4-tuple routing only)
    ("hash/quic", "hash", "10.100.0.13", None),
    ("hash+table/quic", "hash+table", "10.100.0.14", None),
    ("full/quic", "full", "10.100.0.15", None),
    ("hash/quic-lb", "hash", "10.100.0.23", QUIC_LB),
    ("hash+table/quic-lb", "hash+table", "10.100.0.24", QUIC_LB),
    ("full/quic-lb", "full", "10.100.0.25", QUIC_LB),
]
QUIC_COLUMNS = [name for name, _, _, _ in QUIC_VIPS]
# The anycast resolver VIP, UDP port 53: dnsmasq on every backend answers for the
# lab's names (lab/tor.py: Tor's exit relay resolves the website through it). Hash
# pinning: a query and its answer are one datagram each, any backend answers alike.
DNS_VIP = ("dns", "hash", "10.100.0.53")
DNS_PORT = 53
# Every VIP the LB nodes serve and announce: (name, pinning, address).
ALL_VIPS = (VIPS + [(name, pinning, addr) for name, pinning, addr, _ in QUIC_VIPS] +
            [DNS_VIP])
# Tor scenarios (traffic.tor, lab/tor.py): downloads through the lab's Tor network to
# each IPv4 VIP (the exit relay is IPv4), expected by mode; and the exit relay's DNS
# queries to the resolver VIP (tor-dns events), expected as `dns`.
TOR_DNS_COLUMN = "tor/dns"
TOR_COLUMNS = [("tor/" + name, mode) for name, mode, addr in VIPS if ":" not in addr] + \
    [(TOR_DNS_COLUMN, "dns")]
TOR_EXPECT_KEYS = MODES + ["dns"]


def quic_lb_server_id(backend_id, cfg=QUIC_LB):
    """Backend bN's QUIC-LB server ID, in hex: 0xb0 then N, server_id_len octets."""
    return ("b0" + "%02x" % backend_id).rjust(2 * cfg["server_id_len"], "0")


def quic_server_vips(backend_id):
    """fpquic server --vip arguments for backend bN: every QUIC VIP, with its QUIC-LB
    config and bN's server ID where it has one."""
    out = []
    for _, _, addr, lb in QUIC_VIPS:
        arg = "%s:%d" % (addr, QUIC_PORT)
        if lb:
            arg += "/quic-lb=%d,%s,%d" % (lb["config_id"], quic_lb_server_id(backend_id, lb),
                                          lb["nonce_len"])
            if lb.get("key"):
                arg += "," + lb["key"]
        out.append(arg)
    return out


def node_index(name):
    return int(name[-1])


def site_of(name):
    """The site of a node: lb4, lb5, b6, b7 and gw-b are site b's, the others a's (the
    router is on both fabrics: a's unless asked for another site's address)."""
    return "b" if name in LB_NODES_B or name in BACKENDS_B or name == "gw-b" else "a"


def _host(name):
    if name == "router":
        return "1"
    if name.startswith("gw-"):
        return "9"
    return "%d%d" % (1 if name.startswith("lb") else 2, node_index(name))


def fabric_v4(name, site=None):
    """The node's address on its site's fabric (the router's on `site`'s)."""
    return "%s.%s" % (SITE_NET[site or site_of(name)][0], _host(name))


def fabric_v6(name, site=None):
    return "%s%s" % (SITE_NET[site or site_of(name)][1], _host(name))


def fabric_mac(name, site=None):
    return "02:f0:00:00:%02x:%s" % (SITE_NET[site or site_of(name)][2], _host(name).rjust(2, "0"))


def fabric_prefixes(site):
    """The site's fabric prefixes, ("10.99.0.0/24", "fd00:99::/64") for a."""
    v4, v6, _ = SITE_NET[site]
    return v4 + ".0/24", v6 + "/64"


def router_dev(site):
    """The router's interface on the site's fabric."""
    return "eth0" if site == "a" else "eth1"


def client_sources():
    v4 = ["172.16.1.%d" % i for i in range(1, N_SOURCES + 1)]
    v6 = ["fd00:16::1:%x" % i for i in range(1, N_SOURCES + 1)]
    return v4, v6


def nots_sources():
    """The source addresses of the client without timestamps (IPv4 only)."""
    return ["172.17.1.%d" % i for i in range(1, N_SOURCES + 1)]


def lb_counter_names():
    """The LB's counter names (FP_COUNTERS in include/flowpin/maps.h, as `flowpin lb
    stats` prints them): what a scenario's `counters:` may name."""
    with open(os.path.join(ROOT, "include", "flowpin", "maps.h")) as f:
        return set(re.findall(r'X\(\s*[A-Z0-9_]+\s*,\s*"([a-z0-9_]+)"', f.read()))


def kill_netns_pids(ns):
    """Ends what the lab started in one of its namespaces and is still there (a
    namespace deleted under a running nginx would leave the process behind)."""
    r = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


class LabError(Exception):
    pass


class PidProc:
    """A process of a kept lab that another run of lab/run started (lab/ctl): the
    little of subprocess.Popen that Lab.stop() and Lab.running() use, by pid."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state not in ("Z", "X"):
                return None
        except (OSError, IndexError):
            pass
        self.returncode = -1
        return self.returncode

    def send_signal(self, sig):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("pid %d" % self.pid, timeout)
            time.sleep(0.05)
        return self.returncode


RUN_DIR_PREFIX = "/run/flowpin-lab-"
LAB_ID_RE = re.compile(r"^[a-z][a-z0-9]{1,15}$")


def run_dir(ident):
    """The run dir of lab `ident`; its namespaces are named `ident-NODE`."""
    return RUN_DIR_PREFIX + ident


def valid_id(ident):
    return bool(LAB_ID_RE.match(ident))


def log(msg):
    print("lab: %s" % msg, file=sys.stderr, flush=True)


class Lab:
    def __init__(self, keep=False, verbose=False, ident=None, sites=1):
        # A caller that must clean up after a runner killed hard picks the id (--id).
        self.id = ident or "fl" + secrets.token_hex(4)
        self.dir = run_dir(self.id)
        self.dir_created = False  # never remove a run dir this runner did not create
        self.bpffs = os.path.join(self.dir, "bpf")
        self.keep = keep
        self.verbose = verbose
        self.namespaces = []  # created, in order
        self.procs = {}  # key -> (Popen, log file)
        self.bpffs_mounted = False
        self.nh_group_type = None
        self.route_nodes = []  # LB nodes the VIP routes point at now
        self.bgp = None  # lab/bgp.py's Bgp once start_bgp() ran: routes come from BIRD
        self.tor = None  # lab/tor.py's TorNet once start_tor() ran
        self.static_routes = False  # the static VIP prefix routes are in place
        self.flowpin, self.fpclient, self.empty_xdp = FLOWPIN, FPCLIENT, EMPTY_XDP
        self.fpquic = FPQUIC
        self.flowpin_rebuilt = None  # set by up() when the build has it
        self.client_links = {}  # add_client_ns(): name -> its addresses
        # sites=2: the two-site lab (site b beside a, the inter-site link)
        self.sites = SITES[:sites]
        self.lb_nodes = [n for x in self.sites for n in SITE_LB_NODES[x]]
        self.backends = [n for x in self.sites for n in SITE_BACKENDS[x]]

    # ---------------------------------------------------------------- helpers
    def ns(self, name):
        return "%s-%s" % (self.id, name)

    def sh(self, *argv, check=True, ns=None):
        """Runs a command (in a namespace when ns is set); raises LabError on failure."""
        cmd = list(argv)
        if ns:
            cmd = ["ip", "netns", "exec", self.ns(ns)] + cmd
        if self.verbose:
            log("+ " + " ".join(cmd))
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check and r.returncode != 0:
            raise LabError("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd),
                                                            (r.stderr or r.stdout).strip()))
        return r.stdout

    def ip(self, node, *args, check=True):
        return self.sh("ip", "-n", self.ns(node), *args, check=check)

    def sysctl(self, node, *settings):
        for s in settings:
            self.sh("sysctl", "-qw", s, ns=node)

    def start(self, key, node, argv, log_name=None):
        """Starts a long-running program in a namespace, output to a log in the run dir."""
        path = os.path.join(self.dir, "logs", (log_name or key) + ".log")
        f = open(path, "ab")
        cmd = ["ip", "netns", "exec", self.ns(node)] + argv
        if self.verbose:
            log("+ " + " ".join(cmd) + " &")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs[key] = (p, f, path)
        return p

    def stop(self, key, sig=signal.SIGTERM, timeout=5):
        entry = self.procs.pop(key, None)
        if not entry:
            return
        p, f, _ = entry
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if f:
            f.close()

    def running(self, key):
        entry = self.procs.get(key)
        return entry is not None and entry[0].poll() is None

    def log_tail(self, key, lines=15):
        entry = self.procs.get(key)
        path = entry[2] if entry else os.path.join(self.dir, "logs", key + ".log")
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    # ---------------------------------------------------------------- topology
    def up(self):
        for tool in (FLOWPIN, FPCLIENT, FPQUIC):
            if not os.access(tool, os.X_OK):
                raise LabError("%s missing: run 'make' first" % tool)
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, XDP)")
        # Claim the id first (mkdir fails if another lab has it), then name the owner at
        # once: `lab/run --cleanup` tells a live lab from an abandoned one by this pid.
        try:
            os.mkdir(self.dir, 0o755)
        except FileExistsError:
            raise LabError("lab %s exists already (%s): another run, or a --keep lab "
                           "(lab/run --cleanup %s removes it)" % (self.id, self.dir, self.id))
        self.dir_created = True
        with open(os.path.join(self.dir, "owner"), "w") as f:
            f.write("%d\n" % os.getpid())
        os.makedirs(os.path.join(self.dir, "logs"))
        # Private copies: a teammate's `make` relinking build/flowpin mid-run must not
        # pull the program out from under a scenario.
        bindir = os.path.join(self.dir, "bin")
        os.makedirs(bindir)
        for attr, src in (("flowpin", FLOWPIN), ("fpclient", FPCLIENT), ("fpquic", FPQUIC),
                          ("empty_xdp", EMPTY_XDP), ("flowpin_rebuilt", FLOWPIN_REBUILT)):
            if os.path.exists(src):
                dst = os.path.join(bindir, os.path.basename(src))
                shutil.copy2(src, dst)
                setattr(self, attr, dst)
        os.makedirs(os.path.join(self.dir, "www"))
        os.makedirs(self.bpffs)
        # One bpffs per run, outside /sys: 'ip netns exec' remounts /sys, so a pin
        # under /sys/fs/bpf would not be seen by the next command in the namespace.
        self.sh("mount", "-t", "bpf", "bpf", self.bpffs)
        self.bpffs_mounted = True
        log("bringing up lab %s (run dir %s)" % (self.id, self.dir))

        nodes = ["client", NOTS_CLIENT, "router"] + [self.fabric_ns(x) for x in self.sites]
        if len(self.sites) > 1:
            nodes += ["gw-" + x for x in self.sites]
        nodes += self.lb_nodes + self.backends
        for n in nodes:
            self.sh("ip", "netns", "add", self.ns(n))
            self.namespaces.append(n)
            self.ip(n, "link", "set", "lo", "up")
            # No duplicate address detection: addresses must work at once.
            self.sysctl(n, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")

        # client <-> router
        self.ip("client", "link", "add", "eth0", "type", "veth", "peer", "name", "eth-client",
                "netns", self.ns("router"))
        self.ip("client", "link", "set", "eth0", "up")
        # The client stands for remote clients, whose packets cross a real wire with
        # finished checksums: TX checksum offload off. (With it on, segments cross the
        # veth with only the pseudo-header sum filled in and the LB program finishes
        # them, counted as csum_completed: tests/lab/lb_client_stack.sh covers that.)
        self.sh("ethtool", "-K", "eth0", "tx", "off", ns="client")
        self.ip("router", "link", "set", "eth-client", "up")
        self.ip("client", "addr", "add", "172.16.0.2/16", "dev", "eth0")
        self.ip("client", "addr", "add", "fd00:16::2/64", "dev", "eth0", "nodad")
        v4, v6 = client_sources()
        batch = ["addr add %s/16 dev eth0" % a for a in v4]
        batch += ["addr add %s/64 dev eth0 nodad" % a for a in v6]
        self._batch("client", batch)
        self.ip("client", "route", "add", "default", "via", "172.16.0.1")
        self.ip("client", "-6", "route", "add", "default", "via", "fd00:16::1")
        self.ip("router", "addr", "add", "172.16.0.1/16", "dev", "eth-client")
        self.ip("router", "addr", "add", "fd00:16::1/64", "dev", "eth-client", "nodad")

        # client-nots <-> router: the client without TCP timestamps (NOTS_CLIENT)
        self.ip(NOTS_CLIENT, "link", "add", "eth0", "type", "veth", "peer", "name", "eth-nots",
                "netns", self.ns("router"))
        self.ip(NOTS_CLIENT, "link", "set", "eth0", "up")
        self.sh("ethtool", "-K", "eth0", "tx", "off", ns=NOTS_CLIENT)
        self.sysctl(NOTS_CLIENT, "net.ipv4.tcp_timestamps=0")
        self.ip("router", "link", "set", "eth-nots", "up")
        self.ip(NOTS_CLIENT, "addr", "add", "172.17.0.2/16", "dev", "eth0")
        self._batch(NOTS_CLIENT, ["addr add %s/16 dev eth0" % a for a in nots_sources()])
        self.ip(NOTS_CLIENT, "route", "add", "default", "via", "172.17.0.1")
        self.ip("router", "addr", "add", "172.17.0.1/16", "dev", "eth-nots")

        for site in self.sites:
            self.fabric_up(site)
        if len(self.sites) > 1:
            self.intersite_up()

        # router: on every site's fabric (eth0: a, eth1: b), the upstream of both
        self.sysctl("router", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                    "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1")
        for lb in self.lb_nodes:
            i, dev = node_index(lb), router_dev(site_of(lb))
            self.ip("router", "neigh", "replace", fabric_v4(lb), "lladdr", fabric_mac(lb), "dev",
                    dev, "nud", "permanent")
            self.ip("router", "neigh", "replace", fabric_v6(lb), "lladdr", fabric_mac(lb), "dev",
                    dev, "nud", "permanent")
            self.ip("router", "nexthop", "add", "id", str(i), "via", fabric_v4(lb), "dev", dev)
            self.ip("router", "nexthop", "add", "id", str(10 + i), "via", fabric_v6(lb), "dev",
                    dev)

        # LB nodes: forwarding on (bpf_fib_lookup refuses to answer otherwise) and
        # permanent neighbours, so the first packet to a backend needs no ARP round.
        for lb in self.lb_nodes:
            self.sysctl(lb, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
            self.lb_network(lb)

        # backends: replies go straight back to the client through the router (DSR)
        for b in self.backends:
            site = site_of(b)
            r4, r6, mac = fabric_v4("router", site), fabric_v6("router", site), \
                fabric_mac("router", site)
            self.ip(b, "route", "add", "default", "via", r4)
            self.ip(b, "-6", "route", "add", "default", "via", r6)
            self.ip(b, "neigh", "replace", r4, "lladdr", mac, "dev", "eth0", "nud", "permanent")
            self.ip(b, "neigh", "replace", r6, "lladdr", mac, "dev", "eth0", "nud", "permanent")
        log("topology up: client, router, %s" % "; ".join(
            "site %s: %s, %s" % (site, " ".join(SITE_LB_NODES[site]), " ".join(SITE_BACKENDS[site]))
            for site in self.sites) + ("; inter-site link gw-a <-> gw-b (MTU %d)" % FABRIC_MTU
                                       if len(self.sites) > 1 else ""))

    @staticmethod
    def fabric_ns(site):
        return "fabric" if site == "a" else "fabric-" + site

    def fabric_up(self, site):
        """The site's fabric: one bridge, one port per router/LB/backend (and the site's
        gateway to the inter-site link in the two-site lab), named after the node."""
        fab = self.fabric_ns(site)
        self.ip(fab, "link", "add", "br0", "mtu", str(FABRIC_MTU), "type", "bridge")
        self.ip(fab, "link", "set", "br0", "up")
        members = ["router"] + SITE_LB_NODES[site] + SITE_BACKENDS[site]
        if len(self.sites) > 1:
            members.append("gw-" + site)
        for n in members:
            dev = router_dev(site) if n == "router" else "eth0"
            self.ip(fab, "link", "add", n, "mtu", str(FABRIC_MTU), "type", "veth", "peer",
                    "name", dev, "netns", self.ns(n), "mtu", str(FABRIC_MTU))
            self.ip(fab, "link", "set", n, "master", "br0", "up")
            self.ip(n, "link", "set", dev, "address", fabric_mac(n, site), "up")
            self.ip(n, "addr", "add", fabric_v4(n, site) + "/24", "dev", dev)
            self.ip(n, "addr", "add", fabric_v6(n, site) + "/64", "dev", dev, "nodad")
        if len(self.sites) > 1:
            # The gateway forwards onto this fabric only cross-site hops toward this
            # site, so its MAC ages out of the bridge (300 s) while the LB nodes' ARP
            # entries for it live on: every hop out was then flooded to the other LB
            # nodes, whose XDP counted it pop_drop_source (a frame for another MAC).
            # Pinned, as a switch's static entry for a router port would be.
            gw = "gw-" + site
            self.sh("bridge", "fdb", "replace", fabric_mac(gw, site), "dev", gw, "master",
                    "static", ns=fab)
        # veth pitfall: native XDP_TX on lbN's eth0 hands frames to its peer, which drops
        # them silently unless the peer runs NAPI: an XDP program (XDP_PASS) does that.
        for n in SITE_LB_NODES[site]:
            if os.path.exists(self.empty_xdp):
                self.ip(fab, "link", "set", "dev", n, "xdp", "obj", self.empty_xdp, "sec", "xdp")
            else:
                self.sh("ethtool", "-K", n, "gro", "on", ns=fab)

    def intersite_up(self):
        """The link between the sites: gw-a (on a's fabric) <-> gw-b (on b's), a veth
        pair `dci` with INTERSITE_NET, MTU FABRIC_MTU (two encapsulations fit). Each
        gateway routes the other site's fabric over it; the LB nodes route the other
        site's fabric via their gateway (lb_network), so a cross-site hop never crosses
        the router."""
        v4, v6 = INTERSITE_NET
        self.ip("gw-a", "link", "add", "dci", "mtu", str(FABRIC_MTU), "type", "veth", "peer",
                "name", "dci", "netns", self.ns("gw-b"), "mtu", str(FABRIC_MTU))
        for gw, me, other, far in (("gw-a", 1, 2, "b"), ("gw-b", 2, 1, "a")):
            self.sysctl(gw, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                        "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
            self.ip(gw, "link", "set", "dci", "up")
            self.ip(gw, "addr", "add", "%s.%d/30" % (v4, me), "dev", "dci")
            self.ip(gw, "addr", "add", "%s%d/64" % (v6, me), "dev", "dci", "nodad")
            p4, p6 = fabric_prefixes(far)
            self.ip(gw, "route", "add", p4, "via", "%s.%d" % (v4, other))
            self.ip(gw, "-6", "route", "add", p6, "via", "%s%d" % (v6, other))

    # ---------------------------------------------------------------- client side
    def add_client_ns(self, name, index=None, tx_offload=False):
        """Adds a namespace on the client side of the router, as the client's: the hook
        for whatever stands outside the sites (the private Tor network's authorities,
        relays, exit and Tor client: one call per namespace, each its own link).

        Namespace `ID-NAME` (NAME: 1-11 of a-z 0-9 -, not a node of the lab) with one
        link `eth0` (MTU 1500, like the client's) to the router, whose end is named
        `c-NAME`. Link INDEX (1..254; default: the lowest free one, so the same calls
        in the same order give the same addresses) has 172.18.INDEX.0/24 and
        fd00:18:INDEX::/64: the namespace is .2 / ::2, the router .1 / ::1, which is
        the namespace's default route (both families). The router forwards between
        these links, the client's, and both sites, so such namespaces reach each other
        and every VIP (the VIPs' replies come back through the router: DSR); nothing
        reaches the host. TX checksum offload is off as on the client (remote hosts),
        unless tx_offload. Call it after `up()`, before or after BGP and scenarios;
        `down()` and `lab/run --cleanup` remove it with the rest, and processes
        started in it with `self.start(KEY, NAME, argv)` end with the lab.

        Returns {"ns": namespace, "dev": "eth0", "v4": address, "v6": address,
        "gw4": router, "gw6": router, "index": INDEX}."""
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,10}$", name):
            raise LabError("add_client_ns: bad name %r (1-11 of a-z 0-9 -)" % name)
        if name in self.namespaces or name in self.client_links:
            raise LabError("add_client_ns: %s exists already" % name)
        used = {v["index"] for v in self.client_links.values()}
        if index is None:
            index = min(set(range(1, 255)) - used)
        if not 1 <= index <= 254 or index in used:
            raise LabError("add_client_ns: index %r taken or outside 1..254" % (index,))
        v4, gw4 = "172.18.%d.2" % index, "172.18.%d.1" % index
        v6, gw6 = "fd00:18:%x::2" % index, "fd00:18:%x::1" % index
        peer = "c-" + name
        self.sh("ip", "netns", "add", self.ns(name))
        self.namespaces.append(name)
        self.ip(name, "link", "set", "lo", "up")
        self.sysctl(name, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        self.ip(name, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns",
                self.ns("router"))
        self.ip(name, "link", "set", "eth0", "up")
        if not tx_offload:
            self.sh("ethtool", "-K", "eth0", "tx", "off", ns=name)
        self.ip(name, "addr", "add", v4 + "/24", "dev", "eth0")
        self.ip(name, "addr", "add", v6 + "/64", "dev", "eth0", "nodad")
        self.ip("router", "link", "set", peer, "up")
        self.ip("router", "addr", "add", gw4 + "/24", "dev", peer)
        self.ip("router", "addr", "add", gw6 + "/64", "dev", peer, "nodad")
        self.ip(name, "route", "add", "default", "via", gw4)
        self.ip(name, "-6", "route", "add", "default", "via", gw6)
        info = {"ns": self.ns(name), "dev": "eth0", "v4": v4, "v6": v6, "gw4": gw4,
                "gw6": gw6, "index": index}
        self.client_links[name] = info
        return info

    def add_edge_node(self, name, index):
        """add_client_ns(name, index), returning only its IPv4 address 172.18.INDEX.2
        (the private Tor network's nodes use this form)."""
        return self.add_client_ns(name, index)["v4"]

    def lb_network(self, lb):
        """Addresses, default routes and permanent neighbour entries (router and every
        backend of its site) of an LB node; in the two-site lab also the route to the
        other site's fabric via its site's gateway (the inter-site link). Called again
        whenever the node's link comes back up: a link going down removes its IPv6
        addresses, the routes through it and even permanent neighbour entries, and the
        XDP program cannot resolve a neighbour."""
        site = site_of(lb)
        batch = ["addr replace %s/24 dev eth0" % fabric_v4(lb),
                 "addr replace %s/64 dev eth0 nodad" % fabric_v6(lb),
                 "route replace default via %s" % fabric_v4("router", site),
                 "route replace ::/0 via %s" % fabric_v6("router", site)]
        peers = ["router"] + SITE_BACKENDS[site]
        if len(self.sites) > 1:
            peers.append("gw-" + site)
            for far in self.sites:
                if far != site:
                    p4, p6 = fabric_prefixes(far)
                    batch += ["route replace %s via %s" % (p4, fabric_v4("gw-" + site)),
                              "route replace %s via %s" % (p6, fabric_v6("gw-" + site))]
        for peer in peers:
            for addr in (fabric_v4(peer, site), fabric_v6(peer, site)):
                batch.append("neigh replace %s lladdr %s dev eth0 nud permanent" %
                             (addr, fabric_mac(peer, site)))
        self._batch(lb, batch)

    def _batch(self, node, lines):
        path = os.path.join(self.dir, "batch-%s.txt" % node)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.sh("ip", "-n", self.ns(node), "-batch", path)

    def down(self):
        if not self.dir_created:
            return  # nothing of ours: the id was taken, or up() never started
        if self.keep:
            # The marker keeps `lab/run --cleanup` without an id (and the callers'
            # --cleanup-abandoned) away from it: only its id removes it.
            with open(os.path.join(self.dir, "kept"), "w") as f:
                f.write("%d\n" % os.getpid())
            log("--keep: lab %s left up; remove it with: %s/lab/run --cleanup %s" %
                (self.id, ROOT, self.id))
            return
        for key in list(self.procs):
            try:
                self.stop(key)
            except Exception as e:  # keep tearing down whatever happens
                log("stopping %s: %s" % (key, e))
        for n in reversed(self.namespaces):
            kill_netns_pids(self.ns(n))
            subprocess.run(["ip", "netns", "del", self.ns(n)], stderr=subprocess.DEVNULL)
        self.namespaces = []
        if self.bpffs_mounted:
            subprocess.run(["umount", self.bpffs], stderr=subprocess.DEVNULL)
            self.bpffs_mounted = False
        if os.path.isdir(self.dir):
            # Keep the logs of the last run for a post-mortem, outside the run dir.
            last = os.path.join(BUILD, "lab-logs")
            shutil.rmtree(last, ignore_errors=True)
            try:
                shutil.copytree(os.path.join(self.dir, "logs"), last)
            except OSError:
                pass
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------------- nginx
    def content_file(self, size, seed):
        name = "data-%d-%d.bin" % (size, seed)
        path = os.path.join(self.dir, "www", name)
        if not os.path.exists(path):
            self.sh(self.fpclient, "gen", "--size", str(size), "--seed", str(seed), "--out", path)
        return "/" + name

    def start_nginx(self, backends=None):
        backends = backends or self.backends
        for b in backends:
            d = os.path.join(self.dir, "nginx-" + b)
            os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF % {"dir": d, "www": os.path.join(self.dir, "www"), "name": b})
            self.start("nginx-" + b, b, ["nginx", "-e", os.path.join(d, "error.log"), "-c", conf])
        self.wait_for(lambda: all(":80 " in self.sh("ss", "-Htln", ns=b) for b in backends),
                      "nginx listening on every backend", lambda: self.log_tail("nginx-b1"))

    def start_quic(self, backends=None):
        """fpquic server on every backend: every QUIC VIP (lab/fpquic.c), DSR like nginx."""
        backends = backends or self.backends
        for b in backends:
            argv = [self.fpquic, "server", "--name", b]
            for v in quic_server_vips(node_index(b)):
                argv += ["--vip", v]
            self.start("quic-" + b, b, argv)
        port = ":%d " % QUIC_PORT
        self.wait_for(lambda: all(port in self.sh("ss", "-Huln", ns=b) for b in backends),
                      "fpquic server listening on every backend", lambda: self.log_tail("quic-b1"))

    def kill_nginx(self, b):
        """nginx on backend b dies: master and workers, SIGKILL (killing the master
        alone leaves its workers serving)."""
        self.stop("nginx-" + b, sig=signal.SIGKILL)
        r = subprocess.run(["ip", "netns", "pids", self.ns(b)], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        for pid in r.stdout.split():
            try:
                with open("/proc/%s/comm" % pid) as f:
                    if f.read().strip() == "nginx":
                        os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        self.wait_for(lambda: ":80 " not in self.sh("ss", "-Htln", ns=b),
                      "nginx on %s to be gone" % b)

    def wait_for(self, cond, what, why=lambda: "", timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        raise LabError("timed out waiting for %s\n%s" % (what, why()))

    # ---------------------------------------------------------------- routes
    def start_bgp(self):
        """BIRD on the router and every LB node; from now on routes come from BGP,
        except for resilient groups (set_route)."""
        import bgp  # only the BGP lab needs it
        self.bgp = bgp.Bgp(self)
        self.bgp.start()

    def start_tor(self):
        """The lab's Tor network (lab/tor.py): starts bootstrapping, returns at once."""
        import tor  # only Tor scenarios need it
        self.tor = tor.TorNet(self)
        self.tor.start()

    def bgp_routed(self, group="hash-threshold"):
        """Whether routes with this group type come from BGP: in the BGP lab, unless
        the group is resilient (BIRD installs plain multipath routes, hash-threshold)."""
        return self.bgp is not None and group != "resilient"

    def clear_static_routes(self):
        if not self.static_routes:
            return
        self.ip("router", "route", "del", "10.100.0.0/24", check=False)
        self.ip("router", "-6", "route", "del", "fd00:100::/64", check=False)
        for gid in ("100", "110"):
            self.ip("router", "nexthop", "del", "id", gid, check=False)
        self.nh_group_type = None
        self.static_routes = False

    def set_route(self, nodes, group="hash-threshold", static=False, scope=None):
        """Points the VIP routes at one LB node, or at an ECMP group of several. BGP
        (unless `static` or a resilient group): those nodes announce every VIP, the
        others withdraw them; returns the seconds until the router's kernel routes
        showed it. Static: returns 0."""
        for n in nodes:
            if n not in self.lb_nodes:
                raise LabError("no LB node %r" % n)
        if not static and self.bgp_routed(group):
            self.clear_static_routes()
            t = time.monotonic()
            self.bgp.set_announcers(nodes, scope=scope)
            took = self.bgp.converge(since=t)
            self.route_nodes = list(nodes)
            return took
        if self.bgp is not None and self.bgp.expected_fib():
            self.bgp.set_announcers([])  # no BGP route may shadow the static prefixes
            self.bgp.converge()
        self.static_routes = True
        if len(nodes) == 1:
            i = node_index(nodes[0])
            self.ip("router", "route", "replace", "10.100.0.0/24", "nhid", str(i))
            self.ip("router", "-6", "route", "replace", "fd00:100::/64", "nhid", str(10 + i))
        else:
            for base, gid in ((0, 100), (10, 110)):
                members = "/".join(str(base + node_index(n)) for n in nodes)
                args = ["group", members]
                if group == "resilient":
                    # Buckets move to a new member only after idling this long, so
                    # flows already on a bucket stay on their LB node.
                    args += ["type", "resilient", "buckets", "64", "idle_timer", "30"]
                if self.nh_group_type == group:
                    self.ip("router", "nexthop", "replace", "id", str(gid), *args)
                else:
                    self.ip("router", "nexthop", "del", "id", str(gid), check=False)
                    self.ip("router", "nexthop", "add", "id", str(gid), *args)
            self.nh_group_type = group
            self.ip("router", "route", "replace", "10.100.0.0/24", "nhid", "100")
            self.ip("router", "-6", "route", "replace", "fd00:100::/64", "nhid", "110")
        self.route_nodes = list(nodes)
        return 0.0

    def reset_routes(self):
        """Static: routes straight to lb1, no group left behind (a scenario sets its
        own)."""
        self.set_route(["lb1"], static=True)
        for gid in ("100", "110"):
            self.ip("router", "nexthop", "del", "id", gid, check=False)
        self.nh_group_type = None


NGINX_CONF = """# generated by lab/lablib.py for one backend of one lab run
worker_processes 1;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path %(dir)s/tmp/body;
    proxy_temp_path %(dir)s/tmp/proxy;
    fastcgi_temp_path %(dir)s/tmp/fastcgi;
    uwsgi_temp_path %(dir)s/tmp/uwsgi;
    scgi_temp_path %(dir)s/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    # Long idle periods between Range requests must not close the connection.
    keepalive_timeout 600s;
    keepalive_requests 10000;
    server {
        listen 80 backlog=4096;
        listen [::]:80 ipv6only=on backlog=4096;
        root %(www)s;
        # Which backend served a flow: the client records it (backend-remove counts
        # the removed backend's flows apart).
        add_header X-Backend %(name)s always;
        location / {
            # The client asks for its rate (?rate=BYTES_PER_SECOND), so transfers
            # outlive the events of a scenario.
            limit_rate $arg_rate;
        }
    }
}
"""
