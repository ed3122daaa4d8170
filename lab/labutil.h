/* SPDX-License-Identifier: MIT */
/*
 * What the lab's traffic programs share (lab/fpclient.c over TCP, lab/fpquic.c over
 * QUIC): the content every download carries, so a client checks any byte range without
 * the file, and the parsing of numbers and addresses on their command lines.
 *
 * Content: byte i = byte (i % 8) of splitmix64(seed ^ (i / 8)).
 */
#ifndef FLOWPIN_LAB_LABUTIL_H
#define FLOWPIN_LAB_LABUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static inline double lab_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline uint64_t lab_splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Fills buf with the content of bytes [off, off + len). */
static inline void lab_content(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t pos = off + i;

		buf[i] = (uint8_t)(lab_splitmix64(seed ^ (pos >> 3)) >> (8 * (pos & 7)));
	}
}

/* Returns the index of the first byte of data that differs from the content, or -1. */
static inline long lab_check_content(uint64_t seed, uint64_t off, const uint8_t *data, size_t len)
{
	uint8_t want[4096];

	for (size_t done = 0; done < len;) {
		size_t n = len - done < sizeof(want) ? len - done : sizeof(want);

		lab_content(seed, off + done, want, n);
		for (size_t i = 0; i < n; i++)
			if (want[i] != data[done + i])
				return (long)(done + i);
		done += n;
	}
	return -1;
}

static inline int lab_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static inline int lab_parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || *out < 0)
		return -EINVAL;
	return 0;
}

/* An address literal (IPv4, or IPv6 when it has a colon), port 0. */
static inline int lab_parse_addr(const char *arg, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(arg, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		return inet_pton(AF_INET6, arg, &s6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	return inet_pton(AF_INET, arg, &s4->sin_addr) == 1 ? 0 : -EINVAL;
}

static inline socklen_t lab_addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static inline const char *lab_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, len);
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, len);
	return buf;
}

static inline uint16_t lab_addr_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
					      : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static inline void lab_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* A flow's outcome; broken = anything but completed. */
enum lab_outcome {
	OUT_RUNNING = 0,
	OUT_COMPLETED,
	OUT_RESET,
	OUT_STALLED,
	OUT_TIMEOUT,
	OUT_CORRUPTED
};
#define LAB_OUTCOMES 6
static const char *const lab_outcome_name[LAB_OUTCOMES] = { "running", "completed", "reset",
							    "stalled", "timeout",   "corrupted" };

/*
 * Checks len body bytes at offset off against the content, @left bytes being still due.
 * Returns 0, or -1 with what was wrong in detail ("extra-bytes", "byte:N").
 */
static inline int lab_check_piece(uint64_t seed, uint64_t off, uint64_t left, const uint8_t *data,
				  size_t len, char *detail, size_t detail_len)
{
	long bad;

	if (len > left) {
		snprintf(detail, detail_len, "extra-bytes");
		return -1;
	}
	bad = lab_check_content(seed, off, data, len);
	if (bad >= 0) {
		snprintf(detail, detail_len, "byte:%llu", (unsigned long long)(off + bad));
		return -1;
	}
	return 0;
}

/*
 * Round-robin over the sources of one family (v6 or not): the index of the next one
 * after *next (updated), or -1 when there is none of that family.
 */
static inline int lab_next_source(const struct sockaddr_storage *sources, int n_sources, bool v6,
				  int *next)
{
	for (int s = 0; s < n_sources; s++) {
		int idx = (*next + s) % n_sources;

		if ((sources[idx].ss_family == AF_INET6) == v6) {
			*next = idx + 1;
			return idx;
		}
	}
	return -1;
}

/* The per-target summary on stderr at the end of a run. */
static inline void lab_print_summary(const char *prog, const char *target, unsigned total,
				     const unsigned n[LAB_OUTCOMES])
{
	fprintf(stderr,
		"%s: %-14s total %u completed %u reset %u stalled %u timeout %u corrupted %u\n",
		prog, target, total, n[OUT_COMPLETED], n[OUT_RESET], n[OUT_STALLED], n[OUT_TIMEOUT],
		n[OUT_CORRUPTED]);
}

#endif
