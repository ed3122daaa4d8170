/* SPDX-License-Identifier: MIT */
/* Small portability layer so the contract headers compile in BPF and userspace. */
#ifndef FLOWPIN_COMPILER_H
#define FLOWPIN_COMPILER_H

#ifdef __bpf__
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#define FP_INLINE static __always_inline
#else
#include <linux/types.h>
#include <stddef.h>
#define FP_INLINE static inline __attribute__((always_inline))
#endif

#define FP_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)

#endif
