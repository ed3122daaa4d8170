#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A stand-in LB node for tests/lab/backend_ns.sh, in userspace.

The test is about the backend agent, so the LB side is the simplest thing that writes
flowpin's wire format (include/flowpin/wire.h) for real TCP traffic: frames arriving
for the VIP on IFACE (the kernel of this namespace blackholes them) are wrapped in
GUE + private word + hop list and sent over a UDP socket to hops[0]. The hop list is
re-read from HOPS_FILE for every packet, so the test can move flows between backends
mid-connection; IPv6 hops mean an IPv6 outer header from LB_ADDR6.

  backend_ns_lb.py relay IFACE VIP LB_ADDR LB_ADDR6 HOPS_FILE ENCAP_PORT
  backend_ns_lb.py syn SRC_ADDR BACKEND ENCAP_PORT CLIENT VIP PORT   (one crafted SYN)
  backend_ns_lb.py ack SRC_ADDR BACKEND NEXT_HOP ENCAP_PORT CLIENT VIP PORT
                                            (one crafted ACK of no connection, hops
                                            BACKEND then NEXT_HOP: its second chance)

and the two ends of the test's TCP connections:

  backend_ns_lb.py serve NAME ADDR PORT     answers each line with "NAME:line"
  backend_ns_lb.py client ADDR PORT DIR N   for i in 1..N: waits for DIR/go.i, sends
                                            "msg-i", writes the answer (or "reset",
                                            "timeout", "closed") to DIR/result.i
"""
import os
import socket
import struct
import sys
import threading
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
IPPROTO_IPIP = 4
GUE_FLAG_PRIV = 0x0001
PRIV_TYPE_HOPS = 0xF1
SO_NO_CHECK = 11  # zero UDP checksum over IPv4, as the wire format says
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2  # DF set
UDP_NO_CHECK6_TX = 101  # zero UDP checksum over IPv6 (RFC 6935), as the wire format says
IPV6_MTU_DISCOVER = 23
PRIV_FLAG_V6 = 0x01


def encapsulate(inner, hops, index=0, generation=1):
    """GUE (variant 0) + private word + hops (the outer family) before an IPv4 packet."""
    v6 = ":" in hops[0]
    hlen = 2 + len(hops) * (4 if v6 else 1)  # 32-bit words after the base header
    gue = struct.pack("!BBH", hlen, IPPROTO_IPIP, GUE_FLAG_PRIV)
    priv = struct.pack("!BBBBI", PRIV_TYPE_HOPS, index, len(hops),
                       PRIV_FLAG_V6 if v6 else 0, generation)
    family = socket.AF_INET6 if v6 else socket.AF_INET
    return gue + priv + b"".join(socket.inet_pton(family, h) for h in hops) + inner


def udp_socket(source, sport=0):
    if ":" in source:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_UDP, UDP_NO_CHECK6_TX, 1)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IP_PMTUDISC_DO)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    s.bind((source, sport))
    return s


def relay(iface, vip, lb_addr, lb_addr6, hops_file, port):
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    raw.bind((iface, 0))
    out4 = udp_socket(lb_addr, 0x8000 | 0x1234)
    out6 = udp_socket(lb_addr6, 0x8000 | 0x1234)
    vip_bytes = socket.inet_aton(vip)
    while True:
        frame, addr = raw.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING or len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        if ip[16:20] != vip_bytes:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        with open(hops_file) as f:
            hops = f.read().split()
        out = out6 if ":" in hops[0] else out4
        out.sendto(encapsulate(ip[:total], hops), (hops[0], port))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def syn(src, backend, port, client, vip, vport, flags=0x02, hops=None):
    """One encapsulated SYN client:40001 -> vip:vport, sent from src."""
    c, v = socket.inet_aton(client), socket.inet_aton(vip)
    tcp = struct.pack("!HHIIBBHHH", 40001, vport, 1, 1 if flags & 0x10 else 0, 5 << 4,
                      flags, 65535, 0, 0)
    pseudo = c + v + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64,
                     socket.IPPROTO_TCP, 0, c, v)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    udp_socket(src).sendto(encapsulate(ip + tcp, hops or [backend]), (backend, port))


def serve(name, addr, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(16)

    def answer(conn):
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                conn.sendall(name.encode() + b":" + line)

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=answer, args=(conn,), daemon=True).start()


def client(addr, port, directory, steps):
    def result(i, text):
        tmp = os.path.join(directory, "result.%d.tmp" % i)
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.rename(tmp, os.path.join(directory, "result.%d" % i))

    conn = None
    for i in range(1, steps + 1):
        while not os.path.exists(os.path.join(directory, "go.%d" % i)):
            time.sleep(0.05)
        try:
            if conn is None:
                conn = socket.create_connection((addr, port), timeout=5)
                lines = conn.makefile("rb")
            conn.sendall(b"msg-%d\n" % i)
            reply = lines.readline()
            result(i, reply.decode().strip() if reply else "closed")
        except ConnectionResetError:
            result(i, "reset")
        except OSError as e:
            result(i, "timeout" if isinstance(e, socket.timeout) else "error " + str(e))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 6 and sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) == 8 and sys.argv[1] == "relay":
        relay(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
              int(sys.argv[7]))
    elif len(sys.argv) == 8 and sys.argv[1] == "syn":
        syn(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6],
            int(sys.argv[7]))
    elif len(sys.argv) == 9 and sys.argv[1] == "ack":
        syn(sys.argv[2], sys.argv[3], int(sys.argv[5]), sys.argv[6], sys.argv[7],
            int(sys.argv[8]), flags=0x10, hops=[sys.argv[3], sys.argv[4]])
    else:
        sys.exit(__doc__)
