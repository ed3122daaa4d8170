// SPDX-License-Identifier: MIT
/* Address literals <-> struct fp_addr (IPv4 kept IPv4-mapped, as in the flow key). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <flowpin/addr.h>

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

int fp_endpoint_parse(const char *s, struct fp_addr *addr, int *port)
{
	char host[INET6_ADDRSTRLEN];
	const char *h = s, *colon = NULL;
	size_t hlen;

	if (!s || !*s)
		return -EINVAL;
	*port = -1;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close[1] ? close + 1 : NULL;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* an IPv6 literal without a port */
		hlen = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (fp_addr_parse(host, addr) || (s[0] == '[' && fp_addr_v4(addr)))
		return -EINVAL;
	if (colon) {
		size_t digits = strspn(colon + 1, "0123456789");
		long p = 0;

		if (digits == 0 || digits > 5 || colon[1 + digits])
			return -EINVAL;
		for (size_t i = 1; i <= digits; i++)
			p = p * 10 + (colon[i] - '0');
		if (p > 65535)
			return -EINVAL;
		*port = (int)p;
	}
	return 0;
}
