// SPDX-License-Identifier: MIT
/* Address literals <-> struct fp_addr (IPv4 kept IPv4-mapped, as in the flow key). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <flowpin/config.h>

int fp_addr_parse(const char *s, struct fp_addr *out)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (!s || !out)
		return -EINVAL;
	/* inet_pton accepts only the strict dotted quad: no "10.1", no octal surprises. */
	if (inet_pton(AF_INET, s, &v4) == 1) {
		fp_addr_from_v4(out->a, v4.s_addr);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &v6) == 1) {
		memcpy(out->a, v6.s6_addr, 16);
		return 0;
	}
	return -EINVAL;
}

const char *fp_addr_str(const struct fp_addr *a, char *buf, size_t len)
{
	if (!buf || !len)
		return buf;
	if (!a) {
		snprintf(buf, len, "(null)");
		return buf;
	}
	if (fp_addr_v4(a)) {
		if (!inet_ntop(AF_INET, a->a + 12, buf, (socklen_t)len))
			snprintf(buf, len, "?");
	} else {
		if (!inet_ntop(AF_INET6, a->a, buf, (socklen_t)len))
			snprintf(buf, len, "?");
	}
	return buf;
}

const char *const fp_pinning_names[FP_PIN__COUNT] = {
#define FP_X(name, value, str, maglev, sessions, second_chance, help) [value] = str,
	FP_PINNING_MODES(FP_X)
#undef FP_X
};

const char *const fp_backend_state_names[FP_BACKEND_STATE__COUNT] = {
#define FP_X(name, value, str, help) [value] = str,
	FP_BACKEND_STATES(FP_X)
#undef FP_X
};

const char *fp_pinning_name(enum fp_pinning p)
{
	return (unsigned)p < FP_PIN__COUNT ? fp_pinning_names[p] : "?";
}

const char *fp_backend_state_name(enum fp_backend_state s)
{
	return (unsigned)s < FP_BACKEND_STATE__COUNT ? fp_backend_state_names[s] : "?";
}
