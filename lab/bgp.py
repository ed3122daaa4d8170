# SPDX-License-Identifier: MIT
"""The lab's BGP: one BIRD 2 per LB node and one on the router, each in its namespace.

    lbN (AS 65001) ──eBGP + BFD, IPv4 and IPv6 sessions── router (AS 65000)

Each LB node announces the VIPs it carries from the static protocols `flowpin_v4` and
`flowpin_v6` of an include file in exactly the shape flowpin's announcer writes it
(CONTRACTS.md "BGP"): `route VIP/32 blackhole;`, a draining VIP with the
GRACEFUL_SHUTDOWN community (65535, 0), a withdrawn VIP absent. In a scenario with
`bgp: {flowpin: true}` the announcing nodes' `flowpin lb` writes that file and
configures BIRD itself (a `bgp` section in their config, lib/bgpd.c), and the lab only
models what it announces; elsewhere the lab writes it (temp file + rename) and runs
`birdc configure`, so every other BGP event stays exact.
The node's own config (written by the lab, as an operator would) includes it and exports
those two protocols to the router, with the lab's AS-path prepend and MED.

The router imports only host routes inside the VIP prefixes, sets local preference 0 on
a route with (65535, 0) (RFC 8326), and installs the best routes in its kernel with
`merge paths on`: BIRD merges routes of equal local preference, AS-path length, origin
and MED into one ECMP route. Every LB node shares AS 65001, so MED is compared between
them too (BIRD compares MED only between routes from the same neighbour AS).

`Bgp.expected_fib()` is that decision written out for the lab's own state (which node
announces which VIP, draining or not, its prepend and MED, whether its session is up);
`Bgp.converge()` waits until the router's kernel table equals it and says how long that
took, so a router that decides otherwise (no RFC 8326 filter, no merge) fails the run.

Every BIRD runs in the foreground under the lab (`bird -f`), logs to the lab's log
directory and has its control socket in the lab's run dir; `Lab.down()` and
`lab/run --cleanup` end it with everything else in its namespace.
"""
import json
import os
import signal
import subprocess
import time

import lablib
from lablib import ALL_VIPS, LabError, log

BIRD = "/usr/sbin/bird"
BIRDC = "/usr/sbin/birdc"
ROUTER_ASN = 65000
LB_ASN = 65001  # one AS for every LB node: MED is compared between them
BFD_INTERVAL_MS = 100  # min tx and min rx, both sides
BFD_MULTIPLIER = 3  # detection time = 3 x 100 ms
GRACEFUL_SHUTDOWN = "(65535, 0)"  # RFC 8326
NOWHERE_MAC = "02:f0:00:00:00:ff"  # bgp-cut block: no interface of the lab has it
VIP_NAMES = [name for name, _, _ in ALL_VIPS]
VIP_ADDR = {name: addr for name, _, addr in ALL_VIPS}

# Lab timers: the defaults (5 s before the first connect, 60 s after an error, 120 s
# between connection attempts) are for the Internet; here a node that comes back must
# be in the route again within a few seconds. Graceful restart off: a dead node's
# routes must go at once, not be kept stale for 120 s.
SESSION_OPTIONS = """\
	bfd on;
	hold time 9;
	keepalive time 3;
	connect delay time 1;
	connect retry time 1;
	error wait time 1, 2;
	graceful restart off;"""

BFD_PROTOCOL = """\
protocol bfd lab_bfd {
	interface "eth*" {
		interval %d ms;
		multiplier %d;
	};
}""" % (BFD_INTERVAL_MS, BFD_MULTIPLIER)


class NodeState:
    """What one LB node announces: {vip name: "announce" | "drain"} (absent: withdrawn),
    its export policy, and whether its session to the router can be up."""

    def __init__(self):
        self.vips = {}
        self.prepend = 0
        self.med = None  # None: no MED attribute (compares as 0)
        self.cut = None  # None, "kill" (BIRD killed) or "block" (its packets dropped)
        self.dead = False  # lb-fail: the whole node is gone (link down, BIRD killed)

    def session_up(self):
        return self.cut is None and not self.dead


class Bgp:
    def __init__(self, lab):
        self.lab = lab
        self.dir = os.path.join(lab.dir, "bird")
        self.lb_nodes = list(lab.lb_nodes)  # both sites' in the two-site lab
        self.nodes = {n: NodeState() for n in self.lb_nodes}
        self.last_detect = None
        # pop_shift(how=withdraw): site -> its nodes that withdrew (announce when back)
        self.pop_withdrawn = {}
        # Nodes whose flowpin lb drives BIRD (a scenario's bgp.flowpin): flowpin writes
        # their include file, the lab only models what it announces (expected_fib()).
        self.flowpin_nodes = set()

    # ------------------------------------------------------------ files
    def node_dir(self, node):
        return os.path.join(self.dir, node)

    def socket(self, node):
        return os.path.join(self.node_dir(node), "bird.ctl")

    def include_path(self, node):
        return os.path.join(self.node_dir(node), "flowpin.conf")

    def config_path(self, node):
        return os.path.join(self.node_dir(node), "bird.conf")

    def include_text(self, node):
        """The include file as flowpin's announcer writes it (CONTRACTS.md "BGP")."""
        st = self.nodes[node]
        out = ["# flowpin VIP announcements for %s (written by lab/bgp.py)" % node]
        for proto, v6, plen in (("flowpin_v4", False, 32), ("flowpin_v6", True, 128)):
            out += ["protocol static %s {" % proto, "\t%s;" % ("ipv6" if v6 else "ipv4")]
            for name in VIP_NAMES:
                addr = VIP_ADDR[name]
                if (":" in addr) != v6 or name not in st.vips:
                    continue
                extra = (" { bgp_community.add(%s); }" % GRACEFUL_SHUTDOWN
                         if st.vips[name] == "drain" else "")
                out.append("\troute %s/%d blackhole%s;" % (addr, plen, extra))
            out.append("}")
        return "\n".join(out) + "\n"

    def node_config_text(self, node):
        st = self.nodes[node]
        policy = ["\tbgp_path.prepend(%d);" % LB_ASN] * st.prepend
        if st.med is not None:
            policy.append("\tbgp_med = %d;" % st.med)
        sessions = []
        site = lablib.site_of(node)
        for fam, local, peer in (("ipv4", lablib.fabric_v4(node),
                                  lablib.fabric_v4("router", site)),
                                 ("ipv6", lablib.fabric_v6(node),
                                  lablib.fabric_v6("router", site))):
            sessions.append("""protocol bgp router_%s {
	local %s as %d;
	neighbor %s as %d;
%s
	%s { import none; export filter lab_export; };
}""" % (fam[-2:], local, LB_ASN, peer, ROUTER_ASN, SESSION_OPTIONS, fam))
        return """# BIRD of LB node %(node)s, lab %(id)s (written by lab/bgp.py, as an operator would)
log stderr all;
debug protocols { states };
router id %(rid)s;
protocol device { }
%(bfd)s
# the VIPs flowpin announces: static protocols flowpin_v4 and flowpin_v6
include "%(inc)s";
filter lab_export {
	if proto != "flowpin_v4" && proto != "flowpin_v6" then reject;
%(policy)s
	accept;
}
%(sessions)s
""" % {"node": node, "id": self.lab.id, "rid": lablib.fabric_v4(node), "bfd": BFD_PROTOCOL,
       "inc": self.include_path(node), "policy": "\n".join(policy) or "\t# no prepend, no MED",
       "sessions": "\n".join(sessions)}

    def router_config_text(self):
        sessions = []
        for n in self.lb_nodes:
            site = lablib.site_of(n)
            for fam, local, peer, extra in (
                    ("ipv4", lablib.fabric_v4("router", site), lablib.fabric_v4(n), ""),
                    ("ipv6", lablib.fabric_v6("router", site), lablib.fabric_v6(n),
                     " next hop prefer global;")):
                sessions.append("""protocol bgp %s_%s {
	local %s as %d;
	neighbor %s as %d;
%s
	%s { import filter vips_in_%s; export none;%s };
}""" % (n, fam[-2:], local, ROUTER_ASN, peer, LB_ASN, SESSION_OPTIONS, fam, fam[-2:], extra))
        return """# BIRD of the router, lab %(id)s (written by lab/bgp.py)
log stderr all;
debug protocols { states };
router id %(rid)s;
protocol device { }
%(bfd)s
# ECMP: routes of equal preference (local-pref, AS-path length, origin, MED) merge into
# one kernel route with a next hop per LB node.
protocol kernel kernel_v4 { ipv4 { export all; }; merge paths on; }
protocol kernel kernel_v6 { ipv6 { export all; }; merge paths on; }
# Only host routes inside the VIP prefixes; RFC 8326: a route with GRACEFUL_SHUTDOWN
# (65535, 0) gets local preference 0, kept as a backup, used only when nothing else is.
filter vips_in_v4 {
	if net !~ [ 10.100.0.0/24{32,32} ] then reject;
	if %(gs)s ~ bgp_community then bgp_local_pref = 0;
	accept;
}
filter vips_in_v6 {
	if net !~ [ fd00:100::/64{128,128} ] then reject;
	if %(gs)s ~ bgp_community then bgp_local_pref = 0;
	accept;
}
%(sessions)s
""" % {"id": self.lab.id, "rid": lablib.fabric_v4("router"), "bfd": BFD_PROTOCOL,
       "gs": GRACEFUL_SHUTDOWN, "sessions": "\n".join(sessions)}

    @staticmethod
    def write_atomic(path, text):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)

    # ------------------------------------------------------------ BIRD processes
    def start(self):
        """Starts BIRD on the router and every LB node (nothing announced yet) and waits
        until every session is up."""
        for n in ["router"] + self.lb_nodes:
            os.makedirs(self.node_dir(n))
        self.write_atomic(self.config_path("router"), self.router_config_text())
        self.start_bird("router")
        for n in self.lb_nodes:
            self.write_atomic(self.include_path(n), self.include_text(n))
            self.write_atomic(self.config_path(n), self.node_config_text(n))
            self.start_bird(n)
        t = time.monotonic()
        self.wait_sessions()
        log("BGP up: router AS %d, %s AS %d, every session established in %.1f s" %
            (ROUTER_ASN, " ".join(self.lb_nodes), LB_ASN, time.monotonic() - t))

    def start_bird(self, node):
        self.lab.start("bird-" + node, node, [BIRD, "-f", "-c", self.config_path(node), "-s",
                                              self.socket(node), "-P",
                                              os.path.join(self.node_dir(node), "bird.pid")])
        self.lab.wait_for(lambda: self.bird_answers(node), "BIRD on %s to answer" % node,
                          lambda: self.lab.log_tail("bird-" + node))

    def bird_answers(self, node):
        if not self.lab.running("bird-" + node):
            raise LabError("BIRD on %s exited:\n%s" % (node, self.lab.log_tail("bird-" + node)))
        return os.path.exists(self.socket(node)) and self.birdc(node, "show status",
                                                                 check=False)[0] == 0

    def birdc(self, node, *cmd, check=True):
        """birdc on the node's own control socket (a unix socket in the run dir, so no
        need to enter the namespace). Returns (status, output)."""
        r = subprocess.run([BIRDC, "-s", self.socket(node)] + " ".join(cmd).split(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if check and r.returncode != 0:
            raise LabError("birdc %s on %s failed: %s" % (" ".join(cmd), node, r.stdout.strip()))
        return r.returncode, r.stdout

    def configure(self, node):
        """Rewrites the node's include and config files and has BIRD apply them. BIRD
        checks the whole config first and keeps the old one on any error. The include
        of a node whose flowpin drives BIRD is flowpin's."""
        if node not in self.flowpin_nodes:
            self.write_atomic(self.include_path(node), self.include_text(node))
        self.write_atomic(self.config_path(node), self.node_config_text(node))
        if not self.lab.running("bird-" + node):
            return  # killed (bgp-cut kill, lb-fail): read when BIRD starts again
        _, out = self.birdc(node, "configure")
        if "Reconfigured" not in out and "Reconfiguration in progress" not in out:
            raise LabError("birdc configure on %s: %s" % (node, out.strip()))

    def sessions(self, node):
        """{protocol name: state} of the BGP protocols of one BIRD."""
        _, out = self.birdc(node, "show protocols", check=False)
        res = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 6 and parts[1] == "BGP":
                res[parts[0]] = parts[-1]
        return res

    def wait_sessions(self, timeout=20.0):
        """Every session of a node whose session should be up is Established."""
        want = [n for n in self.lb_nodes if self.nodes[n].session_up()]

        def up():
            r = self.sessions("router")
            return all(r.get("%s_%s" % (n, f)) == "Established" for n in want
                       for f in ("v4", "v6"))
        self.lab.wait_for(up, "BGP sessions of %s to the router" % " ".join(want),
                          lambda: self.birdc("router", "show protocols", check=False)[1],
                          timeout=timeout)

    # ------------------------------------------------------------ the router's view
    def expected_fib(self):
        """{VIP address: frozenset(LB nodes)}: the router's BGP decision for the lab's
        state. Among the nodes whose session is up and that announce the VIP: highest
        local preference (0 when draining, RFC 8326), then shortest AS path, then
        lowest MED (absent = 0); the ties form the ECMP route. No node: no route."""
        fib = {}
        for name in VIP_NAMES:
            cands = []
            for n in self.lb_nodes:
                st = self.nodes[n]
                if st.session_up() and name in st.vips:
                    key = (0 if st.vips[name] == "drain" else 100, -(1 + st.prepend),
                           -(st.med or 0))
                    cands.append((key, n))
            if cands:
                best = max(k for k, _ in cands)
                fib[VIP_ADDR[name]] = frozenset(n for k, n in cands if k == best)
        return fib

    def fib(self):
        """The router's kernel routes from BIRD: {VIP address: frozenset(LB nodes)}."""
        by_gw = {}
        for n in self.lb_nodes:
            by_gw[lablib.fabric_v4(n)] = n
            by_gw[lablib.fabric_v6(n)] = n
        fib = {}
        for fam in ("-4", "-6"):
            out = self.lab.sh("ip", "-n", self.lab.ns("router"), "-j", fam, "route", "show",
                              "proto", "bird")
            for r in json.loads(out or "[]"):
                hops = r.get("nexthops") or [r]
                fib[r["dst"]] = frozenset(by_gw.get(h.get("gateway"), h.get("gateway"))
                                          for h in hops)
        return fib

    def converge(self, timeout=10.0, since=None):
        """Waits until the router's kernel routes equal expected_fib(); returns the
        seconds from `since` (default: now) to the first poll that saw them."""
        t0 = since if since is not None else time.monotonic()
        want = self.expected_fib()
        deadline = time.monotonic() + timeout
        while True:
            got = self.fib()
            if got == want:
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise LabError("the router's routes did not converge in %.0f s:\n  want %s\n"
                               "  got  %s\n%s" % (timeout, fmt_fib(want), fmt_fib(got),
                                                  self.birdc("router", "show route all",
                                                             check=False)[1]))
            time.sleep(0.005)

    # ------------------------------------------------------------ lab operations
    def set_announcers(self, nodes, vips=None, drain=False, scope=None):
        """`nodes` announce `vips` (default: all), plain or draining; the other nodes (of
        `scope`, default every node) withdraw them. Announces first, then withdraws: a
        shift is never a gap."""
        names = vips or VIP_NAMES
        for n in nodes:
            for v in names:
                self.nodes[n].vips[v] = "drain" if drain else "announce"
            self.configure(n)
        for n in scope or self.lb_nodes:
            if n not in nodes and any(v in self.nodes[n].vips for v in names):
                for v in names:
                    self.nodes[n].vips.pop(v, None)
                self.configure(n)

    def announce(self, node, vips=None, drain=False):
        for v in vips or VIP_NAMES:
            self.nodes[node].vips[v] = "drain" if drain else "announce"
        self.configure(node)

    def withdraw(self, node, vips=None):
        for v in vips or VIP_NAMES:
            self.nodes[node].vips.pop(v, None)
        self.configure(node)

    def set_policy(self, node, prepend=None, med=None, clear_med=False):
        st = self.nodes[node]
        if prepend is not None:
            st.prepend = prepend
        if med is not None or clear_med:
            st.med = med
        self.configure(node)

    def pop_shift(self, to, how):
        """Two sites: the router's route to every VIP moves to site `to`, by BGP alone.
        withdraw: the other site's announcing nodes withdraw every VIP (remembered: a
        later move back to that site has them announce again). prepend: the other
        site's announcing nodes get one prepend more than `to`'s, then `to`'s go to 0
        and the other's to 1 (the standby's): `to` is strictly best after the first
        change, so the router's route moves once, with no ECMP between the sites.
        Returns what it did, in words."""
        here = [n for n in self.lb_nodes if lablib.site_of(n) == to]
        other = [n for n in self.lb_nodes if lablib.site_of(n) != to]
        done = []
        back = self.pop_withdrawn.pop(to, [])
        if back:
            for n in back:
                self.announce(n)
            done.append("%s announce%s every VIP again" % (" ".join(back),
                                                          "s" if len(back) == 1 else ""))
        mine = [n for n in here if self.nodes[n].vips and self.nodes[n].session_up()]
        theirs = [n for n in other if self.nodes[n].vips]
        if not mine:
            raise LabError("pop to %s: no node of site %s announces the VIPs" % (to, to))
        if how == "withdraw":
            if theirs:
                self.pop_withdrawn.setdefault(lablib.site_of(theirs[0]), []).extend(theirs)
                for n in theirs:
                    self.withdraw(n)
                done.append("%s withdraw%s every VIP" % (" ".join(theirs),
                                                        "s" if len(theirs) == 1 else ""))
        else:
            top = max(self.nodes[n].prepend for n in mine)
            for n in theirs:
                if self.nodes[n].prepend <= top:
                    self.set_policy(n, prepend=top + 1)
            for n in mine:
                if self.nodes[n].prepend:
                    self.set_policy(n, prepend=0)
            for n in theirs:
                if self.nodes[n].prepend != 1:
                    self.set_policy(n, prepend=1)
            done.append("%s prepend%s once (standby), %s not at all" % (
                " ".join(theirs) or "nobody", "s" if len(theirs) == 1 else "",
                " ".join(mine)))
        return "; ".join(done)

    def cut(self, node, how):
        """The node's session goes, its data plane stays. kill: SIGKILL BIRD (the TCP
        session closes, the router knows at once). block: the node's neighbour entries
        for the router point at a MAC nobody has, so nothing the node's own stack sends
        to the router arrives (BGP, BFD) and only BFD tells the router; the XDP program
        sends only to backends and keeps forwarding. (A prohibit route would not do:
        BIRD's sockets are bound to eth0, and the kernel treats a failed lookup for a
        bound socket as on-link.)"""
        st = self.nodes[node]
        if how == "kill":
            self.lab.stop("bird-" + node, sig=signal.SIGKILL)
        else:
            site = lablib.site_of(node)
            for addr in (lablib.fabric_v4("router", site), lablib.fabric_v6("router", site)):
                self.lab.ip(node, "neigh", "replace", addr, "lladdr", NOWHERE_MAC, "dev",
                            "eth0", "nud", "permanent")
        st.cut = how

    def restore(self, node):
        """Undoes a cut: BIRD runs again / the node's packets pass again; returns when
        both sessions are established."""
        st = self.nodes[node]
        if st.cut == "block":
            self.lab.lb_network(node)  # the right neighbour entries again
        st.cut = None
        if not self.lab.running("bird-" + node):
            self.configure(node)  # files only: BIRD reads them as it starts
            self.start_bird(node)
        self.wait_sessions()

    def node_failed(self, node):
        """lb-fail: the node is gone (the runner downs its link and kills its programs)."""
        self.lab.stop("bird-" + node, sig=signal.SIGKILL)
        self.nodes[node].dead = True

    def node_recovered(self, node):
        self.nodes[node].dead = False
        self.restore(node)

    def reset(self, announcers, prepend=None, med=None):
        """A scenario's start: every session up, `announcers` announce every VIP, the
        others nothing, prepend/MED as given ({node: n}, else none). Returns the seconds
        the router took to converge."""
        prepend, med = prepend or {}, med or {}
        self.pop_withdrawn = {}
        for n in self.lb_nodes:
            st = self.nodes[n]
            if st.cut or st.dead or not self.lab.running("bird-" + n):
                st.dead = False
                self.restore(n)
            st.prepend = prepend.get(n, 0)
            st.med = med.get(n)
            st.vips = {v: "announce" for v in VIP_NAMES} if n in announcers else {}
            self.configure(n)
        self.wait_sessions()
        return self.converge()

    # The VIP whose kernel route the runner counts the changes of (bgp-flap: with and
    # without damping): `ip monitor route` prints one line per change of a route.
    WATCHED = VIP_ADDR["full"]

    def watch_routes(self, key):
        """Starts `ip -ts monitor route` in the router's namespace (log: KEY.log)."""
        self.lab.start(key, "router", ["ip", "-ts", "monitor", "route"])
        time.sleep(0.1)  # subscribed before the first change

    def route_changes(self, key):
        """Stops the monitor started by watch_routes(KEY) and returns how often the
        router's kernel route to WATCHED changed (added, replaced or deleted)."""
        path = self.lab.procs[key][2] if key in self.lab.procs else None
        self.lab.stop(key)
        n = 0
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    words = line.split()
                    if words and words[0].startswith("["):
                        words = words[1:]  # the timestamp
                    if words and words[0] == "Deleted":
                        words = words[1:]
                    if words and words[0] == self.WATCHED:
                        n += 1
        except (OSError, TypeError):
            pass
        return n

    def log_size(self):
        """Where the router's BIRD log ends now (session_downs reads from there)."""
        try:
            return os.path.getsize(self.lab.procs["bird-router"][2])
        except (KeyError, OSError):
            return 0

    def session_downs(self, offset):
        """{session: times it went down} of the router's BGP sessions, from `offset` in
        its log on: the ones a scenario caused, and any it did not (a BFD session lost
        under load would show here)."""
        downs = {}
        try:
            with open(self.lab.procs["bird-router"][2], errors="replace") as f:
                f.seek(offset)
                text = f.read()
        except (KeyError, OSError):
            return downs
        for line in text.splitlines():
            if line.endswith(": State changed to stop"):
                proto = line.split()[-5].rstrip(":")
                downs[proto] = downs.get(proto, 0) + 1
        return downs

    def describe(self):
        """One line per node for the timeline."""
        parts = []
        for n in self.lb_nodes:
            st = self.nodes[n]
            what = "cut (%s)" % st.cut if st.cut else "down" if st.dead else (
                "announces" if st.vips else "withdrawn")
            if st.vips and any(s == "drain" for s in st.vips.values()):
                what += " (draining: %d)" % sum(s == "drain" for s in st.vips.values())
            if st.prepend:
                what += " prepend %d" % st.prepend
            if st.med is not None:
                what += " med %d" % st.med
            parts.append("%s %s" % (n, what))
        return ", ".join(parts)


def fmt_fib(fib):
    """"lb1 lb2" when every VIP has the same next hops, else per group, e.g.
    "lb1 lb3 (full, full/v6: lb1)"; VIPs without a route are named as such."""
    groups = {}
    for name in VIP_NAMES:
        nodes = fib.get(VIP_ADDR[name])
        groups.setdefault(" ".join(sorted(nodes)) if nodes else "no route", []).append(name)
    if len(groups) == 1:
        return next(iter(groups))
    main = max(groups, key=lambda k: len(groups[k]))
    return "%s (%s)" % (main, "; ".join("%s: %s" % (", ".join(groups[k]), k)
                                        for k in groups if k != main))
