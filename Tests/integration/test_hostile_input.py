"""Hostile input against the real `swallow` binary: resource exhaustion, slowloris, envelope and
parameter injection, brute force and enumeration.

Every expectation is a documented reply (docs/smtp.md, docs/pop3.md, README configuration reference).
Memory bounds are asserted on the server process's resident set (/proc/<pid>/status VmRSS, sampled
while the attack runs, plus the VmHWM high-water mark): each attack may grow it by at most
RSS_BOUND_MIB. Figures are printed (run with -s).
"""

from __future__ import annotations

import base64
import json
import math
import os
import poplib
import re
import resource
import select
import smtplib
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (CLI_TIMEOUT, IO_TIMEOUT, SWALLOW_BIN, RawSMTP, SwallowServer, free_port,
                      insecure_tls_context, proc_status_kib, wait_for, wait_port)
from test_queue import ScriptedSMTP

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "correct horse battery staple"
TLS = insecure_tls_context()
MIB = 1024 * 1024
RSS_BOUND_MIB = 64
CANARY = Path(f"/tmp/swallow-hostile-canary-{os.getpid()}")

poplib._MAXLINE = 1 << 20


# --------------------------------------------------------------------------------------------------
# helpers


def report(line: str) -> None:
    print(f"\n[hostile figures] {line}")


class RSSWatch:
    """Samples the server's VmRSS every 20 ms while the block runs; `growth_mib` is the largest
    increase over the value at entry (also counting a VmHWM rise the sampler may have missed).
    A server whose /proc/<pid>/status cannot be read (it died, or is a zombie) at entry, during the
    block or at exit fails the test: a dead server has no memory growth to measure, it is a failure."""

    def __init__(self, server: SwallowServer):
        self.server = server
        self.pid = server.proc.pid
        self.samples: list[int] = []
        self.sample_error: AssertionError | None = None
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(proc_status_kib(self.pid, "VmRSS"))
            except AssertionError as exc:
                self.sample_error = exc
                return
            self._stop.wait(0.02)

    def _check_alive(self, when: str) -> None:
        code = self.server.proc.poll()
        assert code is None, f"swallow serve exited with {code} {when}\n{self.server.log_tail()}"

    def __enter__(self):
        self._check_alive("before the measurement")
        self.base = proc_status_kib(self.pid, "VmRSS")
        self.hwm_before = proc_status_kib(self.pid, "VmHWM")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        # Raised even when the block failed: "the server died" explains the block's error.
        self._check_alive("during the measurement")
        if self.sample_error is not None:
            raise AssertionError(f"VmRSS could not be sampled during the measurement: {self.sample_error}\n"
                                 f"{self.server.log_tail()}")
        self.end = proc_status_kib(self.pid, "VmRSS")
        hwm_after = proc_status_kib(self.pid, "VmHWM")
        self.peak = max(self.samples + [self.end, self.base])
        if hwm_after > self.hwm_before:
            self.peak = max(self.peak, hwm_after)
        return False

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / 1024

    def summary(self) -> str:
        return f"VmRSS {self.base / 1024:.1f} MiB → peak {self.peak / 1024:.1f} MiB (+{self.growth_mib:.1f} MiB), end {self.end / 1024:.1f} MiB"


def start_server(make_server, *, submission: bool = False, pop3: bool = False, pop3_extra: dict | None = None,
                 auth: dict | None = None, **config) -> SwallowServer:
    """A started server; with `submission` a 587-style listener (server.sub_port), with `pop3` a POP3
    listener (server.pop3_port, plaintext USER/PASS allowed unless pop3_extra says otherwise)."""
    sub_port = free_port() if submission else None
    pop3_port = free_port() if pop3 else None
    if sub_port:
        config["submission"] = {"listen": [f"127.0.0.1:{sub_port}"]}
    if pop3_port:
        p = {"listen": [f"127.0.0.1:{pop3_port}"], "allow_plaintext_auth": True}
        p.update(pop3_extra or {})
        config["pop3"] = p
    a = {"failure_delay_ms": 0, "max_failures_per_ip": 10000, "max_failures_per_account": 10000}
    a.update(auth or {})
    server = make_server(start=False, auth=a, **config)
    server.sub_port, server.pop3_port = sub_port, pop3_port
    server.start()
    for port in (sub_port, pop3_port):
        if port:
            wait_port(port)
    return server


def auth_plain(user: str | bytes, password: str | bytes) -> str:
    u = user.encode() if isinstance(user, str) else user
    p = password.encode() if isinstance(password, str) else password
    return base64.b64encode(b"\0" + u + b"\0" + p).decode()


def raw_submission(server: SwallowServer, user: str | None = ALICE, password: str = PASSWORD) -> RawSMTP:
    """A raw session on the submission listener after STARTTLS and EHLO (and AUTH unless user is None)."""
    r = RawSMTP(server.host, server.sub_port)
    r.greet()
    r.cmd("STARTTLS", 220)
    r.starttls(TLS)
    r.cmd("EHLO client.example.net", 250)
    if user is not None:
        r.cmd(f"AUTH PLAIN {auth_plain(user, password)}", 235, "2.7.0")
    return r


class RawPOP3:
    """Sends exactly the bytes it is given; reads single lines."""

    def __init__(self, port: int, timeout: float = IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, data: bytes) -> bytes | None:
        self.sock.sendall(data + b"\r\n")
        return self.line()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def alive(server: SwallowServer) -> None:
    """The process runs and a fresh session gets its greeting and a NOOP answered."""
    assert server.proc.poll() is None, f"server exited with {server.proc.returncode}\n{server.log_tail()}"
    with server.raw() as s:
        s.greet()
        s.cmd("NOOP", 250, "2.0.0")
        s.cmd("QUIT", 221)


def read_replies_until(r: RawSMTP, count: int) -> list[tuple[int, list[str]]]:
    out = []
    while len(out) < count:
        reply = r.read_reply()
        if reply is None:
            break
        out.append(reply)
    return out


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= want, f"RLIMIT_NOFILE {soft} < {want} (hard {hard})"


TIMESTAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
# raw CR, NUL, ESC, and the line breaks Unicode adds (NEL, LINE/PARAGRAPH SEPARATOR), which the
# server's logEscaped turns into \xNN escapes
FORBIDDEN_IN_LOG = {b"\r": "CR", b"\x00": "NUL", b"\x1b": "ESC", "\u0085".encode(): "NEL",
                    "\u2028".encode(): "LINE SEPARATOR", "\u2029".encode(): "PARAGRAPH SEPARATOR"}


def log_bytes(server: SwallowServer) -> bytes:
    try:
        return server.log_path.read_bytes()
    except FileNotFoundError:
        return b""


def wait_disconnect_logged(server: SwallowServer, client_port: int, timeout: float = 10.0) -> None:
    marker = f"client=127.0.0.1:{client_port} ".encode()
    wait_for(lambda: any(marker in l and b"disconnect" in l for l in log_bytes(server).split(b"\n")),
             timeout=timeout, what=f"disconnect of client port {client_port} logged")


def assert_log_clean(segment: bytes, markers: tuple[bytes, ...] = ()) -> None:
    """Every line of this log segment is one whole log record: starts with a timestamp, holds no raw
    CR/NUL/ESC/NEL/U+2028/U+2029, and no marker the peer sent starts a line of its own."""
    problems = []
    for line in segment.split(b"\n"):
        if not line:
            continue
        if not TIMESTAMP.match(line):
            problems.append(f"line does not start with a timestamp (a forged/split record): {line[:200]!r}")
        for raw, name in FORBIDDEN_IN_LOG.items():
            if raw in line:
                problems.append(f"raw {name} in log line: {line[:200]!r}")
        for m in markers:
            if line.startswith(m):
                problems.append(f"peer text starts a log line: {line[:200]!r}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------------
# 1. resource exhaustion


@pytest.mark.parametrize("listener", ["smtp", "pop3"])
def test_endless_command_line_is_refused_and_memory_stays_bounded(make_server, listener):
    """8 × 1 MiB without a line end: one line-too-long answer (`500 5.5.6` / `-ERR Line too long`), the
    rest discarded up to the next LF, the session usable afterwards, no hang, RSS growth < 64 MiB."""
    server = start_server(make_server, pop3=listener == "pop3")
    junk = b"NOOP " + b"x" * (MIB - 5)
    if listener == "smtp":
        conn = server.raw()
        conn.greet()
        sock = conn.sock
    else:
        conn = RawPOP3(server.pop3_port)
        assert conn.line().startswith(b"+OK")
        sock = conn.sock
    with RSSWatch(server) as mem:
        for _ in range(8):
            sock.sendall(junk)
        sock.sendall(b"\r\nNOOP\r\n" if listener == "smtp" else b"\r\nCAPA\r\n")
        if listener == "smtp":
            replies = read_replies_until(conn, 2)
            assert [(c, l[-1][:9]) for c, l in replies] == [(500, "500 5.5.6"), (250, "250 2.0.0")], replies
            conn.cmd("QUIT", 221)
        else:
            assert conn.line() == b"-ERR Line too long"
            assert conn.line().startswith(b"+OK")  # CAPA
            while conn.line() != b".":
                pass
            assert conn.cmd(b"QUIT").startswith(b"+OK")
    conn.close()
    report(f"{listener}: 8 MiB command line without LF: {mem.summary()}")
    assert mem.growth_mib < RSS_BOUND_MIB, mem.summary()
    alive(server)


def test_ten_megabyte_header_line_is_refused_with_bounded_memory(make_server):
    """One header line of 10 MiB: `500 5.5.6 Line too long (over 1000 octets)` after the final dot,
    nothing stored, memory bounded; a line of exactly 998 octets + CRLF is accepted intact."""
    server = start_server(make_server)
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd(f"RCPT TO:<{ALICE}>", 250)
        s.cmd("DATA", 354)
        with RSSWatch(server) as mem:
            s.send(b"Subject: long header\r\nX-Long: ")
            for _ in range(10):
                s.send(b"z" * MIB)
            s.send(b"\r\n\r\nbody\r\n.\r\n")
            s.expect(500, "5.5.6")
        s.cmd("NOOP", 250)
        assert server.raw_messages(ALICE) == []
        # the boundary: 998 octets + CRLF = 1000 is allowed
        line = b"X-Edge: " + b"e" * 990
        assert len(line) == 998
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd(f"RCPT TO:<{ALICE}>", 250)
        s.cmd("DATA", 354)
        s.send(b"Subject: edge\r\n" + line + b"\r\n\r\nbody\r\n.\r\n")
        s.expect(250, "2.0.0")
    stored = server.raw_messages(ALICE)
    assert len(stored) == 1 and stored[0].endswith(b"Subject: edge\n" + line + b"\n\nbody\n"), stored
    report(f"10 MiB header line: {mem.summary()}")
    assert mem.growth_mib < RSS_BOUND_MIB, mem.summary()


FILLER = b"X-Filler: " + b"y" * 68 + b"\r\n"  # 80 octets


@pytest.mark.parametrize("case", ["mx-accepted", "mx-over-max-message-size", "submission-header-limit"])
def test_ten_megabyte_header_section_of_short_lines(make_server, case):
    """~10 MiB of valid 80-octet header lines. Port 25 with the default 25 MiB limit: stored (250);
    port 25 with max_message_size = 5 MiB: `552 5.3.4`; submission (header section held in memory
    up to 1 MiB): `552 5.3.4 Message header section too large`. RSS growth < 64 MiB in each case."""
    limits = {"max_message_size": 5 * MIB} if case == "mx-over-max-message-size" else None
    server = start_server(make_server, submission=case.startswith("submission"), limits=limits)
    lines = 10 * MIB // len(FILLER)
    block = FILLER * 1024
    if case.startswith("submission"):
        s = raw_submission(server)
        s.cmd(f"MAIL FROM:<{ALICE}>", 250)
        head = f"From: <{ALICE}>\r\nSubject: big header\r\n".encode()
    else:
        s = server.raw()
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        head = b"Subject: big header\r\n"
    s.cmd(f"RCPT TO:<{BOB}>", 250)
    s.cmd("DATA", 354)
    with RSSWatch(server) as mem:
        s.send(head)
        for _ in range(lines // 1024):
            s.send(block)
        s.send(b"\r\nbody\r\n.\r\n")
        if case == "mx-accepted":
            s.expect(250, "2.0.0")
        elif case == "mx-over-max-message-size":
            s.expect(552, "5.3.4")
        else:
            lines_ = s.expect(552, "5.3.4")
            assert "header section too large" in lines_[-1], lines_
    s.cmd("NOOP", 250)
    s.close()
    stored = server.raw_messages(BOB)
    if case == "mx-accepted":
        assert len(stored) == 1
        assert stored[0].endswith(head.replace(b"\r\n", b"\n") + (FILLER.replace(b"\r\n", b"\n") * (lines // 1024 * 1024))
                                  + b"\nbody\n")
    else:
        assert stored == []
    report(f"{case}: {lines // 1024 * 1024} header lines ({lines // 1024 * 1024 * 80 / MIB:.1f} MiB): {mem.summary()}")
    assert mem.growth_mib < RSS_BOUND_MIB, mem.summary()


def test_ten_thousand_header_fields_stored_intact(make_server):
    server = start_server(make_server)
    header = b"".join(b"X-Field-%05d: value %d\r\n" % (i, i) for i in range(10000))
    message = b"Subject: many fields\r\n" + header + b"\r\nbody line\r\n"
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd(f"RCPT TO:<{ALICE}>", 250)
        s.cmd("DATA", 354)
        s.send(message + b".\r\n")
        s.expect(250, "2.0.0")
    stored = server.raw_messages(ALICE)
    assert len(stored) == 1
    assert stored[0].endswith(message.replace(b"\r\n", b"\n")), stored[0][:300]
    msg = server.maildir_messages(ALICE)[0]
    assert len([k for k in msg.keys() if k.startswith("X-Field-")]) == 10000
    alive(server)


def nested_multipart(depth: int) -> bytes:
    head = [b"Subject: nested %d\r\nMIME-Version: 1.0\r\n" % depth]
    for i in range(depth):
        head.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    head.append(b"Content-Type: text/plain\r\n\r\ninnermost\r\n")
    for i in reversed(range(depth)):
        head.append(b"--b%d--\r\n" % i)
    return b"".join(head)


def nested_rfc822(depth: int) -> bytes:
    parts = [b"Subject: nested rfc822 %d\r\nMIME-Version: 1.0\r\n" % depth]
    for i in range(depth):
        parts.append(b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\nMIME-Version: 1.0\r\n" % i)
    parts.append(b"Content-Type: text/plain\r\n\r\ninnermost\r\n")
    return b"".join(parts)


@pytest.mark.parametrize("shape", ["multipart", "message-rfc822", "multipart-unterminated"])
def test_mime_nested_1000_levels(make_server, shape):
    """Accepted and stored as is; the server lives on; `swallow mime show` (text and --json) on the
    stored file ends on its own with an exit code (no signal, no timeout) and reports the depth."""
    if shape == "multipart":
        message = nested_multipart(1000)
    elif shape == "message-rfc822":
        message = nested_rfc822(1000)
    else:
        message = nested_multipart(1000).split(b"innermost\r\n")[0] + b"innermost\r\n"
    server = start_server(make_server)
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd(f"RCPT TO:<{ALICE}>", 250)
        s.cmd("DATA", 354)
        s.send(message + b".\r\n")
        s.expect(250, "2.0.0")
        s.cmd("NOOP", 250)
    files = server.maildir_files(ALICE)
    assert len(files) == 1
    assert files[0].read_bytes().endswith(message.replace(b"\r\n", b"\n"))
    alive(server)
    for extra in ([], ["--json"]):
        result = subprocess.run([str(SWALLOW_BIN), "mime", "show", *extra, str(files[0])], capture_output=True,
                                timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
        assert 0 <= result.returncode < 128, f"mime show {extra} killed: {result.returncode}\n{result.stderr[-2000:]!r}"
        out = (result.stdout + result.stderr).decode("utf-8", "replace")
        if result.returncode == 0:
            assert "depth" in out.lower() or "nest" in out.lower(), out[-2000:]
            if extra:
                json.loads(result.stdout)
        else:
            assert out.strip(), "a failure must say why"


@pytest.mark.parametrize("recipients", ["subaddresses-over-max-recipients", "unknown-users"])
def test_100000_pipelined_rcpt_commands(make_server, recipients):
    """100,000 RCPTs in 64 KiB writes. Distinct accepted recipients (alice+N): the first
    max_recipients (100) get `250 2.1.5`, every further one `452 4.5.3`, and the transaction then
    completes (one copy for alice). Unknown users: `550 5.1.1` counts as an error, so after
    max_errors (20) the 21st answer is followed by `421 4.7.0` and the close. RSS growth < 64 MiB."""
    server = start_server(make_server)
    n = 100_000
    if recipients.startswith("subaddresses"):
        lines = b"".join(b"RCPT TO:<alice+%d@example.test>\r\n" % i for i in range(n))
    else:
        lines = b"".join(b"RCPT TO:<nobody%d@example.test>\r\n" % i for i in range(n))
    s = server.raw()
    s.greet()
    s.cmd("MAIL FROM:<sender@remote.test>", 250)
    send_error: list[BaseException] = []

    def writer():
        try:
            for i in range(0, len(lines), 65536):
                s.sock.sendall(lines[i:i + 65536])
        except OSError as e:
            send_error.append(e)

    s.sock.settimeout(60)
    with RSSWatch(server) as mem:
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        if recipients.startswith("subaddresses"):
            counts: dict[str, int] = {}
            for i in range(n):
                reply = s.read_reply()
                assert reply is not None, f"closed after {i} RCPT replies: {counts}"
                key = reply[1][-1][:9]
                counts[key] = counts.get(key, 0) + 1
                if i < 100:
                    assert key == "250 2.1.5", (i, reply)
                else:
                    assert key == "452 4.5.3", (i, reply)
            t.join(60)
            assert not send_error, send_error
            s.cmd("DATA", 354)
            s.send(b"Subject: after 100000 RCPT\r\n\r\nstill works\r\n.\r\n")
            s.expect(250, "2.0.0")
            s.cmd("QUIT", 221)
        else:
            replies = s.read_all_replies()
            t.join(60)
            summary = [r[1][-1][:9] for r in replies]
            assert summary == ["550 5.1.1"] * 21 + ["421 4.7.0"], summary[:3] + ["…"] + summary[-3:]
    s.close()
    report(f"100,000 RCPT ({recipients}): {mem.summary()}")
    assert mem.growth_mib < RSS_BOUND_MIB, mem.summary()
    if recipients.startswith("subaddresses"):
        msgs = server.maildir_messages(ALICE)
        assert [m["Subject"] for m in msgs] == ["after 100000 RCPT"]
    alive(server)


BDAT_CASES = ["short-chunk-then-close", "short-chunk-then-stall", "size-20-digits", "size-negative",
              "size-hex", "chunk-over-max-message-size", "chunks-add-up-over-max-message-size",
              "size-10^18-then-stall", "extra-bytes-are-a-command"]


@pytest.mark.parametrize("case", BDAT_CASES)
def test_bdat_sizes_that_lie(make_server, case):
    """RFC 3030 chunks whose declared size does not match what follows (max_message_size = 10000,
    data_timeout = 2 s)."""
    server = start_server(make_server, limits={"max_message_size": 10000}, smtp_extra={"data_timeout": 2})
    s = server.raw()
    ehlo = s.greet()
    assert "250-CHUNKING" in ehlo or "250 CHUNKING" in ehlo, ehlo
    s.cmd("MAIL FROM:<sender@remote.test>", 250)
    s.cmd(f"RCPT TO:<{ALICE}>", 250)
    s.sock.settimeout(20)
    with RSSWatch(server) as mem:
        if case == "short-chunk-then-close":
            s.send(b"BDAT 1000 LAST\r\n0123456789")
            port = s.sock.getsockname()[1]
            s.close()
            wait_disconnect_logged(server, port)
        elif case == "short-chunk-then-stall":
            s.send(b"BDAT 1000 LAST\r\n0123456789")
            s.expect(421, "4.4.2")  # data_timeout
            assert s.read_reply() is None
        elif case in ("size-20-digits", "size-negative", "size-hex"):
            size = {"size-20-digits": "99999999999999999999", "size-negative": "-1", "size-hex": "0x10"}[case]
            s.cmd(f"BDAT {size} LAST", 501, "5.5.4")
            s.cmd("NOOP", 250)
            s.send(b"BDAT 5 LAST\r\nhello")  # the transaction is still usable
            s.expect(250, "2.0.0")
        elif case == "chunk-over-max-message-size":
            s.send(b"BDAT 20000 LAST\r\n" + b"x" * 20000)
            s.expect(552, "5.3.4")
            s.cmd("NOOP", 250)
        elif case == "chunks-add-up-over-max-message-size":
            s.send(b"BDAT 6000\r\n" + b"a" * 6000)
            s.expect(250, "2.0.0")
            s.send(b"BDAT 6000 LAST\r\n" + b"b" * 6000)
            s.expect(552, "5.3.4")
            s.cmd("NOOP", 250)
        elif case == "size-10^18-then-stall":
            s.send(b"BDAT 999999999999999999 LAST\r\n")
            for _ in range(8):
                s.send(b"q" * MIB)
            s.expect(421, "4.4.2")  # the chunk is discarded (552 owed), then data_timeout
            assert s.read_reply() is None
        elif case == "extra-bytes-are-a-command":
            s.send(b"BDAT 10\r\n0123456789" + b"RSET    \r\n")  # 10 octets of chunk, then 10 more
            s.expect(250, "2.0.0")  # "10 octets received"
            s.expect(250, "2.0.0")  # the RSET
            s.cmd("DATA", 503, "5.5.1")  # RSET ended the transaction
    s.close()
    report(f"BDAT {case}: {mem.summary()}")
    assert mem.growth_mib < RSS_BOUND_MIB, mem.summary()
    stored = server.raw_messages(ALICE)
    if case.startswith("size-") and case != "size-10^18-then-stall":
        assert len(stored) == 1 and stored[0].rstrip(b"\n").endswith(b"\nhello"), stored
    else:
        assert stored == [], stored
    assert list((server.data_dir / "spool").iterdir()) == []
    alive(server)


# --------------------------------------------------------------------------------------------------
# 2. slowloris


DRIBBLE = b"NOOP " + b"x" * 200  # never completes a command while dribbled one byte a second


def connect_many(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        socks.append(s)
    return socks


class Dribblers:
    """n connections that each send one byte of DRIBBLE per tick and record what comes back."""

    def __init__(self, port: int, n: int):
        self.socks = connect_many(port, n)
        self.received = [b""] * n
        self.closed_at: list[float | None] = [None] * n
        self.position = 0
        self.t0 = time.monotonic()

    def tick(self):
        byte = DRIBBLE[self.position % len(DRIBBLE):self.position % len(DRIBBLE) + 1]
        self.position += 1
        for i, s in enumerate(self.socks):
            if self.closed_at[i] is None:
                try:
                    s.send(byte)
                except OSError:
                    self.closed_at[i] = time.monotonic() - self.t0
        self.drain()

    def drain(self):
        for i, s in enumerate(self.socks):
            if self.closed_at[i] is not None:
                continue
            while True:
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    break
                except OSError:
                    self.closed_at[i] = time.monotonic() - self.t0
                    break
                if not chunk:
                    self.closed_at[i] = time.monotonic() - self.t0
                    break
                self.received[i] += chunk

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def slow_listener_server(make_server, listener: str, timeout: int, per_ip: int = 1000):
    smtp_extra = {"max_connections_per_ip": per_ip, "max_connections": 5000, "command_timeout": timeout}
    server = start_server(make_server, submission=listener == "submission", pop3=listener == "pop3",
                          pop3_extra={"autologout": timeout}, smtp_extra=smtp_extra)
    port = {"smtp": server.port, "submission": server.sub_port, "pop3": server.pop3_port}[listener]
    return server, port


def normal_client(server: SwallowServer, listener: str, n: int) -> float:
    """One complete normal session on `listener`; returns its duration."""
    t0 = time.monotonic()
    if listener == "smtp":
        with server.smtp() as c:
            assert c.sendmail("sender@remote.test", [ALICE], f"Subject: normal {n}\r\n\r\nhello\r\n") == {}
    elif listener == "submission":
        with smtplib.SMTP(server.host, server.sub_port, timeout=IO_TIMEOUT) as c:
            c.ehlo("client.example.net")
            c.starttls(context=TLS)
            c.ehlo("client.example.net")
            c.login(ALICE, PASSWORD)
            assert c.sendmail(ALICE, [ALICE], f"From: <{ALICE}>\r\nSubject: normal {n}\r\n\r\nhello\r\n") == {}
    else:
        c = poplib.POP3(server.host, server.pop3_port, timeout=IO_TIMEOUT)
        c.user(BOB)
        assert c.pass_(PASSWORD).startswith(b"+OK")
        c.stat()
        c.quit()
    return time.monotonic() - t0


@pytest.mark.parametrize("listener", ["smtp", "submission", "pop3"])
def test_slowloris_does_not_starve_normal_clients(make_server, listener):
    """200 connections dribbling a command one byte a second (command_timeout / autologout 3 s,
    per-IP limit raised to 1000): a normal client is served within 5 s, twice during the attack."""
    raise_nofile(4096)
    server, port = slow_listener_server(make_server, listener, timeout=3)
    d = Dribblers(port, 200)
    durations = []
    try:
        for second in range(7):
            d.tick()
            if second in (2, 5):
                durations.append(normal_client(server, listener, second))
            time.sleep(max(0.0, d.t0 + second + 1 - time.monotonic()))
    finally:
        d.close()
    report(f"{listener}: normal sessions during 200 dribblers took {', '.join(f'{x:.2f}s' for x in durations)}")
    assert all(x < 5.0 for x in durations), durations
    if listener != "pop3":
        assert len(server.maildir_messages(ALICE)) == 2
    alive(server)


@pytest.mark.parametrize("listener", ["smtp", "submission", "pop3"])
def test_slowloris_dribblers_are_timed_out(make_server, listener):
    """docs/smtp.md: 'no command for command_timeout → 421 4.4.2 … timeout exceeded and close';
    docs/pop3.md: '[pop3] autologout seconds without a command: the connection closes'. 20
    connections that dribble one byte a second never send a whole command, so with a 2 s timeout each
    must be answered 421 4.4.2 (SMTP) / closed (POP3) well within 10 s."""
    server, port = slow_listener_server(make_server, listener, timeout=2)
    d = Dribblers(port, 20)
    try:
        for second in range(10):
            d.tick()
            if all(c is not None for c in d.closed_at):
                break
            time.sleep(max(0.0, d.t0 + second + 1 - time.monotonic()))
        d.drain()
    finally:
        d.close()
    still_open = sum(1 for c in d.closed_at if c is None)
    report(f"{listener}: dribblers closed at {sorted(c for c in d.closed_at if c is not None)[:3]}…, {still_open}/20 still open after 10 s")
    assert still_open == 0, (f"{still_open} of 20 connections that sent one byte a second but no complete command "
                             f"for 10 s (timeout 2 s) are still open; first one received {d.received[0]!r}")
    if listener != "pop3":
        for got in d.received:
            assert re.search(rb"\r\n421 4\.4\.2 ", got), got


@pytest.mark.parametrize("listener", ["smtp", "pop3"])
def test_last_reply_survives_input_the_server_never_reads(make_server, listener):
    """A client sends QUIT followed by 256 KiB it never gets an answer for. Closing a socket with
    unread input makes the kernel send a reset, which can overtake the 221 / +OK; the server must
    shut down its output and drop the rest of the input first, so the client reads its last reply
    and then a clean end of stream (never ECONNRESET). Repeated 20 times: the race is short."""
    server = start_server(make_server, pop3=listener == "pop3")
    port = server.port if listener == "smtp" else server.pop3_port
    expected = b"221 " if listener == "smtp" else b"+OK"
    for attempt in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
            greeting = s.recv(4096)
            assert greeting.startswith(b"220 " if listener == "smtp" else b"+OK"), greeting
            s.sendall(b"QUIT\r\n" + b"x" * 262_144)
            got = b""
            try:
                while chunk := s.recv(4096):
                    got += chunk
            except ConnectionResetError:
                pytest.fail(f"attempt {attempt}: connection reset after {got!r}; the last reply is lost")
            assert got.startswith(expected), (attempt, got)


def test_two_thousand_idle_connections_while_a_normal_client_is_served(make_server):
    """2,000 connections that never send anything (max_connections 5000, max_connections_per_ip 5000):
    a normal SMTP client is still served within 5 s; RSS growth < 64 MiB."""
    raise_nofile(6000)
    server = start_server(make_server, smtp_extra={"max_connections": 5000, "max_connections_per_ip": 5000})
    with RSSWatch(server) as mem:
        idle = connect_many(server.port, 2000)
        try:
            # every one of them got its greeting (none was refused with 421)
            by_fd = {s.fileno(): i for i, s in enumerate(idle)}
            poller = select.poll()
            for s in idle:
                poller.register(s, select.POLLIN)
            pending = set(range(len(idle)))
            got = [b""] * len(idle)
            deadline = time.monotonic() + 20
            while pending and time.monotonic() < deadline:
                for fd, _ in poller.poll(500):
                    i = by_fd[fd]
                    chunk = idle[i].recv(4096)
                    got[i] += chunk
                    if b"\r\n" in got[i] or not chunk:
                        pending.discard(i)
                        poller.unregister(fd)
            assert not pending, f"{len(pending)} idle connections without a greeting"
            assert all(g.startswith(b"220 ") for g in got), {g[:40] for g in got if not g.startswith(b"220 ")}
            elapsed = normal_client(server, "smtp", 0)
        finally:
            for s in idle:
                s.close()
    report(f"2,000 idle SMTP connections: normal session {elapsed:.2f} s; {mem.summary()} "
           f"(≈{(mem.peak - mem.base) / 2000:.1f} KiB per connection)")
    assert elapsed < 5.0
    assert mem.growth_mib < RSS_BOUND_MIB, mem.summary()
    assert len(server.maildir_messages(ALICE)) == 1
    alive(server)


# --------------------------------------------------------------------------------------------------
# 3. envelope and parameter injection


@pytest.fixture(scope="module")
def injection_server(tmp_path_factory):
    """One server for the injection cases (each case is its own connection): port 25 and submission,
    max_errors raised so a case never hits the error limit."""
    base = tmp_path_factory.mktemp("injection")
    sub_port = free_port()
    server = SwallowServer(base, smtp_extra={"max_errors": 1000}, submission={"listen": [f"127.0.0.1:{sub_port}"]},
                           auth={"failure_delay_ms": 0, "max_failures_per_ip": 10000, "max_failures_per_account": 10000})
    server.sub_port = sub_port
    server.start()
    wait_port(sub_port)
    server.etc_before = set(os.listdir("/etc"))
    server.passwd_stat = os.stat("/etc/passwd")
    yield server
    server.stop()


LONG_DOMAIN = ".".join(["d" * 60] * 5)  # 304 octets
C = str(CANARY)

# (id, line after MAIL, {listener: [(code, enhanced), …]}); "*" = the same on both listeners
RCPT_CASES = [
    ("cr", b"RCPT TO:<alice\r@example.test>", {"*": [(500, "5.5.2")]}),
    ("bare-lf", b"RCPT TO:<ali\nce@example.test>", {"*": [(501, "5.5.4"), (500, "5.5.2")]}),
    ("nul", b"RCPT TO:<alice\x00@example.test>", {"*": [(500, "5.5.2")]}),
    ("dotdot-etc-passwd", b"RCPT TO:<../../etc/passwd@example.test>", {"*": [(501, "5.1.3")]}),
    ("slash-dotdot", b"RCPT TO:<alice/../../x@example.test>", {"*": [(501, "5.1.3")]}),
    ("quoted-dotdot", b'RCPT TO:<"../../../../etc/passwd"@example.test>', {"*": [(550, "5.1.1")]}),
    ("dotdot-domain", b"RCPT TO:<alice@../../etc>", {"*": [(501, "5.1.3")]}),
    ("dotdot-address-literal", b"RCPT TO:<postmaster@[../../etc]>", {"mx": [(554, "5.7.1")], "submission": [(250, "2.1.5")]}),
    ("shell-semicolon", b"RCPT TO:<root@example.test;sleep 5>", {"*": [(501, "5.1.3")]}),
    ("shell-backticks", b"RCPT TO:<`id`@example.test>", {"*": [(550, "5.1.1")]}),
    ("shell-backticks-space", b"RCPT TO:<`touch " + C.encode() + b"`@example.test>", {"*": [(501, "5.1.3")]}),
    ("shell-dollar-paren", b"RCPT TO:<$(touch${IFS}" + C.encode() + b")@example.test>", {"*": [(501, "5.1.3")]}),
    ("shell-quoted-dollar-paren", b'RCPT TO:<"$(touch ' + C.encode() + b')"@example.test>', {"*": [(550, "5.1.1")]}),
    ("pipe-to-program", b'RCPT TO:<"|/bin/sh -c \'touch ' + C.encode() + b'\'"@example.test>', {"*": [(550, "5.1.1")]}),
    ("local-part-64", b"RCPT TO:<" + b"l" * 64 + b"@example.test>", {"*": [(550, "5.1.1")]}),
    ("local-part-65", b"RCPT TO:<" + b"l" * 65 + b"@example.test>", {"*": [(501, "5.1.3")]}),
    ("domain-304", b"RCPT TO:<alice@" + LONG_DOMAIN.encode() + b">", {"*": [(501, "5.1.3")]}),
    ("utf8-without-smtputf8", "RCPT TO:<alïce@example.test>".encode(), {"*": [(553, "5.6.7")]}),
    ("latin1-byte", b"RCPT TO:<al\xefce@example.test>", {"*": [(500, "5.5.2")]}),
    ("notify-junk", b"RCPT TO:<alice@example.test> NOTIFY=JUNK", {"*": [(555, "5.5.4")]}),
    ("orcpt-xtext-garbage", b"RCPT TO:<alice@example.test> ORCPT=rfc822;+ZZ+G0" + b"+" * 300, {"*": [(555, "5.5.4")]}),
    ("orcpt-empty", b"RCPT TO:<alice@example.test> ORCPT=rfc822;", {"*": [(555, "5.5.4")]}),
    ("param-equals-run", b"RCPT TO:<alice@example.test> ====", {"*": [(501, "5.5.4")]}),
    ("vrfy-cr", b"VRFY alice\r@example.test", {"*": [(500, "5.5.2")]}),
]

MAIL_CASES = [
    ("cr", b"MAIL FROM:<a\rb@remote.test>", {"*": [(500, "5.5.2")]}),
    ("bare-lf", b"MAIL FROM:<a\nb@remote.test>", {"*": [(501, "5.5.4"), (500, "5.5.2")]}),
    ("nul", b"MAIL FROM:<a\x00b@remote.test>", {"*": [(500, "5.5.2")]}),
    ("cve-2020-7247-sleep", b"MAIL FROM:<;sleep 66;>", {"*": [(501, "5.1.7")]}),
    ("cve-2020-7247-exploit", b"MAIL FROM:<;for i in 0 1 2 3 4 5 6 7 8 9 a b c d;do read r;done;sh;exit 0;>",
     {"*": [(501, "5.1.7")]}),
    ("quoted-shell", b'MAIL FROM:<"$(touch ' + C.encode() + b')"@remote.test>', {"mx": [(250, "2.1.0")], "submission": [(553, "5.7.1")]}),
    ("21nails-backslashes", b"MAIL FROM:<" + b"\\" * 600 + b"@x.test>", {"*": [(501, "5.1.7")]}),
    ("21nails-quoted-backslashes-unterminated", b'MAIL FROM:<"' + b"\\" * 601 + b"@x.test>", {"*": [(501, "5.5.4")]}),
    ("unterminated-quote", b'MAIL FROM:<"a@x.test>', {"*": [(501, "5.5.4")]}),
    ("escaped-closing-quote", b'MAIL FROM:<"a\\"@x.test>', {"*": [(501, "5.5.4")]}),
    ("local-part-65", b"MAIL FROM:<" + b"l" * 65 + b"@remote.test>", {"*": [(501, "5.1.7")]}),
    ("domain-304", b"MAIL FROM:<s@" + LONG_DOMAIN.encode() + b">", {"*": [(501, "5.1.7")]}),
    ("utf8-without-smtputf8", "MAIL FROM:<sé@remote.test>".encode(), {"*": [(553, "5.6.7")]}),
    ("latin1-byte", b"MAIL FROM:<s\xe9@remote.test>", {"*": [(500, "5.5.2")]}),
    ("envid-900", b"MAIL FROM:<a@remote.test> ENVID=" + b"A" * 900, {"*": [(555, "5.5.4")]}),
    ("envid-over-line-limit", b"MAIL FROM:<a@remote.test> ENVID=" + b"A" * 1100, {"*": [(500, "5.5.6")]}),
    ("ret-junk", b"MAIL FROM:<a@remote.test> RET=JUNK", {"*": [(555, "5.5.4")]}),
    ("size-20-digits", b"MAIL FROM:<a@remote.test> SIZE=99999999999999999999", {"*": [(501, "5.5.4")]}),
    ("size-negative", b"MAIL FROM:<a@remote.test> SIZE=-1", {"*": [(501, "5.5.4")]}),
    ("param-equals-run", b"MAIL FROM:<a@remote.test> ====", {"*": [(501, "5.5.4")]}),
    ("duplicate-param", b"MAIL FROM:<a@remote.test> BODY=8BITMIME BODY=7BIT", {"*": [(501, "5.5.4")]}),
    ("helo-nul", b"EHLO evil\x00host", {"*": [(500, "5.5.2")]}),
]


def _cases(table, kind):
    for case_id, line, expected in table:
        for listener in ("mx", "submission"):
            exp = expected.get(listener, expected.get("*"))
            yield pytest.param(kind, listener, line, exp, id=f"{kind}-{listener}-{case_id}")


@pytest.mark.parametrize("kind,listener,line,expected", list(_cases(MAIL_CASES, "mail")) + list(_cases(RCPT_CASES, "rcpt")))
def test_envelope_injection(injection_server, kind, listener, line, expected):
    """The documented reply for each hostile line; the session goes on (RSET 250, QUIT 221); no file
    appears outside the data directory's mailboxes (nor /tmp canary, /etc); the log records of the
    session are whole lines with no raw CR/NUL/ESC/Unicode line breaks."""
    server = injection_server
    before = tree(server.base)
    log_start = len(log_bytes(server))
    if listener == "mx":
        s = server.raw()
        s.greet()
        sender = "sender@remote.test"
    else:
        s = raw_submission(server)
        sender = ALICE
    port = s.sock.getsockname()[1]
    if kind == "rcpt":
        s.cmd(f"MAIL FROM:<{sender}>", 250)
    s.send(line + b"\r\n")
    replies = read_replies_until(s, len(expected))
    got = [(code, lines[-1][4:9]) for code, lines in replies]
    assert got == expected, f"{line[:120]!r}: expected {expected}, got {[l for _, l in replies]}"
    s.cmd("RSET", 250, "2.0.0")
    s.cmd("QUIT", 221)
    s.close()
    wait_disconnect_logged(server, port)
    assert server.proc.poll() is None
    assert tree(server.base) - before <= {"swallow.log"}, tree(server.base) - before
    assert not CANARY.exists(), f"{CANARY} was created"
    assert set(os.listdir("/etc")) - server.etc_before == set()
    assert os.stat("/etc/passwd").st_mtime == server.passwd_stat.st_mtime
    assert_log_clean(log_bytes(server)[log_start:])


def test_accepted_traversal_shaped_addresses_stay_in_their_mailbox(make_server):
    """Addresses that are valid RFC 5321 and look like paths are accepted where the grammar allows
    them, and the message lands only in the resolved mailbox (alice via +tag, bob via +tag on 587);
    the submission AUTH= parameter (21Nails CVE-2020-28021 shape, xtext +0A/+0D) is ignored, not
    written anywhere."""
    server = start_server(make_server, submission=True)
    before = tree(server.data_dir)
    with server.raw() as s:
        s.greet()
        s.cmd('MAIL FROM:<"../../../../tmp/x"@remote.test>', 250, "2.1.0")
        s.cmd('RCPT TO:<"alice+../../../../tmp/x"@example.test>', 250, "2.1.5")
        s.cmd("RCPT TO:<alice+%2e%2e%2f%2e%2e%2fetc@example.test>", 250, "2.1.5")
        s.cmd("DATA", 354)
        s.send(b"Subject: traversal\r\n\r\nbody\r\n.\r\n")
        s.expect(250, "2.0.0")
    s = raw_submission(server)
    s.cmd(f"MAIL FROM:<{ALICE}> AUTH=alice+0A+0DX-Injected:+20yes+0A", 250, "2.1.0")
    s.cmd('RCPT TO:<"bob+../../../x"@example.test>', 250, "2.1.5")
    s.cmd("DATA", 354)
    s.send(f"From: <{ALICE}>\r\nSubject: auth param\r\n\r\nbody\r\n.\r\n".encode())
    s.expect(250, "2.0.0")
    s.cmd("QUIT", 221)
    s.close()
    new = tree(server.data_dir) - before
    allowed = re.compile(r"^(mail|mail/example\.test|mail/example\.test/(alice|bob)(/(new|cur|tmp)(/[^/]+)?)?|spool(/.*)?|queue(/.*)?)$")
    assert all(allowed.match(p) for p in new), sorted(p for p in new if not allowed.match(p))
    assert [m["Subject"] for m in server.maildir_messages(ALICE)] == ["traversal"]
    bob = server.raw_messages(BOB)
    assert len(bob) == 1 and b"X-Injected" not in bob[0], bob
    assert not (server.base / "tmp").exists() and not (server.data_dir / "tmp").exists()


def test_relayed_quoted_local_part_with_space_reaches_next_hop_intact(make_server):
    """RFC 5321 §4.1.2: `"john smith"@remote.test` and `"$(touch …)"@remote.test` (quoted strings with
    SP) are valid; a relay-network client gets 250 for them, so the queue must deliver exactly those
    addresses to the next hop (a scripted SMTP peer reached through [[routes]]), not bounce them."""
    peer = ScriptedSMTP(lambda n: "250 2.0.0 Ok: queued")
    try:
        server = start_server(make_server, smtp_extra={"relay_networks": ["127.0.0.1/32"]},
                              routes=[{"domain": "remote.test", "via": f"127.0.0.1:{peer.port}"}],
                              delivery={"retry_initial": 1, "retry_maximum": 2})
        rcpts = ['"john smith"@remote.test', f'"$(touch {CANARY})"@remote.test']
        with server.raw() as s:
            s.greet()
            s.cmd(f"MAIL FROM:<{ALICE}>", 250)
            for r in rcpts:
                s.cmd(f"RCPT TO:<{r}>", 250, "2.1.5")
            s.cmd("DATA", 354)
            s.send(b"Subject: quoted\r\n\r\nbody\r\n.\r\n")
            s.expect(250, "2.0.0")

        def outcome():
            if peer.transactions:
                return "delivered"
            if server.maildir_files(ALICE):
                return "bounced"
            return None

        result = wait_for(outcome, timeout=20, what="delivery or bounce")
        if result == "bounced":
            dsn = server.raw_messages(ALICE)[0].decode("utf-8", "replace")
            status = re.findall(r"(?m)^(Final-Recipient|Status|Diagnostic-Code):.*$", dsn)
            raise AssertionError(f"valid quoted recipients were bounced to the sender: {status}\n"
                                 f"{[l for l in server.log_text().splitlines() if 'bounced' in l]}")
        got = sorted(r for t in peer.transactions for r in t["rcpts"])
        assert got == sorted(f"<{r}>" for r in rcpts), got
        assert not CANARY.exists()
    finally:
        peer.stop()


def test_pop3_login_names_are_logged_escaped(make_server):
    """A login name is peer text: AUTH PLAIN's authcid (base64, so it may hold CR LF) and a USER
    name with U+2028 must not split or forge log records (the server's logEscaped contract)."""
    server = start_server(make_server, pop3=True)
    log_start = len(log_bytes(server))
    c = RawPOP3(server.pop3_port)
    assert c.line().startswith(b"+OK")
    forged = b"2030-01-01T00:00:00+0000 notice swallow: FORGED-RECORD"
    assert c.cmd(b"AUTH PLAIN " + auth_plain(b"mallory\r\n" + forged, b"x").encode()) == b"-ERR [AUTH] Authentication failed"
    assert c.cmd("USER mal\u2028FORGED-LINE-SEPARATOR".encode()).startswith(b"+OK")
    assert c.cmd(b"PASS x") == b"-ERR [AUTH] Authentication failed"
    assert c.cmd(b"QUIT").startswith(b"+OK")
    port = c.sock.getsockname()[1]
    c.close()
    wait_disconnect_logged(server, port)
    assert_log_clean(log_bytes(server)[log_start:], markers=(forged, b"FORGED"))


def test_smtp_helo_and_login_names_are_logged_escaped(make_server):
    server = start_server(make_server, submission=True)
    log_start = len(log_bytes(server))
    forged = b"2030-01-01T00:00:00+0000 notice swallow: FORGED-RECORD"
    s = server.raw()
    s.expect(220)
    s.cmd("EHLO evil\u2028FORGED\u0085host", 250)
    s.cmd("QUIT", 221)
    s.close()
    r = raw_submission(server, user=None)
    r.cmd("AUTH PLAIN " + auth_plain(b"mallory\r\n" + forged, b"x"), 535, "5.7.8")
    r.cmd("AUTH LOGIN", 334)
    r.cmd(base64.b64encode(b"mallory\r\n" + forged).decode(), 334)
    r.cmd(base64.b64encode(b"x").decode(), 535, "5.7.8")
    r.cmd("QUIT", 221)
    port = r.sock.getsockname()[1]
    r.close()
    wait_disconnect_logged(server, port)
    assert_log_clean(log_bytes(server)[log_start:], markers=(forged, b"FORGED"))


def test_accepted_log_record_escapes_addresses(make_server):
    """SMTPUTF8 addresses may hold U+2028, U+2029 and U+0085 (NEL); the 'accepted' record names
    sender and recipients, so they must be escaped like every other peer string (logEscaped)."""
    server = start_server(make_server)
    log_start = len(log_bytes(server))
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<a\u2028FORGED\u0085b\u2029c@remote.test> SMTPUTF8", 250)
        s.cmd(f"RCPT TO:<{ALICE}>", 250)
        s.cmd("DATA", 354)
        s.send(b"Subject: separators\r\n\r\nbody\r\n.\r\n")
        s.expect(250, "2.0.0")
        port = s.sock.getsockname()[1]
    wait_disconnect_logged(server, port)
    assert_log_clean(log_bytes(server)[log_start:], markers=(b"FORGED",))


# --------------------------------------------------------------------------------------------------
# 4. brute force and enumeration


def pop_login(server: SwallowServer, user: str, password: str) -> bytes:
    c = poplib.POP3(server.host, server.pop3_port, timeout=IO_TIMEOUT)
    try:
        c.user(user)
        answer = c.pass_(password)
        c.quit()
        return answer
    except poplib.error_proto as e:
        try:
            c.quit()
        except (poplib.error_proto, OSError):
            pass
        return e.args[0]


def test_pop3_throttling_per_account_and_per_ip(make_server):
    """docs/pop3.md: past max_failures_per_account failures on an account every login to it fails, past
    max_failures_per_ip from an address every login from it fails — with the very answer of a wrong
    password (`-ERR [AUTH] Authentication failed`), also for the right password, any case of the
    name, and over STLS."""
    server = start_server(make_server, pop3=True, auth={"max_failures_per_account": 3, "max_failures_per_ip": 8})
    refused = b"-ERR [AUTH] Authentication failed"
    for _ in range(3):
        assert pop_login(server, ALICE, "wrong") == refused
    assert pop_login(server, ALICE, PASSWORD) == refused  # account throttled
    assert pop_login(server, "ALICE@Example.TEST", PASSWORD) == refused
    c = poplib.POP3(server.host, server.pop3_port, timeout=IO_TIMEOUT)
    c.stls(TLS)
    c.user(ALICE)
    with pytest.raises(poplib.error_proto) as err:
        c.pass_(PASSWORD)
    assert err.value.args[0] == refused
    c.quit()
    assert pop_login(server, BOB, PASSWORD).startswith(b"+OK")  # another account is not affected
    # 6 failures from this address so far (3 + the 3 refusals); two more reach the per-IP limit
    for _ in range(2):
        assert pop_login(server, "nobody@example.test", "wrong") == refused
    assert pop_login(server, BOB, PASSWORD) == refused  # now every account, from this address


def test_auth_throttling_is_shared_between_pop3_and_smtp(make_server):
    """Failures count once per server, whatever the protocol: POP3 failures throttle the account on
    587 (`454 4.7.0`), and then the client address (`421 4.7.0` and close); 587 failures throttle
    the account on POP3."""
    server = start_server(make_server, pop3=True, submission=True,
                          auth={"max_failures_per_account": 3, "max_failures_per_ip": 9})
    for _ in range(3):
        assert pop_login(server, ALICE, "wrong") == b"-ERR [AUTH] Authentication failed"
    r = raw_submission(server, user=None)
    r.cmd(f"AUTH PLAIN {auth_plain(ALICE, PASSWORD)}", 454, "4.7.0")  # 4 failures from here
    for _ in range(3):
        r.cmd(f"AUTH PLAIN {auth_plain(BOB, 'wrong')}", 535, "5.7.8")  # 7
    r.close()
    assert pop_login(server, BOB, PASSWORD) == b"-ERR [AUTH] Authentication failed"  # bob throttled via 587; 8
    assert pop_login(server, "nobody@example.test", "x") == b"-ERR [AUTH] Authentication failed"  # 9
    r = raw_submission(server, user=None)
    r.send(f"AUTH PLAIN {auth_plain('carol@example.test', 'x')}\r\n")
    r.expect(421, "4.7.0")
    r.close()


def test_smtp_auth_throttle_holds_across_mechanisms_and_case(make_server):
    """After max_failures_per_account PLAIN failures the account is refused `454 4.7.0` with the right
    password through LOGIN, through PLAIN with another spelling of the name, and through SCRAM-SHA-256
    (at the client-first message); another account still logs in."""
    server = start_server(make_server, submission=True, auth={"max_failures_per_account": 3, "max_failures_per_ip": 100})
    r = raw_submission(server, user=None)
    for _ in range(3):
        r.cmd(f"AUTH PLAIN {auth_plain(ALICE, 'wrong')}", 535, "5.7.8")
    r.cmd("AUTH LOGIN", 334)
    r.cmd(base64.b64encode(ALICE.encode()).decode(), 334)
    r.cmd(base64.b64encode(PASSWORD.encode()).decode(), 454, "4.7.0")
    r.cmd(f"AUTH PLAIN {auth_plain('ALICE@Example.Test', PASSWORD)}", 454, "4.7.0")
    first = base64.b64encode(f"n,,n={ALICE},r=abcdefghijklmnop".encode()).decode()
    r.cmd(f"AUTH SCRAM-SHA-256 {first}", 454, "4.7.0")
    r.cmd(f"AUTH PLAIN {auth_plain(BOB, PASSWORD)}", 235, "2.7.0")
    r.cmd("QUIT", 221)
    r.close()
    with smtplib.SMTP(server.host, server.sub_port, timeout=IO_TIMEOUT) as c:  # an ordinary client sees the same
        c.ehlo("client.example.net")
        c.starttls(context=TLS)
        c.ehlo("client.example.net")
        with pytest.raises(smtplib.SMTPAuthenticationError) as err:
            c.login(ALICE, PASSWORD)
        assert err.value.smtp_code == 454 and err.value.smtp_error.startswith(b"4.7.0"), err.value


def test_throttled_address_cannot_reset_the_throttle_by_spraying_user_names(make_server):
    """Once an address is throttled, 'every login from there fails until the window passes'
    (docs/pop3.md). Refused logins are cheap for the attacker then (no hash work), and each one still
    records a failure under a new `user:<name>` key; the failure table must not forget the address's
    own failures when it fills up with sprayed names. The table's capacity is set to 1,000
    (`auth.max_tracked_keys`; 100,000 by default) so that 3,000 sprayed names fill it three times
    over in a few seconds: the eviction is the same code at any capacity."""
    server = start_server(make_server, pop3=True, auth={"max_failures_per_ip": 5, "max_failures_per_account": 5,
                                                        "max_tracked_keys": 1000})
    refused = b"-ERR [AUTH] Authentication failed\r\n"
    c = socket.create_connection(("127.0.0.1", server.pop3_port), timeout=60)
    f = c.makefile("rb")
    assert f.readline().startswith(b"+OK")
    for _ in range(5):
        c.sendall(b"AUTH PLAIN " + auth_plain(ALICE, "wrong").encode() + b"\r\n")
        assert f.readline() == refused
    c.sendall(b"AUTH PLAIN " + auth_plain(BOB, PASSWORD).encode() + b"\r\n")
    assert f.readline() == refused  # the address is throttled
    n = 3_000
    spray = b"".join(b"AUTH PLAIN " + auth_plain(b"spray%d@example.test" % i, b"x").encode() + b"\r\n" for i in range(n))
    writer = threading.Thread(target=c.sendall, args=(spray,), daemon=True)
    t0 = time.monotonic()
    writer.start()
    for i in range(n):
        assert f.readline() == refused, i
    writer.join(60)
    report(f"{n} sprayed refused logins took {time.monotonic() - t0:.1f} s")
    c.sendall(b"AUTH PLAIN " + auth_plain(BOB, PASSWORD).encode() + b"\r\n")
    answer = f.readline()
    c.close()
    assert answer == refused, f"after spraying {n} user names from a throttled address, bob's login answered {answer!r}"


# Timing comparisons (known vs unknown user). Samples are taken in adjacent pairs, the order inside a
# pair alternating (known first, then unknown first), so load, CPU frequency and cache state affect
# both kinds alike; the estimate is the per-pair ratio unknown/known, summarised by its median (within
# TIMING_TOLERANCE) and by its 25 %-trimmed mean (within TRIMMED_TOLERANCE; both in log space, i.e.
# geometric). A 20 % difference fails both. Measured on a loaded 2-core machine (load average 4–10)
# the paired median stayed within about ±3 % of 1 (unpaired medians of the same data: up to ±10 %);
# overloaded on purpose (two extra busy loops, hash times ×3, so only ~45 pairs in the time budget)
# the trimmed mean once reached 0.883, hence its slightly wider bound, still short of 1.2.
TIMING_TOLERANCE = 1.10
TRIMMED_TOLERANCE = 1.15


def paired_timings(attempt, *, max_pairs: int, min_pairs: int, budget: float, warmup: int = 3,
                   before_pair=None) -> list[tuple[float, float]]:
    """(known, unknown) durations from `attempt(kind)` (which returns seconds), in adjacent pairs whose
    order alternates (`before_pair()`, untimed, runs before each); stops after `max_pairs` or `budget`
    seconds, and fails with fewer than `min_pairs`."""
    for _ in range(warmup):  # page cache, SQLite statements, allocator
        attempt("known")
        attempt("unknown")
    pairs: list[tuple[float, float]] = []
    deadline = time.monotonic() + budget
    while len(pairs) < max_pairs and time.monotonic() < deadline:
        if before_pair is not None:
            before_pair()
        if len(pairs) % 2 == 0:
            k = attempt("known")
            u = attempt("unknown")
        else:
            u = attempt("unknown")
            k = attempt("known")
        pairs.append((k, u))
    assert len(pairs) >= min_pairs, f"only {len(pairs)} timing pairs in {budget} s (at least {min_pairs} needed)"
    return pairs


def trimmed_mean(values: list[float], fraction: float = 0.25) -> float:
    xs = sorted(values)
    k = int(len(xs) * fraction)
    return statistics.fmean(xs[k:len(xs) - k])


def assert_same_timing(pairs: list[tuple[float, float]], what: str, unit: float, unit_name: str) -> None:
    """The paired ratio unknown/known: its median within 1/TIMING_TOLERANCE … TIMING_TOLERANCE, its
    trimmed mean within 1/TRIMMED_TOLERANCE … TRIMMED_TOLERANCE."""
    logs = [math.log(u / k) for k, u in pairs]
    paired_median = math.exp(statistics.median(logs))
    paired_trimmed = math.exp(trimmed_mean(logs))
    known = statistics.median(k for k, _ in pairs)
    unknown = statistics.median(u for _, u in pairs)
    summary = (f"{what}: {len(pairs)} pairs; median known {known / unit:.3f} {unit_name}, unknown {unknown / unit:.3f} "
               f"{unit_name}; paired ratio unknown/known: median {paired_median:.3f}, trimmed mean {paired_trimmed:.3f}")
    report(summary)
    for name, ratio, tolerance in (("median", paired_median, TIMING_TOLERANCE),
                                   ("trimmed mean", paired_trimmed, TRIMMED_TOLERANCE)):
        assert 1 / tolerance <= ratio <= tolerance, (
            f"unknown and known users take measurably different times ({name} of the paired ratio {ratio:.3f}, "
            f"allowed {1 / tolerance:.3f}…{tolerance:.3f}): {summary}")


@pytest.mark.parametrize("method", ["smtp-plain", "smtp-login", "pop3-user-pass", "pop3-auth-plain"])
def test_wrong_password_and_unknown_user_look_the_same(make_server, method):
    """Byte-identical refusal, and the same time (failure delay 0 so the password hash work is what is
    compared): up to 150 interleaved pairs (at most 15 s), paired ratio unknown/known within
    TIMING_TOLERANCE by median and by trimmed mean (see assert_same_timing)."""
    server = start_server(make_server, submission=method.startswith("smtp"), pop3=method.startswith("pop3"),
                          smtp_extra={"max_errors": 100000})  # each refusal counts as an SMTP error
    answers: dict[str, set] = {"known": set(), "unknown": set()}
    users = {"known": ALICE, "unknown": "nobody@example.test"}
    if method.startswith("smtp"):
        r = raw_submission(server, user=None)

        def attempt(kind):
            user = users[kind]
            if method == "smtp-plain":
                r.send(f"AUTH PLAIN {auth_plain(user, 'wrong password')}\r\n")
                t0 = time.perf_counter()
                reply = r.read_reply()
            else:
                r.cmd("AUTH LOGIN", 334)
                r.cmd(base64.b64encode(user.encode()).decode(), 334)
                r.send(base64.b64encode(b"wrong password").decode() + "\r\n")
                t0 = time.perf_counter()
                reply = r.read_reply()
            elapsed = time.perf_counter() - t0
            assert reply is not None, f"connection closed after {kind} {user}"
            answers[kind].add("\n".join(reply[1]))
            return elapsed
    else:
        c = RawPOP3(server.pop3_port)
        assert c.line().startswith(b"+OK")

        def attempt(kind):
            user = users[kind]
            if method == "pop3-user-pass":
                assert c.cmd(b"USER " + user.encode()).startswith(b"+OK")
                c.sock.sendall(b"PASS wrong password\r\n")
            else:
                c.sock.sendall(b"AUTH PLAIN " + auth_plain(user, "wrong password").encode() + b"\r\n")
            t0 = time.perf_counter()
            line = c.line()
            elapsed = time.perf_counter() - t0
            answers[kind].add(line)
            return elapsed

    pairs = paired_timings(attempt, max_pairs=150, min_pairs=40, budget=15.0)
    assert len(answers["known"]) == 1 and answers["known"] == answers["unknown"], answers
    assert_same_timing(pairs, f"{method} wrong password vs unknown user", 1e-3, "ms")


@pytest.mark.parametrize("listener", ["mx", "submission"])
def test_vrfy_and_expn_do_not_reveal_users(make_server, listener):
    """docs/smtp.md: VRFY → `252 2.5.0`, EXPN → `502 5.5.1`, byte for byte the same for existing users,
    unknown users, aliases and postmaster."""
    server = start_server(make_server, submission=listener == "submission")
    server.cli("alias", "add", "info@example.test", ALICE)
    if listener == "mx":
        s = server.raw()
        s.greet()
    else:
        s = raw_submission(server)
    names = ["alice", ALICE, "ALICE@EXAMPLE.TEST", "nobody", "nobody@example.test", "info@example.test", "postmaster",
             "root", "<alice@example.test>", "<nobody@example.test>"]
    vrfy = {n: tuple(s.cmd(f"VRFY {n}", 252, "2.5.0")) for n in names}
    expn = {n: tuple(s.cmd(f"EXPN {n}", 502, "5.5.1")) for n in names}
    s.cmd("QUIT", 221)
    s.close()
    assert len(set(vrfy.values())) == 1, vrfy
    assert len(set(expn.values())) == 1, expn


def test_rcpt_unknown_user_is_550_and_timing_similar(make_server):
    """`550 5.1.1` for an unknown local user, `250 2.1.5` for a known one (alice+tag); the RCPT round
    trips, up to 3,000 interleaved pairs (at most 10 s), have a paired ratio unknown/known within
    TIMING_TOLERANCE by median and by trimmed mean.

    Each pair runs in a new transaction (RSET, MAIL; untimed), so the known recipient is really added
    and the envelope does not grow. The 50 known and 50 unknown addresses used are each asked once
    before the measurement: docs/smtp.md says a cached answer is given without leaving the event loop,
    positive or negative, and that path must not depend on whether the user exists (a negative answer
    that is not cached, a tarpit, an extra lookup for unknown users all fail). A first lookup differs
    by design: a user is found one SQLite query earlier than a miss is established (measured ≈10–15 %
    either way, depending on the address shape), which the 550 reveals anyway."""
    server = start_server(make_server, smtp_extra={"max_errors": 1000000})
    replies: dict[str, set] = {"known": set(), "unknown": set()}
    addresses = {"known": [f"alice+t{i}@example.test" for i in range(50)],
                 "unknown": [f"nobody{i}@example.test" for i in range(50)]}
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        for known, unknown in zip(addresses["known"], addresses["unknown"]):  # fill the cache
            s.cmd(f"RCPT TO:<{known}>", 250, "2.1.5")
            s.cmd(f"RCPT TO:<{unknown}>", 550, "5.1.1")
        counter = {"known": 0, "unknown": 0}

        def new_transaction():
            s.send("RSET\r\nMAIL FROM:<sender@remote.test>\r\n")
            s.expect(250)
            s.expect(250)

        def attempt(kind):
            command = f"RCPT TO:<{addresses[kind][counter[kind] % 50]}>\r\n".encode()
            counter[kind] += 1
            t0 = time.perf_counter()
            s.sock.sendall(command)
            line = s.read_line()
            elapsed = time.perf_counter() - t0
            replies[kind].add(line)
            return elapsed

        pairs = paired_timings(attempt, max_pairs=3000, min_pairs=500, budget=10.0, before_pair=new_transaction)
        assert s.buf == b"", s.buf
        s.cmd("QUIT", 221)
    assert replies == {"known": {b"250 2.1.5 Ok"}, "unknown": {b"550 5.1.1 Recipient address rejected: User unknown"}}, replies
    assert_same_timing(pairs, "RCPT known vs unknown (cached answers)", 1e-6, "µs")
