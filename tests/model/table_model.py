#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Independent model of flowpin's bucket table (docs/design.md, "Bucket tables").

Written from the description, not from lib/maglev.c: an event simulation that processes
every arrival of every backend in time order, held buckets included (the C code jumps
over held buckets), with its own SipHash-2-4 checked against the SipHash paper's vector.
`table_model.py > tests/common/table_vectors.h` writes the vectors the unit tests compare
the C construction with; never copy C output into that file.

Construction: backend k walks bucket (offset_k + j * skip_k) mod m at step j, reached at
time (j + u_j / 2^32) / weight_k with u_j = splitmix64(seed_k ^ j) >> 32; offset, skip
and seed are SipHash-2-4 of the 8 bytes (id | tag << 32), little-endian, tags 0, 1, 2
(offset = h0 % m, skip = h1 % (m - 1) + 1, seed = h2). Arrivals in time order, ties by
smaller id. Share bounds per backend, tolerance t percent (1 by default): ideal =
m * w / W; floor = min(ceil((1 - t/100) ideal), floor(ideal)); ceil =
max(floor((1 + t/100) ideal), ceil(ideal)). A backend takes a free bucket
it reaches if its count < floor, or if count < ceil and the shared budget m - sum(floor)
is not spent (taking one spends one). A backend at its ceil, or at its floor with the
budget spent, stops walking. Weight 0 backends take nothing.
"""
import heapq
import sys
from fractions import Fraction

M64 = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def siphash(k0, k1, data, c=2, d=4):
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rnd():
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & M64
        v1 = rotl(v1, 13) ^ v0
        v0 = rotl(v0, 32)
        v2 = (v2 + v3) & M64
        v3 = rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & M64
        v3 = rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & M64
        v1 = rotl(v1, 17) ^ v2
        v2 = rotl(v2, 32)

    n = len(data)
    tail = data[n - n % 8:] + bytes(7 - n % 8) + bytes([n & 0xFF])
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, n - n % 8, 8)]
    words.append(int.from_bytes(tail, "little"))
    for m in words:
        v3 ^= m
        for _ in range(c):
            rnd()
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(d):
        rnd()
    return v0 ^ v1 ^ v2 ^ v3


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


KEY = (0x0706050403020100, 0x0F0E0D0C0B0A0908)  # hash_key 000102...0f


def id_hash(key, ident, tag):
    return siphash(key[0], key[1], (ident | tag << 32).to_bytes(8, "little"))


def ceil_div(a, b):
    return -(-a // b)


def build(backends, m, tol=1, key=KEY):
    """backends: [(id, weight)] -> list of m ids (0 = nobody)."""
    live = sorted((i, w) for i, w in backends if w > 0)
    if not live:
        return [0] * m
    total = sum(w for _, w in live)
    state = {}
    budget = m
    heap = []
    for ident, w in live:
        ideal = Fraction(m * w, total)
        lo = min(ceil_div((100 - tol) * m * w, 100 * total), m * w // total)
        hi = max(((100 + tol) * m * w) // (100 * total), ceil_div(m * w, total))
        assert lo <= ideal <= hi
        assert lo >= ideal * Fraction(100 - tol, 100) or lo == m * w // total
        assert hi <= ideal * Fraction(100 + tol, 100) or hi == ceil_div(m * w, total)
        budget -= lo
        st = {
            "w": w,
            "pos": id_hash(key, ident, 0) % m,
            "skip": id_hash(key, ident, 1) % (m - 1) + 1,
            "seed": id_hash(key, ident, 2),
            "j": 0,
            "count": 0,
            "lo": lo,
            "hi": hi,
        }
        state[ident] = st
        heapq.heappush(heap, (arrival(st), ident))
    table = [0] * m
    filled = 0
    while filled < m:
        _, ident = heapq.heappop(heap)
        st = state[ident]
        b = st["pos"]
        if table[b] == 0:
            if st["count"] < st["lo"]:
                take = True
            elif st["count"] < st["hi"] and budget > 0:
                take = True
                budget -= 1
            else:
                take = False
            if take:
                table[b] = ident
                st["count"] += 1
                filled += 1
        if st["count"] >= st["hi"] or (st["count"] >= st["lo"] and budget == 0):
            continue  # stops walking
        st["j"] += 1
        st["pos"] = (st["pos"] + st["skip"]) % m
        heapq.heappush(heap, (arrival(st), ident))
    return table


def arrival(st):
    """Exact arrival time as a fraction: (j * 2^32 + u_j) / weight."""
    u = splitmix64(st["seed"] ^ st["j"]) >> 32
    return Fraction((st["j"] << 32) + u, st["w"])


def fnv1a64(table):
    h = 0xCBF29CE484222325
    for v in table:
        for byte in v.to_bytes(2, "little"):
            h = ((h ^ byte) * 0x100000001B3) & M64
    return h


CASES = [
    # name, m, share tolerance %, [(id, weight)], whole table in the header?
    ("three_equal", 101, 1, [(1, 100), (2, 100), (3, 100)], True),
    ("three_one_gone", 101, 1, [(1, 100), (2, 0), (3, 100)], True),
    ("weights", 1031, 1, [(3, 100), (7, 250), (12, 1), (40, 65535), (41, 100)], True),
    ("weights_exact", 1031, 0, [(3, 100), (7, 250), (12, 1), (40, 65535), (41, 100)], True),
    ("five_tolerance_20", 1031, 20, [(i, 100 + 50 * i) for i in range(1, 6)], True),
    ("ten_equal", 65537, 1, [(i, 100) for i in range(1, 11)], False),
    ("ten_without_4", 65537, 1, [(i, 100) for i in range(1, 11) if i != 4], False),
    ("ten_weighted", 65537, 1, [(i, 100 * i) for i in range(1, 11)], False),
    ("ten_exact", 65537, 0, [(i, 100) for i in range(1, 11)], False),
    ("thirty_tolerance_10", 65537, 10, [(5 * i + 1, 100) for i in range(30)], False),
    ("hundred", 65537, 1, [(3 * i + 7, 100 + (i * 37) % 900) for i in range(100)], False),
]


def main():
    # The SipHash paper's 2-4 vector: key 00..0f, message 00..0e.
    assert siphash(*KEY, bytes(range(15))) == 0xA129CA6149BE45E5
    out = sys.stdout
    out.write("""/* SPDX-License-Identifier: MIT */
/*
 * Bucket table vectors: fp_table_build() under hash_key 000102030405060708090a0b0c0d0e0f
 * with each vector's share tolerance must produce exactly these tables (docs/design.md, "Bucket tables").
 * Generated by tests/model/table_model.py, an independent model of the construction
 * (an event simulation of every arrival, with its own SipHash checked against the
 * SipHash paper's vector), never from the C code. Do not edit: rerun the model.
 */
#ifndef FLOWPIN_TESTS_TABLE_VECTORS_H
#define FLOWPIN_TESTS_TABLE_VECTORS_H

#include <linux/types.h>

struct fp_table_vector {
	const char *name;
	__u32 m;
	__u32 tolerance; /* share tolerance, percent */
	size_t n;
	const __u32 (*backends)[2]; /* id, weight */
	const __u16 *table;	    /* the whole table, or NULL: check fnv1a64 and counts */
	__u64 fnv1a64;		    /* FNV-1a 64 over the table as little-endian u16s */
	const __u32 *counts;	    /* buckets per backend, in the order of backends */
};

""")
    rows = []
    for name, m, tol, backends, whole in CASES:
        table = build(backends, m, tol)
        counts = [table.count(i) if w else 0 for i, w in backends]
        assert sum(counts) == m or all(w == 0 for _, w in backends)
        out.write("static const __u32 fp_tv_%s_backends[][2] = {\n" % name)
        for i, w in backends:
            out.write("\t{ %d, %d },\n" % (i, w))
        out.write("};\n")
        out.write("static const __u32 fp_tv_%s_counts[] = {" % name)
        out.write(", ".join(str(c) for c in counts))
        out.write("};\n")
        if whole:
            out.write("static const __u16 fp_tv_%s_table[%d] = {\n" % (name, m))
            for i in range(0, m, 16):
                out.write("\t" + ", ".join(str(v) for v in table[i:i + 16]) + ",\n")
            out.write("};\n")
        out.write("\n")
        rows.append((name, m, tol, len(backends), whole, fnv1a64(table)))
        print("# %s: m=%d counts %s" % (name, m, counts[:12]), file=sys.stderr)
    out.write("static const struct fp_table_vector fp_table_vectors[] = {\n")
    for name, m, tol, n, whole, h in rows:
        out.write("\t{ \"%s\", %d, %d, %d, fp_tv_%s_backends, %s, 0x%016xULL, fp_tv_%s_counts },\n"
                  % (name, m, tol, n, name, "fp_tv_%s_table" % name if whole else "NULL", h, name))
    out.write("};\n\n#endif\n")


if __name__ == "__main__":
    main()
