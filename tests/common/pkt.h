/* SPDX-License-Identifier: MIT */
/*
 * Test frame builders: Ethernet (+ up to two VLAN tags) / IPv4 or IPv6 / TCP, UDP,
 * ICMP or ICMPv6, every checksum correct; and the exact flowpin-encapsulated frame an
 * LB node emits for a given inner packet (flowpin/wire.h, docs/wire-format.md), used
 * as the expected bytes of the LB tests and as input of the backend tests.
 *
 * Addresses are struct fp_addr (IPv4-mapped for IPv4); ports are host order. Every
 * builder returns the frame length, or a negative errno (-ENOSPC when @cap is too small,
 * -EINVAL for an impossible spec) and then leaves @buf unspecified.
 */
#ifndef FLOWPIN_TESTS_PKT_H
#define FLOWPIN_TESTS_PKT_H

#include <stddef.h>
#include <linux/types.h>
#include <flowpin/config.h>
#include <flowpin/flow.h>

#define FP_PKT_MAX 9216 /* room for a jumbo frame plus encapsulation */

/* TCP flag bits as in the 14th byte of the TCP header. */
#define FP_TCP_FIN 0x01
#define FP_TCP_SYN 0x02
#define FP_TCP_RST 0x04
#define FP_TCP_PSH 0x08
#define FP_TCP_ACK 0x10

/* What goes into a test frame. Zero-initialise, then set what matters. */
struct fp_pkt_spec {
	__u8 dst_mac[6];    /* all zero: FP_FIBNS_OWN_MAC, the test device's (fibns.h) */
	__u8 src_mac[6];    /* all zero: 02:00:00:00:00:01 */
	__u8 n_vlan;	    /* 0..2 tags (more are allowed: tests of the parser's bound) */
	__u16 vlan_tpid[4]; /* 0: 0x88a8 for the outer of two tags, else 0x8100 */
	__u16 vlan_id[4];
	struct fp_addr src; /* family of src decides IPv4 / IPv6; dst must match */
	struct fp_addr dst;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, or other */
	__u16 sport, dport;
	__u8 tcp_flags; /* FP_TCP_*; 0 with proto TCP means a bare ACK (FP_TCP_ACK) */
	__u32 seq, ack;
	/* TCP options after the 20-byte header, as bytes; doff counts them. */
	const __u8 *tcp_options;
	__u8 tcp_options_len; /* multiple of 4, <= 40 */
	__u8 icmp_type, icmp_code;
	__u32 icmp_rest; /* host order: id/seq of echo, next-hop MTU of frag-needed ... */
	__u8 ttl;	 /* 0: 64 */
	__u8 tos;	 /* IPv4 TOS / IPv6 traffic class */
	__u8 ip_options; /* IPv4: bytes of NOP options (multiple of 4, <= 40) */
	/* IPv6 extension headers in front of L4, in this order, each 8 bytes. */
	__u8 n_hbh;  /* hop-by-hop headers (padding only) */
	__u8 n_dest; /* destination-options headers (padding only) */
	/* Fragmentation: IPv4 MF/offset in frag_off; IPv6 adds a fragment header. */
	int fragment;
	__u16 frag_offset; /* bytes, multiple of 8 */
	int more_fragments;
	/* Non-first fragments carry the payload only: no L4 header is written. */
	const void *payload;
	size_t payload_len; /* with payload NULL: that many bytes of a fixed pattern */
};

/* fp_pkt_build - a frame from @s. */
int fp_pkt_build(const struct fp_pkt_spec *s, __u8 *buf, size_t cap);

/* Offset of the IP header in a frame built from @s (14 + 4 per VLAN tag). */
size_t fp_pkt_l3_offset(const struct fp_pkt_spec *s);

/*
 * fp_pkt_flow_key - the flow key the LB computes for the packet of @s (ports zeroed
 * when @addresses_only). For ICMP specs: not meaningful.
 */
void fp_pkt_flow_key(const struct fp_pkt_spec *s, int addresses_only, struct fp_flow_key *key);

/* What the LB puts in front of an inner packet. */
struct fp_encap_spec {
	__u8 dst_mac[6];	  /* next hop's MAC (from the FIB) */
	__u8 src_mac[6];	  /* egress device's MAC */
	struct fp_addr outer_src; /* the LB's source address of the backend's family */
	__u64 hash;		  /* flow hash: outer UDP source port fp_hash_sport(hash) */
	__u16 encap_port;	  /* host order */
	__u8 hop_count;		  /* 1..2 */
	__u8 hop_index;		  /* 0 as the LB writes it */
	struct fp_addr hops[2];	  /* hops[0] is the outer destination */
	__u32 generation;
	__u8 type; /* private type: 0 is FP_PRIV_TYPE_HOPS */
};

/*
 * fp_pkt_encap - the frame an LB emits: Ethernet (no VLAN tag) / outer IP (family of
 * hops[0], DF, TTL 64, TOS = the inner packet's TOS/traffic class, IPv4 id 0, IPv6
 * flow label 0) / UDP (checksum 0) / GUE / private word / hops / @inner, byte for byte.
 * @inner is the inner IP packet (no Ethernet header), @inner_len its IP length.
 */
int fp_pkt_encap(const struct fp_encap_spec *e, const __u8 *inner, size_t inner_len, __u8 *buf,
		 size_t cap);

/* Internet checksum helpers, for tests that build odd frames by hand. */
__u16 fp_csum_fold(__u32 sum);
__u32 fp_csum_add(__u32 sum, const void *data, size_t len);
/* Recomputes the IPv4 header checksum of the header at @ip (IHL from the header). */
void fp_pkt_ipv4_fix_csum(__u8 *ip);

/* Convenience: parse an address literal, abort() on a typo in the test itself. */
struct fp_addr fp_pkt_addr(const char *literal);

#endif
