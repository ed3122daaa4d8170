/* SPDX-License-Identifier: MIT */
/*
 * Addresses of either family as userspace keeps them (config, loaders, CLI), and their
 * literals (lib/addr.c). IPv4 is stored IPv4-mapped, as in the flow key (flowpin/flow.h).
 * Userspace only.
 */
#ifndef FLOWPIN_ADDR_H
#define FLOWPIN_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <flowpin/flow.h>

struct fp_addr {
	__u8 a[16];
};

struct fp_prefix {
	struct fp_addr addr;
	__u8 len; /* in IPv6 terms: an IPv4 /24 is stored as 96 + 24 */
};

/* Formats an address (IPv4 dotted for IPv4-mapped). Returns buf. */
const char *fp_addr_str(const struct fp_addr *a, char *buf, size_t len);
/* Parses an IPv4 or IPv6 literal. Returns 0 or -EINVAL. */
int fp_addr_parse(const char *s, struct fp_addr *out);
/*
 * An endpoint as an operator types it: "ADDR" (either family), "IPV4:PORT", "[IPV6]" or
 * "[IPV6]:PORT"; the port digits only, 0..65535. *@port is -1 without one. Returns 0 or
 * -EINVAL.
 */
int fp_endpoint_parse(const char *s, struct fp_addr *addr, int *port);
static inline bool fp_addr_v4(const struct fp_addr *a)
{
	return fp_addr_is_v4(a->a);
}

#endif
