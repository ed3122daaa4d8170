// SPDX-License-Identifier: MIT
/* A private network namespace where bpf_fib_lookup() resolves: see flowpin/fibns.h. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/wait.h>
#include <flowpin/fibns.h>
#include <flowpin/log.h>

/* Runs `ip ARGS...`, quiet unless it fails. Returns 0 or -EIO. */
static int run_ip(const char *const args[])
{
	const char *argv[16] = { "ip" };
	int status, n = 1;
	pid_t pid;

	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0 && fp_log_verbosity < FP_LOG_DEBUG)
			dup2(null, STDOUT_FILENO);
		execvp("ip", (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char line[256] = "";

		for (int i = 0; i < n; i++) {
			strncat(line, argv[i], sizeof(line) - strlen(line) - 2);
			strcat(line, " ");
		}
		fp_err("fibns: '%s' failed (status %d)\n", line, WEXITSTATUS(status));
		return -EIO;
	}
	return 0;
}

static int write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);
	int err = 0;

	if (fd < 0) {
		err = -errno;
		fp_err("fibns: %s: %s\n", path, strerror(errno));
		return err;
	}
	if (write(fd, value, strlen(value)) < 0) {
		err = -errno;
		fp_err("fibns: writing %s: %s\n", path, strerror(errno));
	}
	close(fd);
	return err;
}

int fp_mac_parse(const char *s, __u8 mac[6])
{
	unsigned int b[6];
	char tail;

	if (!s ||
	    sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -EINVAL;
		mac[i] = (__u8)b[i];
	}
	return 0;
}

int fp_fibns_enter(const __u8 *next_hop_mac, struct fp_fibns *out)
{
	static const __u8 own_mac[6] = FP_FIBNS_OWN_MAC;
	static const __u8 default_gw_mac[6] = FP_FIBNS_NEXT_HOP_MAC;
	static const __u8 own_v4[4] = { 192, 0, 2, 1 };
	static const __u8 own_v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	char own[18], gw[18];
	int err;

	if (!out)
		return -EINVAL;
	if (!next_hop_mac)
		next_hop_mac = default_gw_mac;
	snprintf(own, sizeof(own), "%02x:%02x:%02x:%02x:%02x:%02x", own_mac[0], own_mac[1],
		 own_mac[2], own_mac[3], own_mac[4], own_mac[5]);
	snprintf(gw, sizeof(gw), "%02x:%02x:%02x:%02x:%02x:%02x", next_hop_mac[0], next_hop_mac[1],
		 next_hop_mac[2], next_hop_mac[3], next_hop_mac[4], next_hop_mac[5]);
	if (unshare(CLONE_NEWNET)) {
		err = -errno;
		fp_err("fibns: cannot create a network namespace: %s\n", strerror(errno));
		return err;
	}

	const char *const steps[][14] = {
		{ "link", "set", "lo", "up" },
		{ "link", "add", FP_FIBNS_DEV, "address", own, "type", "veth", "peer", "name",
		  "fp-test1" },
		{ "link", "set", FP_FIBNS_DEV, "up" },
		{ "link", "set", "fp-test1", "up" },
		{ "addr", "add", "192.0.2.1/24", "dev", FP_FIBNS_DEV },
		{ "-6", "addr", "add", "2001:db8::1/64", "dev", FP_FIBNS_DEV, "nodad" },
		{ "neigh", "replace", "192.0.2.254", "lladdr", gw, "dev", FP_FIBNS_DEV, "nud",
		  "permanent" },
		{ "-6", "neigh", "replace", "2001:db8::fe", "lladdr", gw, "dev", FP_FIBNS_DEV,
		  "nud", "permanent" },
		{ "route", "add", "default", "via", "192.0.2.254", "dev", FP_FIBNS_DEV },
		{ "-6", "route", "add", "default", "via", "2001:db8::fe", "dev", FP_FIBNS_DEV },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		err = run_ip(steps[i]);
		if (err)
			return err;
	}
	/* bpf_fib_lookup() answers "forwarding disabled" unless the namespace forwards. */
	err = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
	if (!err)
		err = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");
	if (err)
		return err;

	memset(out, 0, sizeof(*out));
	out->ifindex = (int)if_nametoindex(FP_FIBNS_DEV);
	if (!out->ifindex) {
		err = -errno;
		fp_err("fibns: %s vanished: %s\n", FP_FIBNS_DEV, strerror(errno));
		return err;
	}
	memcpy(out->own_mac, own_mac, 6);
	memcpy(out->next_hop_mac, next_hop_mac, 6);
	memcpy(out->own_v4, own_v4, 4);
	memcpy(out->own_v6, own_v6, 16);
	return 0;
}
