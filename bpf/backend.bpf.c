// SPDX-License-Identifier: MIT
/*
 * flowpin backend agent: tc ingress (and egress) programs on the backend's fabric
 * interface.
 *
 * Steps (docs/design.md, "Packet path on a backend"):
 *   1. UDP to the encapsulation port? No: pass it on untouched (not_flowpin).
 *   2. Outer IPv4 header checksum right (bad_checksum), frame and outer destination
 *      addressed to this host (not_our_mac: a unicast frame to another MAC, flooded by a
 *      switch; not_local: a group MAC or another address), outer source in lb_sources and no special
 *      address (not_allowed): else drop; the tunnel is no way around the backend's
 *      firewall and no relay for anyone. An empty datagram is an LB's neighbour probe
 *      (probe).
 *   2b. A GUE control message: an LB's tunnel health probe is reflected to it, out of
 *      the device it came in on (tunnel_probe); replies, truncated or padded probes and
 *      other control messages are dropped, each with its counter.
 *   3. GUE + private word + hop list as flowpin/wire.h, else drop (malformed); the
 *      inner destination a VIP address of the config, else drop (not_vip).
 *   4. Inner TCP SYN, UDP, other ICMP: deliver. Inner TCP non-SYN, and ICMP errors by
 *      the TCP flow they quote: a local socket (established, request, timewait, or a
 *      listener accepting the segment's SYN cookie) -> deliver; otherwise forward to the
 *      next hop of the list (second chance) if it is a configured backend of that VIP
 *      (else drop, bad_hop), or deliver when there is none (last_resort), it is this
 *      backend (loop_guard) or there is no route to it (no_route).
 *   TCP tickets (bpf/backend_ticket.h): a segment to a ticket VIP delivered to a local
 *   socket gets its TSecr restored; fp_backend_egress, on the device's tc egress, writes
 *   the ticket into the TSval of the segments a ticket VIP sends.
 *
 * Deliver strips outer IP, UDP, GUE, private word and hops with one
 * bpf_skb_adjust_room(BPF_ADJ_ROOM_MAC) call: the bytes right after the Ethernet header
 * are removed and the inner packet, checksums untouched, goes up the stack of this
 * device (the VIP is bound on lo). When the outer and inner families differ, the
 * BPF_F_ADJ_ROOM_DECAP_L3_IPV4/6 flags (Linux 6.3) make the helper set skb->protocol,
 * and we rewrite the EtherType ourselves: the stack picks the protocol handler from
 * skb->protocol after tc ingress returns, so no re-injection (bpf_redirect with
 * BPF_F_INGRESS) and no bpf_skb_change_proto (made for NAT64: it resizes the network
 * header in place) is needed.
 *
 * Every verdict increments exactly one counter (flowpin/backend.h).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <flowpin/backend.h>
#include <flowpin/flow.h>
#include <flowpin/wire.h>
#include "parse.h"

/* uapi of Linux 6.3; Debian 12's linux-libc-dev (6.1) does not have them yet. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif
FP_STATIC_ASSERT(FP_MAX_HOPS == 2, "the second-chance hop is always hops[1]");

#define ICMP_TIME_EXCEEDED_TYPE	    11
#define ICMP_PARAMETER_PROBLEM_TYPE 12

#ifndef TCP_LISTEN_STATE
#define TCP_LISTEN_STATE 10 /* BPF_TCP_LISTEN */
#endif
#define PACKET_HOST_TYPE      0 /* PACKET_HOST of linux/if_packet.h: skb->pkt_type */
#define PACKET_OTHERHOST_TYPE 3 /* PACKET_OTHERHOST: unicast to another MAC */

/* Settings fixed at load (lib/backend.c through the skeleton). */
const volatile __u16 encap_port = FP_DEFAULT_ENCAP_PORT; /* host order */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FP_BACKEND_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_BACKEND_MAX_LB_SOURCES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_backend_src_key);
	__type(value, __u8);
} lb_sources SEC(".maps");

/* The config and the host, filled at load (flowpin/backend.h); read-only for the program. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_RDONLY_PROG);
	__uint(max_entries, FP_BACKEND_MAX_SELF);
	__type(key, struct fp_backend_addr);
	__type(value, __u8);
} self_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_RDONLY_PROG);
	__uint(max_entries, FP_BACKEND_MAX_VIPS);
	__type(key, struct fp_backend_addr);
	__type(value, __u8);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_RDONLY_PROG | BPF_F_NO_PREALLOC);
	__uint(max_entries, FP_BACKEND_MAX_NEXT_HOPS);
	__type(key, struct fp_backend_hop_key);
	__type(value, __u8);
} next_hops SEC(".maps");

/* Written by userspace only (read-only for the program); here so it is pinned with the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_RDONLY_PROG);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fp_backend_attach_info);
} state SEC(".maps");

/* What the parser found; offsets count from the start of the frame (skb->data). */
struct encap {
	void *outer_ip;
	struct udphdr *udp;
	struct fp_gue_priv *priv;
	void *hops;
	void *inner_ip;
	__u32 inner_off; /* offset of the inner IP header: everything before it but L2 goes */
	__u32 outer_end; /* offset where the outer IP packet ends (the rest is L2 padding) */
	__u8 outer_v6;
	__u8 inner_v6;
};

static __always_inline int count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &counter);

	if (value)
		*value += 1; /* per-CPU slot: no other writer */
	return 0;
}

static __always_inline int verdict(__u32 counter, int action)
{
	count(counter);
	return action;
}

#include "backend_ticket.h"

/*
 * Removes everything between the Ethernet header and the inner IP header, which starts
 * at @inner_off. Returns the tc action: TC_ACT_OK with the counter @reason, or
 * TC_ACT_SHOT (error) if a helper refused. A subprogram, not inlined: it is reached
 * from nine verdicts, and verifying it once keeps the program's verification cost down.
 */
static __noinline int deliver_at(struct __sk_buff *skb, __u32 inner_off, __u32 outer_v6,
				 __u32 inner_v6, __u32 reason)
{
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	__be16 proto;

	if (inner_off <= ETH_HLEN || inner_off > 0xfff) /* helper's limit on the change */
		return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
	if (outer_v6 != inner_v6)
		flags |= inner_v6 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV6 : BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
	if (bpf_skb_adjust_room(skb, -(__s32)(inner_off - ETH_HLEN), BPF_ADJ_ROOM_MAC, flags))
		return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
	if (outer_v6 != inner_v6) {
		proto = bpf_htons(inner_v6 ? ETH_P_IPV6 : ETH_P_IP);
		if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto,
					sizeof(proto), 0))
			return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
	}
	return verdict(reason, TC_ACT_OK);
}

static __always_inline int deliver(struct __sk_buff *skb, const struct encap *e, __u32 reason)
{
	return deliver_at(skb, e->inner_off, e->outer_v6, e->inner_v6, reason);
}

static __always_inline int is_self(const __u8 addr[16])
{
	return bpf_map_lookup_elem(&self_addrs, addr) != NULL;
}

/*
 * Addresses that are never an LB's, a backend's or a hop's: unspecified, loopback,
 * multicast, limited broadcast and the reserved 240/4; on IPv6 also ::/96 (unspecified,
 * loopback, IPv4-compatible) and the IPv4-mapped ::ffff:0:0/96, where an IPv4 address
 * would pass for an IPv6 one. @a is IPv4-mapped when !@v6.
 */
static __always_inline int special_addr(const __u8 a[16], int v6)
{
	const __u32 *w = (const __u32 *)a;

	if (!v6)
		return a[12] == 0 || a[12] == 127 || a[12] >= 224;
	if (w[0] == 0 && w[1] == 0 && (w[2] == 0 || w[2] == FP_V4_MAPPED_WORD))
		return 1;
	return a[0] == 0xff;
}

/* Is the checksum of the option-less IPv4 header @ip right? */
static __always_inline int ipv4_csum_ok(const struct iphdr *ip, const void *end)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum;

	if ((const void *)(ip + 1) > end)
		return 0;
	sum = (__u32)w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7] + w[8] + w[9];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/*
 * Second chance: readdress the outer header to @hop (IPv4-mapped for IPv4), set the hop
 * index to @next and send the frame out towards that hop. The outer source (the LB) is
 * kept, so the next backend's lb_sources check passes; the TTL is kept too (a tunnel
 * endpoint handing the packet on, not a router; hop_index bounds the chain). The outer
 * UDP checksum is zero by the wire format; a non-zero one is cleared (IPv4) or updated
 * (IPv6). Returns the tc action, or -1 when there is no route to @hop.
 *
 * The route is looked up before any byte changes: a packet without one is delivered
 * (no_route) exactly as it arrived, so on a device that hands us CHECKSUM_COMPLETE the
 * skb->csum that bpf_skb_adjust_room() adjusts for the stripped bytes still matches
 * them (bpf_skb_store_bytes() without BPF_F_RECOMPUTE_CSUM does not update it).
 */
static __always_inline int forward(struct __sk_buff *skb, struct encap *e, const __u8 hop[16],
				   __u8 next)
{
	void *data = (void *)(long)skb->data;
	__u32 ip_off = e->outer_ip - data;
	__u32 csum_off = (void *)e->udp - data + offsetof(struct udphdr, check);
	__u32 index_off = (void *)e->priv - data + offsetof(struct fp_gue_priv, hop_index);
	struct bpf_fib_lookup fib = {};
	__be16 udp_check = e->udp->check;
	__be16 old_word, new_word;
	int rc;

	old_word = *(__be16 *)e->priv; /* type, hop_index: one 16-bit checksum word */
	new_word = old_word;
	((__u8 *)&new_word)[1] = next;
	fib.ifindex = skb->ingress_ifindex;
	fib.l4_protocol = IPPROTO_UDP;

	/*
	 * Per family: route first, then the rewrite (one branch each, so the verifier
	 * walks two paths here, not four).
	 */
	if (!e->outer_v6) {
		struct iphdr *ip = e->outer_ip;
		__be32 old_dst = ip->daddr, new_dst = ((const __be32 *)hop)[3];

		fib.family = AF_INET;
		fib.tos = ip->tos;
		fib.tot_len = bpf_ntohs(ip->tot_len);
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = new_dst;
		/* bpf_fib_lookup answers FWD_DISABLED unless the device forwards. */
		rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
			return -1;
		if (bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), old_dst,
					new_dst, sizeof(new_dst)) ||
		    bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, daddr), &new_dst,
					sizeof(new_dst), 0))
			return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
		if (udp_check) {
			udp_check = 0; /* allowed for UDP over IPv4 */
			if (bpf_skb_store_bytes(skb, csum_off, &udp_check, sizeof(udp_check), 0))
				return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
		}
	} else {
		struct ipv6hdr *ip6 = e->outer_ip;
		struct in6_addr old_dst = ip6->daddr, new_dst;
		__s64 diff;

		__builtin_memcpy(&new_dst, hop, sizeof(new_dst));
		fib.family = AF_INET6;
		fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0FFFFFFF);
		fib.tot_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &new_dst, 16);
		rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
			return -1;
		if (bpf_skb_store_bytes(skb, ip_off + offsetof(struct ipv6hdr, daddr), &new_dst,
					sizeof(new_dst), 0))
			return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
		if (udp_check) {
			/* The destination is part of the pseudo header; the index is payload. */
			diff = bpf_csum_diff((__be32 *)&old_dst, 16, (__be32 *)&new_dst, 16, 0);
			if (diff < 0 ||
			    bpf_l4_csum_replace(skb, csum_off, 0, diff,
						BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0) ||
			    bpf_l4_csum_replace(skb, csum_off, old_word, new_word,
						sizeof(new_word) | BPF_F_MARK_MANGLED_0))
				return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
		}
	}
	if (bpf_skb_store_bytes(skb, index_off, &next, sizeof(next), 0))
		return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);

	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__u8 macs[2 * ETH_ALEN]; /* h_dest then h_source: the frame's first 12 bytes */

		__builtin_memcpy(macs, fib.dmac, ETH_ALEN);
		__builtin_memcpy(macs + ETH_ALEN, fib.smac, ETH_ALEN);
		if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
			return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
		count(FP_BACKEND_FORWARDED);
		return bpf_redirect(fib.ifindex, 0);
	}
	{
		/* Route known, neighbour not resolved yet: the kernel resolves it. */
		struct bpf_redir_neigh nh = {};

		nh.nh_family = fib.family;
		if (fib.family == AF_INET)
			nh.ipv4_nh = fib.ipv4_dst;
		else
			__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
		count(FP_BACKEND_FORWARDED);
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
}

/*
 * 2b. A GUE control message (C bit) from an allowed LB source, addressed to this host,
 * its UDP length filling the outer packet (all checked by the caller). A flowpin tunnel
 * probe request (docs/wire-format.md, "Tunnel probe") goes back to its sender as the
 * reply: the same frame with MACs, IP addresses and UDP ports swapped and the control
 * type request -> reply, out of the device it came in on. Returns the tc action.
 *
 * What is never reflected: a reply (two backends, or a spoofed probe naming another
 * agent as its source, would otherwise play ping-pong), anything but exactly the
 * 16-byte probe (the reply is never larger than the request: no amplification), IPv6
 * extension headers (a routing header would not be reversed), UDP source port 0, a
 * group (multicast, broadcast) source MAC, an IPv6 datagram without UDP checksum.
 * The source is an allowed LB address (checked before): no reflection for spoofers.
 *
 * Checksums: the swaps leave every ones'-complement sum as it was (each field keeps its
 * 16-bit alignment), so the IPv4 header checksum stands and only the ctype change needs
 * the UDP checksum updated; bpf_l4_csum_replace() leaves the field to the stack when it
 * is a CHECKSUM_PARTIAL one (a sender on a veth peer), and BPF_F_MARK_MANGLED_0 keeps a
 * zero IPv4 UDP checksum zero. A CHECKSUM_COMPLETE skb->csum is kept true to the bytes.
 * A subprogram, with offsets instead of packet pointers: verified once, apart from the
 * data path.
 */
static __noinline int reflect_probe(struct __sk_buff *skb, __u32 outer_v6, __u32 udp_off)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u32 want_off = ETH_HLEN + (outer_v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr));
	struct fp_gue_probe *probe;
	struct udphdr *udp;
	__u8 tmp[16];
	__be32 before, after;
	__be16 check;
	__u32 payload;
	__u64 flags;

	if (udp_off != want_off) /* IPv6 extension headers: not reversed by a swap */
		return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
	udp = data +
	      (outer_v6 ? ETH_HLEN + sizeof(struct ipv6hdr) : ETH_HLEN + sizeof(struct iphdr));
	probe = (void *)(udp + 1);
	if ((void *)&probe->magic > end)
		return verdict(FP_BACKEND_TUNNEL_PROBE_TRUNCATED, TC_ACT_SHOT);
	payload = bpf_ntohs(udp->len) - sizeof(*udp); /* > 0: the caller saw the C bit */
	if (payload < sizeof(probe->gue))
		return verdict(FP_BACKEND_TUNNEL_PROBE_TRUNCATED, TC_ACT_SHOT);
	if (probe->gue.proto == FP_GUE_CTYPE_PROBE_REPLY)
		return verdict(FP_BACKEND_TUNNEL_PROBE_REPLY, TC_ACT_SHOT);
	if (probe->gue.proto != FP_GUE_CTYPE_PROBE_REQUEST)
		return verdict(FP_BACKEND_CONTROL_UNKNOWN, TC_ACT_SHOT);
	if (payload < sizeof(*probe) || (void *)(probe + 1) > end)
		return verdict(FP_BACKEND_TUNNEL_PROBE_TRUNCATED, TC_ACT_SHOT);
	if (payload > sizeof(*probe))
		return verdict(FP_BACKEND_TUNNEL_PROBE_PAYLOAD, TC_ACT_SHOT);
	/*
	 * A group source MAC would make the reply reach every host of the segment; an IPv6
	 * UDP checksum of zero is no checksum at all (RFC 8200), and no prober's stack
	 * sends one.
	 */
	if (probe->gue.hlen_ver != FP_PROBE_HLEN_VER ||
	    probe->gue.flags != bpf_htons(FP_GUE_FLAG_PRIV) || !udp->source ||
	    (((__u8 *)data)[ETH_ALEN] & 1) || (outer_v6 && !udp->check))
		return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
	if (probe->magic != bpf_htonl(FP_PROBE_MAGIC))
		return verdict(FP_BACKEND_CONTROL_UNKNOWN, TC_ACT_SHOT);

	/* Back to the sender: MACs, addresses, ports; then the type. */
	__builtin_memcpy(tmp, data, ETH_ALEN);
	__builtin_memcpy(data, data + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(data + ETH_ALEN, tmp, ETH_ALEN);
	if (!outer_v6) {
		struct iphdr *ip = data + ETH_HLEN;
		__be32 a = ip->saddr;

		ip->saddr = ip->daddr;
		ip->daddr = a;
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		__builtin_memcpy(tmp, &ip6->saddr, 16);
		__builtin_memcpy(&ip6->saddr, &ip6->daddr, 16);
		__builtin_memcpy(&ip6->daddr, tmp, 16);
	}
	{
		__be16 port = udp->source;

		udp->source = udp->dest;
		udp->dest = port;
	}
	check = udp->check;
	before = *(__be32 *)&probe->gue;
	probe->gue.proto = FP_GUE_CTYPE_PROBE_REPLY;
	after = *(__be32 *)&probe->gue;

	flags = sizeof(after) | BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, udp_off + offsetof(struct udphdr, check), before, after,
				flags))
		return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
	if (!check) /* nothing compensated the type's change in skb->csum */
		bpf_csum_update(skb, bpf_csum_diff(&before, 4, &after, 4, 0));
	count(FP_BACKEND_TUNNEL_PROBE);
	return bpf_redirect(skb->ifindex, 0);
}

/* Parses Ethernet, outer IP and UDP. Returns 1 for "ours", 0 for "not flowpin". */
static __always_inline int parse_outer(struct fp_cursor *c, struct encap *e, __u8 saddr[16],
				       __u8 daddr[16], int *fragment)
{
	struct ethhdr *eth;
	__be16 proto;
	__u32 tags;
	__u8 l4proto;

	*fragment = 0;
	/* tc ingress runs after VLAN untagging: a tag still inline is not our tunnel. */
	if (fp_parse_eth(c, &eth, &proto, &tags) != FP_PARSE_OK || tags)
		return 0;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip;

		if (fp_parse_ipv4(c, &ip) != FP_PARSE_OK || ip->protocol != IPPROTO_UDP ||
		    !fp_ipv4_has_l4(ip))
			return 0;
		*fragment = fp_ipv4_is_fragment(ip);
		e->outer_end = bpf_ntohs(ip->tot_len); /* made an offset by the caller */
		fp_addr_from_v4(saddr, ip->saddr);
		fp_addr_from_v4(daddr, ip->daddr);
		e->outer_ip = ip;
		e->outer_v6 = 0;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6;
		struct fp_frag6hdr *frag;

		if (fp_parse_ipv6(c, &ip6, &l4proto, &frag) != FP_PARSE_OK ||
		    l4proto != IPPROTO_UDP || !fp_ipv6_frag_has_l4(frag))
			return 0;
		*fragment = frag != NULL;
		e->outer_end = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(saddr, &ip6->saddr, 16);
		__builtin_memcpy(daddr, &ip6->daddr, 16);
		e->outer_ip = ip6;
		e->outer_v6 = 1;
	} else {
		return 0;
	}
	if (fp_parse_udp(c, &e->udp) != FP_PARSE_OK || e->udp->dest != bpf_htons(encap_port))
		return 0;
	return 1;
}

/*
 * Is there a local TCP socket for @tuple (remote = client, local = VIP)? Returns the
 * counter of the deliver verdict, or -1 for "no socket". A listener counts only when
 * @th (a segment of that flow, @iph its IP header) is an ACK carrying a valid SYN cookie.
 */
static __always_inline int socket_verdict(struct __sk_buff *skb, struct bpf_sock_tuple *tuple,
					  int v6, void *iph, struct tcphdr *th, __u32 found)
{
	__u32 size = v6 ? sizeof(tuple->ipv6) : sizeof(tuple->ipv4);
	__u32 iph_len = v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	struct bpf_sock *sk;
	int ret = -1;

	sk = bpf_skc_lookup_tcp(skb, tuple, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return -1;
	if (sk->state != TCP_LISTEN_STATE)
		ret = found; /* established, request or timewait */
	else if (th && bpf_tcp_check_syncookie(sk, iph, iph_len, th, sizeof(*th)) == 0)
		ret = FP_BACKEND_SYNCOOKIE_LOCAL; /* the cookie completes a handshake here */
	bpf_sk_release(sk);
	return ret;
}

/* The flow of an inner TCP segment, as the socket lookup wants it. */
static __always_inline void segment_tuple(struct encap *e, struct tcphdr *th,
					  struct bpf_sock_tuple *t)
{
	if (!e->inner_v6) {
		struct iphdr *ip = e->inner_ip;

		t->ipv4.saddr = ip->saddr;
		t->ipv4.daddr = ip->daddr;
		t->ipv4.sport = th->source;
		t->ipv4.dport = th->dest;
	} else {
		struct ipv6hdr *ip6 = e->inner_ip;

		__builtin_memcpy(t->ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(t->ipv6.daddr, &ip6->daddr, 16);
		t->ipv6.sport = th->source;
		t->ipv6.dport = th->dest;
	}
}

/*
 * The flow an ICMP error is about: the quoted header is one of our replies (VIP ->
 * client), so the socket's tuple is the quoted one reversed. Quoted headers are cut
 * short by design: only the fixed IP header and the ports are needed. Returns 0 with
 * @t filled, or -1 when the error does not quote a TCP segment we could look up.
 */
static __always_inline int icmp_error_tuple(struct fp_cursor *c, int v6, struct bpf_sock_tuple *t)
{
	struct fp_icmphdr *icmp;
	__be16 *ports;

	if (fp_parse_icmp(c, &icmp) != FP_PARSE_OK)
		return -1;
	if (!v6) {
		struct iphdr *q;

		if (icmp->type != FP_ICMP_DEST_UNREACH && icmp->type != ICMP_TIME_EXCEEDED_TYPE &&
		    icmp->type != ICMP_PARAMETER_PROBLEM_TYPE)
			return -1;
		if (fp_parse_ipv4_quoted(c, &q) != FP_PARSE_OK || q->protocol != IPPROTO_TCP ||
		    !fp_ipv4_has_l4(q))
			return -1;
		ports = c->pos;
		if ((void *)(ports + 2) > c->end)
			return -1;
		t->ipv4.saddr = q->daddr;
		t->ipv4.daddr = q->saddr;
		t->ipv4.sport = ports[1];
		t->ipv4.dport = ports[0];
	} else {
		struct ipv6hdr *q = c->pos;

		/* Unreachable, packet too big, time exceeded, parameter problem. */
		if (icmp->type < 1 || icmp->type > 4)
			return -1;
		/* Extension headers are not walked: our replies carry none. */
		if ((void *)(q + 1) > c->end || q->nexthdr != IPPROTO_TCP)
			return -1;
		ports = (void *)(q + 1);
		if ((void *)(ports + 2) > c->end)
			return -1;
		__builtin_memcpy(t->ipv6.saddr, &q->daddr, 16);
		__builtin_memcpy(t->ipv6.daddr, &q->saddr, 16);
		t->ipv6.sport = ports[1];
		t->ipv6.dport = ports[0];
	}
	return 0;
}

/*
 * No local socket for the flow: send the packet on to the next hop of its list, or
 * deliver it when there is none (last_resort), when that is this backend (loop_guard)
 * or when there is no route to it (no_route). The next hop must be a backend of the
 * config for the packet's VIP (@key->vip, the inner destination): an LB names nothing
 * else, so anything else is a forged or corrupted list and is dropped (bad_hop), never
 * sent anywhere.
 */
static __always_inline int second_chance(struct __sk_buff *skb, struct encap *e, void *end,
					 struct fp_backend_hop_key *key)
{
	__u8 *hop = key->backend;
	__u8 next = e->priv->hop_index + 1;
	int rc;

	if (next >= e->priv->hop_count)
		return deliver(skb, e, FP_BACKEND_LAST_RESORT);
	/*
	 * hop_index < next < hop_count <= FP_MAX_HOPS == 2 (parse.h checked the list): the
	 * next hop can only be hops[1]. Constant offsets keep the verifier's packet range
	 * checks simple.
	 */
	if (next != 1)
		return deliver(skb, e, FP_BACKEND_LOOP_GUARD);
	if (!e->outer_v6) {
		__be32 *hops = e->hops;

		if ((void *)(hops + 2) > end)
			return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
		fp_addr_from_v4(hop, hops[1]);
	} else {
		struct in6_addr *hops = e->hops;

		if ((void *)(hops + 2) > end)
			return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
		__builtin_memcpy(hop, &hops[1], 16);
	}
	if (is_self(hop))
		return deliver(skb, e, FP_BACKEND_LOOP_GUARD);
	/* Unicast, of the outer family (no IPv4-mapped hop in an IPv6 list), configured. */
	if (special_addr(hop, e->outer_v6) || !bpf_map_lookup_elem(&next_hops, key))
		return verdict(FP_BACKEND_BAD_HOP, TC_ACT_SHOT);
	rc = forward(skb, e, hop, next);
	if (rc >= 0)
		return rc;
	/* forward() rewrote the outer header, which deliver() strips anyway. */
	return deliver(skb, e, FP_BACKEND_NO_ROUTE);
}

SEC("tc")
int fp_backend_ingress(struct __sk_buff *skb)
{
	struct fp_backend_src_key src = {};
	struct fp_backend_hop_key hop_key __attribute__((aligned(4)));
	__u8 saddr[16] __attribute__((aligned(4)));
	__u8 daddr[16] __attribute__((aligned(4)));
	struct fp_cursor c;
	struct encap e = {};
	struct bpf_sock_tuple tuple = {};
	struct fp_guehdr *gue;
	__u32 inner_len;
	int fragment, rc, index_out_of_range = 0;
	__u8 l4proto;

	fp_cursor_init(&c, (void *)(long)skb->data, (void *)(long)skb->data_end);

	/* 1. Ours at all? */
	if (!parse_outer(&c, &e, saddr, daddr, &fragment))
		return verdict(FP_BACKEND_NOT_FLOWPIN, TC_ACT_OK);

	/*
	 * 2. Intact (the stack checks the IPv4 header after tc ingress, too late for a
	 * forward), for this host (a promiscuous device or another host's IP is no reason
	 * to decapsulate, let alone forward), from a load balancer we trust.
	 */
	if (!e.outer_v6) {
		/* An LB writes no IPv4 options: anything else is no tunnel packet of ours. */
		if (((struct iphdr *)e.outer_ip)->ihl != 5)
			return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
		if (!ipv4_csum_ok(e.outer_ip, c.end))
			return verdict(FP_BACKEND_BAD_CHECKSUM, TC_ACT_SHOT);
	}
	/* A switch floods frames for a MAC it has not learnt to every port: another
	 * backend's packet, counted apart from the suspicious not_local below. */
	if (skb->pkt_type == PACKET_OTHERHOST_TYPE)
		return verdict(FP_BACKEND_NOT_OUR_MAC, TC_ACT_SHOT);
	if (skb->pkt_type != PACKET_HOST_TYPE || (e.outer_v6 && fp_addr_is_v4(daddr)) ||
	    !is_self(daddr))
		return verdict(FP_BACKEND_NOT_LOCAL, TC_ACT_SHOT);
	if (special_addr(saddr, e.outer_v6))
		return verdict(FP_BACKEND_NOT_ALLOWED, TC_ACT_SHOT);
	if (!e.outer_v6) {
		src.family = 4;
		src.prefixlen = FP_BACKEND_SRC_FAMILY_BITS + 32;
		__builtin_memcpy(src.addr, saddr + 12, 4);
	} else {
		src.family = 6;
		src.prefixlen = FP_BACKEND_SRC_FAMILY_BITS + 128;
		__builtin_memcpy(src.addr, saddr, 16);
	}
	if (!bpf_map_lookup_elem(&lb_sources, &src))
		return verdict(FP_BACKEND_NOT_ALLOWED, TC_ACT_SHOT);
	/* `flowpin lb up` primes its neighbour entries with empty datagrams. */
	if (e.udp->len == bpf_htons(sizeof(struct udphdr)))
		return verdict(FP_BACKEND_PROBE, TC_ACT_SHOT);

	/*
	 * 3. Exactly what an LB writes: no fragment (the LB sets DF), UDP filling the outer
	 * packet, GUE and hops as wire.h, the inner packet filling the rest. Lengths are
	 * checked against the outer packet, not the frame: Ethernet padding is no header.
	 */
	e.outer_end += e.outer_ip - (void *)(long)skb->data;
	if (fragment ||
	    (void *)e.udp - (void *)(long)skb->data + bpf_ntohs(e.udp->len) != e.outer_end)
		return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
	{
		/* 2b. A GUE control message (version 0, C bit): a tunnel probe? */
		struct fp_guehdr *g = c.pos;

		if ((void *)g + 1 <= c.end && /* UDP length > 8 here: byte 0 is payload */
		    (g->hlen_ver & (FP_GUE_VERSION_MASK | FP_GUE_C_BIT)) == FP_GUE_C_BIT)
			return reflect_probe(skb, e.outer_v6,
					     (void *)e.udp - (void *)(long)skb->data);
	}
	{
		struct fp_gue_priv *priv = c.pos + sizeof(struct fp_guehdr);

		/*
		 * A hop index out of range (parse.h refuses it as malformed) is delivered,
		 * never forwarded (loop guard). Reset it before parsing: the rewrite never
		 * leaves this host, deliver() strips the private word. (This direct write
		 * makes the verifier unclone cloned skbs, e.g. while tcpdump runs on the
		 * device: a header copy per packet then; parsing twice cost 50% more
		 * verification.)
		 */
		if ((void *)(priv + 1) <= c.end && priv->hop_index >= priv->hop_count) {
			__be32 before = *(__be32 *)priv, after;

			priv->hop_index = 0;
			index_out_of_range = 1;
			/* Keep a CHECKSUM_COMPLETE skb->csum true to the bytes deliver strips. */
			after = *(__be32 *)priv;
			bpf_csum_update(skb, bpf_csum_diff(&before, 4, &after, 4, 0));
		}
	}
	if (fp_parse_gue(&c, &gue, &e.priv, &e.hops) != FP_PARSE_OK)
		return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
	if (!!(e.priv->flags & FP_PRIV_FLAG_V6) != e.outer_v6)
		return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT); /* hops are the outer family */

	/* Inner IP header: the family GUE announces, and the version must agree. */
	e.inner_ip = c.pos;
	e.inner_off = c.pos - (void *)(long)skb->data;
	if (gue->proto == IPPROTO_IPIP) {
		struct iphdr *ip;

		if (fp_parse_ipv4(&c, &ip) != FP_PARSE_OK)
			return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
		l4proto = fp_ipv4_has_l4(ip) ? ip->protocol : 0;
		inner_len = bpf_ntohs(ip->tot_len);
		fp_addr_from_v4(hop_key.vip, ip->daddr);
		e.inner_v6 = 0;
	} else if (gue->proto == IPPROTO_IPV6) {
		struct ipv6hdr *ip6;
		struct fp_frag6hdr *frag;

		if (fp_parse_ipv6(&c, &ip6, &l4proto, &frag) != FP_PARSE_OK)
			return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
		if (!fp_ipv6_frag_has_l4(frag))
			l4proto = 0;
		inner_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(hop_key.vip, &ip6->daddr, 16);
		e.inner_v6 = 1;
	} else {
		return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
	}
	if (e.inner_off + inner_len != e.outer_end)
		return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
	/* Only to a VIP: the backend routes what is not local (forwarding is on). */
	if ((e.inner_v6 && fp_addr_is_v4(hop_key.vip)) || !bpf_map_lookup_elem(&vips, hop_key.vip))
		return verdict(FP_BACKEND_NOT_VIP, TC_ACT_SHOT);
	if (index_out_of_range)
		return deliver(skb, &e, FP_BACKEND_LOOP_GUARD);

	/* 4. Where the inner packet goes. */
	if (l4proto == IPPROTO_TCP) {
		struct ticket_restore *restore;
		struct tcphdr *th;
		__u32 slot = TICKET_SCRATCH_INGRESS;

		if (fp_parse_tcp(&c, &th) != FP_PARSE_OK)
			return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
		/* A ticket VIP: is the TSecr ours to restore (backend_ticket.h)? */
		restore = tickets_on ? bpf_map_lookup_elem(&ticket_scratch, &slot) : NULL;
		if (restore) {
			if (!e.inner_v6)
				fp_addr_from_v4(restore->flow.src,
						((struct iphdr *)e.inner_ip)->saddr);
			else
				__builtin_memcpy(restore->flow.src,
						 &((struct ipv6hdr *)e.inner_ip)->saddr, 16);
			__builtin_memcpy(restore->flow.dst, hop_key.vip, 16);
			restore->tcp_off = (void *)th - (void *)(long)skb->data;
			ticket_ingress(skb, restore);
		}
		if (th->syn && !th->ack)
			return deliver(skb, &e, FP_BACKEND_SYN_LOCAL);
		segment_tuple(&e, th, &tuple);
		rc = socket_verdict(skb, &tuple, e.inner_v6, e.inner_ip, th,
				    FP_BACKEND_ESTABLISHED_LOCAL);
		if (rc >= 0) {
			/* The local socket's segment: its stack sees its own TSval again. */
			if (ticket_restore_apply(skb, restore))
				return verdict(FP_BACKEND_ERROR, TC_ACT_SHOT);
			return deliver(skb, &e, rc);
		}
		return second_chance(skb, &e, c.end, &hop_key);
	}
	if (l4proto == IPPROTO_UDP) {
		struct udphdr *udp;

		if (fp_parse_udp(&c, &udp) != FP_PARSE_OK)
			return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
		/* Nested encapsulation: the stack must never see a second tunnel header. */
		if (udp->dest == bpf_htons(encap_port))
			return verdict(FP_BACKEND_MALFORMED, TC_ACT_SHOT);
		return deliver(skb, &e, FP_BACKEND_UDP_LOCAL);
	}
	if ((l4proto == IPPROTO_ICMP && !e.inner_v6) || (l4proto == IPPROTO_ICMPV6 && e.inner_v6)) {
		/*
		 * An error about one of our TCP flows (path MTU discovery above all) goes
		 * where the flow's socket is, like the flow's own segments.
		 */
		if (icmp_error_tuple(&c, e.inner_v6, &tuple) ||
		    socket_verdict(skb, &tuple, e.inner_v6, NULL, NULL, FP_BACKEND_ICMP_LOCAL) >= 0)
			return deliver(skb, &e, FP_BACKEND_ICMP_LOCAL);
		return second_chance(skb, &e, c.end, &hop_key);
	}
	return deliver(skb, &e, FP_BACKEND_OTHER_LOCAL);
}

/* tc egress of the same device: TCP tickets into the TSval of a ticket VIP's segments. */
SEC("tc")
int fp_backend_egress(struct __sk_buff *skb)
{
	return ticket_egress(skb);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
