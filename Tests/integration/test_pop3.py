"""POP3 end to end over loopback: mail sent over SMTP to the real `swallow` binary, fetched back with
Python's poplib, raw sockets, fetchmail and mpop (Debian packages; a missing tool fails in CI and skips
elsewhere).

Figures for the closing note (RETR throughput on 10,000 messages, resident memory with 100 sessions) are
printed (run with `-s`) and appended to `$SWALLOW_POP3_BENCH` when that is set.
"""

from __future__ import annotations

import base64
import os
import poplib
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HOSTNAME, IO_TIMEOUT, free_port, insecure_tls_context, require_tool, rss_kib

PASSWORD = "correct horse battery staple"
ALICE = "alice@example.test"
BOB = "bob@example.test"

poplib._MAXLINE = 1 << 20  # long header lines are fine


# --------------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture
def make_pop_server(make_server):
    """Factory: a started server with [pop3] (STLS) and [pop3s] on free ports and a short failure delay."""

    def factory(*, pop3_extra: dict | None = None, auth_extra: dict | None = None, **config):
        pop3_port, pop3s_port = free_port(), free_port()
        pop3 = {"listen": [f"127.0.0.1:{pop3_port}"], "allow_plaintext_auth": False, "autologout": 600}
        pop3.update(pop3_extra or {})
        auth = {"failure_delay_ms": 50, "max_failures_per_ip": 50, "max_failures_per_account": 50, "failure_window": 900}
        auth.update(auth_extra or {})
        start = config.pop("start", True)
        server = make_server(pop3=pop3, pop3s={"listen": [f"127.0.0.1:{pop3s_port}"]}, auth=auth, start=False, **config)
        server.pop3_port = pop3_port
        server.pop3s_port = pop3s_port
        if start:
            start_pop(server)
        return server

    return factory


def start_pop(server) -> None:
    server.start()
    wait_port(server.host, server.pop3_port)
    wait_port(server.host, server.pop3s_port)


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {host}:{port}")
            time.sleep(0.05)


@pytest.fixture
def pop_server(make_pop_server):
    return make_pop_server()


def message(n: int, to: str = ALICE, extra: str = "") -> bytes:
    """A message with the awkward lines: leading dots, a lone dot, an empty line, 8-bit-free text."""
    return (
        f"From: Sender <sender@example.net>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: message {n}\r\n"
        f"Message-ID: <m{n}.{time.time_ns()}@example.net>\r\n"
        f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        f"\r\n"
        f"line one of {n}\r\n"
        f".leading dot\r\n"
        f"..two leading dots\r\n"
        f".\r\n"
        f"\r\n"
        f"{extra}"
        f"last line\r\n"
    ).encode()


def deliver(server, raw: bytes, to: str = ALICE) -> None:
    with server.smtp() as smtp:
        smtp.sendmail("sender@example.net", [to], raw)


def pop(server, user: str = ALICE, password: str = PASSWORD) -> poplib.POP3:
    """STLS, then USER/PASS."""
    client = poplib.POP3(server.host, server.pop3_port, timeout=IO_TIMEOUT)
    client.stls(insecure_tls_context())
    client.user(user)
    client.pass_(password)
    return client


def pop_ssl(server, user: str = ALICE, password: str = PASSWORD) -> poplib.POP3_SSL:
    client = poplib.POP3_SSL(server.host, server.pop3s_port, timeout=IO_TIMEOUT, context=insecure_tls_context())
    client.user(user)
    client.pass_(password)
    return client


def joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


def retr(client: poplib.POP3, n: int) -> tuple[bytes, int]:
    _, lines, octets = client.retr(n)
    return joined(lines), octets


def list_sizes(client: poplib.POP3) -> dict[int, int]:
    _, lines, _ = client.list()
    return {int(a): int(b) for a, b in (line.split() for line in lines)}


def uidls(client: poplib.POP3) -> dict[int, bytes]:
    _, lines, _ = client.uidl()
    return {int(a): b for a, b in (line.split() for line in lines)}


def assert_is_delivered_copy(retrieved: bytes, sent: bytes) -> None:
    """The server adds trace headers on top; everything the sender wrote follows unchanged."""
    assert retrieved.endswith(sent), f"content changed:\n{retrieved!r}\nvs\n{sent!r}"
    trace = retrieved[: len(retrieved) - len(sent)]
    assert trace.startswith(b"Return-Path: <sender@example.net>\r\n")
    assert b"\r\nReceived: from client.example.net" in trace


def capa(client: poplib.POP3) -> dict[str, list[str]]:
    return client.capa()


def quit_quietly(client: poplib.POP3) -> None:
    try:
        client.quit()
    except (poplib.error_proto, OSError):
        pass


def drop(client: poplib.POP3) -> None:
    """Close the socket without QUIT."""
    try:
        client.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    client.sock.close()


def wait_unlocked(server, user: str = ALICE, timeout: float = 5.0) -> poplib.POP3:
    """Log in as soon as the previous (dropped) session released the maildrop."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return pop(server, user)
        except poplib.error_proto as e:
            if b"[IN-USE]" not in e.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def report(line: str) -> None:
    print(f"\n[pop3 figures] {line}")
    out = os.environ.get("SWALLOW_POP3_BENCH")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


# --------------------------------------------------------------------------------------------------
# poplib


def test_capa_before_and_after_stls(pop_server):
    client = poplib.POP3(pop_server.host, pop_server.pop3_port, timeout=IO_TIMEOUT)
    assert client.getwelcome().startswith(b"+OK")
    before = capa(client)
    for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"):
        assert cap in before, before
    assert before["EXPIRE"] == ["NEVER"]
    assert "SASL" not in before, "no SASL mechanism may be offered before TLS"
    client.stls(insecure_tls_context())
    after = capa(client)
    assert "STLS" not in after, after
    assert after["SASL"] == ["PLAIN"]
    assert "USER" in after
    with pytest.raises(poplib.error_proto, match=r"-ERR"):
        client._shortcmd("STLS")
    quit_quietly(client)


def test_plaintext_user_refused_before_stls(pop_server):
    client = poplib.POP3(pop_server.host, pop_server.pop3_port, timeout=IO_TIMEOUT)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[AUTH\]"):
        client.user(ALICE)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[AUTH\]"):
        client.pass_(PASSWORD)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[AUTH\]"):
        client._shortcmd("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode())
    quit_quietly(client)


def test_plaintext_allowed_when_configured(make_pop_server):
    server = make_pop_server(pop3_extra={"allow_plaintext_auth": True})
    client = poplib.POP3(server.host, server.pop3_port, timeout=IO_TIMEOUT)
    assert capa(client)["SASL"] == ["PLAIN"]
    client.user(ALICE)
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()


def test_stat_list_uidl_top_retr_round_trip(pop_server):
    sent = [message(1), message(2, extra="x" * 900 + "\r\n"), message(3)]
    for raw in sent:
        deliver(pop_server, raw)
    client = pop(pop_server)
    count, total = client.stat()
    assert count == 3
    sizes = list_sizes(client)
    assert sorted(sizes) == [1, 2, 3]
    assert total == sum(sizes.values())
    ids = uidls(client)
    assert len(set(ids.values())) == 3
    for n in (1, 2, 3):
        assert client._shortcmd(f"LIST {n}") == f"+OK {n} {sizes[n]}".encode()
        assert client._shortcmd(f"UIDL {n}") == b"+OK %d %s" % (n, ids[n])
        body, octets = retr(client, n)
        assert_is_delivered_copy(body, sent[n - 1])
        assert octets == sizes[n] == len(body), "LIST size = octets sent (CRLF, unstuffed)"
    # TOP: the header, the blank line, then n body lines (dot-unstuffed by poplib).
    _, lines, _ = client.top(1, 0)
    assert lines[-1] == b"" and b"Subject: message 1" in lines
    _, lines2, _ = client.top(1, 3)
    assert lines2[len(lines):] == [b"line one of 1", b".leading dot", b"..two leading dots"]
    _, lines4, _ = client.top(1, 4)
    assert lines4[-1] == b"."
    _, all_lines, _ = client.top(1, 1000)
    assert joined(all_lines) == retr(client, 1)[0]
    for bad in ("RETR 0", "RETR 4", "LIST 9", "TOP 4 1", "DELE 99"):
        with pytest.raises(poplib.error_proto, match=r"-ERR"):
            client._shortcmd(bad)
    assert client.noop().startswith(b"+OK")
    client.quit()


def test_dele_and_quit_removes(pop_server):
    for i in range(3):
        deliver(pop_server, message(i))
    client = pop(pop_server)
    ids = uidls(client)
    client.dele(2)
    assert client.stat()[0] == 2
    with pytest.raises(poplib.error_proto, match=r"-ERR"):
        client.retr(2)
    client.quit()
    client = pop(pop_server)
    assert client.stat()[0] == 2
    assert sorted(uidls(client).values()) == sorted([ids[1], ids[3]])
    client.quit()
    assert len(pop_server.raw_messages(ALICE)) == 2


def test_dele_then_dropped_connection_deletes_nothing(pop_server):
    for i in range(2):
        deliver(pop_server, message(i))
    client = pop(pop_server)
    client.dele(1)
    client.dele(2)
    drop(client)
    client = wait_unlocked(pop_server)
    assert client.stat()[0] == 2
    client.quit()
    assert len(pop_server.raw_messages(ALICE)) == 2


def test_rset_undeletes(pop_server):
    for i in range(2):
        deliver(pop_server, message(i))
    client = pop(pop_server)
    client.dele(1)
    assert client.stat()[0] == 1
    assert client.rset().startswith(b"+OK")
    assert client.stat()[0] == 2
    client.quit()
    client = pop(pop_server)
    assert client.stat()[0] == 2
    client.quit()


def test_pop3s(pop_server):
    raw = message(1)
    deliver(pop_server, raw)
    client = pop_ssl(pop_server)
    assert "STLS" not in capa(client)
    body, octets = retr(client, 1)
    assert_is_delivered_copy(body, raw)
    client.dele(1)
    client.quit()
    assert pop_server.raw_messages(ALICE) == []


def test_wrong_password_same_answer_for_unknown_user(pop_server):
    answers = []
    for user, password in ((ALICE, "wrong"), ("nobody@example.test", "wrong"), ("nobody@elsewhere.example", PASSWORD)):
        client = poplib.POP3(pop_server.host, pop_server.pop3_port, timeout=IO_TIMEOUT)
        client.stls(insecure_tls_context())
        client.user(user)  # USER never reveals whether the user exists
        with pytest.raises(poplib.error_proto) as err:
            client.pass_(password)
        answers.append(err.value.args[0])
        quit_quietly(client)
    assert answers[0].startswith(b"-ERR [AUTH]")
    assert len(set(answers)) == 1, answers


def test_failure_delay_applies(make_pop_server):
    server = make_pop_server(auth_extra={"failure_delay_ms": 700})
    client = poplib.POP3(server.host, server.pop3_port, timeout=IO_TIMEOUT)
    client.stls(insecure_tls_context())
    client.user(ALICE)
    started = time.monotonic()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.pass_("wrong")
    assert time.monotonic() - started >= 0.6
    client.user(ALICE)
    client.pass_(PASSWORD)  # the same connection may try again
    client.quit()


def test_alias_cannot_log_in(pop_server):
    pop_server.cli("alias", "add", "info@example.test", ALICE)
    raw = message(1, to="info@example.test")
    deliver(pop_server, raw, to="info@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        pop(pop_server, user="info@example.test")
    client = pop(pop_server)
    assert client.stat()[0] == 1
    client.quit()


def test_login_name_is_case_insensitive_full_address(pop_server):
    client = pop(pop_server, user="Alice@Example.TEST")
    client.quit()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        pop(pop_server, user="alice")


def test_second_concurrent_login_is_in_use(pop_server):
    first = pop(pop_server)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[IN-USE\]"):
        pop(pop_server)
    other = pop(pop_server, user=BOB)  # another maildrop is not affected
    other.quit()
    first.quit()
    pop(pop_server).quit()


def test_mail_arriving_during_a_session_appears_next_session(pop_server):
    deliver(pop_server, message(1))
    client = pop(pop_server)
    assert client.stat()[0] == 1
    deliver(pop_server, message(2))
    assert client.stat()[0] == 1
    assert len(uidls(client)) == 1
    with pytest.raises(poplib.error_proto):
        client.retr(2)
    client.quit()
    client = pop(pop_server)
    assert client.stat()[0] == 2
    client.quit()


def test_uidl_stable_across_sessions_and_restart_and_leave_on_server(pop_server):
    sent = [message(i) for i in range(3)]
    for raw in sent:
        deliver(pop_server, raw)
    client = pop(pop_server)
    first = uidls(client)
    for n in (1, 2, 3):
        retr(client, n)
    client.quit()
    # Retrieved messages were marked seen (moved to cur/ with S) and stay on the server.
    cur = [p.name for p in pop_server.maildir_files(ALICE, "cur")]
    assert len(cur) == 3 and all(name.endswith(":2,S") for name in cur), cur
    assert pop_server.maildir_files(ALICE, "new") == []
    client = pop(pop_server)
    assert uidls(client) == first
    for n in (1, 2, 3):
        assert_is_delivered_copy(retr(client, n)[0], sent[n - 1])
    client.quit()
    pop_server.stop()
    start_pop(pop_server)
    deliver(pop_server, message(9))
    client = pop(pop_server)
    after = uidls(client)
    assert {n: after[n] for n in (1, 2, 3)} == first
    assert after[4] not in first.values()
    # Deleting one never lets its UIDL come back for another message.
    client.dele(1)
    client.quit()
    deliver(pop_server, message(10))
    client = pop(pop_server)
    assert first[1] not in uidls(client).values()
    client.quit()
    for uid in after.values():
        assert re.fullmatch(rb"[\x21-\x7e]{1,70}", uid)


def test_auth_plain_initial_response_and_continuation(pop_server):
    token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    client = poplib.POP3(pop_server.host, pop_server.pop3_port, timeout=IO_TIMEOUT)
    client.stls(insecure_tls_context())
    assert client._shortcmd("AUTH PLAIN " + token).startswith(b"+OK")
    client.quit()
    client = poplib.POP3(pop_server.host, pop_server.pop3_port, timeout=IO_TIMEOUT)
    client.stls(insecure_tls_context())
    client._putcmd("AUTH PLAIN")
    line, _ = client._getline()
    assert line == b"+ ", line  # RFC 5034 §4: "+" SP, not "+OK"
    client._putcmd(token)
    assert client._getresp().startswith(b"+OK")
    client.quit()
    client = poplib.POP3(pop_server.host, pop_server.pop3_port, timeout=IO_TIMEOUT)
    client.stls(insecure_tls_context())
    client._putcmd("AUTH PLAIN")
    assert client._getline()[0] == b"+ "
    client._putcmd("*")
    with pytest.raises(poplib.error_proto, match=r"-ERR"):
        client._getresp()
    bad = base64.b64encode(f"\0{ALICE}\0wrong".encode()).decode()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client._shortcmd("AUTH PLAIN " + bad)
    client.quit()


def test_stls_injection_is_discarded(pop_server):
    """`STLS\\r\\nCAPA\\r\\n` in one segment: the CAPA must not be answered inside TLS (CVE-2011-0411 class).

    docs/pop3.md: plaintext pipelined after STLS is discarded and the session starts over inside TLS.
    That is the only passing behaviour: an answer to the injected CAPA, a dropped connection, a failed
    handshake or a dead server all fail."""
    deliver(pop_server, message(1))
    injected = b"CAPA\r\n"
    sock = socket.create_connection((pop_server.host, pop_server.pop3_port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, "closed before the greeting"
        buf += chunk
    assert buf.startswith(b"+OK")
    sock.sendall(b"STLS\r\n" + injected)
    buf = b""
    while b"\r\n" not in buf:
        chunk = sock.recv(1)  # one byte at a time: nothing after the +OK may be consumed as plaintext
        assert chunk, "closed before answering STLS"
        buf += chunk
    assert buf == b"+OK Begin TLS negotiation\r\n", buf
    try:
        tls = insecure_tls_context().wrap_socket(sock, server_hostname=HOSTNAME)
    except (ssl.SSLError, OSError) as exc:
        raise AssertionError(f"TLS handshake after STLS failed (the injected bytes must be discarded, not "
                             f"break the session): {exc!r}\n{pop_server.log_tail()}")
    tls.settimeout(1.5)
    try:
        early = tls.recv(4096)
    except (socket.timeout, TimeoutError):
        early = None  # the only good outcome: nothing unasked, connection open
    except (ssl.SSLError, OSError) as exc:
        raise AssertionError(f"connection broken right after the STLS handshake: {exc!r}\n{pop_server.log_tail()}")
    assert early is None, (f"the pipelined plaintext CAPA was executed: {early!r}" if early
                           else f"closed right after the STLS handshake\n{pop_server.log_tail()}")
    tls.settimeout(IO_TIMEOUT)
    tls.sendall(b"CAPA\r\n")
    reply = b""
    while not reply.endswith(b"\r\n.\r\n"):
        chunk = tls.recv(4096)
        assert chunk, f"closed inside the CAPA answer: {reply!r}"
        reply += chunk
    assert reply.startswith(b"+OK") and b"STLS" not in reply
    assert reply.count(b"+OK") == 1
    assert b"\r\nSASL PLAIN\r\n" in reply, reply  # login is allowed now: the session is the TLS one
    # the session works inside TLS
    f = tls.makefile("rb")
    tls.sendall(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nQUIT\r\n".encode())
    answers = [f.readline() for _ in range(4)]
    assert [a[:3] for a in answers] == [b"+OK"] * 4, answers
    assert answers[2].startswith(b"+OK 1 "), answers
    assert f.readline() == b"", "the server must close after QUIT"
    f.close()
    tls.close()
    wanted = f"discarding {len(injected)} plaintext bytes pipelined after STLS"
    assert wanted in pop_server.log_text(), f"no {wanted!r} in the log\n{pop_server.log_tail()}"
    # The server lives on and serves a new connection.
    assert pop_server.proc.poll() is None, f"swallow serve exited with {pop_server.proc.returncode}\n{pop_server.log_tail()}"
    client = pop(pop_server)
    assert client.stat()[0] == 1
    client.quit()


def test_pipelined_commands_in_one_segment(pop_server):
    deliver(pop_server, message(1))
    client = pop(pop_server)
    client.sock.sendall(b"STAT\r\nLIST\r\nUIDL 1\r\nNOOP\r\n")
    assert client._getresp().startswith(b"+OK 1 ")
    _, lines, _ = client._getlongresp()
    assert len(lines) == 1
    assert client._getresp().startswith(b"+OK 1 ")
    assert client._getresp().startswith(b"+OK")
    client.quit()


def test_foreign_maildir_with_dovecot_names(pop_server):
    """A Maildir written by another program: Dovecot-style names in cur/ with flags, LF endings, no W=."""
    maildir = pop_server.maildir_path(ALICE)
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    contents = {
        "cur/1700000000.M100P200.oldhost,S=%d:2,S": b"From: a@x\nSubject: one\n\nbody one\n.dot line\n",
        "cur/1700000001.M101P200.oldhost,S=%d:2,FS": b"From: b@x\nSubject: two\n\nbody two\n",
        "cur/1700000002.M102P200.oldhost:2,": b"From: c@x\nSubject: three\n\nno final newline",
        "new/1700000003.plainname": b"From: d@x\r\nSubject: four\r\n\r\nalready CRLF\r\n",
    }
    expected = []
    for pattern, data in contents.items():
        name = pattern % len(data) if "%d" in pattern else pattern
        (maildir / name).write_bytes(data)
        crlf = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        expected.append(crlf if crlf.endswith(b"\r\n") else crlf + b"\r\n")
    client = pop(pop_server)
    sizes = list_sizes(client)
    assert [sizes[n] for n in (1, 2, 3, 4)] == [len(e) for e in expected]
    ids = uidls(client)
    assert ids[1] == b"1700000000.M100P200.oldhost"
    assert ids[3] == b"1700000002.M102P200.oldhost"
    for n, exp in enumerate(expected, 1):
        body, octets = retr(client, n)
        # A last line without a line end gets one on the wire, and LIST counts it.
        want = exp
        assert body == want
        assert octets == len(want)
    client.quit()
    names = sorted(p.name for p in pop_server.maildir_files(ALICE, "cur"))
    assert "1700000001.M101P200.oldhost,S=%d:2,FS" % len(contents["cur/1700000001.M101P200.oldhost,S=%d:2,FS"]) in names
    assert "1700000002.M102P200.oldhost:2,S" in names
    assert "1700000003.plainname:2,S" in names


def test_client_leaving_while_the_maildrop_opens_does_not_lock_it(pop_server):
    """A client that drops after PASS, while the maildrop is being listed, must not leave it locked
    ([IN-USE] forever). Files without W= make listing slow enough to hit that window."""
    maildir = pop_server.maildir_path(ALICE)
    write_maildir_messages(maildir, 10_000, body_lines=2)
    for p in (maildir / "new").iterdir():
        p.rename(p.with_name(p.name.split(",")[0]))  # no S=/W=: every file is read at login
    started = time.monotonic()
    pop(pop_server).quit()
    listing = time.monotonic() - started
    report(f"login to 10,000 small messages without W= in their names (every file read): {listing*1000:.0f} ms")
    sock = socket.create_connection((pop_server.host, pop_server.pop3s_port), timeout=IO_TIMEOUT)
    tls = insecure_tls_context().wrap_socket(sock, server_hostname=HOSTNAME)
    assert tls.recv(512).startswith(b"+OK")
    tls.sendall(f"USER {ALICE}\r\nPASS {PASSWORD}\r\n".encode())
    assert tls.recv(512).startswith(b"+OK")  # USER accepted; PASS being checked, then the maildrop opened
    time.sleep(min(0.3, listing / 3))
    tls.close()
    time.sleep(listing)
    client = wait_unlocked(pop_server, timeout=10 + 2 * listing)
    assert client.stat()[0] == 10_000
    client.quit()


# --------------------------------------------------------------------------------------------------
# fetchmail and mpop


def fetchmail_env(tmp: Path) -> dict:
    env = dict(os.environ)
    env["HOME"] = str(tmp)
    env["FETCHMAILHOME"] = str(tmp)
    return env


def run_fetchmail(server, tmp: Path, *extra: str, keep: bool = True) -> subprocess.CompletedProcess:
    fetchmail = require_tool("fetchmail")
    outdir = tmp / "fetched"
    outdir.mkdir(exist_ok=True)
    rc = tmp / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 protocol pop3 port {server.pop3_port} user "{ALICE}" password "{PASSWORD}"\n')
    rc.chmod(0o600)
    argv = [
        fetchmail, "-f", str(rc), "--nodetach", "--nosyslog", "--idfile", str(tmp / "fetchids"), "--pidfile", str(tmp / "pid"),
        "--sslproto", "auto", "--nosslcertck", "--uidl", "--norewrite",
        "--mda", f"/bin/sh -c 'cat > {outdir}/msg.$$'",
        "--keep" if keep else "--nokeep",
        *extra,
    ]
    return subprocess.run(argv, env=fetchmail_env(tmp), capture_output=True, text=True, timeout=120)


def fetched(tmp: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((tmp / "fetched").iterdir(), key=lambda p: p.stat().st_mtime_ns)]


def assert_lf_copy(got: bytes, sent: bytes) -> None:
    want = sent.replace(b"\r\n", b"\n")
    assert got.endswith(want), f"{got!r}\n!=\n{want!r}"


def test_fetchmail_stls_keep(pop_server, tmp_path):
    sent = [message(1), message(2)]
    for raw in sent:
        deliver(pop_server, raw)
    result = run_fetchmail(pop_server, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    got = fetched(tmp_path)
    assert len(got) == 2, result.stdout + result.stderr
    for raw in sent:
        assert any(g.endswith(raw.replace(b"\r\n", b"\n")) for g in got), (got, raw)
    # Kept on the server; with UIDLs, a second run fetches nothing new (exit 1 = no mail).
    result = run_fetchmail(pop_server, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(fetched(tmp_path)) == 2
    assert len(pop_server.raw_messages(ALICE)) == 2


def test_fetchmail_nokeep_deletes(pop_server, tmp_path):
    raw = message(1)
    deliver(pop_server, raw)
    result = run_fetchmail(pop_server, tmp_path, keep=False)
    assert result.returncode == 0, result.stdout + result.stderr
    [got] = fetched(tmp_path)
    assert_lf_copy(got, raw)
    assert pop_server.raw_messages(ALICE) == []


def test_fetchmail_refuses_without_tls_and_wrong_password(pop_server, tmp_path):
    deliver(pop_server, message(1))
    fetchmail = require_tool("fetchmail")
    rc = tmp_path / "rc"
    rc.write_text(f'poll 127.0.0.1 protocol pop3 port {pop_server.pop3_port} user "{ALICE}" password "wrong"\n')
    rc.chmod(0o600)
    result = subprocess.run(
        [fetchmail, "-f", str(rc), "--nodetach", "--nosyslog", "--sslproto", "auto", "--nosslcertck", "--keep",
         "--mda", "cat > /dev/null", "--idfile", str(tmp_path / "ids"), "--pidfile", str(tmp_path / "pid")],
        env=fetchmail_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr  # 3 = authentication failed
    assert len(pop_server.raw_messages(ALICE)) == 1


def run_mpop(server, tmp: Path, auth: str, delivery: str, *extra: str) -> subprocess.CompletedProcess:
    mpop = require_tool("mpop")
    argv = [
        mpop, f"--host={server.host}", f"--port={server.pop3_port}", "--tls=on", "--tls-starttls=on",
        "--tls-certcheck=off", f"--auth={auth}", f"--user={ALICE}", f"--passwordeval=echo '{PASSWORD}'",
        f"--delivery={delivery}", f"--uidls-file={tmp / 'uidls'}", "--keep=on", *extra,
    ]
    return subprocess.run(argv, env=fetchmail_env(tmp), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("auth", ["user", "plain"])
def test_mpop_mbox(pop_server, tmp_path, auth):
    sent = [message(1), message(2)]
    for raw in sent:
        deliver(pop_server, raw)
    mbox = tmp_path / "mbox"
    mbox.touch()
    result = run_mpop(pop_server, tmp_path, auth, f"mbox,{mbox}")
    assert result.returncode == 0, result.stdout + result.stderr
    text = mbox.read_bytes()
    # mbox: "From " lines are quoted (>From ); our messages have none, so the bodies appear verbatim.
    for raw in sent:
        assert raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1] in text
        assert b"Subject: " + raw.split(b"Subject: ")[1].split(b"\r\n")[0] in text
    assert text.count(b"\nFrom ") + text.startswith(b"From ") == 2
    assert len(pop_server.raw_messages(ALICE)) == 2


def test_mpop_maildir_only_new(pop_server, tmp_path):
    sent = [message(1), message(2)]
    for raw in sent:
        deliver(pop_server, raw)
    target = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (target / sub).mkdir(parents=True)
    result = run_mpop(pop_server, tmp_path, "user", f"maildir,{target}", "--only-new=on")
    assert result.returncode == 0, result.stdout + result.stderr
    got = [p.read_bytes() for p in (target / "new").iterdir()]
    assert len(got) == 2
    for raw in sent:
        assert any(g.endswith(raw.replace(b"\r\n", b"\n")) for g in got)
    deliver(pop_server, message(3))
    result = run_mpop(pop_server, tmp_path, "user", f"maildir,{target}", "--only-new=on")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((target / "new").iterdir())) == 3, "only the new message is fetched again (stable UIDLs)"


def test_mpop_pop3s(pop_server, tmp_path):
    raw = message(1)
    deliver(pop_server, raw)
    mbox = tmp_path / "mbox"
    mbox.touch()
    mpop = require_tool("mpop")
    result = subprocess.run(
        [mpop, f"--host={pop_server.host}", f"--port={pop_server.pop3s_port}", "--tls=on", "--tls-starttls=off",
         "--tls-certcheck=off", "--auth=user", f"--user={ALICE}", f"--passwordeval=echo '{PASSWORD}'",
         f"--delivery=mbox,{mbox}", f"--uidls-file={tmp_path / 'uidls'}", "--keep=off"],
        env=fetchmail_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"Subject: message 1" in mbox.read_bytes()
    assert pop_server.raw_messages(ALICE) == []


# --------------------------------------------------------------------------------------------------
# large maildrop and many sessions


def write_maildir_messages(maildir: Path, count: int, body_lines: int = 20) -> int:
    """Swallow-style files (LF, S= and W=) written directly; returns the total CRLF size."""
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    total = 0
    base = 1_700_000_000
    filler = "".join(f"body line {i:03d} with some text to make it look like mail.\n" for i in range(body_lines))
    for i in range(count):
        data = (
            f"Return-Path: <sender@example.net>\nFrom: sender@example.net\nTo: alice@example.test\n"
            f"Subject: bulk {i}\nMessage-ID: <bulk{i}@example.net>\n\n{filler}"
        ).encode()
        w = len(data) + data.count(b"\n")
        total += w
        name = f"{base + i}.M{i}P1Q{i}.mx.example.test,S={len(data)},W={w}"
        with open(maildir / "new" / name, "wb") as f:
            f.write(data)
    return total


def test_large_maildrop_10000_messages(pop_server):
    count = 10_000
    total = write_maildir_messages(pop_server.maildir_path(ALICE), count)
    t0 = time.monotonic()
    client = pop(pop_server)
    t_login = time.monotonic() - t0
    t0 = time.monotonic()
    assert client.stat() == (count, total)
    t_stat = time.monotonic() - t0
    t0 = time.monotonic()
    sizes = list_sizes(client)
    t_list = time.monotonic() - t0
    t0 = time.monotonic()
    ids = uidls(client)
    t_uidl = time.monotonic() - t0
    assert len(sizes) == count and len(set(ids.values())) == count
    assert t_login + t_stat + t_list + t_uidl < 10, (t_login, t_stat, t_list, t_uidl)
    # RETR everything, pipelined in batches so the figure measures the server rather than round trips.
    t0 = time.monotonic()
    received = 0
    batch = 50
    for start in range(1, count + 1, batch):
        numbers = range(start, min(count, start + batch - 1) + 1)
        client.sock.sendall(b"".join(b"RETR %d\r\n" % n for n in numbers))
        for n in numbers:
            _, lines, octets = client._getlongresp()
            assert octets == sizes[n]
            received += octets
    t_retr = time.monotonic() - t0
    # And one by one, the way most clients do it.
    t0 = time.monotonic()
    for n in range(1, 1001):
        client.retr(n)
    t_serial = time.monotonic() - t0
    rss = rss_kib(pop_server.proc.pid)
    client.quit()
    assert received == total
    report(
        f"10,000-message maildrop (avg {total // count} octets, STLS): login {t_login*1000:.0f} ms, STAT {t_stat*1000:.0f} ms, "
        f"LIST {t_list*1000:.0f} ms, UIDL {t_uidl*1000:.0f} ms"
    )
    report(
        f"RETR all 10,000 pipelined (50 per batch): {t_retr:.2f} s = {count / t_retr:.0f} messages/s, "
        f"{total / t_retr / 1e6:.2f} MB/s; RETR one at a time: {1000 / t_serial:.0f} messages/s; server VmRSS after: {rss/1024:.1f} MiB"
    )


def test_resident_memory_with_100_sessions(make_pop_server):
    sessions = 100
    users = [f"user{i:03d}@example.test" for i in range(sessions)]
    server = make_pop_server(users=(ALICE,), smtp_extra={"max_connections_per_ip": 500}, start=False)
    for user in users:
        server.add_user(user)
        write_maildir_messages(server.maildir_path(user), 20)
    start_pop(server)
    pid = server.proc.pid
    time.sleep(0.5)
    idle = rss_kib(pid)
    clients = []
    t0 = time.monotonic()
    for user in users:
        client = pop_ssl(server, user=user)
        client.stat()
        client.retr(1)
        clients.append(client)
    t_login = time.monotonic() - t0
    time.sleep(0.5)
    busy = rss_kib(pid)
    for client in clients:
        assert client.noop().startswith(b"+OK")
    for client in clients:
        client.quit()
    time.sleep(0.5)
    after = rss_kib(pid)
    report(
        f"VmRSS: idle {idle/1024:.1f} MiB, with {sessions} logged-in POP3S sessions {busy/1024:.1f} MiB "
        f"(+{(busy-idle)/sessions:.0f} KiB/session), after they quit {after/1024:.1f} MiB; {sessions} TLS logins took {t_login:.2f} s"
    )
    assert busy - idle < 200 * 1024, "more than 2 MiB per session"


def test_large_message_streams_with_bounded_memory(pop_server):
    """A 50 MB message is streamed: the server does not grow by the message size while sending it."""
    maildir = pop_server.maildir_path(ALICE)
    for sub in ("tmp", "new", "cur"):
        maildir.joinpath(sub).mkdir(parents=True, exist_ok=True)
    line = b"x" * 76 + b"\n"
    data = b"Subject: big\n\n" + line * (50 * 1024 * 1024 // len(line))
    (maildir / "new" / "1700000000.big.mx").write_bytes(data)
    client = pop(pop_server)
    idle = rss_kib(pop_server.proc.pid)
    peak = idle
    client.sock.sendall(b"RETR 1\r\n")
    first = client._getresp()
    assert first.startswith(b"+OK")
    received = 0
    sock = client.file
    t0 = time.monotonic()
    while True:
        chunk = sock.readline(1 << 20)
        if chunk == b".\r\n":
            break
        received += len(chunk)
        if received % (5 * 1024 * 1024) < 80:
            peak = max(peak, rss_kib(pop_server.proc.pid))
            time.sleep(0.05)  # a slow reader: the server must wait, not buffer
    elapsed = time.monotonic() - t0
    peak = max(peak, rss_kib(pop_server.proc.pid))
    client.quit()
    assert received == len(data) + data.count(b"\n")
    report(f"50 MB RETR: {received / elapsed / 1e6:.1f} MB/s to a slow reader; VmRSS {idle/1024:.1f} → peak {peak/1024:.1f} MiB")
    assert peak - idle < 30 * 1024, "RETR must stream, not load the message"
