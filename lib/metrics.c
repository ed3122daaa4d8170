// SPDX-License-Identifier: MIT
/*
 * Prometheus text exposition of a statistics snapshot: see flowpin/metrics.h.
 *
 * One family per FP_COUNTERS entry (flowpin_lb_<name>_total), not one family with a
 * reason label: the counters are not a partition of one quantity (the decision
 * counters are, but session_insert, probation_evict, flow_cache_hit ... count events
 * on packets already counted elsewhere), and a sum over a label must mean something.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <flowpin/addr.h>
#include <flowpin/config.h>
#include <flowpin/metrics.h>

const char *fp_metrics_escape_label(const char *in, char *buf, size_t len)
{
	size_t o = 0;

	for (; *in && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			buf[o++] = '\\';
			buf[o++] = *in;
		} else if (*in == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *in;
		}
	}
	if (len)
		buf[o < len ? o : len - 1] = '\0';
	return buf;
}

/* HELP text: backslash and newline escaped (quotes are fine there). */
static void write_help(FILE *out, const char *family, const char *help)
{
	fprintf(out, "# HELP %s ", family);
	for (; *help; help++) {
		if (*help == '\\')
			fputs("\\\\", out);
		else if (*help == '\n')
			fputs("\\n", out);
		else
			fputc(*help, out);
	}
	fputc('\n', out);
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	write_help(out, name, help);
	fprintf(out, "# TYPE %s %s\n", name, type);
}

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "other";
}

/* vip="ADDR:PORT/PROTO" (port 0: every port), escaped, as `lb stats` names it. */
static void vip_label(const struct fp_vip_key *k, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN], raw[INET6_ADDRSTRLEN + 16];
	struct fp_addr addr;

	memcpy(addr.a, k->addr, 16);
	fp_addr_str(&addr, a, sizeof(a));
	snprintf(raw, sizeof(raw), strchr(a, ':') ? "[%s]:%u/%s" : "%s:%u/%s", a, ntohs(k->port),
		 proto_name(k->proto));
	fp_metrics_escape_label(raw, buf, len);
}

int fp_metrics_write(FILE *out, const struct fp_stats_snapshot *s,
		     const struct fp_metrics_daemon *d)
{
	char name[96], vip[128], addr_raw[INET6_ADDRSTRLEN], addr[2 * INET6_ADDRSTRLEN];

	for (int i = 0; i < FP_CNT__MAX; i++) {
		snprintf(name, sizeof(name), "flowpin_lb_%s_total", fp_counter_names[i]);
		family(out, name, "counter", fp_counter_help[i]);
		fprintf(out, "%s %llu\n", name, (unsigned long long)s->counters[i]);
	}

	/* No session-table occupancy: `sessions` is an LRU hash, counting it walks every
	 * key (one syscall each, up to max entries) per scrape; probation neither (an
	 * array of marks, all slots to read). `lb flows` counts both on demand. */
	family(out, "flowpin_vips", "gauge", "VIPs in the pinned vips map");
	fprintf(out, "flowpin_vips %zu\n", s->n_vips);
	family(out, "flowpin_backends", "gauge", "backend entries of every VIP, any state");
	fprintf(out, "flowpin_backends %zu\n", s->n_backends);

	family(out, "flowpin_vip_generation", "gauge",
	       "table generation active for the VIP (carried in the wire header)");
	for (size_t i = 0; i < s->n_vips; i++) {
		vip_label(&s->vips[i].key, vip, sizeof(vip));
		fprintf(out, "flowpin_vip_generation{vip=\"%s\",pinning=\"%s\"} %u\n", vip,
			fp_pinning_name(s->vips[i].vip.pinning), s->vips[i].vip.generation);
	}
	family(out, "flowpin_vip_packets_total", "counter",
	       "packets to the VIP the program encapsulated to a backend");
	for (size_t i = 0; i < s->n_vips; i++) {
		vip_label(&s->vips[i].key, vip, sizeof(vip));
		fprintf(out, "flowpin_vip_packets_total{vip=\"%s\"} %llu\n", vip,
			(unsigned long long)s->vips[i].traffic.packets);
	}
	family(out, "flowpin_vip_bytes_total", "counter",
	       "bytes of the client IP packets (before encapsulation) to the VIP sent to a "
	       "backend");
	for (size_t i = 0; i < s->n_vips; i++) {
		vip_label(&s->vips[i].key, vip, sizeof(vip));
		fprintf(out, "flowpin_vip_bytes_total{vip=\"%s\"} %llu\n", vip,
			(unsigned long long)s->vips[i].traffic.bytes);
	}

	for (int f = 0; f < 2; f++) {
		const char *fam =
			f ? "flowpin_backend_bytes_total" : "flowpin_backend_packets_total";

		family(out, fam, "counter",
		       f ? "bytes of the client IP packets (before encapsulation) sent to the "
			   "backend"
			 : "packets sent to the backend");
		for (size_t j = 0; j < s->n_backends; j++) {
			const struct fp_stats_backend *b = &s->backends[j];
			const struct fp_stats_vip *v = fp_stats_find_vip(s, b->vip_index);
			struct fp_addr a;

			if (!v)
				continue;
			vip_label(&v->key, vip, sizeof(vip));
			memcpy(a.a, b->backend.addr, 16);
			fp_metrics_escape_label(fp_addr_str(&a, addr_raw, sizeof(addr_raw)), addr,
						sizeof(addr));
			fprintf(out,
				"%s{vip=\"%s\",backend=\"%u\",address=\"%s\",state=\"%s\"} %llu\n",
				fam, vip, b->backend.id, addr, fp_backend_entry_state(&b->backend),
				(unsigned long long)(f ? b->traffic.bytes : b->traffic.packets));
		}
	}

	if (d) {
		family(out, "flowpin_config_applies_total", "counter",
		       "config applies this daemon tried after start (SIGHUP; lb reload --config "
		       "applies in its own process and reports there)");
		fprintf(out, "flowpin_config_applies_total %llu\n", d->applies_total);
		family(out, "flowpin_config_apply_errors_total", "counter",
		       "config applies refused or failed: the running generation stayed");
		fprintf(out, "flowpin_config_apply_errors_total %llu\n", d->apply_errors_total);
		family(out, "flowpin_scrape_errors_total", "counter",
		       "scrapes that could not read the pinned maps (answered 500)");
		fprintf(out, "flowpin_scrape_errors_total %llu\n", d->scrape_errors_total);
	}
	return ferror(out) ? -EIO : 0;
}

char *fp_metrics_render(const struct fp_stats_snapshot *s, const struct fp_metrics_daemon *d,
			size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&buf, &n);
	int err;

	if (!out)
		return NULL;
	err = fp_metrics_write(out, s, d);
	if (fclose(out) || err) {
		free(buf);
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}

int fp_metrics_parse_listen(const char *text, struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h = text;
	size_t hlen;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	colon = strrchr(text, ':');
	if (!colon || colon == text)
		return -EINVAL;
	hlen = (size_t)(colon - text);
	if (text[0] == '[') {
		if (hlen < 3 || text[hlen - 1] != ']')
			return -EINVAL;
		h = text + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || colon[1] == '-' || colon[1] == '+' || port < 1 ||
	    port > 65535)
		return -EINVAL;
	if (text[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -EINVAL;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((__u16)port);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -EINVAL;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((__u16)port);
	}
	return 0;
}
