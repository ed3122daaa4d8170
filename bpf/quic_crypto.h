/* SPDX-License-Identifier: MIT */
/*
 * The AES contexts of QUIC-LB VIPs with a single-pass key: the `quic_crypto` map
 * (flowpin/maps.h) of kptrs to the kernel's struct bpf_crypto_ctx, shared by the XDP
 * program (bpf/quic.h reads it) and bpf/quic_key.bpf.c (writes it).
 */
#ifndef FLOWPIN_BPF_QUIC_CRYPTO_H
#define FLOWPIN_BPF_QUIC_CRYPTO_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <flowpin/maps.h>

/*
 * The kernel's types, by name only (no vmlinux.h here): the verifier matches kfunc
 * arguments and the kptr by their names in the kernel's BTF. The layout of
 * bpf_crypto_params is the kernel's (include/linux/bpf_crypto.h, uapi since 6.10).
 */
struct bpf_crypto_ctx {
	int opaque;
};
struct bpf_crypto_params {
	char type[14];
	__u8 reserved[2];
	char algo[128];
	__u8 key[256];
	__u32 key_len;
	__u32 authsize;
};

extern struct bpf_crypto_ctx *bpf_crypto_ctx_create(const struct bpf_crypto_params *params,
						    __u32 params__sz, int *err) __ksym;
extern void bpf_crypto_ctx_release(struct bpf_crypto_ctx *ctx) __ksym;
extern int bpf_crypto_decrypt(struct bpf_crypto_ctx *ctx, const struct bpf_dynptr *src,
			      const struct bpf_dynptr *dst,
			      const struct bpf_dynptr *siv__nullable) __ksym;

/*
 * The kptr field. clang < 15 does not emit BTF type tags, so `__kptr` leaves no mark in
 * the object's BTF: lib/lb.c (restore_kptr_tag()) inserts the TYPE_TAG "kptr" between
 * this member's pointer and its struct before the object is loaded, which is what a
 * newer clang emits from the attribute.
 */
#ifndef __kptr
#define __kptr __attribute__((btf_type_tag("kptr")))
#endif
struct fp_quic_crypto {
	struct bpf_crypto_ctx __kptr *ctx;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_quic_crypto);
	__uint(max_entries, FP_VIP_SLOTS_MAX);
} quic_crypto SEC(".maps");

#endif
