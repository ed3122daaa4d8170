/* SPDX-License-Identifier: MIT */
/*
 * QUIC-LB in XDP (docs/design.md step 3): the server ID a QUIC packet's
 * destination connection ID carries, by the draft's encodings
 * (draft-ietf-quic-load-balancers; lib/quiclb.c is the userspace side):
 *
 *  - the DCID, version independent (RFC 8999 invariants): a long header (first bit 1)
 *    has version (4 octets), DCID length (1 octet, at most 20 here, QUIC v1's limit)
 *    and the DCID; a short header has the DCID right after the first octet, of the
 *    length the VIP's servers use (1 + server_id_len + nonce_len), which a short header
 *    does not carry. Long-header type bits (v1 and v2 differ) are not read.
 *  - first octet's top 3 bits: the config rotation bits, which must be the VIP's
 *    config id (0b111 is the draft's "unroutable" and never a config id).
 *  - plaintext: the server ID follows the first octet in clear.
 *  - single pass (server ID + nonce = 16 octets): those 16 octets are one AES-128-ECB
 *    block; decrypted through the kernel's bpf_crypto kfuncs (Linux >= 6.10 for XDP)
 *    with the VIP's context, a kptr in `quic_crypto` (quic_crypto.h).
 *  - four-pass (other lengths with a key) is not decoded here: lib/lb.c does not set
 *    FP_VIP_F_QUIC_LB for such a VIP (docs/design.md says why).
 *
 * Returns 0 with the (VIP index, server ID) key filled, or the FP_CNT_QUIC_LB_* counter
 * that says why the packet is unroutable. The caller looks the key up in `quic_servers`
 * and checks the backend. Everything here is a pure function of the packet and the
 * maps, so every LB node with the same config decides the same.
 */
#ifndef FLOWPIN_BPF_QUIC_H
#define FLOWPIN_BPF_QUIC_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <flowpin/maps.h>

#include "quic_crypto.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct fp_quic_lb);
	__uint(max_entries, FP_VIP_SLOTS_MAX);
} quic_lb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct fp_quic_server_key);
	__type(value, struct fp_quic_server);
	__uint(max_entries, 1); /* max_vips * FP_BACKEND_SLOTS, set by the loader */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} quic_servers SEC(".maps");

/* bpf_crypto_decrypt() reads and writes dynptrs, which need map memory: one block
 * in, one block out, per CPU. */
struct fp_quic_scratch {
	__u8 in[16];
	__u8 out[16];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_quic_scratch);
	__uint(max_entries, 1);
} quic_scratch SEC(".maps");

/* The server ID of a single-pass CID: its 16 octets after the first one decrypted. */
static __always_inline int quic_lb_decrypt(struct xdp_md *ctx, __u32 block_off, __u32 vip_index,
					   __u8 sid_len, struct fp_quic_server_key *key)
{
	struct bpf_dynptr src, dst;
	struct fp_quic_scratch *s;
	struct fp_quic_crypto *c;
	struct bpf_crypto_ctx *cc;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&quic_scratch, &zero);
	c = bpf_map_lookup_elem(&quic_crypto, &vip_index);
	if (!s || !c)
		return FP_CNT_QUIC_LB_DECRYPT_ERROR;
	cc = c->ctx;
	if (!cc)
		return FP_CNT_QUIC_LB_DECRYPT_ERROR;
	if (bpf_xdp_load_bytes(ctx, block_off, s->in, sizeof(s->in)))
		return FP_CNT_QUIC_LB_NO_CID;
	bpf_dynptr_from_mem(s->in, sizeof(s->in), 0, &src);
	bpf_dynptr_from_mem(s->out, sizeof(s->out), 0, &dst);
	if (bpf_crypto_decrypt(cc, &src, &dst, NULL))
		return FP_CNT_QUIC_LB_DECRYPT_ERROR;
	for (int i = 0; i < FP_QUIC_LB_SERVER_ID_MAX; i++)
		if (i < sid_len)
			key->server_id[i] = s->out[i];
	return 0;
}

/*
 * The QUIC-LB server key of the UDP payload at [@off, @end) of a VIP with index
 * @vip_index (the contract in the header comment). A subprogram: its instructions are
 * verified once, and packets that never get here (session hits) do not carry them.
 */
static __noinline int fp_quic_lb_server(struct xdp_md *ctx, __u32 off, __u32 end, __u32 vip_index,
					struct fp_quic_server_key *key)
{
	__u8 hdr[6], cid[1 + FP_QUIC_LB_SERVER_ID_MAX];
	struct fp_quic_lb *q;
	__u32 cid_len, dcid_off;
	__u8 sid_len;

	q = bpf_map_lookup_elem(&quic_lb, &vip_index);
	if (!q)
		return FP_CNT_QUIC_LB_CONFIG;
	sid_len = q->server_id_len;
	cid_len = fp_quic_lb_cid_len(q);
	if (sid_len < 1 || sid_len > FP_QUIC_LB_SERVER_ID_MAX || cid_len > FP_QUIC_LB_CID_MAX)
		return FP_CNT_QUIC_LB_CONFIG; /* never written by lib/lb.c */
	if (off >= end || bpf_xdp_load_bytes(ctx, off, hdr, 1))
		return FP_CNT_QUIC_LB_NO_CID;
	if (hdr[0] & 0x80) {
		/* Long header: first octet, version, DCID length, DCID. */
		if (off + sizeof(hdr) > end || bpf_xdp_load_bytes(ctx, off, hdr, sizeof(hdr)))
			return FP_CNT_QUIC_LB_NO_CID;
		if (hdr[5] > FP_QUIC_LB_CID_MAX || hdr[5] < cid_len)
			return FP_CNT_QUIC_LB_NO_CID;
		dcid_off = off + sizeof(hdr);
	} else {
		dcid_off = off + 1;
	}
	if (dcid_off + cid_len > end)
		return FP_CNT_QUIC_LB_NO_CID;
	/* The first octet and the server ID (plaintext); the rest is the nonce. */
	if (bpf_xdp_load_bytes(ctx, dcid_off, cid, 1 + (sid_len & 0xf)))
		return FP_CNT_QUIC_LB_NO_CID;
	if ((cid[0] >> 5) != q->config_id || (cid[0] >> 5) == 7)
		return FP_CNT_QUIC_LB_CONFIG;
	key->vip_index = vip_index;
	key->len = sid_len;
	if (q->mode == FP_QUIC_LB_AES_1PASS)
		return quic_lb_decrypt(ctx, dcid_off + 1, vip_index, sid_len, key);
	if (q->mode != FP_QUIC_LB_PLAINTEXT)
		return FP_CNT_QUIC_LB_CONFIG;
	for (int i = 0; i < FP_QUIC_LB_SERVER_ID_MAX; i++)
		if (i < sid_len)
			key->server_id[i] = cid[1 + i];
	return 0;
}

#endif
