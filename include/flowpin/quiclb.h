/* SPDX-License-Identifier: MIT */
/*
 * QUIC-LB routable connection IDs (draft-ietf-quic-load-balancers-21; docs/quic-lb.md).
 *
 * A server puts its server ID into every connection ID it issues; any LB node that has
 * the VIP's QUIC-LB config reads it back from a packet's destination CID, without
 * per-connection state. A CID is
 *
 *   first octet:  config rotation bits (3, the config_id; 0b111 = unroutable)
 *                 + the length of the rest of the CID (5; always written here)
 *   then:         server ID (server_id_len octets) + nonce (nonce_len octets),
 *                 in plaintext (no key), or encrypted under the config's AES-128 key:
 *                 one AES-128-ECB block when server_id_len + nonce_len == 16, the draft's
 *                 four-pass Feistel construction otherwise.
 *
 * The limits below are the draft's. The constants are usable from BPF (quic-xdp's
 * decoder); the functions are userspace only (lib/quiclb.c, OpenSSL's libcrypto).
 */
#ifndef FLOWPIN_QUICLB_H
#define FLOWPIN_QUICLB_H

#include <linux/types.h>
#ifndef __bpf__
#include <stdbool.h>
#include <stddef.h>
#endif

#define FP_QUICLB_MAX_CONFIG_ID 6    /* 0b111 is reserved: "unroutable" */
#define FP_QUICLB_UNROUTABLE	7    /* the config rotation bits of an unroutable CID */
#define FP_QUICLB_MIN_SID	1    /* octets */
#define FP_QUICLB_MAX_SID	15   /* = FP_QUICLB_MAX_PLAINTEXT - FP_QUICLB_MIN_NONCE */
#define FP_QUICLB_MIN_NONCE	4    /* octets */
#define FP_QUICLB_MAX_NONCE	18   /* = FP_QUICLB_MAX_PLAINTEXT - FP_QUICLB_MIN_SID */
#define FP_QUICLB_MAX_PLAINTEXT 19   /* server_id_len + nonce_len: a v1 CID is <= 20 octets */
#define FP_QUICLB_MAX_CID	20   /* first octet + the above */
#define FP_QUICLB_KEY_LEN	16   /* AES-128 */
#define FP_QUICLB_BLOCK		16   /* server_id_len + nonce_len == 16: single pass */
#define FP_QUICLB_CR_SHIFT	5    /* config rotation bits: the first octet's top 3 */
#define FP_QUICLB_LEN_MASK	0x1f /* the first octet's low 5: length of the rest */

/* The config rotation bits of a CID's first octet (0..7; 7 = unroutable). */
#define FP_QUICLB_CONFIG_ID(first_octet) ((__u8)((first_octet) >> FP_QUICLB_CR_SHIFT))

/*
 * One QUIC-LB configuration (a VIP's `quic_lb` in the config file). encrypted = false:
 * plaintext CIDs, key unused (all zero).
 */
struct fp_quiclb_cfg {
	__u8 config_id;	    /* 0..6 */
	__u8 server_id_len; /* 1..15 */
	__u8 nonce_len;	    /* 4..18, server_id_len + nonce_len <= 19 */
	bool encrypted;
	__u8 key[FP_QUICLB_KEY_LEN];
};

#ifndef __bpf__
/*
 * fp_quiclb_cfg_check - 0 when @c is a config the draft allows (the limits above),
 * -EINVAL otherwise.
 */
int fp_quiclb_cfg_check(const struct fp_quiclb_cfg *c);

/* Octets of a CID of config @c: 1 + server_id_len + nonce_len. */
static inline size_t fp_quiclb_cid_len(const struct fp_quiclb_cfg *c)
{
	return 1 + (size_t)c->server_id_len + c->nonce_len;
}

/*
 * fp_quiclb_encode - a CID naming @server_id (server_id_len octets) under config @c.
 * @nonce: nonce_len octets, or NULL for random ones (getrandom(2)). With a key a server
 * must never repeat a nonce with the same server ID (two equal CIDs); random nonces of
 * 4 octets repeat after ~2^16 CIDs: give long-lived servers a longer nonce_len or a
 * counter (docs/quic-lb.md "Nonces").
 * @cid: at least fp_quiclb_cid_len(c) octets (FP_QUICLB_MAX_CID always suffices);
 * *@cid_len gets that length. The first octet carries the config id and the length.
 * Returns 0, -EINVAL (bad config or arguments), -EIO (libcrypto failed).
 */
int fp_quiclb_encode(const struct fp_quiclb_cfg *c, const __u8 *server_id, const __u8 *nonce,
		     __u8 *cid, size_t *cid_len);

/*
 * fp_quiclb_decode - the server ID a CID names under config @c (a load balancer's view).
 * @cid, @cid_len: the destination CID as received; octets past fp_quiclb_cid_len(c) are
 * the server's own and ignored (the draft lets servers append some).
 * @server_id: out, server_id_len octets.
 * Returns 0, or (unroutable: the packet takes the normal path)
 *   -ENOENT  the config rotation bits are not @c's config_id (0b111 never is);
 *   -EINVAL  the CID is too short for @c, or @c/@cid is invalid;
 *   -EIO     libcrypto failed.
 * Whether the server ID names a live backend is the caller's question. Any octets
 * decode to some server ID: a forged CID can name any configured server, no more.
 */
int fp_quiclb_decode(const struct fp_quiclb_cfg *c, const __u8 *cid, size_t cid_len,
		     __u8 *server_id);
#endif

#endif
