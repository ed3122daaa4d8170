// SPDX-License-Identifier: MIT
/*
 * flowpin's XDP program on load-balancer nodes. The entry function fp_lb() reads as
 * the list of steps in docs/design.md ("Packet path on an LB node"):
 *
 *   0. own-MAC rule (bpf/own_mac.h): unicast to another MAC -> XDP_PASS unread; a
 *      broadcast/multicast frame is never acted on (no step 0b, no VIP)
 *  0b. a cross-site message from another site's LB node (bpf/pop.h): its outer
 *      headers stripped, the steps below run on the inner packet; or dropped
 *   1. parse; not for a VIP -> XDP_PASS (ICMP errors: take the quoted flow, reversed)
 *   2. VIP lookup by (address, port, protocol), then (address, 0, protocol)
 *   3. on a session miss, connection tickets: a QUIC-LB connection ID naming a live
 *      backend of the VIP (bpf/quic.h), or a TCP timestamp ticket naming one
 *      (tcp_ticket(), flowpin/ticket.h) -> that backend
 *   4. session table hit -> that backend
 *   5. miss -> flow hash -> bucket -> [owner now, owner in the previous generation]
 *   6. encapsulate (flowpin/wire.h), next hop from bpf_fib_lookup, XDP_TX or redirect;
 *      a backend of another site: to one of that site's LB nodes, marked cross-site
 *
 * Every packet ends in exactly one verdict counter (flowpin/maps.h FP_COUNTERS).
 *
 * Session admission (why a flood of never-seen tuples cannot evict established flows;
 * docs/security.md "Floods of never-seen flows"):
 *  - A flow without a session entry is first remembered by a probation mark: a slot of
 *    state FP_SESS_MARK in its session buckets, where its entry would go (the lines its
 *    session lookup reads anyway), when they have an empty or expired slot (entry or
 *    mark) for it, else in `probation`, a direct-mapped array of 64-bit marks indexed and
 *    tagged by bits of its keyed flow hash (flowpin/maps.h struct fp_session_bucket,
 *    struct fp_probation_mark). A mark never takes a live entry's slot. The session
 *    entry is created only when a later packet of the same flow finds its mark
 *    (promotion, `session_insert`, in the mark's slot): spoofed packets from random
 *    tuples never repeat a tuple, so they fill empty slots with marks and churn
 *    probation, and nothing else. Promotions stay under the per-CPU new-flow rate (new_flow_rate
 *    per second).
 *  - The session table is one table shared by every CPU (flowpin's own set-associative
 *    table, flowpin/maps.h struct fp_session_bucket; not one per CPU, which would give
 *    each CPU entries / CPUs), and only promotions insert into it, so only flows that
 *    repeat a tuple can make it evict. Why evict at all and not a table that never
 *    does: the LB cannot tell a closed flow from an idle one (a FIN or RST proves
 *    nothing, the pinning rule below), so closed flows keep their entries until the
 *    idle timeout; a table that never evicts would fill with them on any busy node
 *    (262144 entries last 7200 s: 36 new connections per second). An attacker who
 *    repeats every spoofed tuple is promoted at most new_flow_rate times per CPU per
 *    second, and evicts at that rate (session_evict) the least recently seen entries
 *    of the buckets its flows land in (idle or closed flows first); the keyed bucket
 *    hash keeps it from choosing them.
 *  - hash+table, full: a SYN writes nothing (it only reads the session table: pinning
 *    rule below); the hash is authoritative for a new flow, and probation is not even
 *    read. Its first non-SYN packet is marked, the second promoted, and only when the
 *    flow's bucket did not move in the last generation change (then the owner is
 *    certainly right). In `full`, a packet of a moved bucket without a session carries
 *    the hop list every time and creates nothing: the LB cannot know which of the two
 *    owners has the socket. In hash+table the owner is inserted (no second chance
 *    there; the hash decides).
 *  - table: has nothing but its table, so the mark keeps the backend round robin chose
 *    for the first packet (SYN or not); later packets of the flow go there, and its
 *    first non-SYN packet after the mark promotes it (normally the handshake ACK). A
 *    mark is trusted for the transitory timeout; a flow that cannot be promoted (rate
 *    cap) keeps its mark fresh.
 *  - ICMP errors, FIN and RST never mark or promote (ICMP errors and, in table mode,
 *    every packet still read the mark).
 *  - Marks and entries are written at one place, admit(), once step 6 has sent the
 *    packet (lb(), step 5b): a dropped packet leaves no state.
 *
 * Pinning rule (why an off-path packet cannot move or shorten a flow's pinning): the
 * LB sees one direction of a connection and no sequence number it could check, so a
 * FIN or RST proves nothing. Nothing but time changes a live entry:
 *  - FIN and RST leave an entry as it is (state, timeout, backend). A closed flow's
 *    entry lives out its idle timeout, and the table replaces it first when space runs
 *    short: a closed flow is no longer refreshed.
 *  - A SYN never re-points a live entry, in any mode: a client reusing the ports of
 *    a live entry goes to that entry's backend, where the rest of its connection
 *    goes too (and which answers a SYN for a dead connection as TCP says). In the
 *    hash modes an entry names an owner its bucket had when the entry was made, so a
 *    SYN looks for one only when its bucket moved (previous != owner): elsewhere the
 *    owner is the entry's backend, and a SYN flood pays no cold session lookup.
 *    (Not covered: an entry naming a backend removed from the config after its
 *    bucket's memory of it was dropped; a SYN reusing its ports goes to the owner.)
 *  - Entries are created only where no live one exists, and any packet of a flow only
 *    refreshes its entry (which extends, never shortens, the pinning).
 * Only an entry's own timeout, its backend marked down, or the table under pressure
 * (session_evict) end a pinning. (FP_SESS_TCP_CLOSING is not set any more.)
 *
 * Cross-site rule (a fleet of sites; bpf/pop.h): only a ticket sends a packet to another
 * site (the tables hold this site's backends only), one hop, and a packet that came
 * cross-site never goes out cross-site again (pop_drop_loop), never reaches the stack,
 * and leaves no probation mark or session entry: a flood of forged cross-site packets
 * changes no state here.
 *
 * Other decisions (each with its counter in flowpin/maps.h):
 *  - Loop rule: nothing addressed to a VIP address leaves the node except encapsulated
 *    to a backend. What no step serves goes to the stack only when the VIP address is
 *    local to the node, else it is dropped (drop_vip_unserved; vip_unserved()).
 *  - ICMP frag-needed / ICMPv6 packet-too-big: routed by the quoted flow, reversed,
 *    like a mid-flow packet of that flow, but never creating or refreshing an entry,
 *    and only when the quoted packet came from the error's own destination.
 *    Echo requests are never answered here: to a VIP on the node itself the stack
 *    answers them (with its own ICMP rate limits), to any other VIP they are dropped
 *    by the loop rule (docs/security.md says why).
 *  - Fragments carry no ports. VIPs with port 0 and `hash: addresses` hash (src, dst,
 *    proto), so every fragment of a datagram reaches one backend; any other fragment
 *    goes to the stack, counted (pass_fragment), under the loop rule.
 *  - TTL rule: the LB and the backend together are the VIP's destination host, not a
 *    router hop (RFC 2003 3.1: encapsulation that is not forwarding leaves the inner
 *    TTL alone). The inner TTL / hop limit is never decremented and no "time exceeded"
 *    is sent; only a packet arriving with TTL 0, which no router forwards, is dropped
 *    (drop_ttl_zero).
 *  - IPv6 packets from or to IPv4-mapped addresses (never on the wire, RFC 4291
 *    2.5.5.2) are dropped (drop_v4_mapped): their flow key would be an IPv4 one.
 *  - UDP to a VIP on the encapsulation port is dropped (drop_gue_to_vip): no loops.
 *  - Too big for the route once encapsulated: never fragmented; ICMP frag-needed /
 *    packet-too-big back to the client from the VIP, rate-limited (icmp_reply.h), or
 *    dropped (drop_too_big). Session entries are made only for packets that left.
 *  - Timestamps are bpf_ktime_get_coarse_ns(): timeouts are seconds, refreshes and the
 *    next-hop cache one second, so tick resolution is plenty and cheaper.
 *  - The next hop (MACs, egress device, route MTU) is cached per backend for one
 *    second (resolve_nexthop()); the MTU check runs on every packet.
 *  - Egress frames are untagged; a backend behind a VLAN device is not supported.
 *  - Two per-CPU caches in front of the kernel hash maps, both dropped wholesale by an
 *    epoch userspace bumps after every apply and session clear (flowpin/maps.h): the
 *    VIP cache (step 2) and the flow cache, which answers steps 2-4 for an established
 *    flow this CPU forwarded from a session hit within the last second. A session hit
 *    then costs array reads only (flow_cache_hit counts them). Neither changes an
 *    answer: packets that change session state (SYN, FIN, RST, ICMP errors,
 *    fragments) always take the steps, and the session entry is still read at least
 *    once per second (refresh, expiry).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <flowpin/compiler.h>
#include <flowpin/flow.h>
#include <flowpin/hash.h>
#include <flowpin/maps.h>
#include <flowpin/pinning.h>
#include <flowpin/ticket.h>
#include <flowpin/wire.h>
#include "parse.h"
#include "csum.h"
#include "icmp_reply.h"
#include "encap.h"
#include "quic.h"
#include "own_mac.h"

/* Settings fixed at load (lib/lb.c sets them through the skeleton). */
const volatile __u64 hash_k0 = 0;
const volatile __u64 hash_k1 = 0;
/* The TCP ticket key (flowpin/ticket.h), derived from the hash key by the loader. */
const volatile __u64 ticket_k0 = 0;
const volatile __u64 ticket_k1 = 0;
const volatile __u32 table_size = 1; /* never 0: a bucket is hash % table_size */
const volatile __u16 encap_port = FP_DEFAULT_ENCAP_PORT; /* host order */
const volatile __be32 source_v4 = 0;			 /* 0: no IPv4 source */
const volatile __u32 source_v6[4] = {};			 /* all 0: no IPv6 source */
const volatile __u64 timeout_established_ns = 7200ULL * 1000000000ULL;
const volatile __u64 timeout_transitory_ns = 30ULL * 1000000000ULL;
const volatile __u64 timeout_udp_ns = 300ULL * 1000000000ULL;
/* Finish TX-offload checksums (csum.h); off in generic XDP (flowpin/lb.h generic_xdp). */
const volatile __u8 complete_partial_csum = 1;
const volatile __u32 new_flow_rate = 0;	  /* session entries per CPU per second, 0: no limit */
const volatile __u32 probation_slots = 1; /* a power of two */
const volatile __u32 session_buckets = 1; /* elements of `sessions` */
/* The session table's hash key (flowpin/maps.h fp_session_hash()), derived by the loader. */
const volatile struct fp_session_hash_key session_key = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct fp_vip_key);
	__type(value, struct fp_vip);
	__uint(max_entries, FP_VIP_SLOTS_MAX);
} vips SEC(".maps");

/* Every address some VIP uses (written at apply): read on pass paths only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct fp_vip_addr_key);
	__type(value, struct fp_vip_addr);
	__uint(max_entries, FP_VIP_SLOTS_MAX);
} vip_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_bucket_pair);
	__uint(max_entries, 1); /* fp_bucket_pairs(max_vips * 2 * table_size), set by the loader */
	__uint(map_flags, BPF_F_MMAPABLE);
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_backend_entry);
	__uint(max_entries, 1); /* max_vips * FP_BACKEND_SLOTS */
} backends SEC(".maps");

struct {
	/* flowpin/maps.h struct fp_session_bucket: one table every CPU shares. */
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_session_bucket);
	__uint(max_entries, 1); /* session_buckets */
	__uint(map_flags, BPF_F_MMAPABLE);
} sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_probation_mark);
	__uint(max_entries, 1); /* probation_slots, a power of two */
	__uint(map_flags, BPF_F_MMAPABLE);
} probation SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_stats);
	__uint(max_entries, 1);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_traffic);
	__uint(max_entries, 1); /* max_vips * FP_BACKEND_SLOTS */
} traffic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_ratelimit);
	__uint(max_entries, 1);
} ratelimit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_info);
	__uint(max_entries, 1);
} info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_flow_cache_entry);
	__uint(max_entries, FP_FLOW_CACHE_SLOTS);
} flow_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_vip_cache_entry);
	__uint(max_entries, FP_VIP_CACHE_SLOTS);
} vip_cache SEC(".maps");

/* What parsing learned about a packet. */
struct packet {
	struct fp_flow_key flow; /* for ICMP errors: the quoted flow, reversed */
	__u32 l3_off;		 /* IP header offset in the frame */
	__u32 ip_len;		 /* IP packet length (without link-layer padding) */
	__u32 l4_off; /* TCP/UDP header offset in the frame (ICMP errors: the quoted one) */
	__u8 v6;
	__u8 tos;	/* IPv4 TOS / IPv6 traffic class, copied to the outer header */
	__u8 tcp_flags; /* byte 13 of the TCP header; 0 for UDP */
	__u8 fragment;	/* any fragment: no ports in the flow key */
	__u8 icmp;	/* an ICMP error routed by its quoted flow */
	__u8 ttl;	/* IPv4 TTL / IPv6 hop limit, as received (never changed) */
};

/* What admit() does once the packet is on its way (session admission above). */
#define ADMIT_NONE    0
#define ADMIT_MARK    1 /* remember the flow (and hop[0]) in probation */
#define ADMIT_PROMOTE 2 /* create its session entry (for hop[0]) */

/* The backend(s) chosen for a packet, and its outer UDP source port. */
struct choice {
	__u16 hop[FP_MAX_HOPS];
	__u8 hop_count;
	__u8 admit;  /* ADMIT_*: step 5's admission, done once step 6 has sent it */
	__u16 sport; /* fp_hash_sport() of the flow, host order */
	__u32 slot;  /* probation slot and tag of the flow (admit != ADMIT_NONE) */
	__u32 tag;
	__u8 syn_check; /* hash modes: a SYN whose bucket moved, to check for a live entry */
};

#define TCP_FLAGS_SYN 0x02
#define TCP_FLAGS_ACK 0x10
#define TCP_FLAGS_FIN 0x01
#define TCP_FLAGS_RST 0x04

/* A verdict and the counter that explains it. */
#define VERDICT(action, counter) (((counter) << 8) | (action))
#define VERDICT_ACTION(v)	 ((v)&0xff)
#define VERDICT_COUNTER(v)	 ((__u32)(v) >> 8)
#define CONTINUE		 0xff /* action: go on with the next step */

#include "pop.h"

static __always_inline int parse_error_verdict(int err)
{
	if (err == FP_PARSE_TOO_DEEP)
		return VERDICT(XDP_PASS, FP_CNT_PASS_TOO_DEEP);
	if (err == FP_PARSE_MALFORMED)
		return VERDICT(XDP_DROP, FP_CNT_DROP_MALFORMED);
	return VERDICT(XDP_DROP, FP_CNT_DROP_TRUNCATED);
}

static __always_inline void count(struct fp_stats *st, __u32 counter)
{
	/* A mask, not a comparison: clang may check one copy of a register and index
	 * with another, which the verifier cannot follow. */
	st->count[counter & (FP_STATS_SLOTS - 1)]++;
}

/* Two IPv6 addresses, @b possibly unaligned (in the packet). */
static __always_inline int addr_equal(const __u8 a[16], const __u8 b[16])
{
	const __u32 *x = (const __u32 *)a;
	__u32 y[4];

	__builtin_memcpy(y, b, 16);
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}

/*
 * ICMP "fragmentation needed" / ICMPv6 "packet too big" quoting a packet a backend
 * sent from a VIP: the flow key becomes the quoted flow reversed (client -> VIP), so
 * the error reaches the backend holding the connection and path-MTU discovery works.
 * Only when the quoted packet's source is the ICMP packet's own destination (the VIP
 * the error is sent to): an error addressed to anything else is not about a flow of
 * ours and goes to the stack like any ICMP (pass_icmp), never to a backend.
 * Anything else (echo requests ...) goes to the stack: the LB node answers pings to a
 * VIP only if the operator configured the VIP on the node itself.
 */
static __always_inline int parse_icmp_error(struct fp_cursor *c, struct packet *pkt)
{
	struct fp_icmphdr *icmp;
	__be16 *ports;
	__u8 proto;
	int err;

	err = fp_parse_icmp(c, &icmp);
	if (err)
		return parse_error_verdict(err);
	if (!pkt->v6) {
		struct iphdr *ip;

		if (icmp->type != FP_ICMP_DEST_UNREACH || icmp->code != FP_ICMP_FRAG_NEEDED)
			return VERDICT(XDP_PASS, FP_CNT_PASS_ICMP);
		err = fp_parse_ipv4_quoted(c, &ip);
		if (err)
			return parse_error_verdict(err);
		if (!fp_ipv4_has_l4(ip))
			return VERDICT(XDP_PASS, FP_CNT_PASS_ICMP);
		/* About a packet the ICMP packet's destination sent, or not ours to route. */
		if (ip->saddr != *(const __be32 *)(pkt->flow.dst + 12))
			return VERDICT(XDP_PASS, FP_CNT_PASS_ICMP);
		proto = ip->protocol;
		fp_addr_from_v4(pkt->flow.src, ip->daddr);
		fp_addr_from_v4(pkt->flow.dst, ip->saddr);
	} else {
		struct ipv6hdr *ip6;

		if (icmp->type != FP_ICMPV6_PKT_TOOBIG)
			return VERDICT(XDP_PASS, FP_CNT_PASS_ICMP);
		ip6 = c->pos;
		if ((void *)(ip6 + 1) > c->end)
			return VERDICT(XDP_DROP, FP_CNT_DROP_TRUNCATED);
		c->pos = ip6 + 1;
		if (!addr_equal(pkt->flow.dst, (const __u8 *)&ip6->saddr))
			return VERDICT(XDP_PASS, FP_CNT_PASS_ICMP);
		/* Quoted extension headers are not walked: our backends' replies have none. */
		proto = ip6->nexthdr;
		__builtin_memcpy(pkt->flow.src, &ip6->daddr, 16);
		__builtin_memcpy(pkt->flow.dst, &ip6->saddr, 16);
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return VERDICT(XDP_PASS, FP_CNT_PASS_ICMP);
	/* ICMP quotes at least 8 bytes of the L4 header: both ports. The cursor moves past
	 * them, so the length check of parse_packet() keeps them inside the IP packet, not
	 * in link-layer padding (found by tests/fuzz). */
	ports = c->pos;
	if ((void *)(ports + 2) > c->end)
		return VERDICT(XDP_DROP, FP_CNT_DROP_TRUNCATED);
	c->pos = ports + 2;
	pkt->flow.sport = ports[1];
	pkt->flow.dport = ports[0];
	pkt->flow.proto = proto;
	pkt->icmp = 1;
	return CONTINUE;
}

/* Step 1: Ethernet, IP, L4 into @pkt. Returns CONTINUE or a final verdict. */
static __always_inline int parse_packet(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	struct fp_cursor c;
	struct ethhdr *eth;
	void *l3;
	__be16 proto;
	__u32 tags;
	__u8 l4proto;
	int err;

	fp_cursor_init(&c, data, (void *)(long)ctx->data_end);
	err = fp_parse_eth(&c, &eth, &proto, &tags);
	if (err)
		return parse_error_verdict(err);
	pkt->l3_off = sizeof(*eth) + tags * sizeof(struct fp_vlanhdr);
	l3 = c.pos;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip;

		err = fp_parse_ipv4(&c, &ip);
		if (err)
			return parse_error_verdict(err);
		pkt->ip_len = bpf_ntohs(ip->tot_len);
		pkt->tos = ip->tos;
		pkt->ttl = ip->ttl;
		pkt->fragment = fp_ipv4_is_fragment(ip);
		l4proto = ip->protocol;
		fp_addr_from_v4(pkt->flow.src, ip->saddr);
		fp_addr_from_v4(pkt->flow.dst, ip->daddr);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = c.pos;
		struct fp_frag6hdr *frag;

		/* Addresses first: a packet the walk gives up on still has a destination. */
		if ((void *)(ip6 + 1) > c.end)
			return VERDICT(XDP_DROP, FP_CNT_DROP_TRUNCATED);
		pkt->v6 = 1;
		__builtin_memcpy(pkt->flow.src, &ip6->saddr, 16);
		__builtin_memcpy(pkt->flow.dst, &ip6->daddr, 16);
		/*
		 * IPv4-mapped addresses never appear on the wire (RFC 4291 2.5.5.2): as a
		 * flow key they would be the IPv4 VIP's, sharing its session entries.
		 */
		if (fp_addr_is_v4(pkt->flow.src) || fp_addr_is_v4(pkt->flow.dst))
			return VERDICT(XDP_DROP, FP_CNT_DROP_V4_MAPPED);
		err = fp_parse_ipv6(&c, &ip6, &l4proto, &frag);
		if (err)
			return parse_error_verdict(err);
		pkt->ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		pkt->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		pkt->ttl = ip6->hop_limit;
		pkt->fragment = frag != NULL;
	} else {
		return VERDICT(XDP_PASS, FP_CNT_PASS_NOT_IP);
	}

	if (l4proto == IPPROTO_ICMP || l4proto == IPPROTO_ICMPV6) {
		if ((l4proto == IPPROTO_ICMPV6) != pkt->v6 || pkt->fragment)
			return VERDICT(XDP_PASS, FP_CNT_PASS_ICMP);
		err = parse_icmp_error(&c, pkt);
		if (err != CONTINUE)
			return err;
		/* The quoted L4 header (tcp_ticket() reads a quoted segment's ticket). */
		pkt->l4_off = c.pos - data - 2 * sizeof(__be16);
		goto check_length;
	}
	if (l4proto != IPPROTO_TCP && l4proto != IPPROTO_UDP)
		return VERDICT(XDP_PASS, FP_CNT_PASS_NOT_VIP);
	pkt->flow.proto = l4proto;
	pkt->l4_off = c.pos - data;
	if (pkt->fragment)
		goto check_length; /* no ports: only an address-hashing VIP can take it */
	if (l4proto == IPPROTO_TCP) {
		struct tcphdr *tcp;

		err = fp_parse_tcp(&c, &tcp);
		if (err)
			return parse_error_verdict(err);
		pkt->flow.sport = tcp->source;
		pkt->flow.dport = tcp->dest;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
	} else {
		struct udphdr *udp;

		err = fp_parse_udp(&c, &udp);
		if (err)
			return parse_error_verdict(err);
		pkt->flow.sport = udp->source;
		pkt->flow.dport = udp->dest;
	}
check_length:
	/* The headers we read must lie within the IP length, not in link-layer padding:
	 * the tunnel carries exactly the IP packet. */
	if (c.pos > l3 + pkt->ip_len)
		return VERDICT(XDP_DROP, FP_CNT_DROP_MALFORMED);
	return CONTINUE;
}

static __always_inline struct fp_vip_cache_entry *vip_cache_slot(const struct fp_vip_key *k)
{
	const __u64 *w = (const __u64 *)k;
	__u32 slot = ((w[0] ^ w[1] ^ *(const __u32 *)(w + 2)) * 0x9e3779b97f4a7c15ULL) >> 56;

	_Static_assert(FP_VIP_CACHE_SLOTS == 1 << 8, "slot is the top 8 bits");
	return bpf_map_lookup_elem(&vip_cache, &slot);
}

static __always_inline int vip_key_equal(const struct fp_vip_key *a, const struct fp_vip_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) |
		(*(const __u32 *)(x + 2) ^ *(const __u32 *)(y + 2))) == 0;
}

/*
 * Step 2: (address, port, protocol), then the VIP's port-0 entry; this CPU's VIP cache
 * first (flowpin/maps.h struct fp_vip_cache_entry). Returns 1 with @vip filled, or 0:
 * not a VIP.
 */
static __always_inline int lookup_vip(const struct packet *pkt, __u32 epoch, struct fp_vip *vip)
{
	struct fp_vip_key key = {};
	struct fp_vip_cache_entry *e;
	struct fp_vip *found = NULL;
	__be16 port = pkt->flow.dport;

	__builtin_memcpy(key.addr, pkt->flow.dst, 16);
	key.port = port;
	key.proto = pkt->flow.proto;
	e = vip_cache_slot(&key);
	if (e && epoch && e->epoch == epoch && vip_key_equal(&e->key, &key)) {
		*vip = e->vip;
		return 1;
	}
	if (port)
		found = bpf_map_lookup_elem(&vips, &key);
	if (!found) {
		key.port = 0;
		found = bpf_map_lookup_elem(&vips, &key);
		key.port = port;
	}
	if (!found)
		return 0;
	*vip = *found;
	if (e && epoch) {
		/* Invalid while half written, as in flow_cache_fill(). */
		e->epoch = 0;
		barrier();
		e->key = key;
		e->vip = *vip;
		barrier();
		e->epoch = epoch;
	}
	return 1;
}

static __always_inline struct fp_backend_entry *lookup_backend(const struct fp_vip *vip, __u16 id)
{
	__u32 index = vip->index * FP_BACKEND_SLOTS + id;

	if (id == FP_NO_BACKEND || id >= FP_BACKEND_SLOTS)
		return NULL;
	return bpf_map_lookup_elem(&backends, &index);
}

static __always_inline struct fp_bucket *lookup_bucket(const struct fp_vip *vip, __u32 bucket)
{
	__u32 pos = fp_bucket_index(vip->index, vip->slot & 1, table_size, bucket), index = pos / 2;
	struct fp_bucket_pair *p = bpf_map_lookup_elem(&buckets, &index);

	return p ? &p->b[pos & 1] : NULL;
}

static __always_inline __u64 session_timeout(__u8 state)
{
	if (state == FP_SESS_TCP_EST)
		return timeout_established_ns;
	if (state == FP_SESS_UDP)
		return timeout_udp_ns;
	return timeout_transitory_ns;
}

static __always_inline int is_syn(const struct packet *pkt)
{
	return (pkt->tcp_flags & (TCP_FLAGS_SYN | TCP_FLAGS_ACK)) == TCP_FLAGS_SYN;
}

/* A packet that may use the flow cache: one that changes no session state. */
static __always_inline int flow_cacheable(const struct packet *pkt)
{
	return !pkt->icmp && !pkt->fragment &&
	       !(pkt->tcp_flags & (TCP_FLAGS_SYN | TCP_FLAGS_FIN | TCP_FLAGS_RST));
}

/* This CPU's flow cache entry for @k (flowpin/maps.h fp_flow_cache_slot()). */
static __always_inline struct fp_flow_cache_entry *flow_cache_slot(const struct fp_flow_key *k)
{
	__u32 slot = fp_flow_cache_slot(k);

	return bpf_map_lookup_elem(&flow_cache, &slot);
}

static __always_inline int flow_key_equal(const struct fp_flow_key *a, const struct fp_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/*
 * Steps 2 to 4 at once for an established flow this CPU forwarded from a session hit
 * moments ago (flowpin/maps.h struct fp_flow_cache_entry says when an entry is
 * trusted). Returns 1 with @vip (index, generation) and @ch filled, or 0: take the
 * steps.
 */
static __always_inline int flow_cache_lookup(const struct packet *pkt, __u64 now, __u32 epoch,
					     struct fp_vip *vip, struct choice *ch)
{
	struct fp_flow_cache_entry *e;

	if (!flow_cacheable(pkt))
		return 0;
	e = flow_cache_slot(&pkt->flow);
	if (!e || e->epoch != epoch || (__s64)(e->expires_ns - now) <= 0 ||
	    !flow_key_equal(&e->key, &pkt->flow))
		return 0;
	vip->index = e->vip_index;
	vip->generation = e->generation;
	ch->hop[0] = e->backend;
	ch->hop_count = 1;
	ch->sport = e->outer_sport;
	return 1;
}

/*
 * Remembers a session hit in this CPU's flow cache, unless another flow's live entry
 * holds the slot. Only flows whose session state a
 * packet without SYN/FIN/RST leaves alone (established TCP, UDP), only VIPs whose
 * flow key keeps the ports. The entry lives at most a quarter of the session's idle
 * timeout (and FP_FLOW_CACHE_TTL_NS), and the session's last-seen is refreshed here
 * when older than that: it then lags the flow's last packet by at most half the
 * timeout, and a flow idle past its timeout is still found expired.
 */
static __always_inline void flow_cache_fill(const struct fp_vip *vip, const struct packet *pkt,
					    struct fp_session *s, __u64 now, __u32 epoch)
{
	struct fp_flow_cache_entry *e;
	__u64 ttl;

	if (!epoch || !flow_cacheable(pkt) || (vip->flags & FP_VIP_F_HASH_ADDRS) ||
	    (s->state != FP_SESS_TCP_EST && s->state != FP_SESS_UDP))
		return;
	e = flow_cache_slot(&pkt->flow);
	if (!e)
		return;
	ttl = session_timeout(s->state) / 4;
	if (ttl > FP_FLOW_CACHE_TTL_NS)
		ttl = FP_FLOW_CACHE_TTL_NS;
	if (now - s->last_seen_ns >= ttl)
		s->last_seen_ns = now;
	/*
	 * A slot another flow filled within its TTL stays that flow's: on a busy node
	 * (more flows than slots) a fill on every miss only evicts the entry the other
	 * flow's next packet would find, and costs a line written
	 * (bench/notes/session-table.md: measured side by side).
	 */
	if (e->epoch == epoch && (__s64)(e->expires_ns - now) > 0)
		return;
	/* Invalid while half written: XDP on this CPU may interrupt a test run's program. */
	e->epoch = 0;
	barrier();
	e->key = pkt->flow;
	e->expires_ns = now + ttl;
	e->vip_index = vip->index;
	e->generation = vip->generation;
	e->backend = s->backend;
	e->outer_sport = s->outer_sport;
	barrier();
	e->epoch = epoch;
}

/* The hash of @k in the session table (flowpin/maps.h fp_session_hash()). */
static __always_inline __u64 session_hash(const struct fp_flow_key *k)
{
	struct fp_session_hash_key key;

	/* Word by word from the volatile: the compiler must not fold the zero initializer. */
#pragma unroll
	for (int w = 0; w < FP_SESSION_HASH_WORDS; w++)
		key.k[w] = session_key.k[w];
	return fp_session_hash(&key, k);
}

static __always_inline struct fp_session_bucket *session_bucket(__u32 i)
{
	return bpf_map_lookup_elem(&sessions, &i);
}

/*
 * What a scan of one bucket for @k found: the way holding @k (or -1), the occupied
 * slots (they fill in order), the first expired entry or dead probation mark, the first
 * live mark (of another flow) and the least recently seen slot.
 */
struct bucket_scan {
	int found;
	int used;
	int expired;
	int mark;
	int oldest;
	__u64 oldest_seen;
};

/* A probation mark kept in the session table (flowpin/maps.h FP_SESS_MARK), still live. */
static __always_inline int mark_live(const struct fp_session *s, __u64 now)
{
	return s->state == FP_SESS_MARK && s->backend != FP_NO_BACKEND &&
	       (__s64)(now - s->last_seen_ns) <= (__s64)timeout_transitory_ns;
}

static __always_inline void bucket_scan(struct fp_session_bucket *b, const struct fp_flow_key *k,
					__u64 now, int ages, struct bucket_scan *r)
{
	r->found = -1;
	r->used = FP_SESSION_WAYS;
	r->expired = -1;
	r->mark = -1;
	r->oldest = 0;
	r->oldest_seen = ~0ULL;
#pragma unroll
	for (int i = 0; i < FP_SESSION_WAYS; i++) {
		struct fp_session_slot *w = &b->way[i];
		__u64 seen;

		if (!w->key.proto) {
			r->used = i;
			return;
		}
		if (flow_key_equal(&w->key, k)) {
			r->found = i;
			return;
		}
		if (!ages)
			continue;
		seen = w->s.last_seen_ns;
		if (w->s.state == FP_SESS_MARK) {
			if (mark_live(&w->s, now)) {
				if (r->mark < 0)
					r->mark = i;
			} else if (r->expired < 0) {
				r->expired = i;
			}
		} else if (r->expired < 0 &&
			   (__s64)(now - seen) > (__s64)session_timeout(w->s.state)) {
			r->expired = i;
		}
		if (seen < r->oldest_seen) {
			r->oldest_seen = seen;
			r->oldest = i;
		}
	}
}

/*
 * @k's entry in the session table, live or not, or NULL: its first bucket, and its
 * second only when the first may have spilled (flowpin/maps.h struct fp_session_bucket).
 */
static __always_inline struct fp_session *session_find(const struct fp_flow_key *k)
{
	__u64 h = session_hash(k);
	struct fp_session_bucket *b = session_bucket(fp_session_first(h, session_buckets));
	struct bucket_scan r;

	if (!b)
		return NULL;
	bucket_scan(b, k, 0, 0, &r);
	if (r.found >= 0) {
		struct fp_session *s = &b->way[r.found & (FP_SESSION_WAYS - 1)].s;

		/* @k's probation mark: no entry (a promotion replaces the mark in place). */
		return s->state == FP_SESS_MARK ? NULL : s;
	}
	if (r.used < FP_SESSION_SPILL)
		return NULL;
	b = session_bucket(fp_session_second(h, session_buckets));
	if (!b)
		return NULL;
	bucket_scan(b, k, 0, 0, &r);
	if (r.found >= 0) {
		struct fp_session *s = &b->way[r.found & (FP_SESSION_WAYS - 1)].s;

		return s->state == FP_SESS_MARK ? NULL : s;
	}
	return NULL;
}

/*
 * Step 4: a live session entry whose backend is not down. Refreshes last-seen at most
 * once per FP_SESSION_REFRESH_NS and moves a SYN entry to established on the first
 * segment without SYN/FIN/RST, written in place (no map update); nothing else
 * changes an entry (the pinning rule in the header comment). Returns 1 with @ch filled (backend and outer port: no hash needed),
 * or 0 for a miss.
 */
static __always_inline int session_lookup(const struct fp_vip *vip, const struct packet *pkt,
					  struct fp_stats *st, __u64 now, __u32 epoch,
					  struct choice *ch)
{
	struct fp_session *s = session_find(&pkt->flow);
	struct fp_backend_entry *b;

	if (!s)
		return 0;
	/* Signed: another CPU may have written a last_seen slightly ahead of our clock. */
	if ((__s64)(now - s->last_seen_ns) > (__s64)session_timeout(s->state)) {
		count(st, FP_CNT_SESSION_EXPIRED);
		return 0;
	}
	b = lookup_backend(vip, s->backend);
	if (!b || b->id != s->backend || (b->flags & FP_BACKEND_F_DOWN)) {
		count(st, FP_CNT_SESSION_BACKEND_DOWN);
		return 0;
	}
	ch->hop[0] = s->backend;
	ch->hop_count = 1;
	ch->sport = s->outer_sport;
	if (pkt->icmp)
		return 1; /* errors neither refresh nor change a flow's state */
	/* FIN and RST change nothing: the pinning rule in the header comment. */
	if (pkt->flow.proto == IPPROTO_TCP && s->state == FP_SESS_TCP_SYN &&
	    !(pkt->tcp_flags & (TCP_FLAGS_SYN | TCP_FLAGS_FIN | TCP_FLAGS_RST)))
		s->state = FP_SESS_TCP_EST;
	if (now - s->last_seen_ns >= FP_SESSION_REFRESH_NS)
		s->last_seen_ns = now;
	flow_cache_fill(vip, pkt, s, now, epoch);
	return 1;
}

/* Per-CPU ceiling on new session entries per second. Returns 1 when allowed. */
static __always_inline int insert_allowed(__u64 now, struct fp_ratelimit *rl)
{
	if (!new_flow_rate)
		return 1;
	if (now - rl->window_start_ns >= 1000000000ULL) {
		rl->window_start_ns = now;
		rl->inserted = 0;
	}
	if (rl->inserted >= new_flow_rate)
		return 0;
	rl->inserted++;
	return 1;
}

/* A packet that may be remembered in probation: not an ICMP error, not FIN or RST. */
static __always_inline int admissible(const struct packet *pkt)
{
	return !pkt->icmp && !(pkt->flow.proto == IPPROTO_TCP &&
			       (pkt->tcp_flags & (TCP_FLAGS_FIN | TCP_FLAGS_RST)));
}

static __always_inline struct fp_probation_mark *probation_lookup(__u32 slot)
{
	return bpf_map_lookup_elem(&probation, &slot);
}

/* Reads a mark whole (one 64-bit load: other CPUs write it with one store). */
static __always_inline struct fp_probation_mark probation_read(const struct fp_probation_mark *p)
{
	__u64 raw = *(const volatile __u64 *)p;
	struct fp_probation_mark m;

	__builtin_memcpy(&m, &raw, sizeof(m));
	return m;
}

static __always_inline void probation_write(struct fp_probation_mark *p, __u32 tag, __u16 backend,
					    __u64 now)
{
	struct fp_probation_mark m = { .tag = tag, .backend = backend };
	__u64 raw;

	m.stamp = fp_probation_stamp(now);
	__builtin_memcpy(&raw, &m, sizeof(raw));
	*(volatile __u64 *)p = raw;
}

/* Whether @m is a mark set within the transitory timeout (in stamp ticks, at least one:
 * flowpin/maps.h fp_probation_window()). */
static __always_inline int probation_live(struct fp_probation_mark m, __u64 now)
{
	return m.backend != FP_NO_BACKEND && (__u16)(fp_probation_stamp(now) - m.stamp) <=
						     fp_probation_window(timeout_transitory_ns);
}

/*
 * Step 5's admission decision for a flow with no session (session admission above):
 * the flow's probation mark decides between marking it and promoting it. Returns the
 * mark when it is this flow's and live (table mode reads its backend), else one with
 * backend FP_NO_BACKEND.
 */
static __always_inline struct fp_probation_mark admission(const struct packet *pkt, __u64 hash,
							  __u64 now, struct choice *ch)
{
	struct fp_probation_mark m = {}, *p;
	struct fp_session_bucket *b;
	struct bucket_scan r;
	int full = 0;
	__u64 h;

	ch->slot = fp_probation_slot(hash, probation_slots);
	ch->tag = fp_probation_tag(hash);
	/* The mark where the flow's entry would be: the lines its lookup just read. */
	h = session_hash(&pkt->flow);
	b = session_bucket(fp_session_first(h, session_buckets));
	if (!b)
		return m; /* cannot happen; backend FP_NO_BACKEND: marked again */
	bucket_scan(b, &pkt->flow, now, 0, &r);
	if (r.found < 0 && r.used >= FP_SESSION_SPILL) {
		struct fp_session_bucket *b2 =
			session_bucket(fp_session_second(h, session_buckets));

		if (!b2)
			return m;
		full = r.used == FP_SESSION_WAYS;
		b = b2;
		bucket_scan(b, &pkt->flow, now, 0, &r);
		full = full && r.used == FP_SESSION_WAYS;
	}
	if (r.found >= 0) {
		struct fp_session *s = &b->way[r.found & (FP_SESSION_WAYS - 1)].s;

		if (mark_live(s, now))
			m.backend = s->backend;
	} else if (full) {
		/* No empty slot in either bucket: the mark may be in the probation array. */
		p = probation_lookup(ch->slot);
		if (p) {
			m = probation_read(p);
			if (m.tag != ch->tag || !probation_live(m, now))
				m.backend = FP_NO_BACKEND;
		}
	}
	if (!admissible(pkt))
		ch->admit = ADMIT_NONE;
	else if (m.backend == FP_NO_BACKEND)
		ch->admit = ADMIT_MARK;
	else
		ch->admit = is_syn(pkt) ? ADMIT_NONE : ADMIT_PROMOTE;
	return m;
}

/* Writes @k and @s into @slot; other CPUs never match it half written. */
static __always_inline void slot_write(struct fp_session_slot *slot, const struct fp_flow_key *k,
				       const struct fp_session *s)
{
	/* Matches nothing while half written (flowpin/maps.h FP_SESSION_WRITING). */
	if (slot->key.proto)
		slot->key.proto = FP_SESSION_WRITING;
	barrier();
	__builtin_memcpy(slot->key.src, k->src, 16);
	__builtin_memcpy(slot->key.dst, k->dst, 16);
	slot->key.sport = k->sport;
	slot->key.dport = k->dport;
	slot->s = *s;
	barrier();
	slot->key.proto = k->proto;
}

/*
 * Writes @s as @k's entry, where flowpin/maps.h struct fp_session_bucket says: @k's own
 * slot (its probation mark, normally), else room in its first bucket, else the less
 * loaded of the two, else an expired entry or dead mark, else another flow's live mark
 * (probation_evict), else the least recently seen one of the two buckets (evicted,
 * counted). With @mark, @s is @k's probation mark, placed by the same rule up to the
 * expired slots and never further (returns 1 then). Returns 0, or -1 when the table
 * cannot be read.
 */
static __always_inline int session_store(const struct fp_flow_key *k, const struct fp_session *s,
					 __u64 now, struct fp_stats *st, int mark)
{
	__u64 h = session_hash(k);
	struct fp_session_bucket *b1, *b2, *b;
	struct bucket_scan r1, r2;
	struct fp_session_slot *slot;
	int way;

	b1 = session_bucket(fp_session_first(h, session_buckets));
	if (!b1)
		return -1;
	bucket_scan(b1, k, now, 1, &r1);
	if (r1.found >= 0) {
		b = b1, way = r1.found;
		goto write;
	}
	if (r1.used < FP_SESSION_SPILL) {
		b = b1, way = r1.used;
		goto write;
	}
	if (r1.expired >= 0) {
		b = b1, way = r1.expired;
		goto write;
	}
	b2 = session_bucket(fp_session_second(h, session_buckets));
	if (!b2)
		return -1;
	bucket_scan(b2, k, now, 1, &r2);
	if (r2.found >= 0) {
		b = b2, way = r2.found;
	} else if (r1.used < FP_SESSION_WAYS && r1.used <= r2.used) {
		b = b1, way = r1.used;
	} else if (r2.used < FP_SESSION_WAYS) {
		b = b2, way = r2.used;
	} else if (r2.expired >= 0) {
		b = b2, way = r2.expired;
	} else if (mark) {
		return 1; /* no room for a mark: the probation array */
	} else if (r1.mark >= 0 || r2.mark >= 0) {
		count(st, FP_CNT_PROBATION_EVICT);
		if (r1.mark >= 0)
			b = b1, way = r1.mark;
		else
			b = b2, way = r2.mark;
	} else {
		count(st, FP_CNT_SESSION_EVICT);
		if (r1.oldest_seen <= r2.oldest_seen)
			b = b1, way = r1.oldest;
		else
			b = b2, way = r2.oldest;
	}
write:
	slot = &b->way[way & (FP_SESSION_WAYS - 1)];
	slot_write(slot, k, s);
	return 0;
}

/* Creates the session entry of a promoted flow. Returns 1 when it exists now. */
static __always_inline int session_insert(const struct fp_vip *vip, const struct packet *pkt,
					  const struct choice *ch, struct fp_stats *st, __u64 now)
{
	struct fp_session s = {};
	struct fp_ratelimit *rl;
	__u32 zero = 0;

	rl = bpf_map_lookup_elem(&ratelimit, &zero);
	if (!rl)
		return 0;
	if (!insert_allowed(now, rl)) {
		count(st, FP_CNT_SESSION_RATE_LIMITED);
		return 0;
	}
	s.last_seen_ns = now;
	s.generation = vip->generation;
	s.backend = ch->hop[0];
	s.outer_sport = ch->sport;
	s.state = pkt->flow.proto == IPPROTO_UDP ? FP_SESS_UDP : FP_SESS_TCP_EST;
	if (session_store(&pkt->flow, &s, now, st, 0))
		return 0;
	count(st, FP_CNT_SESSION_INSERT);
	return 1;
}

/*
 * The one place where a flow without a session leaves state (session admission
 * above), called once step 6 has sent the packet (lb(), 5b): a mark in
 * probation for its first packet, the session entry for a later one. A flow that
 * cannot be promoted keeps a fresh mark (table mode reads its backend from it).
 */
static __always_inline void admit(const struct fp_vip *vip, const struct packet *pkt,
				  const struct choice *ch, struct fp_stats *st, __u64 now)
{
	struct fp_probation_mark *p;
	struct fp_session m = {};
	int rc;

	if (ch->admit == ADMIT_PROMOTE && session_insert(vip, pkt, ch, st, now))
		return;
	/* The mark goes where the flow's entry would (flowpin/maps.h struct
	 * fp_session_bucket) when there is room for it there, else into the probation array. */
	m.last_seen_ns = now;
	m.backend = ch->hop[0];
	m.state = FP_SESS_MARK;
	rc = session_store(&pkt->flow, &m, now, st, 1);
	if (rc <= 0) {
		if (!rc && ch->admit == ADMIT_MARK)
			count(st, FP_CNT_PROBATION_INSERT);
		return;
	}
	p = probation_lookup(ch->slot);
	if (!p)
		return;
	if (ch->admit == ADMIT_MARK) {
		struct fp_probation_mark old = probation_read(p);

		if (old.tag != ch->tag && probation_live(old, now))
			count(st, FP_CNT_PROBATION_EVICT);
		count(st, FP_CNT_PROBATION_INSERT);
	}
	probation_write(p, ch->tag, ch->hop[0], now);
}

/*
 * Step 3 for a UDP VIP with quic_lb, on a session miss: the backend the packet's QUIC-LB
 * connection ID names (bpf/quic.h), when it is a backend of this VIP that is neither
 * down nor removed (draining ones keep their connections). Returns 1 with @ch filled
 * (one hop; admission as for a settled bucket: the server named itself), or 0 with
 * the reason counted: the normal path then decides, the same on every node.
 */
static __always_inline int quic_ticket(struct xdp_md *ctx, const struct fp_vip *vip,
				       const struct packet *pkt, __u64 hash, __u64 now,
				       struct fp_stats *st, struct choice *ch)
{
	struct fp_quic_server_key key = {};
	struct fp_backend_entry *b;
	struct fp_quic_server *srv;
	int reason;

	if (pkt->icmp || pkt->fragment)
		return 0; /* no UDP payload: the normal path */
	reason = fp_quic_lb_server(ctx, pkt->l4_off + sizeof(struct udphdr),
				   pkt->l3_off + pkt->ip_len, vip->index, &key);
	if (reason) {
		count(st, reason);
		return 0;
	}
	srv = bpf_map_lookup_elem(&quic_servers, &key);
	if (!srv) {
		count(st, FP_CNT_QUIC_LB_UNKNOWN_SERVER);
		return 0;
	}
	b = lookup_backend(vip, srv->backend);
	if (!b || b->id != srv->backend ||
	    (b->flags & (FP_BACKEND_F_DOWN | FP_BACKEND_F_REMOVED))) {
		count(st, FP_CNT_QUIC_LB_DEAD_BACKEND);
		return 0;
	}
	count(st, FP_CNT_QUIC_LB_HIT);
	ch->hop[0] = srv->backend;
	ch->hop_count = 1;
	ch->sport = fp_hash_sport(hash);
	if (fp_pinning_uses_sessions(vip->pinning) && admissible(pkt))
		admission(pkt, hash, now, ch);
	return 1;
}

/*
 * Step 3 for a TCP VIP with tickets, on a session miss: the backend the segment's TSecr
 * names (flowpin/ticket.h), when it is a backend of this VIP that is neither down nor
 * removed (draining ones keep their connections). Never for a SYN (it echoes nothing)
 * or a fragment. An ICMP error (too big) quotes a segment the backend sent: its TSval is
 * the ticket as the backend wrote it, read when the quoted header lies whole inside the
 * error, so path-MTU discovery reaches the flow's owner here and at any other site.
 * The ticket is keyed by the full 5-tuple whatever the
 * VIP's `hash`, so the ports come from the TCP header again. Returns 1 with @ch filled:
 * one hop, and the same admission as any miss of a settled bucket (probation first,
 * then a session entry for the ticket's backend, under the new-flow rate), so a forged
 * ticket evicts nothing a forged miss could not. Else 0 with the reason counted: the
 * normal path decides, the same on every node.
 */
/*
 * The server id a segment's ticket carries (flowpin/ticket.h), or -1 when it has no
 * timestamp option (or a malformed one). @l4_off: its TCP header; @quote_end: 0, or for
 * the segment an ICMP error quotes (a backend's, VIP -> client: its TSval is the ticket)
 * the end of the error's IP packet, which the quoted header must lie within. @flow: the
 * flow's addresses, client -> VIP. A global function: the option walk is verified once,
 * not once per path that reaches it (it cost ~120k verified instructions inline).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_flow_key);
	__uint(max_entries, 1);
} ticket_flow SEC(".maps"); /* fp_lb_ticket_sid()'s flow key: off the combined stack */

__attribute__((noinline)) int fp_lb_ticket_sid(struct xdp_md *ctx, const struct fp_flow_key *flow,
					       __u32 l4_off, __u32 quote_end, __u32 bits)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct fp_hash_key key = { ticket_k0, ticket_k1 };
	struct fp_flow_key *f;
	struct tcphdr *th;
	__u32 zero = 0;
	__u8 *ts;

	f = bpf_map_lookup_elem(&ticket_flow, &zero);
	if (!flow || !f)
		return -1;
	*f = *flow;
	th = data + (l4_off & 0x3ff);
	if ((void *)(th + 1) > data_end)
		return -1;
	if (quote_end && l4_off + th->doff * 4 > quote_end)
		return -1;
	ts = fp_tcp_timestamp(th, data_end);
	if (!ts)
		return -1;
	if (quote_end) { /* the backend's segment: its TSval */
		f->sport = th->dest;
		f->dport = th->source;
		return fp_ticket_sid(fp_tcp_ts_get32(ts), fp_ticket_flow_hash(&key, f), bits);
	}
	f->sport = th->source;
	f->dport = th->dest;
	return fp_ticket_sid(fp_tcp_ts_get32(ts + 4), fp_ticket_flow_hash(&key, f), bits);
}

static __always_inline int tcp_ticket(struct xdp_md *ctx, const struct fp_vip *vip,
				      const struct packet *pkt, __u64 hash, __u64 now,
				      struct fp_stats *st, struct choice *ch)
{
	struct fp_backend_entry *b;
	int sid;

	if (pkt->fragment || (pkt->tcp_flags & TCP_FLAGS_SYN))
		return 0;
	sid = fp_lb_ticket_sid(ctx, &pkt->flow, pkt->l4_off,
			       pkt->icmp ? pkt->l3_off + pkt->ip_len : 0, vip->ticket_bits);
	if (sid < 0) {
		count(st, FP_CNT_TICKET_NO_TIMESTAMP);
		return 0;
	}
	b = lookup_backend(vip, (__u16)sid);
	if (!b || b->id != sid || (b->flags & (FP_BACKEND_F_DOWN | FP_BACKEND_F_REMOVED))) {
		count(st, FP_CNT_TICKET_INVALID);
		return 0;
	}
	count(st, FP_CNT_TICKET_HIT);
	ch->hop[0] = (__u16)sid;
	ch->hop_count = 1;
	ch->sport = fp_hash_sport(hash);
	if (fp_pinning_uses_sessions(vip->pinning) && admissible(pkt))
		admission(pkt, hash, now, ch);
	return 1;
}

/*
 * Step 5: no session. The flow hash picks the backend(s) by the VIP's pinning mode
 * (table mode: its probation mark first); ch->admit says what admit() records, as the
 * session admission rule above says. Returns CONTINUE with @ch filled, or a final
 * verdict.
 */
static __always_inline int choose_backend(const struct fp_vip *vip, const struct packet *pkt,
					  __u64 hash, __u64 now, struct choice *ch)
{
	__u8 mode = vip->pinning;
	struct fp_bucket *b;
	__u32 zero = 0;

	ch->hop_count = 1;
	ch->sport = fp_hash_sport(hash);
	if (!fp_pinning_uses_maglev(mode)) {
		/* A list of the active backends, no consistent hashing. */
		struct fp_ratelimit *rl;
		__u32 n = vip->n_list, pos;

		if (!n || n > table_size)
			return VERDICT(XDP_DROP, FP_CNT_DROP_NO_BACKEND);
		if (mode == FP_PIN_TABLE) {
			/* The backend the flow's first packet went to, if it is still up. */
			struct fp_probation_mark m = admission(pkt, hash, now, ch);
			struct fp_backend_entry *be = lookup_backend(vip, m.backend);

			if (be && be->id == m.backend && !(be->flags & FP_BACKEND_F_DOWN)) {
				ch->hop[0] = m.backend;
				return CONTINUE;
			}
			/* A new choice: a first packet again. */
			ch->admit = admissible(pkt) ? ADMIT_MARK : ADMIT_NONE;
		}
		rl = bpf_map_lookup_elem(&ratelimit, &zero);
		if (!rl)
			return VERDICT(XDP_DROP, FP_CNT_DROP_NO_BACKEND);
		if (mode == FP_PIN_NONE)
			pos = (__u32)(hash % n);
		else
			pos = rl->round_robin++ % n;
		b = lookup_bucket(vip, pos);
		if (!b || b->owner == FP_NO_BACKEND)
			return VERDICT(XDP_DROP, FP_CNT_DROP_NO_BACKEND);
		ch->hop[0] = b->owner;
		return CONTINUE;
	}

	/* Maglev: hash, hash+table, full. */
	b = lookup_bucket(vip, fp_hash_bucket(hash, table_size));
	if (!b || b->owner == FP_NO_BACKEND)
		return VERDICT(XDP_DROP, FP_CNT_DROP_NO_BACKEND);
	ch->hop[0] = b->owner;
	if (is_syn(pkt)) {
		/*
		 * Entries hold an owner of the flow's bucket from when they were made, so
		 * only a bucket that moved since (previous != owner) can have one naming
		 * another backend: only there is the session table worth a cold lookup
		 * (lb(), the pinning rule).
		 */
		ch->syn_check = fp_pinning_uses_sessions(mode) && b->previous != b->owner &&
				b->previous != FP_NO_BACKEND;
		return CONTINUE;
	}
	if (!fp_pinning_uses_sessions(mode))
		return CONTINUE;
	if (b->previous == b->owner || b->previous == FP_NO_BACKEND ||
	    !fp_pinning_second_chance(mode)) {
		if (admissible(pkt))
			admission(pkt, hash, now, ch);
		return CONTINUE;
	}
	/* full, bucket moved: second chance, and no entry for an owner we cannot know. */
	ch->hop[1] = b->previous;
	ch->hop_count = 2;
	return CONTINUE;
}

static __always_inline void load_source_v6(__u32 out[4])
{
	out[0] = source_v6[0];
	out[1] = source_v6[1];
	out[2] = source_v6[2];
	out[3] = source_v6[3];
}

/*
 * The next hop of backend @b: the FIB's answer cached in the backend entry while it is
 * fresh (flowpin/maps.h struct fp_nexthop), else bpf_fib_lookup(): first with the
 * largest length, whose "fragmentation needed" answer tells the route's MTU, then, if
 * the MTU is below that, again for the MACs. Not cached: failures (no route, neighbour
 * not resolved), so the next packet asks again. Returns CONTINUE or a verdict.
 */
static __always_inline int resolve_nexthop(struct xdp_md *ctx, struct fp_backend_entry *b, int v6,
					   __be32 src4, const __u32 *src6, __u64 now)
{
	const __u32 *want = (const __u32 *)b->addr, *have = (const __u32 *)b->nh.resolved_for;
	struct bpf_fib_lookup fib;
	__u32 mtu = 0xffff;
	int rc;

	if ((__s64)(b->nh.expires_ns - now) > 0 && b->nh.ingress == ctx->ingress_ifindex &&
	    want[0] == have[0] && want[1] == have[1] && want[2] == have[2] && want[3] == have[3])
		return CONTINUE;
	for (int pass = 0; pass < 2; pass++) {
		__builtin_memset(&fib, 0, sizeof(fib));
		fib.ifindex = ctx->ingress_ifindex;
		fib.tot_len = pass == 0 ? 0xffff : 0;
		if (v6) {
			fib.family = AF_INET6;
			__builtin_memcpy(fib.ipv6_src, src6, 16);
			__builtin_memcpy(fib.ipv6_dst, b->addr, 16);
		} else {
			fib.family = AF_INET;
			fib.ipv4_src = src4;
			__builtin_memcpy(&fib.ipv4_dst, b->addr + 12, 4);
		}
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (pass == 0 && rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
			mtu = fib.mtu_result;
			continue;
		}
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			return VERDICT(XDP_DROP, FP_CNT_DROP_NO_NEIGH);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return VERDICT(XDP_DROP, FP_CNT_DROP_FIB);
		break;
	}
	__builtin_memcpy(b->nh.resolved_for, b->addr, 16);
	b->nh.ifindex = fib.ifindex;
	b->nh.ingress = ctx->ingress_ifindex;
	b->nh.mtu = (__u16)mtu;
	__builtin_memcpy(b->nh.dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(b->nh.smac, fib.smac, ETH_ALEN);
	b->nh.expires_ns = now + FP_NEXTHOP_TTL_NS;
	return CONTINUE;
}

/*
 * A packet that does not fit the route to its backend once encapsulated: the client
 * learns the MTU it must use (route MTU - this packet's encapsulation overhead) from an
 * ICMP error sent back from the VIP (icmp_reply.h says who gets one and how often);
 * anything else is dropped, counted.
 */
static __always_inline int too_big(struct xdp_md *ctx, const struct packet *pkt, __u32 route_mtu,
				   __u32 overhead, __u64 now, struct fp_stats *st)
{
	/* No reply to a VIP address (a spoofed source): it would leave the node
	 * unencapsulated, addressed to a VIP. A map lookup on this rare path only. */
	if (pkt->icmp || route_mtu <= overhead ||
	    !fp_icmp_too_big_wanted(ctx, pkt->l3_off, pkt->v6) ||
	    bpf_map_lookup_elem(&vip_addrs, pkt->flow.src))
		return VERDICT(XDP_DROP, FP_CNT_DROP_TOO_BIG);
	if (!fp_icmp_rate_allow(now)) {
		count(st, FP_CNT_ICMP_TOO_BIG_LIMITED);
		return VERDICT(XDP_DROP, FP_CNT_DROP_TOO_BIG);
	}
	if (fp_icmp_too_big(ctx, pkt->l3_off, pkt->v6, pkt->ip_len, route_mtu - overhead))
		return VERDICT(XDP_DROP, FP_CNT_DROP_ADJUST);
	return VERDICT(XDP_TX, FP_CNT_ICMP_TOO_BIG);
}

/*
 * A TCP/UDP checksum left for TX offload by a client on this host (csum.h
 * fp_csum_complete_partial()): completed in the frame, counted. One compare for every
 * other packet.
 */
static __always_inline void finish_partial_csum(struct xdp_md *ctx, const struct packet *pkt,
						struct fp_stats *st)
{
	__u32 l4_len = pkt->ip_len - (pkt->l4_off - pkt->l3_off);
	__u64 pseudo =
		fp_csum_pseudo(pkt->flow.src, pkt->flow.dst, pkt->v6, pkt->flow.proto, l4_len);

	if (fp_csum_complete_partial(ctx, pkt->l4_off, l4_len, pkt->flow.proto, pseudo) > 0)
		count(st, FP_CNT_CSUM_COMPLETED);
}

/*
 * Step 6: prepend the wire format (flowpin/wire.h) and send. The next hop (FIB, cached
 * per backend) comes first, while the original packet is still intact: a packet we
 * cannot route (no route, neighbour unresolved) is dropped and counted before anything
 * was rewritten; one too big for the route's MTU gets too_big(). Neighbour entries of backends are kept resolved by
 * health checks (the kernel stack's own traffic to them), not by this program.
 */
static __always_inline int encapsulate(struct xdp_md *ctx, const struct fp_vip *vip,
				       const struct packet *pkt, __u64 now, struct choice *ch,
				       struct fp_stats *st, int cross)
{
	struct fp_backend_entry *b0, *b1 = NULL;
	__u8 type = FP_PRIV_TYPE_HOPS;
	__u32 src6[4], overhead;
	struct fp_encap e;
	__be32 src4 = source_v4;
	int v6, rc;

	b0 = lookup_backend(vip, ch->hop[0]);
	if (!b0 || b0->id != ch->hop[0])
		return VERDICT(XDP_DROP, FP_CNT_DROP_NO_BACKEND);
	load_source_v6(src6);
	if (b0->flags & FP_BACKEND_F_REMOTE) {
		/* Another site's backend (a ticket named it): one hop to that site's LB
		 * node, marked cross-site. A packet that came cross-site never goes out
		 * cross-site again: it crosses at most once (bpf/pop.h). */
		if (cross)
			return VERDICT(XDP_DROP, FP_CNT_POP_DROP_LOOP);
		b0 = fp_pop_lb(b0->pop, ch->sport, src4 != 0,
			       (src6[0] | src6[1] | src6[2] | src6[3]) != 0);
		if (!b0)
			return VERDICT(XDP_DROP, FP_CNT_DROP_NO_SOURCE);
		ch->hop_count = 1;
		type = FP_PRIV_TYPE_CROSS_SITE;
	}
	v6 = (b0->flags & FP_BACKEND_F_V6) != 0;
	if (ch->hop_count == 2) {
		b1 = lookup_backend(vip, ch->hop[1]);
		if (!b1 || b1->id != ch->hop[1] || (b1->flags & FP_BACKEND_F_DOWN)) {
			ch->hop_count = 1;
		} else if (((b1->flags & FP_BACKEND_F_V6) != 0) != v6) {
			count(st, FP_CNT_HOP_FAMILY);
			ch->hop_count = 1;
		} else {
			count(st, FP_CNT_HOP_LIST);
		}
	}
	overhead = fp_encap_overhead(v6, ch->hop_count);

	if (v6 ? !(src6[0] | src6[1] | src6[2] | src6[3]) : !src4)
		return VERDICT(XDP_DROP, FP_CNT_DROP_NO_SOURCE);
	rc = resolve_nexthop(ctx, b0, v6, src4, src6, now);
	if (rc != CONTINUE)
		return rc;
	/* We never fragment: too big for the route is answered (ICMP) or dropped. */
	if (overhead + pkt->ip_len > b0->nh.mtu)
		return too_big(ctx, pkt, b0->nh.mtu, overhead, now, st);
	/* A same-host sender's unfinished checksum: finished as its NIC would have. */
	if (complete_partial_csum && !pkt->icmp && !pkt->fragment)
		finish_partial_csum(ctx, pkt, st);

	if (fp_encap_make_room(ctx, pkt->l3_off, pkt->ip_len, overhead))
		return VERDICT(XDP_DROP, FP_CNT_DROP_ADJUST);
	e.hop[0] = b0;
	e.hop[1] = b1;
	e.src4 = src4;
	e.src6 = src6;
	e.hop_count = ch->hop_count;
	e.v6 = v6;
	e.inner_v6 = pkt->v6;
	e.tos = pkt->tos;
	e.sport = ch->sport;
	e.dport = encap_port;
	e.overhead = overhead;
	e.inner_len = pkt->ip_len;
	e.generation = vip->generation;
	e.type = type;
	if (fp_encap_write(ctx, &e))
		return VERDICT(XDP_DROP, FP_CNT_DROP_ADJUST);
	if (type == FP_PRIV_TYPE_CROSS_SITE)
		count(st, FP_CNT_POP_OUT);

	if (b0->nh.ifindex == ctx->ingress_ifindex)
		return VERDICT(XDP_TX, FP_CNT_TX);
	return VERDICT(bpf_redirect(b0->nh.ifindex, 0) & 0xff, FP_CNT_REDIRECT);
}

static __always_inline void count_traffic(const struct fp_vip *vip, __u16 backend, __u32 bytes)
{
	__u32 index = vip->index * FP_BACKEND_SLOTS;
	struct fp_traffic *t;

	t = bpf_map_lookup_elem(&traffic, &index);
	if (t) {
		t->packets++;
		t->bytes += bytes;
	}
	index += backend;
	t = bpf_map_lookup_elem(&traffic, &index);
	if (t) {
		t->packets++;
		t->bytes += bytes;
	}
}

/* The packet went to a backend (not dropped, nor answered with an ICMP error). */
static __always_inline int encapsulated(int v)
{
	return VERDICT_COUNTER(v) == FP_CNT_TX || VERDICT_COUNTER(v) == FP_CNT_REDIRECT;
}

/* Step 6 and the traffic counters of what leaves. */
static __always_inline int forward(struct xdp_md *ctx, const struct fp_vip *vip,
				   const struct packet *pkt, __u64 now, struct choice *ch,
				   struct fp_stats *st, int cross)
{
	int v = encapsulate(ctx, vip, pkt, now, ch, st, cross);

	if (encapsulated(v))
		count_traffic(vip, ch->hop[0], pkt->ip_len);
	return v;
}

/*
 * The loop rule: nothing addressed to a VIP address leaves the node except encapsulated
 * to a backend. A packet to a VIP address that no step serves (another port or
 * protocol, an echo request, a fragment without ports, more headers than we walk)
 * would be routed by the stack back to the router, which sends it here again. So a
 * pass verdict @v for a packet whose destination is in `vip_addrs` stands only when
 * the address is local to this node (the operator configured the VIP here: the stack
 * owns it and answers, pings included); else the packet is dropped, counted
 * (drop_vip_unserved). "Local" is the FIB's answer for that destination (a local
 * route, or forwarding off on the ingress device: the stack forwards nothing), so it
 * follows the node's addresses as they are, with no state to keep in step.
 * Pass paths only, in a subprogram of its own: forwarded packets never pay for it.
 */
static __noinline int vip_unserved(struct xdp_md *ctx, const struct packet *pkt, int v)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	if (VERDICT_ACTION(v) != XDP_PASS || !bpf_map_lookup_elem(&vip_addrs, pkt->flow.dst))
		return v;
	fib.ifindex = ctx->ingress_ifindex;
	if (pkt->v6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, pkt->flow.dst, 16);
	} else {
		fib.family = AF_INET;
		__builtin_memcpy(&fib.ipv4_dst, pkt->flow.dst + 12, 4);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED || rc == BPF_FIB_LKUP_RET_FWD_DISABLED)
		return v;
	return VERDICT(XDP_DROP, FP_CNT_DROP_VIP_UNSERVED);
}

/* The flow cache's epoch (flowpin/maps.h struct fp_info); 0 when unreadable. */
static __always_inline __u32 cache_epoch(void)
{
	__u32 zero = 0;
	struct fp_info *i = bpf_map_lookup_elem(&info, &zero);

	return i ? i->cache_epoch : 0;
}

/*
 * The steps for one packet. @cross: a cross-site packet fp_pop_ingress() stripped (the
 * inner one): it must be for a VIP, and goes where a session or its ticket says, to this
 * site's backends only; it leaves no probation mark and no session entry, and fp_lb()
 * never passes it to the stack. @group: the frame went to a broadcast/multicast MAC
 * (bpf/own_mac.h): nothing addressed to a VIP address is acted on.
 */
static __always_inline int lb(struct xdp_md *ctx, struct fp_stats *st, int cross, int group)
{
	struct packet pkt = {};
	struct choice ch = {};
	struct fp_vip vip = {};
	struct fp_hash_key key;
	__u32 epoch;
	__u64 now;
	int v;

	/* 1. Parse. */
	v = parse_packet(ctx, &pkt);
	if (v != CONTINUE)
		return vip_unserved(ctx, &pkt, v);
	/* Own-MAC rule: every LB node on the segment got a group frame; none acts on it. */
	if (group && bpf_map_lookup_elem(&vip_addrs, pkt.flow.dst))
		return VERDICT(XDP_DROP, FP_CNT_DROP_GROUP_MAC);
	/* No router forwards a packet with TTL 0: the TTL rule in the header comment. */
	if (!pkt.ttl)
		return VERDICT(XDP_DROP, FP_CNT_DROP_TTL_ZERO);
	now = bpf_ktime_get_coarse_ns(); /* seconds matter: timeouts, refreshes, caches */
	/*
	 * Steps 2-4 in one array read for an established flow this CPU forwarded from a
	 * session hit within the last second: its VIP and backend from the flow cache,
	 * the answer the steps would give (flowpin/maps.h struct fp_flow_cache_entry).
	 */
	epoch = cache_epoch();
	if (flow_cache_lookup(&pkt, now, epoch, &vip, &ch)) {
		count(st, FP_CNT_SESSION_HIT);
		count(st, FP_CNT_FLOW_CACHE_HIT);
		/* Straight to 6, a copy of its own: one hop, fewer registers to keep. */
		v = forward(ctx, &vip, &pkt, now, &ch, st, cross);
		if (cross && encapsulated(v))
			count(st, FP_CNT_POP_IN);
		return v;
	}
	/* 2. VIP. */
	if (!lookup_vip(&pkt, epoch, &vip)) {
		if (cross)
			return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
		if (pkt.fragment)
			v = VERDICT(XDP_PASS, FP_CNT_PASS_FRAGMENT);
		else
			v = VERDICT(XDP_PASS, pkt.icmp ? FP_CNT_PASS_ICMP : FP_CNT_PASS_NOT_VIP);
		return vip_unserved(ctx, &pkt, v);
	}
	/* Our own encapsulation addressed to a VIP: never wrap it again (no loops). */
	if (pkt.flow.proto == IPPROTO_UDP && !pkt.icmp && !pkt.fragment &&
	    pkt.flow.dport == bpf_htons(encap_port))
		return VERDICT(XDP_DROP, FP_CNT_DROP_GUE_TO_VIP);
	if (vip.flags & FP_VIP_F_HASH_ADDRS) {
		pkt.flow.sport = 0;
		pkt.flow.dport = 0;
		if (pkt.fragment)
			count(st, FP_CNT_FRAGMENT_HASHED);
	} else if (pkt.fragment) {
		return vip_unserved(ctx, &pkt, VERDICT(XDP_PASS, FP_CNT_PASS_FRAGMENT));
	}
	if (pkt.icmp)
		count(st, FP_CNT_ICMP_ROUTED);
	/* 3. Connection tickets: on a session miss, below. */
	/*
	 * 4. Session table (a hit needs no hash: the entry keeps the outer port). In the
	 * hash modes a SYN reads it in step 5, and only where an entry can name another
	 * backend than the table: a client reusing the ports of a live entry goes to that
	 * entry's backend, where the rest of its connection will go (the pinning rule).
	 */
	if (fp_pinning_uses_sessions(vip.pinning) &&
	    (vip.pinning == FP_PIN_TABLE || !is_syn(&pkt)) &&
	    session_lookup(&vip, &pkt, st, now, epoch, &ch)) {
		count(st, FP_CNT_SESSION_HIT);
	} else {
		/* 5. Miss: flow hash -> bucket -> hop list. */
		__u64 hash;

		key.k0 = hash_k0;
		key.k1 = hash_k1;
		hash = fp_flow_hash(&key, &pkt.flow);
		/* 3. Tickets: a QUIC-LB connection ID or a TCP ticket naming a live backend. */
		if ((vip.flags & FP_VIP_F_QUIC_LB) &&
		    quic_ticket(ctx, &vip, &pkt, hash, now, st, &ch))
			v = CONTINUE;
		else if (vip.ticket_bits && pkt.flow.proto == IPPROTO_TCP &&
			 tcp_ticket(ctx, &vip, &pkt, hash, now, st, &ch))
			v = CONTINUE;
		else if (cross) /* sent here for a ticket naming no live backend */
			v = VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
		else
			v = choose_backend(&vip, &pkt, hash, now, &ch);
		if (v == CONTINUE && ch.syn_check &&
		    session_lookup(&vip, &pkt, st, now, epoch, &ch)) {
			count(st, FP_CNT_SESSION_HIT);
		} else {
			count(st, is_syn(&pkt) ? FP_CNT_MISS_SYN : FP_CNT_MISS_NON_SYN);
			if (v != CONTINUE)
				return v;
		}
	}
	/* 6. Encapsulate and send. */
	v = forward(ctx, &vip, &pkt, now, &ch, st, cross);
	if (cross) {
		/* Nothing a cross-site packet says is remembered here (bpf/pop.h). */
		if (encapsulated(v))
			count(st, FP_CNT_POP_IN);
		return v;
	}
	/* 5b. Admission (a probation mark or a session entry) only for a packet that
	 * left: one dropped in step 6 (too big, no route) must not pin, or fill the
	 * table with, a flow that never reached anyone. */
	if (ch.admit != ADMIT_NONE && encapsulated(v))
		admit(&vip, &pkt, &ch, st, now);
	return v;
}

/*
 * FP_BUILD_ID: unset in flowpin's own build. `make` also builds this program with
 * -DFP_BUILD_ID=N into build/flowpin-rebuilt, a second flowpin for testing upgrades
 * (docs/operator-lb.md "Upgrading"; never installed): N is the immediate of one
 * instruction that does nothing (r0 is written again before it is read), so the two
 * programs differ in their code, hence in their tags, and in nothing else.
 */
SEC("xdp")
int fp_lb(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct fp_stats *st;
	int v, cross, mac;

#ifdef FP_BUILD_ID
	asm volatile("r0 = %[id]" ::[id] "i"(FP_BUILD_ID) : "r0");
#endif
	st = bpf_map_lookup_elem(&stats, &zero);
	if (!st)
		return XDP_PASS; /* cannot happen: a one-entry array */
	/* 0. Own-MAC rule: a frame for another host is not ours to act on (bpf/own_mac.h). */
	mac = fp_frame_mac(ctx);
	if (mac == FP_MAC_OTHER) {
		count(st, FP_CNT_PASS_NOT_OUR_MAC);
		return XDP_PASS;
	}
	/* 0b. A cross-site message from another site's LB node: stripped, or dropped. */
	v = mac == FP_MAC_GROUP ? FP_POP_NOT_CROSS : fp_pop_ingress(ctx);
	if (v != FP_POP_NOT_CROSS && v != FP_POP_CROSS) {
		count(st, VERDICT_COUNTER(v));
		return VERDICT_ACTION(v);
	}
	cross = v == FP_POP_CROSS;
	v = lb(ctx, st, cross, mac == FP_MAC_GROUP);
	/* What came cross-site never reaches the stack: it would route it on. */
	if (cross && VERDICT_ACTION(v) == XDP_PASS)
		v = VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
	count(st, VERDICT_COUNTER(v));
	return VERDICT_ACTION(v);
}

char LICENSE[] SEC("license") = "GPL";
