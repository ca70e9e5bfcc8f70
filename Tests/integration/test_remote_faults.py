"""The outbound queue against misbehaving remote SMTP servers and broken DNS.

Every fault is played by a small Python server thread on 127.0.0.1 (an SMTP peer scripted per connection,
or a DNS server on UDP and TCP that can answer SERVFAIL, stay silent, truncate, or send malformed
packets), reached the normal way: the MX of `fault.test` (and the other fault names) resolves to
127.0.0.1 and `[delivery] smtp_port` is the peer's port. A healthy peer (test_queue's ScriptedSMTP) owns
`ok.test` through a `[[routes]]` entry; after each fault a message to it must be delivered promptly, so
no delivery worker is stuck. Where the fault is over once the message is deferred or bounced the sender
runs with `[delivery] concurrency = 1`: one stuck worker would stop everything.

The sender's SMTP client timeouts are the `[delivery]` `*_timeout` keys (RFC 5321 §4.5.3.2 defaults:
greeting and commands 5 min, DATA 2 min, each data block 3 min, end of data 10 min); the greeting test
shortens `command_timeout`. The DNS client uses 5 s per try, 2 attempts.

Part 3 captures the exact bytes the queue sends (DATA and BDAT) and checks that no bare CR or LF
leaves the server, dot-stuffing, and the terminator; and that BDAT content with a bare CR or LF is
refused with 550 5.5.2 as DATA content is.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
import time

import pytest

from conftest import RawSMTP, assert_stays, free_port, require_dnslib, rss_kib, wait_for
from test_queue import (SENDER, ScriptedSMTP, assert_deferred_until_later, assert_queue_finished, build_zone,
                        dsn_reports, make_sender, queue_ids, queue_list, submit, wait_dsns, wait_queue_empty)

SLOW = os.environ.get("SWALLOW_SLOW") == "1"
FAULT = "x@fault.test"
HEALTHY_RCPT = "user@ok.test"
PEER_IO_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------------
# a scripted SMTP peer: one thread per connection, raw sockets, everything on 127.0.0.1


class Conn:
    """One accepted connection of a FaultPeer."""

    def __init__(self, sock: socket.socket, peer: "FaultPeer", n: int):
        self.sock = sock
        self.peer = peer
        self.n = n                # 0-based connection number
        self.buf = b""
        self.byte_delay = 0.0     # > 0: replies are sent one byte at a time
        sock.settimeout(PEER_IO_TIMEOUT)

    def send(self, data: bytes) -> None:
        if self.byte_delay:
            for i in range(len(data)):
                if self.peer.stopping.is_set():
                    raise OSError("peer stopping")
                self.sock.sendall(data[i:i + 1])
                time.sleep(self.byte_delay)
        else:
            self.sock.sendall(data)

    def reply(self, text: str) -> None:
        self.send(text.encode() + b"\r\n")

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except (OSError, socket.timeout):
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if not self._fill():
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_data(self) -> bytes | None:
        """The raw DATA stream after the 354, up to and including CRLF.CRLF."""
        while True:
            if self.buf.startswith(b".\r\n"):
                end = 3
                break
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                end = i + 5
                break
            if not self._fill():
                return None
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def read_exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_at_least(self, n: int) -> int:
        while len(self.buf) < n:
            if not self._fill():
                break
        return len(self.buf)

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class FaultPeer:
    """A TCP server on 127.0.0.1:<free port>; `script(conn)` plays each connection in its own thread."""

    def __init__(self, script):
        self.script = script
        self.port = free_port()
        self.stopping = threading.Event()
        self.release = threading.Event()       # for scripts that wait for the test
        self.commands: list[tuple[int, str]] = []
        self.transactions: list[dict] = []
        self.notes: dict = {}
        self.connections = 0
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self._accept_thread = threading.Thread(target=self._accept, daemon=True)
        self._accept_thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                n = self.connections
                self.connections += 1
                self._socks.append(sock)
            t = threading.Thread(target=self._run, args=(Conn(sock, self, n),), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, conn: Conn):
        try:
            self.script(conn)
        except OSError:
            pass
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        self.release.set()
        try:
            self.listener.close()
        except OSError:
            pass
        self._accept_thread.join(timeout=5)
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)


EHLO_KEYWORDS = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES")


def smtp_session(c: Conn, replies: dict | None = None, *, keywords=EHLO_KEYWORDS, name: str = "fault.test",
                 starttls: str | None = None, after_354=None) -> None:
    """A small ESMTP server. `replies` overrides the reply at a stage: greeting, ehlo, helo, mail, rcpt,
    data (instead of 354), dot (after the final dot or the BDAT LAST chunk). `starttls`: what follows the
    220 to STARTTLS ('garbage' or 'close'). `after_354(conn)` → True ends the session there."""
    r = dict(replies or {})
    greeting = r.get("greeting", f"220 {name} ESMTP fault peer")
    c.reply(greeting)
    if not greeting.startswith("220"):
        if greeting.startswith("421"):
            return
        while (line := c.line()) is not None:      # 554: no service here; wait for QUIT (RFC 5321 §3.1)
            c.peer.commands.append((c.n, line.decode("latin-1")))
            if line.upper().startswith(b"QUIT"):
                c.reply("221 2.0.0 Bye")
                return
            c.reply("503 5.5.1 No SMTP service here")
        return
    mail_ok, rcpts, chunks = False, [], []
    while True:
        raw = c.line()
        if raw is None:
            return
        text = raw.decode("latin-1")
        verb = text.split(" ", 1)[0].upper()
        c.peer.commands.append((c.n, text))
        if verb == "EHLO":
            rep = r.get("ehlo") or "\r\n".join([f"250-{name}"] + [f"250-{k}" for k in keywords[:-1]]
                                                + [f"250 {keywords[-1]}"] if keywords else [f"250 {name}"])
            c.reply(rep)
            if rep.startswith("421"):
                return
        elif verb == "HELO":
            rep = r.get("helo", f"250 {name}")
            c.reply(rep)
            if rep.startswith("421"):
                return
        elif verb == "STARTTLS" and starttls:
            c.reply("220 2.0.0 Ready to start TLS")
            if starttls == "garbage":
                try:
                    c.sock.settimeout(5)
                    c.sock.recv(4096)                  # the ClientHello
                except OSError:
                    pass
                c.send(b"this is not a TLS record\r\n" * 8)
                time.sleep(0.5)
            return
        elif verb == "MAIL":
            rep = r.get("mail", "250 2.1.0 Ok")
            mail_ok, rcpts, chunks = rep.startswith("2"), [], []
            c.reply(rep)
        elif verb == "RCPT":
            if not mail_ok:
                c.reply("503 5.5.1 Error: need MAIL command")
                continue
            rep = r.get("rcpt", "250 2.1.5 Ok")
            if rep.startswith("2"):
                rcpts.append(text[8:])
            c.reply(rep)
        elif verb == "DATA":
            if not mail_ok or not rcpts:
                c.reply("554 5.5.1 Error: no valid recipients")
                continue
            rep = r.get("data", "354 End data with <CR><LF>.<CR><LF>")
            c.reply(rep)
            if not rep.startswith("354"):
                continue
            if after_354 is not None and after_354(c):
                return
            data = c.read_data()
            if data is None:
                return
            rep = r.get("dot", "250 2.0.0 Ok: queued")
            c.peer.transactions.append({"conn": c.n, "rcpts": list(rcpts), "wire": data, "reply": rep, "via": "DATA"})
            mail_ok, rcpts = False, []
            c.reply(rep)
        elif verb == "BDAT" and "CHUNKING" in keywords:
            parts = text.split()
            size, last = int(parts[1]), len(parts) > 2 and parts[2].upper() == "LAST"
            chunk = c.read_exact(size)
            if chunk is None:
                return
            chunks.append(chunk)
            if not last:
                c.reply(f"250 2.0.0 {size} octets received")
                continue
            rep = r.get("dot", "250 2.0.0 Ok: queued")
            c.peer.transactions.append({"conn": c.n, "rcpts": list(rcpts), "chunks": list(chunks), "reply": rep,
                                        "via": "BDAT", "sizes": [len(x) for x in chunks]})
            mail_ok, rcpts, chunks = False, [], []
            c.reply(rep)
        elif verb == "RSET":
            mail_ok, rcpts, chunks = False, [], []
            c.reply("250 2.0.0 Ok")
        elif verb == "NOOP":
            c.reply("250 2.0.0 Ok")
        elif verb == "QUIT":
            c.reply("221 2.0.0 Bye")
            return
        else:
            c.reply("502 5.5.2 Error: command not recognized")


def unstuff(wire: bytes) -> bytes:
    """The content of a DATA stream (dot-stuffing removed, terminator dropped)."""
    assert wire.endswith(b".\r\n")
    body = wire[:-3]
    lines = body.split(b"\r\n")
    assert lines[-1] == b"", wire[-40:]
    out = [l[1:] if l.startswith(b".") else l for l in lines[:-1]]
    return b"".join(l + b"\r\n" for l in out)


def delivered_subjects(peer) -> list[str]:
    out = []
    for t in peer.transactions:
        data = t.get("data") or (unstuff(t["wire"]) if "wire" in t else b"".join(t["chunks"]))
        m = re.search(rb"(?m)^Subject: (.*?)\r?$", data)
        if m:
            out.append(m.group(1).decode())
    return out


# --------------------------------------------------------------------------------------------------
# DNS: answers from test_queue's zone plus fault names, on UDP and TCP (raw sockets, dnslib to parse
# and build the well-formed answers)


def _q_end(query: bytes) -> int:
    """Offset after the question section of a query (names in queries are never compressed)."""
    i = 12
    while query[i] != 0:
        i += 1 + query[i]
    return i + 1 + 4


def malformed(kind: str, query: bytes) -> bytes:
    """An answer to `query` (same ID, question echoed) that no parser may accept."""
    qid = query[:2]
    question = query[12:_q_end(query)]
    header = qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
    if kind == "garbage":
        # the right ID, then junk: QDCOUNT 0xffff and bytes that are no questions
        return qid + b"\x81\x80\xff\xff\xff\xff" + bytes(range(0x41, 0x41 + 40)) * 3
    if kind == "ptrloop":
        # answer owner name: label "a" then a pointer back to that label → a → a → … (a backward
        # pointer, so "pointers must point backwards" alone does not stop it)
        at = len(header) + len(question)
        name = b"\x01a" + struct.pack("!H", 0xC000 | at)
        return header + question + name + struct.pack("!HHIH", 15, 1, 60, 4) + b"\x00\x0a\xc0\x0c"
    if kind == "rdlength":
        rdata = b"\x00\x0a\x02mx\xc0\x0c"
        return header + question + b"\xc0\x0c" + struct.pack("!HHIH", 15, 1, 60, 1000) + rdata
    raise ValueError(kind)


class FaultDNS:
    """Authoritative for test_queue's zone plus fault names. `modes[name]` picks a fault for MX queries
    of that name (CNAME names answer any type with their CNAME records)."""

    MODES = {
        "servfail.test": "servfail",
        "silent.test": "silent",
        "tc-tcpclosed.test": "tc-tcpclosed",
        "tc-both.test": "tc-both",
        "garbage-udp.test": "udp:garbage",
        "ptrloop-udp.test": "udp:ptrloop",
        "rdlength-udp.test": "udp:rdlength",
        "garbage-tcp.test": "tcp:garbage",
        "ptrloop-tcp.test": "tcp:ptrloop",
        "rdlength-tcp.test": "tcp:rdlength",
    }

    def __init__(self):
        require_dnslib()
        from dnslib import CNAME, MX, QTYPE, RR, A

        self.zone = build_zone()

        def add(name, rtype, rdata):
            self.zone.setdefault(name, []).append(RR(name + ".", getattr(QTYPE, rtype), rdata=rdata, ttl=60))

        for d in ("fault.test", "raw.test"):
            add(d, "MX", MX(f"mx.{d}.", 10))
            add(f"mx.{d}", "A", A("127.0.0.1"))
        for d in self.MODES:                       # what a correct answer would have been
            add(d, "MX", MX(f"mx.{d}.", 10))
            add(f"mx.{d}", "A", A("127.0.0.1"))
        add("tc-both.test", "A", A("127.0.0.1"))   # implicit MX would find this address
        # CNAME loops: across two queries (a → b, then b → a), and inside one answer
        add("loop-a.test", "CNAME", CNAME("loop-b.test."))
        add("loop-b.test", "CNAME", CNAME("loop-a.test."))
        self.one_answer_loop = [RR("loop-one.test.", QTYPE.CNAME, rdata=CNAME("loop-two.test."), ttl=60),
                                RR("loop-two.test.", QTYPE.CNAME, rdata=CNAME("loop-one.test."), ttl=60)]
        self.queries: list[tuple[str, str, str]] = []
        self.port = free_port()
        self.stopping = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self._threads:
            t.start()

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def asked(self, name: str, qtype: str | None = None, protocol: str | None = None) -> int:
        return sum(1 for n, t, p in list(self.queries)
                   if n == name and (qtype is None or t == qtype) and (protocol is None or p == protocol))

    def respond(self, query: bytes, proto: str):
        """(action, bytes): action 'reply', 'silent' (no answer, keep a TCP connection open), 'close'."""
        from dnslib import QTYPE, RCODE, RR, SOA, DNSRecord

        try:
            request = DNSRecord.parse(query)
        except Exception:
            return "silent", b""
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE.get(request.q.qtype, str(request.q.qtype))
        self.queries.append((name, qtype, proto))
        reply = request.reply()
        reply.header.aa = 1
        mode = self.MODES.get(name) if qtype == "MX" else None
        if name in self.MODES and self.MODES[name] in ("servfail", "silent"):
            mode = self.MODES[name]                # every type
        if mode == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return "reply", reply.pack()
        if mode == "silent":
            return "silent", b""
        if mode in ("tc-tcpclosed", "tc-both") or (mode or "").startswith("tcp:"):
            if proto == "udp":
                reply.header.tc = 1                # header and question only
                return "reply", reply.pack()
            if mode == "tc-tcpclosed":
                return "close", b""
            if mode == "tc-both":
                reply.header.tc = 1
                return "reply", reply.pack()
            return "reply", malformed(mode[4:], query)
        if (mode or "").startswith("udp:"):
            return "reply", malformed(mode[4:], query)
        if name in ("loop-one.test", "loop-two.test"):
            for rr in self.one_answer_loop:
                reply.add_answer(rr)
            return "reply", reply.pack()
        soa = RR("test.", QTYPE.SOA, ttl=60, rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, 60)))
        if name not in self.zone:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(soa)
            return "reply", reply.pack()
        records = self.zone[name]
        answers = [rr for rr in records if rr.rtype == request.q.qtype]
        if not answers:
            answers = [rr for rr in records if rr.rtype == QTYPE.CNAME]
        for rr in answers:
            reply.add_answer(rr)
        if not answers:
            reply.add_auth(soa)
        return "reply", reply.pack()

    def _serve_udp(self):
        while not self.stopping.is_set():
            try:
                data, addr = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            action, out = self.respond(data, "udp")
            if action == "reply":
                try:
                    self.udp.sendto(out, addr)
                except OSError:
                    pass

    def _serve_tcp(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._tcp_conn, args=(sock,), daemon=True)
            t.start()

    def _tcp_conn(self, sock: socket.socket):
        sock.settimeout(15)
        try:
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                chunk = sock.recv(65535)
                if not chunk:
                    return
                buf += chunk
            n = struct.unpack("!H", buf[:2])[0]
            action, out = self.respond(buf[2:2 + n], "tcp")
            if action == "reply":
                sock.sendall(struct.pack("!H", len(out)) + out)
                sock.recv(1)                       # until the client closes
            elif action == "silent":
                self._held.append(sock)
                self.stopping.wait(20)
        except OSError:
            pass
        finally:
            sock.close()

    def stop(self):
        self.stopping.set()
        for s in (self.udp, self.tcp, *self._held):
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)


# --------------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def fdns():
    server = FaultDNS()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def healthy():
    """A well-behaved peer for ok.test (through [[routes]])."""
    peer = ScriptedSMTP(lambda n: "250 2.0.0 Ok: queued")
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def peers():
    made: list[FaultPeer] = []

    def factory(script) -> FaultPeer:
        p = FaultPeer(script)
        made.append(p)
        return p

    yield factory
    for p in made:
        p.stop()


def start_sender(make_server, fdns, port: int, healthy, *, delivery: dict | None = None, routes=()):
    """A sending Swallow: MX hosts at 127.0.0.1:`port`, ok.test routed to the healthy peer, retries in a
    minute (no second attempt during a test unless the test asks for it)."""
    d = {"retry_initial": 60, "retry_maximum": 120}
    d.update(delivery or {})
    r = [{"domain": "ok.test", "via": f"127.0.0.1:{healthy.port}"}, *routes]
    return make_sender(make_server, fdns, port, delivery=d, routes=r)


def entry(sender, qid: str) -> str:
    return next((l for l in queue_list(sender).splitlines() if l.startswith(qid)), "")


def state_of(sender, qid: str) -> str | None:
    return next((s for s, ids in queue_ids(sender).items() if qid in ids), None)


def wait_deferred(sender, qid: str, timeout: float = 30.0) -> str:
    def line():
        l = entry(sender, qid)
        return l if "  deferred  " in l and "last: " in l else None
    try:
        return wait_for(line, timeout=timeout, what=f"{qid} deferred")
    except AssertionError:
        raise AssertionError(f"{qid} not deferred after {timeout}s:\n{queue_list(sender)}\n{sender.log_tail()}")


def assert_alive(sender) -> None:
    """The process runs and port 25 still greets."""
    assert sender.proc.poll() is None, f"swallow serve exited with {sender.proc.returncode}\n{sender.log_tail()}"
    with RawSMTP(sender.host, sender.port) as s:
        s.expect(220)
        s.cmd("QUIT", 221)


def assert_healthy_delivery(sender, healthy, tag: str, timeout: float = 30.0) -> None:
    """A message to the healthy peer arrives promptly: no delivery worker is stuck."""
    subject = f"healthy after {tag}"
    submit(sender, [HEALTHY_RCPT], subject)
    try:
        wait_for(lambda: any(f"Subject: {subject}\r\n".encode() in t["data"] for t in healthy.transactions),
                 timeout=timeout, what=f"the healthy message after {tag}")
    except AssertionError:
        raise AssertionError(f"healthy message not delivered within {timeout}s after {tag}:\n"
                             f"{queue_list(sender)}\n{sender.log_tail()}")


def assert_bounced_with(sender, rcpt: str, reply: str, status: str) -> None:
    [dsn] = wait_dsns(sender, 1, timeout=30)
    _, per_rcpt, headers = dsn_reports(dsn)
    r = per_rcpt[rcpt]
    assert r["Action"] == "failed", str(r)
    assert r["Status"] == status, str(r)
    assert reply in r["Diagnostic-Code"], str(r)
    assert "Subject: " in headers




# --------------------------------------------------------------------------------------------------
# 1. remote peer misbehaviour


def test_silent_greeting_holds_one_worker_only(make_server, fdns, healthy, peers):
    """The peer accepts and never greets. Within the (fixed, 5-minute) greeting timeout the message stays
    in delivery, nothing bounces, and other mail flows; when the peer then hangs up without a word the
    message is deferred with the reason recorded."""
    peer = peers(lambda c: c.peer.release.wait(600))
    sender = start_sender(make_server, fdns, peer.port, healthy)
    qid = submit(sender, [FAULT], "silent greeting")
    wait_for(lambda: peer.connections >= 1, timeout=15, what="the connection to the silent peer")
    # Watched for 5 s, not looked at once after a sleep: still in delivery on its one connection.
    assert_stays(lambda: state_of(sender, qid) == "active" and peer.connections == 1, 5,
                 what="the message in delivery on one connection",
                 detail=lambda: f"{peer.connections} connections\n{queue_list(sender)}")
    assert_healthy_delivery(sender, healthy, "a silent greeting")
    assert state_of(sender, qid) == "active", queue_list(sender)
    peer.release.set()                                 # the peer closes without a greeting
    line = wait_deferred(sender, qid)
    print("\n" + line)
    assert re.search(r"greeting|closed", line, re.I), line
    assert sender.raw_messages(SENDER) == []


def test_silent_greeting_deferred_after_greeting_timeout(make_server, fdns, healthy, peers):
    """`delivery.command_timeout` (here 4 s; default 300 s, RFC 5321 §4.5.3.2) bounds the wait for a
    greeting that never comes: deferred with the reason, no DSN, and the worker is free again."""
    peer = peers(lambda c: c.peer.release.wait(900))
    sender = start_sender(make_server, fdns, peer.port, healthy, delivery={"command_timeout": 4})
    t0 = time.monotonic()
    qid = submit(sender, [FAULT], "silent greeting, timeout")
    line = wait_deferred(sender, qid, timeout=60)
    waited = time.monotonic() - t0
    print(f"\n[greeting timeout] deferred after {waited:.0f}s: {line}")
    assert waited >= 3.5, waited
    assert re.search(r"timeout|timed out|in time", line, re.I) and "greeting" in line, line
    assert sender.raw_messages(SENDER) == []
    assert_healthy_delivery(sender, healthy, "the greeting timeout")


def test_replies_dribbled_one_byte_per_second_are_delivered(make_server, fdns, healthy, peers):
    """Every reply arrives one byte per second (a 7-octet reply takes 7 s). The client's per-reply
    timeouts are minutes (RFC 5321 §4.5.3.2; not configurable), so the ~45 s transaction completes:
    delivered exactly once, and other mail is not held up meanwhile."""
    def script(c):
        c.byte_delay = 1.0
        smtp_session(c, {"greeting": "220 f", "ehlo": "250 f", "mail": "250 k", "rcpt": "250 k",
                         "data": "354 g", "dot": "250 k"})
    peer = peers(script)
    sender = start_sender(make_server, fdns, peer.port, healthy)
    qid = submit(sender, [FAULT], "dribbled replies")
    wait_for(lambda: peer.connections >= 1, timeout=15, what="the connection to the slow peer")
    assert_healthy_delivery(sender, healthy, "dribbled replies")
    assert state_of(sender, qid) == "active"           # still talking to the slow peer
    wait_for(lambda: queue_ids(sender)["deferred"] == [] and state_of(sender, qid) is None and peer.transactions,
             timeout=150, what="the dribbled transaction finished")
    assert delivered_subjects(peer) == ["dribbled replies"]
    assert sender.raw_messages(SENDER) == []
    assert f"id={qid}" in sender.log_text() or qid in sender.log_text()


# (stage, replies, outcome, reply text expected in the queue entry / DSN, DSN status)
STAGE_FAULTS = [
    ("greeting-421", {"greeting": "421 4.3.2 fault.test greeting busy"}, "deferred", "421 4.3.2", None),
    # a 5xx greeting from an MX host is skipped like a 4xx (Postfix's smtp_skip_5xx_greeting = yes)
    ("greeting-554", {"greeting": "554 5.3.2 fault.test no SMTP service"}, "deferred", "554 5.3.2", None),
    ("ehlo-421", {"ehlo": "421 4.3.2 ehlo busy"}, "deferred", "421 4.3.2 ehlo busy", None),
    ("ehlo-502-helo-250", {"ehlo": "502 5.5.2 no EHLO here"}, "delivered", None, None),
    ("ehlo-550-helo-451", {"ehlo": "550 5.5.2 no EHLO", "helo": "451 4.3.0 helo later"}, "deferred", "451 4.3.0 helo later", None),
    ("ehlo-550-helo-554", {"ehlo": "550 5.5.2 no EHLO", "helo": "554 5.7.1 helo refused"}, "bounced", "554 5.7.1 helo refused", "5.7.1"),
    ("mail-451", {"mail": "451 4.3.0 mail later"}, "deferred", "451 4.3.0 mail later", None),
    ("mail-553", {"mail": "553 5.7.1 sender refused"}, "bounced", "553 5.7.1 sender refused", "5.7.1"),
    ("rcpt-450", {"rcpt": "450 4.2.1 rcpt later"}, "deferred", "450 4.2.1 rcpt later", None),
    ("rcpt-550", {"rcpt": "550 5.1.1 no such user"}, "bounced", "550 5.1.1 no such user", "5.1.1"),
    ("data-451", {"data": "451 4.3.0 data later"}, "deferred", "451 4.3.0 data later", None),
    ("data-554", {"data": "554 5.5.1 data refused"}, "bounced", "554 5.5.1 data refused", "5.5.1"),
    ("dot-451", {"dot": "451 4.3.0 content later"}, "deferred", "451 4.3.0 content later", None),
    ("dot-552", {"dot": "552 5.3.4 message too big"}, "bounced", "552 5.3.4 message too big", "5.3.4"),
    ("dot-554", {"dot": "554 5.6.0 content refused"}, "bounced", "554 5.6.0 content refused", "5.6.0"),
]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
@pytest.mark.parametrize("stage,replies,outcome,text,status", STAGE_FAULTS, ids=[s[0] for s in STAGE_FAULTS])
def test_reply_at_each_stage(make_server, fdns, healthy, peers, stage, replies, outcome, text, status, pipelining):
    """4xx anywhere → deferred with the reply recorded, no DSN; 5xx → one DSN whose Diagnostic-Code
    carries the remote reply (README: "4xx and connection failures are retried …, 5xx … produce an RFC
    3464 delivery status notification"); EHLO refused with 5xx → HELO. Then mail to a healthy peer flows
    with one delivery worker."""
    if not pipelining and stage.split("-")[0] not in ("mail", "rcpt", "data"):
        pytest.skip("PIPELINING only changes the transaction stages")
    keywords = EHLO_KEYWORDS if pipelining else ("8BITMIME", "ENHANCEDSTATUSCODES")
    peer = peers(lambda c: smtp_session(c, replies, keywords=keywords))
    sender = start_sender(make_server, fdns, peer.port, healthy, delivery={"concurrency": 1})
    qid = submit(sender, [FAULT], f"fault at {stage}")
    if outcome == "deferred":
        line = wait_deferred(sender, qid)
        assert text in line, line
        # Deferred for the configured minute, no DSN generated: nothing more can happen to it in this test.
        assert_deferred_until_later(sender, qid, at_least=30)
        assert peer.transactions == [] or all(not t["reply"].startswith("2") for t in peer.transactions)
    elif outcome == "bounced":
        try:
            assert_bounced_with(sender, FAULT, text, status)
        except AssertionError as e:
            raise AssertionError(f"{e}\nqueue entry: {entry(sender, qid)!r}\ncommands seen: {peer.commands}")
        wait_for(lambda: state_of(sender, qid) is None, timeout=10, what="the bounced message gone")
        assert not any(t["reply"].startswith("2") for t in peer.transactions)
    else:
        wait_for(lambda: peer.transactions and state_of(sender, qid) is None, timeout=30, what="delivery")
        assert [c for _, c in peer.commands if c.split(" ")[0] in ("EHLO", "HELO")][:2] == \
            ["EHLO mx.example.test", "HELO mx.example.test"], peer.commands
        assert delivered_subjects(peer) == [f"fault at {stage}"]
        assert sender.raw_messages(SENDER) == []
    assert_healthy_delivery(sender, healthy, stage)


@pytest.mark.parametrize("shape", ["250-lines-forever", "line-of-MiBs-without-CRLF"])
def test_unbounded_reply_is_cut_off_and_memory_stays_bounded(make_server, fdns, healthy, peers, shape, capsys):
    """After EHLO the peer sends `250-xxxx…` lines without end, or one line of many MiB with no CRLF (the
    OpenSMTPD CVE-2020-8794 shape). The client must stop at its limit (2048-octet lines, 256 lines),
    close, and defer; the swallow process's RSS may not grow by 64 MiB or more."""
    cap = 256 << 20

    def script(c):
        c.reply("220 fault.test ESMTP flood")
        if c.line() is None:
            return
        sent, chunk = 0, (b"250-" + b"x" * 1000 + b"\r\n") * 64 if shape == "250-lines-forever" else b"x" * 65536
        if shape != "250-lines-forever":
            c.send(b"250-")
        c.sock.settimeout(20)
        try:
            while sent < cap and not c.peer.stopping.is_set():
                c.sock.sendall(chunk)
                sent += len(chunk)
            c.peer.notes["end"] = "cap reached" if sent >= cap else "stopped"
        except socket.timeout:
            c.peer.notes["end"] = "client stopped reading but kept the connection open"
        except OSError as e:
            c.peer.notes["end"] = f"closed by client ({e.__class__.__name__})"
        c.peer.notes["sent"] = sent

    peer = peers(script)
    sender = start_sender(make_server, fdns, peer.port, healthy, delivery={"concurrency": 1})
    pid = sender.proc.pid
    submit(sender, [HEALTHY_RCPT], "warm-up")
    wait_for(lambda: healthy.transactions, timeout=30, what="the warm-up delivery")
    time.sleep(0.5)
    base = rss_kib(pid)
    qid = submit(sender, [FAULT], f"flood {shape}")
    peak = base
    deadline = time.monotonic() + 60
    while "end" not in peer.notes and time.monotonic() < deadline:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.05)
    line = wait_deferred(sender, qid)
    peak = max(peak, rss_kib(pid))
    growth = (peak - base) / 1024
    with capsys.disabled():
        print(f"\n[memory] {shape}: VmRSS {base / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB during "
              f"(+{growth:.1f} MiB); peer sent {peer.notes.get('sent', 0) / 1048576:.1f} MiB, {peer.notes.get('end')}; "
              f"queue: {line[line.find('last: '):]}")
    assert peer.notes.get("end", "").startswith("closed by client"), peer.notes
    assert peer.notes["sent"] < 64 << 20, peer.notes
    assert growth < 64, f"RSS grew by {growth:.1f} MiB"
    assert sender.raw_messages(SENDER) == []
    assert_alive(sender)
    assert_healthy_delivery(sender, healthy, shape)


@pytest.mark.parametrize("after", ["garbage", "close"])
def test_starttls_handshake_failure_falls_back_to_plaintext(make_server, fdns, healthy, peers, after):
    """The peer offers STARTTLS, answers 220, then sends garbage instead of a ServerHello (or closes at
    once). Opportunistic TLS is Postfix's `may`: the same host is tried again at once without STARTTLS
    (smtp_connect.c falls back to plaintext after a failed handshake), so a host with broken TLS still
    gets its mail. Five messages through one delivery worker, so that a lost wake-up in the client's
    switch to TLS (which once held the worker for good) shows: every one must arrive within 30 s."""
    peer = peers(lambda c: smtp_session(c, keywords=EHLO_KEYWORDS + ("STARTTLS",), starttls=after))
    sender = start_sender(make_server, fdns, peer.port, healthy, delivery={"concurrency": 1})
    subjects = [f"broken STARTTLS ({after}) {i}" for i in range(5)]
    ids = [submit(sender, [FAULT], subject) for subject in subjects]
    try:
        wait_for(lambda: len(peer.transactions) >= 5, timeout=30, what="five plaintext deliveries")
    except AssertionError:
        raise AssertionError(f"{len(peer.transactions)} of 5 delivered 30 s after the peer answered 220 to STARTTLS and "
                             f"{'sent garbage' if after == 'garbage' else 'closed'} ({peer.connections} connections, "
                             f"{sum(1 for _, c in peer.commands if c == 'STARTTLS')} STARTTLS):\n"
                             + "\n".join(entry(sender, q) for q in ids))
    wait_queue_empty(sender)
    assert sorted(delivered_subjects(peer)) == sorted(subjects)
    # The plaintext connection is then reused for the next messages (connection cache).
    assert sum(1 for _, c in peer.commands if c == "STARTTLS") >= 1
    assert "retrying without TLS" in sender.log_text()
    assert sender.raw_messages(SENDER) == []  # no DSN
    assert_healthy_delivery(sender, healthy, f"broken STARTTLS ({after})")


def test_connection_reset_mid_data_then_delivered(make_server, fdns, healthy, peers):
    """The first connection is reset (SO_LINGER 0 → RST) after 64 KiB of a ~300 KiB body; the next one
    behaves. The message is deferred with the reason, then delivered once and intact."""
    def after_354(c):
        if c.n == 0:
            c.read_at_least(64 * 1024)
            c.peer.notes["read before reset"] = len(c.buf)
            c.reset()
            return True
        return False

    peer = peers(lambda c: smtp_session(c, after_354=after_354))
    sender = start_sender(make_server, fdns, peer.port, healthy,
                          delivery={"retry_initial": 4, "retry_maximum": 8, "concurrency": 1})
    body = "".join(f"line {i:05d} " + "abcdefghij" * 6 + "\n" for i in range(4000))
    qid = submit(sender, [FAULT], "reset mid-DATA", body=body)
    line = wait_deferred(sender, qid)
    print("\n" + line)
    assert re.search(r"reset|closed|broken|connection", line, re.I), line
    assert peer.transactions == []
    assert 64 * 1024 <= peer.notes["read before reset"] < len(body)
    wait_for(lambda: peer.transactions, timeout=40, what="the second attempt delivered")
    wait_queue_empty(sender)
    [t] = peer.transactions
    content = unstuff(t["wire"])
    assert b"Subject: reset mid-DATA\r\n" in content
    assert content.endswith(body.replace("\n", "\r\n").encode())
    assert sender.raw_messages(SENDER) == []
    assert_healthy_delivery(sender, healthy, "a reset mid-DATA")


# --------------------------------------------------------------------------------------------------
# 2. DNS failures


DNS_DEFERRALS = [
    ("servfail.test", r"SERVFAIL|server failure", 20),
    ("silent.test", r"timeout", 45),
    ("tc-tcpclosed.test", r"DNS|closed|network", 30),
    ("tc-both.test", r"DNS|trunc", 30),
    ("garbage-udp.test", r"malformed", 45),
    ("ptrloop-udp.test", r"malformed", 45),
    ("rdlength-udp.test", r"malformed", 45),
    ("garbage-tcp.test", r"malformed", 30),
    ("ptrloop-tcp.test", r"malformed", 30),
    ("rdlength-tcp.test", r"malformed", 30),
]


@pytest.mark.parametrize("domain,reason,timeout", DNS_DEFERRALS, ids=[d[0].removesuffix(".test") for d in DNS_DEFERRALS])
def test_dns_failure_is_deferred(make_server, fdns, healthy, peers, domain, reason, timeout):
    """An MX lookup that fails temporarily (SERVFAIL; no answer: 5 s × 2 tries; TC over UDP with TCP
    closing or truncated too; malformed answers with the right ID: junk, a compression-pointer loop,
    RDLENGTH past the end — over UDP (dropped, then timeout) or over TCP after TC) → deferred, no DSN,
    no crash; the trap peer behind the would-be MX (and behind tc-both.test's A record, which an
    implicit-MX fallback would use) gets nothing."""
    trap = peers(lambda c: smtp_session(c))
    sender = start_sender(make_server, fdns, trap.port, healthy, delivery={"concurrency": 1})
    qid = submit(sender, [f"x@{domain}"], f"dns fault {domain}")

    def settled():
        l = entry(sender, qid)
        return state_of(sender, qid) is None or ("  deferred  " in l and "last: " in l)
    wait_for(settled, timeout=timeout, what=f"{qid} deferred (or gone)")
    assert trap.transactions == [], (
        f"delivered to {trap.transactions[0]['rcpts']} at the trap peer although the MX lookup of {domain} failed "
        f"({domain} MX asked: {fdns.asked(domain, 'MX', 'udp')}× UDP, {fdns.asked(domain, 'MX', 'tcp')}× TCP; "
        f"A asked {fdns.asked(domain, 'A')}×): log says "
        f"{[l[l.find('reply='):] for l in sender.log_text().splitlines() if 'delivered' in l]}")
    line = wait_deferred(sender, qid, timeout=5)
    print("\n" + line)
    assert re.search(reason, line, re.I), line
    assert fdns.asked(domain, "MX")
    assert trap.transactions == [] and trap.connections == 0, (trap.connections, trap.commands)
    # Deferred for the configured minute, no DSN generated: nothing more can happen to it in this test
    # (so the trap cannot be reached later either).
    assert_deferred_until_later(sender, qid, at_least=30)
    assert_alive(sender)
    assert_healthy_delivery(sender, healthy, f"DNS fault {domain}")


@pytest.mark.parametrize("domain", ["loop-a.test", "loop-one.test"], ids=["across-queries", "in-one-answer"])
def test_cname_loop_bounces_without_hanging(make_server, fdns, healthy, peers, domain):
    """DNSClient README: a CNAME loop is a permanent error (bounce). a → b → a, asked in two queries or
    carried in one answer: one DSN, a bounded number of queries, the server alive."""
    trap = peers(lambda c: smtp_session(c))
    sender = start_sender(make_server, fdns, trap.port, healthy, delivery={"concurrency": 1})
    before = len(fdns.queries)
    qid = submit(sender, [f"x@{domain}"], f"cname loop {domain}")
    [dsn] = wait_dsns(sender, 1, timeout=30)
    _, per_rcpt, _ = dsn_reports(dsn)
    r = per_rcpt[f"x@{domain}"]
    print("\n" + str(r))
    assert r["Action"] == "failed" and r["Status"].startswith("5."), str(r)
    wait_for(lambda: state_of(sender, qid) is None, timeout=10, what="the message gone")
    assert len(fdns.queries) - before <= 20, fdns.queries[before:]
    assert trap.connections == 0
    assert_alive(sender)
    assert_healthy_delivery(sender, healthy, f"CNAME loop {domain}")


# --------------------------------------------------------------------------------------------------
# 3. the bytes we relay: CRLF only, dot-stuffing, one terminator


HEADER = ("From: alice@example.test\r\nTo: r@raw.test\r\nSubject: {subject}\r\n"
          "Message-ID: <{mid}@example.test>\r\nDate: Sat, 22 Nov 2025 10:00:00 +0000\r\n\r\n")
BODY_LINES = [b"first line", b".", b"..", b"...", b". a dot and a space", b"", b".",
              b"." + b"a" * 996,          # 997 octets: stays within 1000 with the stuffing dot on the wire
              b"b" * 998,                 # the longest line RFC 5321 allows
              b"middle", b"\t.tab first", b"end ."]


def content(subject: str, final_newline: bool) -> bytes:
    head = HEADER.format(subject=subject, mid=re.sub(r"\W", "", subject) + str(time.monotonic_ns())).encode()
    body = b"\r\n".join(BODY_LINES) + b"\r\nlast line without newline"
    return head + body + (b"\r\n" if final_newline else b"")


def submit_data(server, data: bytes) -> str:
    with RawSMTP(server.host, server.port) as s:
        s.greet()
        s.cmd("MAIL FROM:<alice@example.test>", 250)
        s.cmd("RCPT TO:<r@raw.test>", 250)
        s.cmd("DATA", 354)
        stuffed = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in data.split(b"\r\n")[:-1])
        s.send(stuffed + b".\r\n")
        lines = s.expect(250)
        s.cmd("QUIT", 221)
    return re.search(r"queued as ([A-Za-z0-9]+)", lines[-1]).group(1)


def bdat_chunks(data: bytes) -> list[bytes]:
    """Awkward boundaries: between CR and LF, just before a line that is '.', and just after CRLF."""
    cr = data.index(b"\r\n", data.index(b"\r\n\r\n") + 4)             # the CRLF after "first line"
    dot = data.index(b"\r\n.\r\n") + 2                                  # before a line "."
    cuts = sorted({cr + 1, dot, dot + 3, len(data) - 10})
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def submit_bdat(server, data: bytes, chunks: list[bytes] | None = None) -> tuple[list, RawSMTP]:
    """BDAT chunks one by one; returns every reply (the session stays open for the caller)."""
    s = RawSMTP(server.host, server.port)
    s.greet()
    s.cmd("MAIL FROM:<alice@example.test>", 250)
    s.cmd("RCPT TO:<r@raw.test>", 250)
    chunks = chunks or bdat_chunks(data)
    replies = []
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        s.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
        reply = s.read_reply()
        assert reply is not None, f"connection closed after chunk {i}: {replies}"
        replies.append(reply)
    return replies, s


def check_wire_data(wire: bytes) -> None:
    bare_cr, bare_lf = re.search(rb"\r(?!\n)", wire), re.search(rb"(?<!\r)\n", wire)
    assert bare_cr is None, f"bare CR at offset {bare_cr.start()}: {wire[bare_cr.start() - 20:bare_cr.start() + 20]!r}"
    assert bare_lf is None, f"bare LF at offset {bare_lf.start()}: {wire[bare_lf.start() - 20:bare_lf.start() + 20]!r}"
    assert wire.endswith(b"\r\n.\r\n"), wire[-20:]
    assert wire.count(b"\r\n.\r\n") == 1 and not wire.startswith(b".\r\n"), "a second terminator"
    for line in wire[:-5].split(b"\r\n"):
        assert len(line) - (1 if line.startswith(b".") else 0) <= 998, len(line)
        if line.startswith(b"."):
            assert line.startswith(b".."), f"unstuffed line {line[:20]!r}"


@pytest.mark.parametrize("outbound", ["DATA", "BDAT"])
@pytest.mark.parametrize("inbound", ["DATA", "BDAT"])
def test_relayed_bytes_are_crlf_clean_and_dot_stuffed(make_server, fdns, healthy, peers, inbound, outbound):
    keywords = EHLO_KEYWORDS + (("CHUNKING",) if outbound == "BDAT" else ())
    sink = peers(lambda c: smtp_session(c, keywords=keywords, name="raw.test"))
    sender = start_sender(make_server, fdns, sink.port, healthy)
    subject = f"raw bytes {inbound} in, {outbound} out"
    if inbound == "DATA":
        data = content(subject, final_newline=True)
        qid = submit_data(sender, data)
    else:
        data = content(subject, final_newline=False)
        replies, s = submit_bdat(sender, data)
        s.close()
        assert all(code == 250 for code, _ in replies), replies
        m = re.search(r"queued as ([A-Za-z0-9]+)", replies[-1][1][-1])
        assert m, replies
        qid = m.group(1)
    wait_for(lambda: sink.transactions, timeout=30, what="the relayed message")
    wait_queue_empty(sender)
    [t] = sink.transactions
    assert t["via"] == outbound
    if outbound == "DATA":
        check_wire_data(t["wire"])
        got = unstuff(t["wire"])
    else:
        got = b"".join(t["chunks"])
        assert re.search(rb"\r(?!\n)", got) is None and re.search(rb"(?<!\r)\n", got) is None
        assert got.endswith(b"\r\n") and not got.endswith(b"\r\n\r\n")
        for line in got.split(b"\r\n"):
            assert len(line) <= 998
    expected_body = data[data.index(b"\r\n\r\n") + 4:]
    if not expected_body.endswith(b"\r\n"):
        expected_body += b"\r\n"                        # a final line without newline gets one CRLF
    assert got.endswith(b"\r\n\r\n" + expected_body), got[-300:]
    head = got[:got.index(b"\r\n\r\n") + 2]
    assert f"Subject: {subject}\r\n".encode() in head and f" id {qid}".encode() in head, head


def test_998_octet_line_starting_with_dot(make_server, fdns, healthy, peers):
    """RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with CRLF "not counting the leading dot
    duplicated for transparency". A 998-octet line that starts with '.' is 999 octets + CRLF on the wire
    in DATA: it must be accepted inbound, relayed, and unstuffed back to 998 octets."""
    sink = peers(lambda c: smtp_session(c, name="raw.test"))
    sender = start_sender(make_server, fdns, sink.port, healthy)
    line = b"." + b"c" * 997
    data = HEADER.format(subject="dot line 998", mid=f"dot998.{time.monotonic_ns()}").encode() + line + b"\r\nend\r\n"
    with RawSMTP(sender.host, sender.port) as s:
        s.greet()
        s.cmd("MAIL FROM:<alice@example.test>", 250)
        s.cmd("RCPT TO:<r@raw.test>", 250)
        s.cmd("DATA", 354)
        s.send(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        reply = s.read_reply()
        assert reply is not None and reply[0] == 250, f"inbound DATA refused the stuffed 998-octet line: {reply}"
    wait_for(lambda: sink.transactions, timeout=30, what="the relayed message")
    [t] = sink.transactions
    assert b"\r\n." + line + b"\r\n" in t["wire"]
    assert unstuff(t["wire"]).endswith(line + b"\r\nend\r\n")


BDAT_BARE = {
    "bare-LF": [b"Subject: bare\r\n\r\nline one\nline two\r\n"],
    "bare-CR": [b"Subject: bare\r\n\r\nline one\rline two\r\n"],
    "smuggling-LF-dot-LF": [b"Subject: smuggle\r\n\r\nhi\n.\nMAIL FROM:<evil@attacker.test>\r\n"],
    "CR-at-end-of-LAST": [b"Subject: bare\r\n\r\nlast\r"],
    "CR-at-chunk-end-no-LF-next": [b"Subject: bare\r\n\r\none\r", b"two\r\n"],
    "LF-at-start-of-LAST-after-text": [b"Subject: bare\r\n\r\none", b"\ntwo\r\n"],
}


@pytest.mark.parametrize("variant", list(BDAT_BARE))
def test_bdat_with_bare_cr_or_lf_is_refused(make_server, fdns, healthy, peers, variant):
    """docs/smtp.md: a message with a bare CR or LF is refused as a whole with 550 5.5.2, "the same check
    applies to BDAT content". Nothing is queued, nothing is relayed, the session continues."""
    sink = peers(lambda c: smtp_session(c, name="raw.test"))
    sender = start_sender(make_server, fdns, sink.port, healthy)
    chunks = BDAT_BARE[variant]
    replies, s = submit_bdat(sender, b"".join(chunks), chunks)
    try:
        assert not any("queued as" in l for _, lines in replies for l in lines), replies
        code, lines = replies[-1]
        assert code == 550 and lines[-1][4:].startswith("5.5.2"), replies
        s.cmd("NOOP", 250)
        s.cmd("QUIT", 221)
    finally:
        s.close()
    # Refused at intake, so never queued: with nothing in the queue nothing can be relayed later.
    assert_queue_finished(sender)
    assert sink.connections == 0 and sink.transactions == [], (sink.connections, sink.commands)
