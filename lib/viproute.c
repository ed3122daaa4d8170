// SPDX-License-Identifier: MIT
/* Blackhole routes for VIP addresses over rtnetlink: see flowpin/viproute.h. */
#include <errno.h>
#include <ifaddrs.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <flowpin/log.h>
#include <flowpin/viproute.h>

#define MAX_ROUTES 256 /* of ours; FP_MAX_VIPS addresses at most */

struct route_req {
	struct nlmsghdr nh;
	struct rtmsg rt;
	char attrs[64];
};

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		fp_err("vip routes: netlink socket: %s\n", strerror(errno));
	return fd < 0 ? -errno : fd;
}

/*
 * Sends @req, then hands each reply message to @on_msg (reading into @buf, @size bytes)
 * until @on_msg returns true, having stored the exchange's result in *ret: returns that
 * result, or -errno if sending or receiving fails.
 */
static int nl_exchange(int fd, const struct nlmsghdr *req, char *buf, size_t size,
		       bool (*on_msg)(const struct nlmsghdr *h, void *ctx, int *ret), void *ctx)
{
	ssize_t n;
	int ret;

	if (send(fd, req, req->nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		n = recv(fd, buf, size, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
			if (on_msg(h, ctx, &ret))
				return ret;
	}
}

/* nl_exchange() callback of nl_transact(): the acknowledgement of sequence *@ctx. */
static bool on_ack(const struct nlmsghdr *h, void *ctx, int *ret)
{
	if (h->nlmsg_seq != *(const __u32 *)ctx || h->nlmsg_type != NLMSG_ERROR)
		return false;
	*ret = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
	return true;
}

/* Sends @nh and waits for its acknowledgement. Returns 0 or the kernel's -errno. */
static int nl_transact(int fd, struct nlmsghdr *nh)
{
	static __u32 seq;
	char buf[4096];

	nh->nlmsg_seq = ++seq;
	nh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	return nl_exchange(fd, nh, buf, sizeof(buf), on_ack, &nh->nlmsg_seq);
}

/* Adds (RTM_NEWROUTE, never replacing) or deletes a blackhole route of ours. */
static int route_change(int fd, int type, const struct fp_addr *a)
{
	struct route_req req = {};
	int v4 = fp_addr_v4(a);
	size_t alen = v4 ? 4 : 16;
	struct rtattr *rta;

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.rt));
	req.nh.nlmsg_type = (__u16)type;
	req.nh.nlmsg_flags = type == RTM_NEWROUTE ? NLM_F_CREATE | NLM_F_EXCL : 0;
	req.rt.rtm_family = v4 ? AF_INET : AF_INET6;
	req.rt.rtm_dst_len = v4 ? 32 : 128;
	req.rt.rtm_table = RT_TABLE_MAIN;
	req.rt.rtm_protocol = FP_RTPROT;
	req.rt.rtm_scope = RT_SCOPE_UNIVERSE;
	req.rt.rtm_type = RTN_BLACKHOLE;
	rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
	rta->rta_type = RTA_DST;
	rta->rta_len = (unsigned short)RTA_LENGTH(alen);
	memcpy(RTA_DATA(rta), v4 ? a->a + 12 : a->a, alen);
	req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
	return nl_transact(fd, &req.nh);
}

struct dump_ctx {
	int family;
	struct fp_addr *out;
	int cap;
	int found;
};

/* nl_exchange() callback of dump_ours(): collects one route message if it is ours. */
static bool on_route(const struct nlmsghdr *h, void *ctx, int *ret)
{
	struct dump_ctx *d = ctx;

	if (h->nlmsg_type == NLMSG_DONE) {
		*ret = d->found;
		return true;
	}
	if (h->nlmsg_type == NLMSG_ERROR) {
		*ret = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
		return true;
	}
	if (h->nlmsg_type != RTM_NEWROUTE)
		return false;
	struct rtmsg *rt = NLMSG_DATA(h);
	int len = (int)RTM_PAYLOAD(h);

	if (rt->rtm_protocol != FP_RTPROT || rt->rtm_type != RTN_BLACKHOLE ||
	    rt->rtm_table != RT_TABLE_MAIN || rt->rtm_dst_len != (d->family == AF_INET ? 32 : 128))
		return false;
	for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type != RTA_DST || d->found >= d->cap)
			continue;
		memset(&d->out[d->found], 0, sizeof(d->out[d->found]));
		if (d->family == AF_INET)
			fp_addr_from_v4(d->out[d->found].a, *(__be32 *)RTA_DATA(a));
		else
			memcpy(d->out[d->found].a, RTA_DATA(a), 16);
		d->found++;
	}
	return false;
}

/* Our blackhole routes of @family in the main table, into @out. Returns how many. */
static int dump_ours(int fd, int family, struct fp_addr *out, int cap)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
	} req = {};
	static char buf[32768];
	struct dump_ctx d = { .family = family, .out = out, .cap = cap };

	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = 1;
	req.rt.rtm_family = (unsigned char)family;
	return nl_exchange(fd, &req.nh, buf, sizeof(buf), on_route, &d);
}

static int dump_all_ours(int fd, struct fp_addr *out, int cap)
{
	int n4 = dump_ours(fd, AF_INET, out, cap), n6;

	if (n4 < 0)
		return n4;
	n6 = dump_ours(fd, AF_INET6, out + n4, cap - n4);
	return n6 < 0 ? n6 : n4 + n6;
}

/* Whether @a is configured on an interface of this namespace. */
static bool is_local(const struct ifaddrs *list, const struct fp_addr *a)
{
	for (const struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET && fp_addr_v4(a) &&
		    !memcmp(&((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr, a->a + 12, 4))
			return true;
		if (ifa->ifa_addr->sa_family == AF_INET6 && !fp_addr_v4(a) &&
		    !memcmp(&((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, a->a, 16))
			return true;
	}
	return false;
}

static bool in_list(const struct fp_addr *list, int n, const struct fp_addr *a)
{
	for (int i = 0; i < n; i++)
		if (!memcmp(list[i].a, a->a, 16))
			return true;
	return false;
}

int fp_vip_routes_sync(const struct fp_config *cfg)
{
	struct fp_addr ours[MAX_ROUTES], want[MAX_ROUTES];
	struct ifaddrs *ifas = NULL;
	char buf[INET6_ADDRSTRLEN];
	int fd, n_ours, n_want = 0, err = 0;

	if (!cfg)
		return -EINVAL;
	fd = nl_open();
	if (fd < 0)
		return fd;
	if (getifaddrs(&ifas)) {
		err = -errno;
		fp_err("vip routes: getifaddrs: %s\n", strerror(errno));
		goto out;
	}
	n_ours = dump_all_ours(fd, ours, MAX_ROUTES);
	if (n_ours < 0) {
		err = n_ours;
		fp_err("vip routes: reading the routing table: %s\n", strerror(-err));
		goto out;
	}
	for (size_t i = 0; i < cfg->n_vips && n_want < MAX_ROUTES; i++) {
		const struct fp_addr *a = &cfg->vips[i].addr;

		if (is_local(ifas, a) || in_list(want, n_want, a))
			continue;
		want[n_want++] = *a;
		if (in_list(ours, n_ours, a))
			continue;
		int rc = route_change(fd, RTM_NEWROUTE, a);

		if (rc == -EEXIST) {
			fp_warn("%s:%d: vip %s: a route for %s exists that is not flowpin's: "
				"left as it is, no blackhole route (the node may route this "
				"VIP's unserved packets while flowpin is not attached)\n",
				cfg->path ? cfg->path : "config", cfg->vips[i].line,
				cfg->vips[i].name, fp_addr_str(a, buf, sizeof(buf)));
		} else if (rc) {
			fp_err("vip routes: blackhole route for %s: %s\n",
			       fp_addr_str(a, buf, sizeof(buf)), strerror(-rc));
			err = rc;
		}
	}
	for (int i = 0; i < n_ours; i++) {
		if (in_list(want, n_want, &ours[i]))
			continue;
		int rc = route_change(fd, RTM_DELROUTE, &ours[i]);

		if (rc && rc != -ESRCH) {
			fp_err("vip routes: removing the route for %s: %s\n",
			       fp_addr_str(&ours[i], buf, sizeof(buf)), strerror(-rc));
			err = rc;
		}
	}
out:
	if (ifas)
		freeifaddrs(ifas);
	close(fd);
	return err;
}

int fp_vip_routes_remove(void)
{
	struct fp_addr ours[MAX_ROUTES];
	char buf[INET6_ADDRSTRLEN];
	int fd = nl_open(), n, err = 0;

	if (fd < 0)
		return fd;
	n = dump_all_ours(fd, ours, MAX_ROUTES);
	if (n < 0) {
		err = n;
		fp_err("vip routes: reading the routing table: %s\n", strerror(-err));
	}
	for (int i = 0; i < n; i++) {
		int rc = route_change(fd, RTM_DELROUTE, &ours[i]);

		if (rc && rc != -ESRCH) {
			fp_err("vip routes: removing the route for %s: %s\n",
			       fp_addr_str(&ours[i], buf, sizeof(buf)), strerror(-rc));
			err = rc;
		}
	}
	close(fd);
	return err;
}
