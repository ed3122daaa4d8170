#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An independent model of flowpin's TCP ticket (include/flowpin/ticket.h) for the lab
tests: which backend id a TSecr names, read from a capture.

  ticket_sid.py KEY_HEX BITS CLIENT CPORT VIP VPORT TSECR   -> prints the id

Written from docs/wire-format.md "TCP connection tickets", not from the C code, and
checked against the published vector 1 (tests/common/ticket_vectors.h) on every run.
"""
import ipaddress
import struct
import sys

M64 = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def siphash13(k0, k1, data):
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & M64
        v[1] = rotl(v[1], 13) ^ v[0]
        v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M64
        v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M64
        v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M64
        v[1] = rotl(v[1], 17) ^ v[2]
        v[2] = rotl(v[2], 32)

    assert len(data) % 8 == 0
    for i in range(0, len(data), 8):
        m = struct.unpack("<Q", data[i:i + 8])[0]
        v[3] ^= m
        rnd()
        v[0] ^= m
    last = (len(data) & 0xFF) << 56
    v[3] ^= last
    rnd()
    v[0] ^= last
    v[2] ^= 0xFF
    for _ in range(3):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def mapped(addr):
    ip = ipaddress.ip_address(addr)
    return b"\0" * 10 + b"\xff\xff" + ip.packed if ip.version == 4 else ip.packed


def ticket_hash(key_hex, client, cport, vip, vport):
    key = bytes.fromhex(key_hex)
    k0, k1 = struct.unpack("<QQ", key)
    # The label of flowpin/ticket.h fp_ticket_key_derive(), byte for byte ("issue 11"
    # included: it is part of the published vectors, never edited).
    label = bytearray(b"flowpin TCP ticket key, issue 11, word \0")
    label[39] = ord("0")
    t0 = siphash13(k0, k1, bytes(label))
    label[39] = ord("1")
    t1 = siphash13(k0, k1, bytes(label))
    flow = mapped(client) + mapped(vip) + struct.pack(">HH", cport, vport) + bytes([6, 0, 0, 0])
    return siphash13(t0, t1, flow)


def sid(key_hex, bits, client, cport, vip, vport, tsecr):
    return (tsecr ^ (ticket_hash(key_hex, client, cport, vip, vport) >> 32)) & ((1 << bits) - 1)


if __name__ == "__main__":
    # Vector 1: TSval 0x12345678, id 5, K = 8 -> 0xa2ecfd8b.
    assert ticket_hash("000102030405060708090a0b0c0d0e0f", "192.0.2.1", 40000,
                       "198.51.100.10", 443) == 0x02EB3E8E696E9685
    assert sid("000102030405060708090a0b0c0d0e0f", 8, "192.0.2.1", 40000, "198.51.100.10",
               443, 0xA2ECFD8B) == 5
    a = sys.argv[1:]
    print(sid(a[0], int(a[1]), a[2], int(a[3]), a[4], int(a[5]), int(a[6])))
