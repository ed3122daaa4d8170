/* SPDX-License-Identifier: MIT */
/* `lb up --metrics ADDR:PORT`: the /metrics endpoint (libmicrohttpd, its own thread). */
#ifndef FLOWPIN_METRICS_SERVER_H
#define FLOWPIN_METRICS_SERVER_H

#include <flowpin/metrics.h>

struct metrics_server;

/* Serves a fresh snapshot of the maps pinned in @pin_dir, and of the daemon @d's status
 * model (may be NULL), on each GET /metrics. Call from @d's loop thread: a timer there
 * refreshes the model's health counters every second. Returns NULL after printing why
 * (bad address, port in use). */
struct metrics_server *metrics_server_start(const char *listen, const char *pin_dir,
					    struct fp_lbd *d);
void metrics_server_stop(struct metrics_server *m);

#endif
