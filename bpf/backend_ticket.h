/* SPDX-License-Identifier: MIT */
/*
 * TCP connection tickets on the backend (docs/backend.md; the math: flowpin/ticket.h).
 *
 *   egress   a TCP segment from a ticket VIP of this host, with a timestamp option: its
 *            TSval becomes the ticket (fp_ticket_encode() with this host's id). Every
 *            such segment, SYN-ACK included: the handshake's ACK then carries the ticket
 *            too, and restoring it exactly gives the stack back every bit of a SYN
 *            cookie's TSval.
 *   ingress  a TCP ACK to a ticket VIP whose TSecr names this host: the TSecr the
 *            client echoes is restored exactly (fp_ticket_restore() with the TCP clock)
 *            when the segment is delivered to a local socket, never before a second-
 *            chance forward: the next hop's ticket must stay as it is. A TSecr naming
 *            another backend is left alone (ticket_mismatch): it was never ours.
 *
 * Checksums: the TCP checksum changes by the difference of the two 32-bit values. The
 * option may sit at an odd offset (any option layout is legal), where the value's bytes
 * pair with their neighbours: the difference is then byte-swapped (RFC 1071: a sum of
 * bytes shifted by one is the byte-swapped sum). Egress lets bpf_l4_csum_replace()
 * apply it, which leaves a CHECKSUM_PARTIAL field (what the local stack hands to a
 * device with checksum offload: the pseudo-header sum only) alone, as it must. Ingress
 * writes the field itself: the inner segment's checksum is in its bytes, whatever state
 * the skb's outer checksum is in.
 *
 * Include once (it defines a map), after the counters and count() of backend.bpf.c.
 */
#ifndef FLOWPIN_BPF_BACKEND_TICKET_H
#define FLOWPIN_BPF_BACKEND_TICKET_H

#include <flowpin/backend.h>
#include <flowpin/ticket.h>
#include "parse.h"

/* The ticket key (fp_ticket_key_derive() of hash_key), set by the loader. */
const volatile struct fp_hash_key ticket_key = {};
/* This host writes tickets for some VIP: else the verifier drops every ticket step. */
const volatile __u8 tickets_on = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_RDONLY_PROG);
	__uint(max_entries, FP_BACKEND_MAX_VIPS);
	__type(key, struct fp_backend_ticket_key);
	__type(value, struct fp_backend_ticket);
} tickets SEC(".maps");

/* The VIP's ticket settings, or NULL when it has no tickets here. */
static __always_inline const struct fp_backend_ticket *ticket_of(const __u8 vip[16], __be16 port)
{
	struct fp_backend_ticket_key k = { .port = port, .proto = IPPROTO_TCP };
	const struct fp_backend_ticket *t;

	__builtin_memcpy(k.vip, vip, 16);
	t = bpf_map_lookup_elem(&tickets, &k);
	if (!t) {
		k.port = 0; /* an all-ports VIP */
		t = bpf_map_lookup_elem(&tickets, &k);
	}
	if (!t || !t->bits || t->bits > FP_TICKET_MAX_BITS)
		return NULL;
	return t;
}

/* The ticket hash of @f, whose addresses are set: the rest of the key from the ports. */
static __always_inline __u64 ticket_hash(struct fp_flow_key *f, __be16 client_port, __be16 vip_port)
{
	struct fp_hash_key key = ticket_key;

	f->sport = client_port;
	f->dport = vip_port;
	f->proto = IPPROTO_TCP;
	f->pad[0] = f->pad[1] = f->pad[2] = 0;
	return fp_ticket_flow_hash(&key, f);
}

/*
 * What replacing the 32-bit value @from by @to (both as they lie in the packet) adds to
 * the TCP checksum's sum, folded to 16 bits in packet byte order; @odd when the value
 * starts at an odd offset from the TCP header.
 */
static __always_inline __u16 ticket_csum_diff(__u32 from, __u32 to, int odd)
{
	__u32 sum = (__u16)~from + (__u16) ~(from >> 16) + (to & 0xffff) + (to >> 16);

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	if (odd)
		sum = ((sum & 0xff) << 8) | (sum >> 8);
	return (__u16)sum;
}

/* The TCP checksum @check after adding the folded difference @diff (RFC 1624, eqn. 3). */
static __always_inline __u16 ticket_csum_apply(__u16 check, __u16 diff)
{
	__u32 sum = (__u16)~check + (__u32)diff;

	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * Ingress: a TSecr to put back at delivery. In: the segment's flow and where its TCP
 * header is; out: what to write, where, and the TCP checksum then.
 */
struct ticket_restore {
	struct fp_flow_key flow; /* in: src (client), dst (VIP) set, IPv4-mapped for IPv4 */
	__u32 tcp_off;		 /* in: the TCP header's offset in the frame */
	__u32 tsecr_off;	 /* out: 0 = nothing to restore */
	__be32 tsecr;
	__u16 check;
	__u16 pad;
};

/*
 * Both programs' struct ticket_restore: per CPU, off the programs' stack (512 bytes);
 * one each (TICKET_SCRATCH_*), so that neither can see the other's half-done work.
 */
#define TICKET_SCRATCH_INGRESS 0
#define TICKET_SCRATCH_EGRESS  1
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct ticket_restore);
} ticket_scratch SEC(".maps");

/*
 * ticket_ingress - decides whether the TSecr of the TCP segment at @r->tcp_off (from
 * @r->flow.src to @r->flow.dst) is ours to restore and fills @r; counts a segment without
 * timestamps and a ticket of another backend. Returns 0.
 *
 * A global function: the verifier checks it once, on its own, instead of once per path
 * of the ingress program that reaches a TCP segment (inlined, the option walk and the
 * SipHash took the program past the 1M-instruction budget).
 */
__attribute__((noinline)) int ticket_ingress(struct __sk_buff *skb, struct ticket_restore *r)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	const struct fp_backend_ticket *t;
	__u32 tsecr, orig, raw_old, raw_new;
	struct tcphdr *th;
	__u8 *ts;
	__u64 fh;

	if (!r)
		return 0;
	r->tsecr_off = 0;
	if (r->tcp_off > 0xfff)
		return 0;
	th = data + r->tcp_off;
	if ((void *)(th + 1) > end)
		return 0;
	t = ticket_of(r->flow.dst, th->dest);
	if (!t)
		return 0;
	ts = fp_tcp_timestamp(th, end);
	if (!ts) {
		count(FP_BACKEND_TICKET_NO_TIMESTAMP);
		return 0;
	}
	if (!th->ack)
		return 0; /* a SYN echoes nothing */
	tsecr = fp_tcp_ts_get32(ts + 4);
	fh = ticket_hash(&r->flow, th->source, th->dest);
	if (fp_ticket_sid(tsecr, fh, t->bits) != t->sid) {
		count(FP_BACKEND_TICKET_MISMATCH);
		return 0;
	}
	orig = fp_ticket_restore(tsecr, fh, t->bits, (__u32)(bpf_ktime_get_ns() / 1000000));
	raw_old = bpf_htonl(tsecr);
	raw_new = bpf_htonl(orig);
	r->tsecr_off = (__u32)((ts + 4) - (__u8 *)data);
	r->tsecr = raw_new;
	r->check = ticket_csum_apply(th->check,
				     ticket_csum_diff(raw_old, raw_new, (ts + 4 - (__u8 *)th) & 1));
	return 0;
}

/* Writes what ticket_ingress() decided. Returns 0, or -1 when a helper failed. */
static __always_inline int ticket_restore_apply(struct __sk_buff *skb,
						const struct ticket_restore *r)
{
	__be32 tsecr;
	__u16 check;

	if (!r || !r->tsecr_off)
		return 0;
	tsecr = r->tsecr;
	check = r->check;
	if (bpf_skb_store_bytes(skb, r->tsecr_off, &tsecr, sizeof(tsecr), 0) ||
	    bpf_skb_store_bytes(skb, r->tcp_off + offsetof(struct tcphdr, check), &check,
				sizeof(check), 0))
		return -1;
	count(FP_BACKEND_TICKET_RESTORED);
	return 0;
}

/*
 * ticket_write - egress, the TCP segment at @r->tcp_off from the ticket VIP @r->flow.dst
 * to the client @r->flow.src: its TSval becomes the ticket naming @sid in @bits bits.
 * Returns the tc action. A global function, verified once apart from the header walk
 * that finds the segment (together they took the verifier past its budget).
 */
__attribute__((noinline)) int ticket_write(struct __sk_buff *skb, struct ticket_restore *r,
					   __u32 sid, __u32 bits)
{
	__u32 tsval, raw_old, raw_new, ts_off;
	struct tcphdr *th;
	void *data, *end;
	__u8 *ts;
	int odd;

	if (!r || r->tcp_off > 0xfff || bits < FP_TICKET_MIN_BITS || bits > FP_TICKET_MAX_BITS)
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	th = data + r->tcp_off;
	if ((void *)(th + 1) > end)
		return TC_ACT_OK;
	ts = fp_tcp_timestamp(th, end);
	if (!ts)
		return TC_ACT_OK; /* the client sent no timestamps: no ticket (counted on ingress) */
	tsval = fp_tcp_ts_get32(ts);
	raw_old = bpf_htonl(tsval);
	raw_new = bpf_htonl(fp_ticket_encode(tsval, ticket_hash(&r->flow, th->dest, th->source),
					     (__u16)sid, (__u8)bits));
	ts_off = (__u32)(ts - (__u8 *)data);
	odd = (ts - (__u8 *)th) & 1;
	/* Size 0: the last argument is a difference, not a new value (bpf-helpers(7)). */
	if (bpf_l4_csum_replace(skb, r->tcp_off + offsetof(struct tcphdr, check), 0,
				ticket_csum_diff(raw_old, raw_new, odd), 0) ||
	    bpf_skb_store_bytes(skb, ts_off, &raw_new, sizeof(raw_new), 0)) {
		count(FP_BACKEND_ERROR);
		return TC_ACT_SHOT;
	}
	count(FP_BACKEND_TICKET_WRITTEN);
	return TC_ACT_OK;
}

/*
 * Egress: the segment's TSval becomes the ticket when it leaves from a ticket VIP of
 * this host. Never drops what it does not touch; a helper that fails after a change
 * leaves a segment the client would drop anyway: dropped here, counted (error).
 *
 * The headers are read here, not with parse.h's walkers: those check the IP length
 * against the end of the frame, made for whole frames (XDP, the tunnel), while the
 * local stack's segments carry their payload in page fragments (data_end is the end of
 * the headers: a real connection's data segments were left without tickets, and the
 * client's PAWS check then dropped them). What the stack sends is simple: no IPv4
 * fragment, no IPv6 extension header before TCP; anything else is passed on untouched.
 */
static __always_inline int ticket_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	const struct fp_backend_ticket *t;
	struct ethhdr *eth = data;
	struct ticket_restore *r;
	struct tcphdr *th;
	__u32 slot = TICKET_SCRATCH_EGRESS;

	if (!tickets_on)
		return TC_ACT_OK;
	r = bpf_map_lookup_elem(&ticket_scratch, &slot);
	if (!r || (void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5 ||
		    ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return TC_ACT_OK;
		th = (void *)ip + ip->ihl * 4;
		fp_addr_from_v4(r->flow.dst, ip->saddr); /* the VIP */
		fp_addr_from_v4(r->flow.src, ip->daddr); /* the client */
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != IPPROTO_TCP)
			return TC_ACT_OK;
		th = (void *)(ip6 + 1);
		__builtin_memcpy(r->flow.dst, &ip6->saddr, 16);
		__builtin_memcpy(r->flow.src, &ip6->daddr, 16);
	} else {
		return TC_ACT_OK;
	}
	if ((void *)(th + 1) > end)
		return TC_ACT_OK;
	t = ticket_of(r->flow.dst, th->source);
	if (!t)
		return TC_ACT_OK;
	r->tcp_off = (__u32)((void *)th - data);
	return ticket_write(skb, r, t->sid, t->bits);
}

#endif
