/* SPDX-License-Identifier: MIT */
/*
 * Blackhole routes for the VIP addresses of an LB node. Userspace only.
 *
 * The XDP program drops what it does not serve on a VIP address (the loop rule,
 * bpf/lb.bpf.c), but while no program is attached (a restart, a crash, a kill -9) the
 * kernel would route those packets back to the router, which sends them here again.
 * A /32 or /128 blackhole route per VIP address in the main table makes the kernel
 * refuse to forward them itself. A VIP address configured on the node is left alone:
 * the local table wins over the main one anyway, and the node's own traffic to it
 * must keep working. The routes carry protocol FP_RTPROT ("proto 102" in `ip route`),
 * so flowpin only ever changes or removes its own, and a restarted daemon finds them.
 * One flowpin LB per network namespace owns them.
 */
#ifndef FLOWPIN_VIPROUTE_H
#define FLOWPIN_VIPROUTE_H

#include <flowpin/config.h>

#define FP_RTPROT 102 /* not in iproute2's rt_protos list */

/*
 * fp_vip_routes_sync - a blackhole route for every VIP address of @cfg that is not
 * configured on any interface of this namespace; flowpin's routes for any other
 * address (removed VIPs, VIPs now local) deleted. A route of someone else's for the
 * same prefix is left as it is (warned). Returns 0 or a negative errno (logged).
 */
int fp_vip_routes_sync(const struct fp_config *cfg);

/* fp_vip_routes_remove - deletes every route fp_vip_routes_sync() made. */
int fp_vip_routes_remove(void);

#endif
