/* SPDX-License-Identifier: MIT */
/*
 * Map layouts shared by bpf/lb.bpf.c and userspace (flowpin lb, replay, tests).
 * Every struct here is read by both sides: fixed-width types, explicit padding,
 * sizes asserted.
 */
#ifndef FLOWPIN_MAPS_H
#define FLOWPIN_MAPS_H

#include <flowpin/compiler.h>

#define FP_NO_BACKEND 0 /* backend ids start at 1 */

/* One Maglev bucket of a VIP's active table: owner now and owner one generation ago. */
struct fp_bucket {
	__u16 owner;	/* backend id in generation g+1 (FP_NO_BACKEND: none) */
	__u16 previous; /* backend id in generation g; == owner when the bucket did not move */
};
FP_STATIC_ASSERT(sizeof(struct fp_bucket) == 4, "bucket is two backend ids");

#endif
