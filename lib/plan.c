// SPDX-License-Identifier: MIT
/*
 * Table planning: config + running state -> new tables, hop pairs, VIPs that go. See
 * flowpin/plan.h. Everything here is computed in memory; lib/lb.c does the map I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <flowpin/log.h>
#include <flowpin/maglev.h>
#include <flowpin/plan.h>

void fp_vip_key_of(const struct fp_vip_cfg *v, struct fp_vip_key *key)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, v->addr.a, 16);
	key->port = htons(v->port);
	key->proto = v->proto;
}

/* The running table (pairs) of @current's active slot. */
static const struct fp_bucket *active_table(const struct fp_running *run,
					    const struct fp_vip *current)
{
	return run->buckets +
	       fp_bucket_index(current->index, current->slot & 1, run->table_size, 0);
}

/* The new table or list of one VIP, and whether it differs from what runs. */
static int plan_table(const struct fp_config *cfg, const struct fp_running *run,
		      struct fp_vip_plan *p)
{
	const struct fp_vip_cfg *v = p->cfg;
	const struct fp_vip *current = p->current;
	__u32 m = run->table_size;

	p->n_list = 0;
	if (cfg->table_size != m) /* lib/lb.c refused it already (needs a restart) */
		return -EINVAL;
	if (fp_pinning_uses_maglev(v->pinning)) {
		/* The table `flowpin table` previews: the same function builds both. */
		int err;

		p->owners = calloc(m, sizeof(__u16));
		if (!p->owners)
			return -ENOMEM;
		err = fp_maglev_build_vip(cfg, v, p->owners);
		if (err) {
			fp_err("%s:%d: vip %s: cannot build its table: %s\n", cfg->path, v->line,
			       v->name, strerror(-err));
			return err;
		}
	} else {
		p->n_list = (__u32)fp_vip_active_list(v, p->list);
		if (p->n_list > m) {
			fp_err("%s:%d: vip %s: %u backends do not fit table_size %u\n", cfg->path,
			       v->line, v->name, p->n_list, m);
			return -EINVAL;
		}
	}

	p->changed = true;
	if (current && current->pinning == v->pinning && current->flags == p->value.flags &&
	    current->ticket_bits == p->value.ticket_bits) {
		const struct fp_bucket *active = active_table(run, current);

		if (fp_pinning_uses_maglev(v->pinning)) {
			p->changed = false;
			for (__u32 i = 0; i < m && !p->changed; i++)
				p->changed = active[i].owner != p->owners[i];
		} else if (current->n_list == p->n_list) {
			p->changed = false;
			for (__u32 i = 0; i < p->n_list && !p->changed; i++)
				p->changed = active[i].owner != p->list[i];
		}
	}
	return 0;
}

/* Checks one VIP against the VIPs planned before it and finds what runs for it. */
static int plan_vip(const struct fp_config *cfg, const struct fp_running *run, struct fp_plan *out,
		    size_t i, bool *used, bool *kept)
{
	struct fp_vip_plan *p = &out->vips[i];

	p->cfg = &cfg->vips[i];
	fp_vip_key_of(p->cfg, &p->key);
	for (size_t j = 0; j < i; j++) {
		if (!memcmp(&out->vips[j].key, &p->key, sizeof(p->key))) {
			fp_err("%s:%d: vip %s: same address, port and protocol as vip %s "
			       "(line %d)\n",
			       cfg->path, p->cfg->line, p->cfg->name, out->vips[j].cfg->name,
			       out->vips[j].cfg->line);
			return -EINVAL;
		}
	}
	for (size_t c = 0; c < run->n; c++) {
		if (!memcmp(&run->keys[c], &p->key, sizeof(p->key))) {
			p->current = &run->vips[c];
			kept[c] = true;
			break;
		}
	}
	for (size_t b = 0; b < p->cfg->n_backends; b++) {
		if (p->cfg->backends[b].id == FP_NO_BACKEND ||
		    p->cfg->backends[b].id >= FP_BACKEND_SLOTS) {
			fp_err("%s:%d: id: %u is outside 1..%d\n", cfg->path,
			       p->cfg->backends[b].line, p->cfg->backends[b].id,
			       FP_BACKEND_SLOTS - 1);
			return -EINVAL;
		}
	}
	p->value.pinning = (__u8)p->cfg->pinning;
	p->value.flags = p->cfg->hash_addresses_only ? FP_VIP_F_HASH_ADDRS : 0;
	if (fp_plan_quic_lb(p->cfg, NULL))
		p->value.flags |= FP_VIP_F_QUIC_LB;
	p->value.ticket_bits = p->cfg->proto == IPPROTO_TCP ? p->cfg->ticket_bits : 0;
	if (p->current) {
		p->exists = true;
		p->value.index = p->current->index;
	} else {
		__u32 idx = 0;

		/* A fresh index: never one freed in this same apply (packets in flight
		 * may still read a removed VIP's tables). */
		while (idx < run->max_vips && used[idx])
			idx++;
		if (idx == run->max_vips) {
			fp_err("%s:%d: vip %s: no free VIP slot in the running program "
			       "(%u); "
			       "needs a restart\n",
			       cfg->path, p->cfg->line, p->cfg->name, run->max_vips);
			return -EINVAL;
		}
		used[idx] = true;
		p->value.index = idx;
	}
	return plan_table(cfg, run, p);
}

int fp_plan_tables(const struct fp_config *cfg, const struct fp_running *run, struct fp_plan *out)
{
	bool used[FP_VIP_SLOTS_MAX] = { false }, kept[FP_VIP_SLOTS_MAX] = { false };
	int err;

	memset(out, 0, sizeof(*out));
	if (!cfg || !run || run->n > FP_VIP_SLOTS_MAX || run->max_vips > FP_VIP_SLOTS_MAX)
		return -EINVAL;
	out->generation = run->generation + 1;
	for (size_t c = 0; c < run->n; c++)
		if (run->vips[c].index < FP_VIP_SLOTS_MAX)
			used[run->vips[c].index] = true;
	out->vips = calloc(cfg->n_vips ? cfg->n_vips : 1, sizeof(*out->vips));
	if (!out->vips)
		return -ENOMEM;
	out->n_vips = cfg->n_vips;
	for (size_t i = 0; i < cfg->n_vips; i++) {
		struct fp_vip_plan *p = &out->vips[i];

		err = plan_vip(cfg, run, out, i, used, kept);
		if (err)
			return err;
		if (p->current && !p->changed) {
			p->value = *p->current; /* nothing flips: the hop pairs stay */
		} else {
			p->value.slot = p->current ? (p->current->slot ^ 1) & 1 : 0;
			p->value.generation = out->generation;
			p->value.n_list = p->n_list;
			out->any_change = true;
		}
	}
	for (size_t c = 0; c < run->n; c++) {
		out->removed[c] = !kept[c];
		if (!kept[c])
			out->any_change = true;
	}
	return 0;
}

/* Whether @id is a backend of @v that may still hold flows (in the config, not down). */
static bool may_hold_flows(const struct fp_vip_cfg *v, __u16 id)
{
	for (size_t i = 0; i < v->n_backends; i++)
		if (v->backends[i].id == id)
			return v->backends[i].state != FP_BACKEND_DOWN;
	return false;
}

void fp_plan_pairs(const struct fp_vip_plan *p, const struct fp_running *run, struct fp_bucket *out)
{
	__u32 m = run->table_size;

	memset(out, 0, (size_t)m * sizeof(*out));
	if (fp_pinning_uses_maglev(p->cfg->pinning)) {
		/* The previous generation is whatever runs now, if it was a Maglev table. */
		const struct fp_bucket *active = NULL;

		if (p->current && fp_pinning_uses_maglev(p->current->pinning))
			active = active_table(run, p->current);
		fp_generation_pairs(p->owners, active, m, out);
		/*
		 * A previous owner remembered from an older generation is kept only while it
		 * can still hold flows. (One replaced right now stays even when removed from
		 * the config: the lab's backend-remove counts what that buys.)
		 */
		for (__u32 i = 0; active && i < m; i++)
			if (out[i].previous != out[i].owner && active[i].owner == out[i].owner &&
			    !may_hold_flows(p->cfg, out[i].previous))
				out[i].previous = out[i].owner;
	} else {
		for (__u32 i = 0; i < p->n_list; i++)
			out[i].owner = out[i].previous = p->list[i];
	}
}

void fp_plan_free(struct fp_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; plan->vips && i < plan->n_vips; i++)
		free(plan->vips[i].owners);
	free(plan->vips);
	plan->vips = NULL;
	plan->n_vips = 0;
}

/* bpf/quic.h cannot include flowpin/quiclb.h (its config struct is userspace C). */
FP_STATIC_ASSERT(FP_QUIC_LB_CID_MAX == FP_QUICLB_MAX_CID, "the BPF decoder's CID limit");
FP_STATIC_ASSERT(FP_QUIC_LB_SERVER_ID_MAX == FP_QUICLB_MAX_SID, "the BPF decoder's server IDs");

bool fp_plan_quic_lb(const struct fp_vip_cfg *v, struct fp_quic_lb *out)
{
	const struct fp_quiclb_cfg *q = &v->quic_lb;
	struct fp_quic_lb x = {};

	if (!v->has_quic_lb || v->proto != IPPROTO_UDP)
		return false;
	if (!q->encrypted)
		x.mode = FP_QUIC_LB_PLAINTEXT;
	else if (q->server_id_len + q->nonce_len == FP_QUICLB_BLOCK)
		x.mode = FP_QUIC_LB_AES_1PASS;
	else
		return false; /* four-pass: not decoded in XDP (docs/design.md step 3) */
	x.config_id = q->config_id;
	x.server_id_len = q->server_id_len;
	x.nonce_len = q->nonce_len;
	if (out)
		*out = x;
	return true;
}
