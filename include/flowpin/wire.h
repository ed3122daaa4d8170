/* SPDX-License-Identifier: MIT */
/*
 * flowpin's encapsulation, shared by the LB program (writes it) and the backend
 * program (reads it, forwards it, strips it). docs/wire-format.md is the prose version.
 *
 *   outer IPv4 (DF) or IPv6 | UDP (sport = fp_hash_sport(), dport = encap_port, csum 0)
 *   | GUE header (variant 0, C=0, proto = 4 or 41, flags = P)
 *   | GUE private flags word: struct fp_gue_priv (type, hop index, hop count, flags)
 *   | private field: generation (be32)
 *   | hops[hop_count]: 4-byte IPv4 or 16-byte IPv6 addresses, the outer header's family
 *   | original IP packet, byte for byte
 *
 * GUE's Hlen counts the 32-bit words after the base header: 2 + hop_count (IPv4 hops)
 * or 2 + 4 * hop_count (IPv6 hops).
 *
 * hops[0] is the backend the LB chose (the outer destination); hops[1], when present,
 * is the flow's owner in the previous table generation (second chance). hop_index is
 * the index of the hop the packet is addressed to now; a backend with no socket for a
 * non-SYN segment forwards to hops[hop_index + 1] and increments hop_index.
 *
 * The outer UDP checksum is zero, for IPv6 too (RFC 6935/6936: tunnel protocols whose
 * payload carries its own checksums). Only flowpin's backend program consumes these
 * packets, before the stack sees them.
 */
#ifndef FLOWPIN_WIRE_H
#define FLOWPIN_WIRE_H

#include <flowpin/compiler.h>

#define FP_DEFAULT_ENCAP_PORT 6080
#define FP_MAX_HOPS	      2 /* owner now, owner in the previous generation */

#define FP_GUE_FLAG_PRIV      0x0001 /* host order of the 16-bit flags field: P bit */
#define FP_PRIV_TYPE_HOPS     0xF1   /* "flowpin, version 1" in the first private byte */
/* "flowpin, version 2": a cross-site message, LB node to LB node of another site
 * (docs/wire-format.md "Cross-site messages"). Same layout, one hop: the receiving LB
 * node's address. Backends drop it (not 0xF1); LB nodes take it only on encap_port and
 * only from another site's `lbs`. */
#define FP_PRIV_TYPE_CROSS_SITE 0xF2
#define FP_PRIV_FLAG_V6		0x01 /* hops are IPv6 addresses */

struct fp_guehdr {
	__u8 hlen_ver; /* version (2 bits, 0) | C (1 bit, 0) | Hlen (5 bits), MSB first */
	__u8 proto;    /* inner IP protocol: IPPROTO_IPIP (4) or IPPROTO_IPV6 (41) */
	__be16 flags;  /* FP_GUE_FLAG_PRIV */
};
FP_STATIC_ASSERT(sizeof(struct fp_guehdr) == 4, "GUE base header is 4 bytes");

struct fp_gue_priv {
	__u8 type;	   /* FP_PRIV_TYPE_HOPS */
	__u8 hop_index;	   /* hop the packet is addressed to now (0-based) */
	__u8 hop_count;	   /* 1..FP_MAX_HOPS */
	__u8 flags;	   /* FP_PRIV_FLAG_V6 */
	__be32 generation; /* table generation the LB used */
};
FP_STATIC_ASSERT(sizeof(struct fp_gue_priv) == 8, "private flags word + generation");

/* GUE Hlen byte for a given hop count and family (version 0, C = 0). */
FP_INLINE __u8 fp_gue_hlen(__u8 hop_count, int v6)
{
	return (__u8)(2 + hop_count * (v6 ? 4 : 1));
}

FP_INLINE __u32 fp_hop_size(int v6)
{
	return v6 ? 16 : 4;
}

/* Bytes added in front of the original IP packet. */
FP_INLINE __u32 fp_encap_overhead(int outer_v6, __u8 hop_count)
{
	return (outer_v6 ? 40 : 20) + 8 + sizeof(struct fp_guehdr) + sizeof(struct fp_gue_priv) +
	       hop_count * fp_hop_size(outer_v6);
}

/* Largest overhead: IPv6 outer, two IPv6 hops. The fabric needs this MTU headroom. */
#define FP_MAX_ENCAP_OVERHEAD (40 + 8 + 4 + 8 + FP_MAX_HOPS * 16)
FP_STATIC_ASSERT(FP_MAX_ENCAP_OVERHEAD == 92, "documented in docs/wire-format.md");

/*
 * Tunnel health probe (docs/wire-format.md, "Tunnel probe"): a GUE control message
 * (C bit set) that an LB node's health checker sends from its outer source address to
 * backend:encap_port in an ordinary UDP datagram (checksummed by the sender's stack).
 * The backend's program reflects it: same bytes but the control type (request ->
 * reply), addresses, ports and MACs swapped. The UDP payload is exactly this struct:
 *
 *   GUE base: version 0, C = 1, Hlen 3 | ctype (request/reply) | flags = P
 *   private data: magic "fpP1" (flowpin probe, version 1) | nonce (64 bits)
 *
 * ctype is from the draft's user-defined range (128-255). Nothing follows the header:
 * a probe carries no payload. The nonce is the prober's; the backend never reads it.
 */
#define FP_GUE_VERSION_MASK	   0xC0 /* hlen_ver: GUE version (2 bits), 0 here */
#define FP_GUE_C_BIT		   0x20 /* hlen_ver: control message */
#define FP_GUE_HLEN_MASK	   0x1F /* hlen_ver: 32-bit words after the base header */
#define FP_GUE_CTYPE_PROBE_REQUEST 0x80
#define FP_GUE_CTYPE_PROBE_REPLY   0x81
#define FP_PROBE_MAGIC		   0x66705031	      /* "fpP1", host order of the be32 field */
#define FP_PROBE_HLEN_VER	   (FP_GUE_C_BIT | 3) /* magic + nonce: 3 words */

struct fp_gue_probe {
	struct fp_guehdr gue; /* FP_PROBE_HLEN_VER, ctype, FP_GUE_FLAG_PRIV */
	__be32 magic;	      /* FP_PROBE_MAGIC: the private flags word */
	__be64 nonce;	      /* chosen by the prober, echoed unchanged */
};
FP_STATIC_ASSERT(sizeof(struct fp_gue_probe) == 16, "GUE base + magic + nonce, no padding");
FP_STATIC_ASSERT(sizeof(struct fp_gue_probe) ==
			 sizeof(struct fp_guehdr) + (FP_PROBE_HLEN_VER & FP_GUE_HLEN_MASK) * 4,
		 "Hlen covers the whole probe");
#define FP_PROBE_SIZE sizeof(struct fp_gue_probe) /* UDP payload of a probe and its reply */

#endif
