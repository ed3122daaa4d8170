// SPDX-License-Identifier: MIT
/*
 * Creates and releases the AES contexts of QUIC-LB VIPs (bpf/quic_crypto.h) in the
 * LB program's `quic_crypto` map: a separate object, loaded by lib/lb.c over that
 * map (pinned or not) only while an apply sets keys, so any process that applies a
 * config can do it and nothing but the map is kept.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <flowpin/maps.h>
#include "quic_crypto.h"

#define EINVAL 22
#define ENOENT 2

/*
 * Run by lib/lb.c through BPF_PROG_TEST_RUN at every apply, once per VIP with a
 * single-pass key (key_len 16: a new context replaces the VIP's old one, released
 * once no packet can still use it) or without one (key_len 0: the VIP's context is
 * released). The kernel creates crypto contexts only in sleepable programs, and only
 * a map's kptr carries one over to XDP. args->err tells the loader what went wrong.
 */
SEC("syscall")
int fp_quic_key(struct fp_quic_key_args *args)
{
	struct bpf_crypto_params params = {};
	struct bpf_crypto_ctx *cc, *old;
	struct fp_quic_crypto *c;
	__u32 index = args->vip_index;
	int err = 0;

	c = bpf_map_lookup_elem(&quic_crypto, &index);
	if (!c) {
		args->err = -ENOENT;
		return 0;
	}
	if (args->key_len == 0) {
		old = bpf_kptr_xchg(&c->ctx, NULL);
		if (old)
			bpf_crypto_ctx_release(old);
		args->err = 0;
		return 0;
	}
	if (args->key_len != sizeof(args->key)) {
		args->err = -EINVAL;
		return 0;
	}
	__builtin_memcpy(params.type, "skcipher", sizeof("skcipher"));
	for (int i = 0; i < sizeof(args->algo) - 1; i++)
		params.algo[i] = args->algo[i];
	__builtin_memcpy(params.key, args->key, sizeof(args->key));
	params.key_len = sizeof(args->key);
	cc = bpf_crypto_ctx_create(&params, sizeof(params), &err);
	if (!cc) {
		args->err = err ? err : -EINVAL;
		return 0;
	}
	old = bpf_kptr_xchg(&c->ctx, cc);
	if (old)
		bpf_crypto_ctx_release(old);
	args->err = 0;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
