/* SPDX-License-Identifier: MIT */
/*
 * Pinning modes: the one definition of each mode's value (struct fp_vip.pinning in the
 * maps, flowpin/maps.h), its name (config files, `lb stats`, `flowpin table`) and what
 * it has (docs/design.md "Pinning modes"). Shared by the XDP program and userspace.
 *
 * X(NAME, value, "config name", Maglev table, session table, second chance, meaning):
 *   Maglev table   new flows take the owner of their flow hash's bucket; without it
 *                  they pick from the VIP's sorted list of active backends
 *   session table  flows are admitted to the session table (bpf/lb.bpf.c "Session
 *                  admission")
 *   second chance  a packet of a moved bucket without a session carries the hop list
 *                  [owner now, owner before]
 */
#ifndef FLOWPIN_PINNING_H
#define FLOWPIN_PINNING_H

#include <flowpin/compiler.h>

#define FP_PINNING_MODES(X)                                                       \
	X(NONE, 0, "none", 0, 0, 0, "flow hash mod number of backends, no state") \
	X(TABLE, 1, "table", 0, 1, 0, "session table; new flows round-robin")     \
	X(HASH, 2, "hash", 1, 0, 0, "Maglev only")                                \
	X(HASH_TABLE, 3, "hash+table", 1, 1, 0, "Maglev + session table")         \
	X(FULL, 4, "full", 1, 1, 1, "Maglev + session table + hop list (second chance)")

enum fp_pinning {
#define FP_X(name, value, str, maglev, sessions, second_chance, help) FP_PIN_##name = value,
	FP_PINNING_MODES(FP_X)
#undef FP_X
};

/*
 * Helpers of the counts and masks below (macros expand where they are used, so they
 * stay defined).
 */
#define FP_PIN_COUNT_X(name, value, str, maglev, sessions, second_chance, help) +1
#define FP_PIN_MAGLEV_X(name, value, str, maglev, sessions, second_chance, help) \
	| ((__u32)(maglev) << (value))
#define FP_PIN_SESSIONS_X(name, value, str, maglev, sessions, second_chance, help) \
	| ((__u32)(sessions) << (value))
#define FP_PIN_SECOND_CHANCE_X(name, value, str, maglev, sessions, second_chance, help) \
	| ((__u32)(second_chance) << (value))

/* Number of modes; their values are 0..FP_PIN__COUNT - 1. */
#define FP_PIN__COUNT (0 FP_PINNING_MODES(FP_PIN_COUNT_X))

/* One bit per mode value, for each property. */
#define FP_PIN_MASK_MAGLEV	  (0 FP_PINNING_MODES(FP_PIN_MAGLEV_X))
#define FP_PIN_MASK_SESSIONS	  (0 FP_PINNING_MODES(FP_PIN_SESSIONS_X))
#define FP_PIN_MASK_SECOND_CHANCE (0 FP_PINNING_MODES(FP_PIN_SECOND_CHANCE_X))

FP_STATIC_ASSERT(FP_PIN__COUNT <= 32, "one bit per mode in the masks");

/* Whether mode @p picks new flows from a Maglev table (else from the sorted list). */
FP_INLINE int fp_pinning_uses_maglev(__u32 p)
{
	return p < 32 && (FP_PIN_MASK_MAGLEV >> p) & 1;
}

/* Whether mode @p keeps a session table. */
FP_INLINE int fp_pinning_uses_sessions(__u32 p)
{
	return p < 32 && (FP_PIN_MASK_SESSIONS >> p) & 1;
}

/* Whether mode @p sends a moved bucket's packets with [owner now, owner before]. */
FP_INLINE int fp_pinning_second_chance(__u32 p)
{
	return p < 32 && (FP_PIN_MASK_SECOND_CHANCE >> p) & 1;
}

#ifndef __bpf__
/* The modes' names, indexed by value ("hash+table" for FP_PIN_HASH_TABLE); lib/config.c. */
extern const char *const fp_pinning_names[FP_PIN__COUNT];
#endif

#endif
