// SPDX-License-Identifier: MIT
/*
 * fpprobe: one tunnel health probe, as an LB node's health check sends it
 * (lib/tunnelprobe.c, docs/wire-format.md "Tunnel probe"), for the lab and for an
 * operator checking a backend by hand.
 *
 *   fpprobe [--timeout MS] [--port PORT] SOURCE BACKEND
 *
 * A UDP socket bound to SOURCE (an address of this host that is in the backends'
 * lb_sources) and connected to BACKEND:PORT (default 6080) sends one probe request with
 * a random nonce and waits up to --timeout (default 1000) ms for the reply.
 *
 * Output, one line: "reply N us" (the agent reflected it), "refused" (ICMP port
 * unreachable: no agent on the backend), "timeout", or "bad reply LEN bytes" (something
 * answered that is not our reply). Exit status: 0 reply, 1 refused, 2 timeout, 3 bad
 * reply, 4 a system call failed, 64 bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <flowpin/tunnelprobe.h>

static int parse_addr(const char *s, __u16 port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static long parse_num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return errno || *end || end == s || v < min || v > max ? -1 : v;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "timeout", required_argument, NULL, 't' },
					      { "port", required_argument, NULL, 'p' },
					      { NULL, 0, NULL, 0 } };
	struct sockaddr_storage src, dst;
	socklen_t src_len, dst_len;
	__u8 buf[64];
	struct pollfd pfd;
	long timeout_ms = 1000, port = FP_DEFAULT_ENCAP_PORT;
	uint64_t nonce;
	double start;
	ssize_t n;
	int fd, c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't')
			timeout_ms = parse_num(optarg, 1, 60000);
		else if (c == 'p')
			port = parse_num(optarg, 1, 65535);
		else
			goto usage;
		if (timeout_ms < 0 || port < 0) {
			fprintf(stderr, "fpprobe: --%s '%s': out of range\n",
				c == 't' ? "timeout" : "port", optarg);
			return 64;
		}
	}
	if (argc - optind != 2 || parse_addr(argv[optind], 0, &src, &src_len) ||
	    parse_addr(argv[optind + 1], (__u16)port, &dst, &dst_len) ||
	    src.ss_family != dst.ss_family)
		goto usage;

	fd = socket(src.ss_family, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&src, src_len) ||
	    connect(fd, (struct sockaddr *)&dst, dst_len)) {
		fprintf(stderr, "fpprobe: %s -> %s: %s\n", argv[optind], argv[optind + 1],
			strerror(errno));
		return 4;
	}
	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) {
		perror("fpprobe: getrandom");
		return 4;
	}
	start = now_us();
	if (send(fd, buf, fp_tunnel_probe_build(buf, sizeof(buf), nonce), 0) < 0) {
		perror("fpprobe: send");
		return 4;
	}
	/* Until the deadline: our reply, ECONNREFUSED, or any other datagram (bad reply). */
	for (;;) {
		long left = timeout_ms - (long)((now_us() - start) / 1000);

		pfd.fd = fd;
		pfd.events = POLLIN;
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			printf("timeout\n");
			return 2;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == ECONNREFUSED) {
			printf("refused\n");
			return 1;
		}
		if (n < 0 && errno != EINTR) {
			perror("fpprobe: recv");
			return 4;
		}
		if (n >= 0 && !fp_tunnel_probe_check_reply(buf, (size_t)n, nonce)) {
			printf("reply %.0f us\n", now_us() - start);
			return 0;
		}
		if (n >= 0) {
			printf("bad reply %zd bytes\n", n);
			return 3;
		}
	}
usage:
	fprintf(stderr, "usage: fpprobe [--timeout MS] [--port PORT] SOURCE BACKEND\n"
			"  SOURCE: an address of this host in the backends' lb_sources; BACKEND "
			"of the same family\n");
	return 64;
}
