#!/usr/bin/env python3
"""The `auth` case's DNS server: authoritative answers for a small zone on 127.0.0.1 (UDP and TCP).

    python3 Benchmarks/authdns.py ZONE.json PORT STATS.json

ZONE.json maps a lower-case name to {"TXT": [...], "A": [...], "MX": [[preference, host]]}; other names
get NXDOMAIN, names with no record of the asked type NOERROR with an SOA (negative TTL 300). Answers
are built with dnslib (as `Tests/integration/conftest.py` `ZoneDNS` builds them) once per distinct
question and then served from the packed bytes with the query's ID, so a query costs a `recvfrom`, a
dictionary look-up and a `sendto` (dnslib's threaded server spends about a millisecond of CPU per
query: at the milters' rate it took a core from the servers it serves). SIGUSR1 writes
{"name TYPE": count} to STATS.json; SIGTERM ends it.
"""
import json
import signal
import socket
import sys
import threading

from dnslib import AAAA, MX, QTYPE, RCODE, RR, SOA, TXT, A, DNSRecord

TTL = 300


def build(zone: dict, query: bytes) -> tuple[bytes, str]:
    request = DNSRecord.parse(query)
    reply = request.reply()
    reply.header.aa = 1
    name = str(request.q.qname).rstrip(".").lower()
    qtype = QTYPE.get(request.q.qtype, str(request.q.qtype))
    soa = RR("test.", QTYPE.SOA, ttl=TTL, rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, TTL)))
    if name not in zone and not any(n.endswith("." + name) for n in zone):
        reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(soa)
    else:
        for value in zone.get(name, {}).get(qtype, []):
            if qtype == "TXT":
                raw = value.encode()
                rdata = TXT([raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""])
            elif qtype == "MX":
                rdata = MX(value[1].rstrip(".") + ".", value[0])
            else:
                rdata = {"A": A, "AAAA": AAAA}[qtype](value)
            reply.add_answer(RR(name + ".", getattr(QTYPE, qtype), rdata=rdata, ttl=TTL))
        if not reply.rr:
            reply.add_auth(soa)
    return reply.pack(), f"{name} {qtype}"


def main():
    zone = json.load(open(sys.argv[1]))
    port, stats_path = int(sys.argv[2]), sys.argv[3]
    answers: dict[bytes, tuple[bytes, str]] = {}  # query without its ID → (packed reply, "name TYPE")
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def answer(query: bytes) -> bytes | None:
        key = query[2:]
        known = answers.get(key)
        if known is None:
            try:
                known = build(zone, query)
            except Exception:
                return None
            answers[key] = known
        with lock:
            counts[known[1]] = counts.get(known[1], 0) + 1
        return query[:2] + known[0][2:]

    def dump(*_):
        with lock:
            snapshot = dict(counts)
        with open(stats_path + ".tmp", "w") as f:
            json.dump(snapshot, f)
        import os
        os.replace(stats_path + ".tmp", stats_path)

    def serve_tcp(listener: socket.socket):
        while True:
            conn, _ = listener.accept()
            try:
                conn.settimeout(5)
                data = b""
                while True:
                    while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
                        chunk = conn.recv(4096)
                        if not chunk:
                            raise EOFError
                        data += chunk
                    n = int.from_bytes(data[:2], "big")
                    query, data = data[2:2 + n], data[2 + n:]
                    reply = answer(query)
                    if reply is None:
                        break
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)
            except (OSError, EOFError):
                pass
            finally:
                conn.close()

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    udp.bind(("127.0.0.1", port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", port))
    tcp.listen(64)
    threading.Thread(target=serve_tcp, args=(tcp,), daemon=True).start()
    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    dump()
    while True:
        try:
            query, peer = udp.recvfrom(4096)
        except InterruptedError:
            continue
        reply = answer(query)
        if reply is not None:
            udp.sendto(reply, peer)


if __name__ == "__main__":
    main()
