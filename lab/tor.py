# SPDX-License-Identifier: MIT
"""A private Tor network inside the lab, from Debian's `tor` package (docs/lab.md "Tor").

    tor-a1 tor-a2 tor-a3   directory authorities (and relays: guard or middle)
    tor-r1                 a relay (guard or middle), no exit
    tor-exit               the one exit relay: exits only to the VIPs' port 80, resolves
                           names through the anycast resolver VIP (dnsmasq on the backends)
    tor-client             a Tor client (SOCKS on 127.0.0.1:9050) and curl

Each is a namespace of its own on the client side of the router (Lab.add_edge_node):
the relays talk to each other through the router, and the exit reaches the website on
a VIP as any client does, through the router and flowpin's LB nodes; the backends'
replies come straight back (DSR).

A testing network (`TestingTorNetwork 1`): private addresses allowed, reachability
assumed, the authorities' keys made here with `tor-gencert` and every relay's identity
read with `tor --list-fingerprint`, votes every 10 s (5 s for the first), so the network
bootstraps within seconds instead of hours. Every process runs in the foreground under
the runner, its data directory in the lab's run dir (`tor/NODE`), its log in the run
dir's logs (`tor-NODE.log`; the client's info-level log `tor-client-info.log`, which
records how each stream ended). The runner's teardown ends them with the lab.
"""
import os
import re
import subprocess
import time

import lablib
from lablib import LabError, log

AUTHORITIES = ["tor-a1", "tor-a2", "tor-a3"]
RELAYS = AUTHORITIES + ["tor-r1", "tor-exit"]
EXIT = "tor-exit"
CLIENT = "tor-client"
NODES = RELAYS + [CLIENT]
EXIT_ROUTES = ["172.18.0.0/16", "10.100.0.0/24"]  # the Tor nodes, the IPv4 VIPs
OR_PORT = 5000
DIR_PORT = 7000
SOCKS_PORT = 9050
# A download through Tor is stalled after 5 s without a byte (fpclient's flows: 3 s):
# three relays, each a process on the loaded 2-core machine, can pause a stream.
STALL_S = 5
# How the Tor client logs a stream's end, "end cell (REASON) for stream N": the reasons
# of a download that finished (the exit's END_STREAM_REASON_DONE).
NORMAL_ENDS = ("closed normally", "done")
# The lab's names, answered by dnsmasq on every backend: MODE.vip.lab (and any name
# under it) is the VIP of that mode, e.g. full-ticket.vip.lab is 10.100.0.6.
DNS_DOMAIN = "vip.lab"
# Voting: the first round 5 s after start, then every 10 s; a vote and its signatures
# have 2 s each (their sum must stay under the interval, and both intervals must divide
# 30 minutes: tor(1) V3AuthVotingInterval).
VOTING = {"TestingV3AuthInitialVotingInterval": 5, "V3AuthVotingInterval": 10,
          "TestingV3AuthInitialVoteDelay": 2, "V3AuthVoteDelay": 2,
          "TestingV3AuthInitialDistDelay": 2, "V3AuthDistDelay": 2}


def edge_index(node):
    """The node's index for Lab.add_edge_node: 172.18.INDEX.2."""
    return 10 + NODES.index(node)


def address(node):
    return "172.18.%d.2" % edge_index(node)


def vip_hostname(vip_name):
    """The name the Tor client asks the exit for to reach a VIP, e.g. hash.vip.lab."""
    return "%s.%s" % (vip_name.replace("+", "-").replace("/", "-"), DNS_DOMAIN)


class TorNet:
    def __init__(self, lab):
        self.lab = lab
        self.dir = os.path.join(lab.dir, "tor")
        self.fingerprints = {}  # relay -> identity fingerprint (40 hex)
        self.v3idents = {}  # authority -> its authority certificate's fingerprint
        self.t_start = None
        self.bootstrap_s = None  # start to the client's "Bootstrapped 100%"
        self.first_fetch_s = None  # start to the first byte-exact fetch through the exit
        self.first_fetch_tries = 0

    def datadir(self, node):
        return os.path.join(self.dir, node)

    def client_log(self):
        return os.path.join(self.lab.dir, "logs", "tor-client-info.log")

    # ------------------------------------------------------------ set-up
    def start(self):
        """Namespaces, dnsmasq on the backends, keys, torrcs, every tor process. Returns
        at once: the network bootstraps while the rest of the lab comes up
        (wait_ready)."""
        for tool in ("tor", "tor-gencert", "dnsmasq"):
            if not any(os.access(os.path.join(d, tool), os.X_OK)
                       for d in ("/usr/bin", "/usr/sbin")):
                raise LabError("%s missing: scripts/deps.sh installs it (Debian's tor, "
                               "dnsmasq-base)" % tool)
        for node in NODES:
            self.lab.add_edge_node(node, edge_index(node))
        # The exit reaches the other Tor nodes and the VIPs, and nothing else: no
        # default route.
        gw = "172.18.%d.1" % edge_index(EXIT)
        self.lab.ip(EXIT, "route", "del", "default")
        for prefix in EXIT_ROUTES:
            self.lab.ip(EXIT, "route", "add", prefix, "via", gw)
        os.makedirs(self.dir, 0o700)
        self.start_dns(self.lab.backends)  # both sites' in the two-site lab
        for node in NODES:
            os.makedirs(os.path.join(self.datadir(node), "keys"), 0o700)
        for a in AUTHORITIES:
            self.make_authority_keys(a)
        for r in RELAYS:
            self.fingerprints[r] = self.relay_fingerprint(r)
        self.t_start = time.monotonic()
        self.wall_start = time.time()
        for node in NODES:
            path = os.path.join(self.datadir(node), "torrc")
            with open(path, "w") as f:
                f.write(self.torrc(node))
            self.lab.start("tor-" + node, node, ["tor", "-f", path])
        log("tor: %d authorities, %d relays (one exit), a client: starting" %
            (len(AUTHORITIES), len(RELAYS) - len(AUTHORITIES)))

    def make_authority_keys(self, a):
        """The authority's v3 keys and certificate (12 months), no passphrase."""
        keys = os.path.join(self.datadir(a), "keys")
        r = subprocess.run(
            ["tor-gencert", "--create-identity-key", "--passphrase-fd", "0", "-m", "12",
             "-a", "%s:%d" % (address(a), DIR_PORT),
             "-i", os.path.join(keys, "authority_identity_key"),
             "-s", os.path.join(keys, "authority_signing_key"),
             "-c", os.path.join(keys, "authority_certificate")],
            input="\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise LabError("tor-gencert for %s failed:\n%s" % (a, r.stdout))
        with open(os.path.join(keys, "authority_certificate")) as f:
            m = re.search(r"^fingerprint ([0-9A-F]{40})$", f.read(), re.M)
        if not m:
            raise LabError("tor-gencert for %s: no fingerprint in its certificate" % a)
        self.v3idents[a] = m.group(1)

    def relay_fingerprint(self, r):
        """Makes the relay's identity key in its data directory (tor --list-fingerprint)
        and returns its fingerprint."""
        out = subprocess.run(
            ["tor", "--ignore-missing-torrc", "-f", os.path.join(self.datadir(r), "none"),
             "--list-fingerprint", "--DataDirectory", self.datadir(r), "--ORPort",
             str(OR_PORT), "--Address", address(r), "--Nickname", nickname(r),
             "--ContactInfo", "lab@flowpin.test", "--ExitRelay", "0", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
        m = re.search(r"^%s ((?:[0-9A-F]{4} ?){10})$" % nickname(r), out, re.M)
        if not m:
            raise LabError("tor --list-fingerprint for %s:\n%s" % (r, out))
        return m.group(1).replace(" ", "")

    def torrc(self, node):
        lines = ["# generated by lab/tor.py: %s of a lab testing network" % node,
                 "TestingTorNetwork 1",
                 "DataDirectory %s" % self.datadir(node),
                 "Nickname %s" % nickname(node),
                 "RunAsDaemon 0",
                 "Log notice stdout",
                 "SafeLogging 0",
                 "ShutdownWaitLength 0",
                 # Every relay is reachable (no self-test round); a client builds
                 # circuits once it knows a quarter of the paths.
                 "AssumeReachable 1",
                 "PathsNeededToBuildCircuits 0.25",
                 "V3AuthNIntervalsValid 2",
                 # Flags the authorities would grant only after hours of uptime or
                 # measured bandwidth: every relay may be a guard, the exit is Exit.
                 "TestingDirAuthVoteGuard *",
                 "TestingDirAuthVoteExit %s" % self.fingerprints[EXIT],
                 "TestingMinExitFlagThreshold 0"]
        for a in AUTHORITIES:
            lines.append("DirAuthority %s orport=%d no-v2 v3ident=%s %s:%d %s" % (
                nickname(a), OR_PORT, self.v3idents[a], address(a), DIR_PORT,
                self.fingerprints[a]))
        if node == CLIENT:
            lines += ["SocksPort 127.0.0.1:%d" % SOCKS_PORT,
                      # How every stream ended ("end cell (REASON) for stream N"): info.
                      "Log info file %s" % self.client_log(),
                      ]
            return "\n".join(lines) + "\n"
        lines += ["SocksPort 0",
                  "Address %s" % address(node),
                  "ORPort %d" % OR_PORT,
                  "DirPort %d" % DIR_PORT,
                  "ContactInfo lab@flowpin.test"]
        if node in AUTHORITIES:
            lines += ["AuthoritativeDirectory 1", "V3AuthoritativeDirectory 1"]
            lines += ["%s %d" % kv for kv in VOTING.items()]
        if node == EXIT:
            lines += ["Log info file %s" % os.path.join(self.lab.dir, "logs",
                                                        "tor-exit-info.log"),
                      "ExitRelay 1",
                      "IPv6Exit 0",
                      # Port 80 to any address: the consensus sums an exit policy up as
                      # the ports open to (nearly) every public address, so a policy
                      # open to the VIPs alone reads "reject 1-65535" and clients never
                      # pick it. The exit's namespace has routes to the lab only
                      # (EXIT_ROUTES): nothing else is reachable from it.
                      "ExitPolicyRejectPrivate 0",
                      "ExitPolicy accept *:80",
                      "ExitPolicy reject *:*",
                      # Names resolved by the anycast resolver VIP, and no test of
                      # Internet names (there is no Internet here).
                      "ServerDNSResolvConfFile %s" % self.resolv_conf(),
                      "ServerDNSDetectHijacking 0",
                      "ServerDNSAllowNonRFC953Hostnames 1"]
        else:
            lines += ["ExitRelay 0", "ExitPolicy reject *:*"]
        return "\n".join(lines) + "\n"

    def resolv_conf(self):
        path = os.path.join(self.dir, "resolv.conf")
        if not os.path.exists(path):
            with open(path, "w") as f:
                # one try per 2 s, 3 tries: a query lost in a route change is retried
                f.write("nameserver %s\noptions timeout:2 attempts:3\n" % lablib.DNS_VIP[2])
        return path

    # ------------------------------------------------------------ the resolver
    def start_dns(self, backends=lablib.BACKENDS):
        """dnsmasq (Debian's dnsmasq-base: a resolver and DNS server in one small
        process, its answers given on the command line) on each of `backends`, answering on
        the resolver VIP, bound on lo by the backend agent, for MODE.vip.lab (and any
        name under it: a fresh name is a fresh query, never a cache hit). It answers
        from the address it was asked on (DSR); its log lists every query it got."""
        for b in backends:
            argv = ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--log-queries",
                    "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--user=root",
                    "--pid-file=%s" % os.path.join(self.dir, "dnsmasq-%s.pid" % b),
                    "--listen-address=%s" % lablib.DNS_VIP[2], "--bind-dynamic",
                    "--except-interface=eth0", "--port=%d" % lablib.DNS_PORT,
                    "--local-ttl=1"]
            for name, _, addr in lablib.VIPS:
                if ":" not in addr:
                    argv.append("--address=/%s/%s" % (vip_hostname(name), addr))
            self.lab.start("dns-" + b, b, argv)

    # ------------------------------------------------------------ readiness
    def wait_ready(self, probe_url, expect_path, timeout=120):
        """Waits for the client's "Bootstrapped 100%", then fetches probe_url through
        Tor until one fetch is byte-exact (the exit knows the website's name and reaches
        it). Both times are measured from start()."""
        deadline = time.monotonic() + timeout
        path = os.path.join(self.lab.dir, "logs", "tor-" + CLIENT + ".log")
        while self.bootstrap_s is None:
            for node in NODES:
                if not self.lab.running("tor-" + node):
                    raise LabError("tor on %s exited:\n%s" % (node, self.lab.log_tail(
                        "tor-" + node)))
            with open(path, errors="replace") as f:
                m = re.search(r"^\w+ \d+ (\d+):(\d+):([\d.]+) \[notice\] Bootstrapped 100%",
                              f.read(), re.M)
            if m:
                # from the log line's own time: the runner may look much later
                h, mi, sec = int(m.group(1)), int(m.group(2)), float(m.group(3))
                lt = time.localtime(self.wall_start)
                start = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + self.wall_start % 1
                self.bootstrap_s = (h * 3600 + mi * 60 + sec - start) % 86400
                break
            if time.monotonic() > deadline:
                raise LabError("the Tor client did not bootstrap in %d s:\n%s" % (
                    timeout, self.lab.log_tail("tor-" + CLIENT)))
            time.sleep(0.2)
        out = os.path.join(self.dir, "probe.bin")
        tries, last = 0, ""
        while True:
            tries += 1
            r = self.fetch(probe_url, out, max_time=15)
            if r["rc"] == 0 and same_content(out, expect_path) is None:
                self.first_fetch_s = time.monotonic() - self.t_start
                self.first_fetch_tries = tries
                break
            last = r["err"]
            if time.monotonic() > deadline:
                raise LabError("no fetch through Tor succeeded in %d s (%d tries), the last: "
                               "%s\nclient log:\n%s" % (timeout, tries, last,
                                                        self.lab.log_tail("tor-" + CLIENT)))
            time.sleep(1)
        log("tor: client bootstrapped %.1f s after start (its log); a byte-exact fetch "
            "through the exit %.1f s after start, at try %d" % (
                self.bootstrap_s, self.first_fetch_s, tries))

    # ------------------------------------------------------------ downloads
    def curl_argv(self, url, out, headers=None, max_time=60, stall=STALL_S):
        """curl for the client's namespace, through its SOCKS port; the exit resolves
        the name (socks5h). A download is stalled after `stall` s without a byte."""
        argv = ["curl", "-sS", "--socks5-hostname", "127.0.0.1:%d" % SOCKS_PORT,
                "-o", out, "--max-time", str(max_time), "--speed-limit", "1",
                "--speed-time", str(stall), "-w", "%{http_code} %{size_download}\\n"]
        if headers:
            argv += ["-D", headers]
        return argv + [url]

    def fetch(self, url, out, max_time=60):
        r = subprocess.run(["ip", "netns", "exec", self.lab.ns(CLIENT)] +
                           self.curl_argv(url, out, max_time=max_time),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return {"rc": r.returncode, "out": r.stdout, "err": r.stderr.strip()}

    def resolve(self, name, timeout=20):
        """tor-resolve in the client's namespace: the exit resolves `name` (a RESOLVE
        cell) through the resolver VIP. Returns (address or None, message)."""
        try:
            r = subprocess.run(["ip", "netns", "exec", self.lab.ns(CLIENT), "tor-resolve",
                                name, "127.0.0.1:%d" % SOCKS_PORT], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "no answer in %d s" % timeout
        out = r.stdout.strip()
        if r.returncode == 0 and re.match(r"^\d+\.\d+\.\d+\.\d+$", out):
            return out, out
        return None, " / ".join(out.splitlines()) or "tor-resolve exit %d" % r.returncode

    def stream_ends(self, offset=0):
        """How the client saw streams end since `offset` of its info log: {reason: n}
        from its "end cell (REASON) for stream N" lines (REASON "closed normally" or
        "done" for a finished download), and those lines."""
        counts, lines = {}, []
        try:
            with open(self.client_log(), errors="replace") as f:
                f.seek(offset)
                for line in f:
                    m = re.search(r"end cell \(([^)]*)\) for stream", line)
                    if m:
                        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
                        lines.append(line.rstrip())
        except OSError:
            pass
        return counts, lines

    def client_log_size(self):
        try:
            return os.path.getsize(self.client_log())
        except OSError:
            return 0


def nickname(node):
    """Tor nicknames are 1-19 of A-Z a-z 0-9: tor-a1 -> tora1."""
    return node.replace("-", "")


def same_content(got, want):
    """None when the two files are byte for byte the same, else what differs."""
    try:
        a, b = os.path.getsize(got), os.path.getsize(want)
    except OSError as e:
        return str(e)
    with open(got, "rb") as f, open(want, "rb") as g:
        off = 0
        while True:
            x, y = f.read(1 << 16), g.read(1 << 16)
            if x != y:
                n = min(len(x), len(y))
                i = next((k for k in range(n) if x[k] != y[k]), n)
                if i == n and len(x) != len(y):
                    return "%d bytes, expected %d" % (a, b)
                return "byte %d differs" % (off + i)
            if not x:
                return None
            off += len(x)
