"""Raw-socket protocol tests: bytes exactly as an attacker or a sloppy client would send them."""

from __future__ import annotations

import select
import socket
import ssl
import time

import pytest

from conftest import HOSTNAME, IO_TIMEOUT, RawSMTP, insecure_tls_context


# --------------------------------------------------------------------------------------------------
# basics


def test_greeting_and_basic_commands(server):
    with server.raw() as s:
        greeting = s.expect(220)
        assert greeting[0].startswith(f"220 {HOSTNAME} ESMTP") or greeting[-1].startswith(f"220 {HOSTNAME} ESMTP"), greeting
        s.cmd("MAIL FROM:<a@remote.test>", 503, "5.5.1")  # before EHLO
        ehlo = s.cmd("EHLO client.example.net", 250)
        assert ehlo[0].startswith(f"250-{HOSTNAME}"), ehlo
        keywords = {line[4:].split()[0].upper() for line in ehlo[1:]}
        for ext in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "STARTTLS"):
            assert ext in keywords, f"{ext} missing from {ehlo}"
        s.cmd("NOOP", 250, "2.0.0")
        s.cmd("RSET", 250, "2.0.0")
        s.cmd("VRFY alice", 252)
        s.cmd("HELP", 214)
        s.cmd("FROBNICATE now", 500, "5.5.2")
        s.cmd("RCPT TO:<alice@example.test>", 503, "5.5.1")  # before MAIL
        s.cmd("DATA", 503, "5.5.1")
        s.cmd("MAIL FROM:<unterminated@remote.test", 501)
        s.cmd("MAIL FROM:", 501)
        s.send("MAIL FROM:<a@remote.test> FROBNICATE=1\r\n")  # unknown parameter, RFC 5321 §4.1.1.11
        code, lines = s.read_reply()
        assert code in (501, 555), lines
        s.cmd("MAIL FROM:<a@remote.test>", 250, "2.1.0")
        s.cmd("MAIL FROM:<a@remote.test>", 503, "5.5.1")  # nested MAIL
        s.cmd("RCPT TO:<alice@example.test>", 250, "2.1.5")
        s.cmd("RCPT TO:<>", 501)
        s.cmd("RSET", 250)
        s.cmd("RCPT TO:<alice@example.test>", 503, "5.5.1")  # RSET ended the transaction
        s.cmd("QUIT", 221, "2.0.0")
        assert s.read_reply() is None, "server must close after QUIT"
    assert server.maildir_messages("alice@example.test") == []


def test_helo_works_and_is_recorded(server):
    with server.raw() as s:
        s.expect(220)
        s.cmd("HELO old.client.example", 250)
        s.cmd("MAIL FROM:<a@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        s.send("Subject: helo\r\n\r\nbody\r\n.\r\n")
        s.expect(250)
        s.cmd("QUIT", 221)
    msg = server.wait_messages("alice@example.test", 1)[0]
    received = str(msg["Received"])
    assert "old.client.example" in received and "with SMTP" in received, received


def test_pipelined_transaction_replies_in_order(server):
    with server.raw() as s:
        s.greet()
        s.send(
            "MAIL FROM:<sender@remote.test>\r\n"
            "RCPT TO:<alice@example.test>\r\n"
            "RCPT TO:<nobody@example.test>\r\n"
            "RCPT TO:<bob@example.test>\r\n"
            "RCPT TO:<someone@elsewhere.test>\r\n"
            "DATA\r\n"
        )
        s.expect(250, "2.1.0")
        s.expect(250, "2.1.5")
        s.expect(550, "5.1.1")
        s.expect(250, "2.1.5")
        s.expect(554, "5.7.1")
        s.expect(354)
        s.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")  # end of data + more commands, one write
        lines = s.expect(250, "2.0.0")
        assert "queued as" in lines[-1], lines
        s.expect(250)
        s.expect(221)
    for rcpt in ("alice@example.test", "bob@example.test"):
        assert [m["Subject"] for m in server.wait_messages(rcpt, 1)] == ["pipelined"], rcpt


def test_pipelined_two_transactions_one_write(server):
    with server.raw() as s:
        s.greet()
        s.send(
            "MAIL FROM:<s1@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
        )
        s.expect(250)
        s.expect(250)
        s.expect(354)
        s.send(
            "Subject: first\r\n\r\none\r\n.\r\n"
            "MAIL FROM:<s2@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        )
        s.expect(250, "2.0.0")
        s.expect(250)
        s.expect(250)
        s.expect(354)
        s.send("Subject: second\r\n\r\ntwo\r\n.\r\nQUIT\r\n")
        s.expect(250, "2.0.0")
        s.expect(221)
    assert [m["Subject"] for m in server.wait_messages("alice@example.test", 1)] == ["first"]
    assert [m["Subject"] for m in server.wait_messages("bob@example.test", 1)] == ["second"]


def test_data_without_valid_recipients(server):
    with server.raw() as s:
        s.greet()
        s.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n")
        s.expect(250)
        s.expect(550, "5.1.1")
        code, lines = s.read_reply()
        assert code in (503, 554), lines
        s.cmd("NOOP", 250)


def test_bytes_pipelined_after_data_are_not_content(server):
    """RFC 2920: DATA ends a pipelined group. Content sent before our 354 must not become a message."""
    with server.raw() as s:
        s.greet()
        s.send(
            "MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
            "Subject: early\r\n\r\nearly body\r\n.\r\n"
        )
        s.expect(250)
        s.expect(250)
        reply = s.read_reply()
        if reply is not None and reply[0] == 354:
            # the server discarded the early bytes and now waits for content: give it a proper one
            s.send("Subject: proper\r\n\r\nproper body\r\n.\r\nQUIT\r\n")
            rest = s.read_all_replies()
        else:
            rest = [reply] + s.read_all_replies() if reply else []
    for msg in server.maildir_messages("alice@example.test"):
        assert "early body" not in msg.get_content(), f"bytes sent before 354 were stored as content; replies {rest}"


def test_command_line_too_long(server):
    """RFC 5321 §4.5.3.1.4: 512 octets with CRLF; MAIL/RCPT may be longer for parameters, but not unbounded."""
    with server.raw() as s:
        s.greet()
        s.cmd("NOOP " + "x" * 505, 250)  # exactly 512 octets with CRLF
        s.cmd("NOOP " + "x" * 506, 500, "5.5.6")  # 513
        s.cmd("NOOP " + "x" * 595, 500, "5.5.6")  # a 600-octet command
        s.cmd("MAIL FROM:<" + "a" * 60 + "@" + "b" * 3000 + ".test>", 500, "5.5.6")
        s.cmd("NOOP", 250)  # the session goes on after the long lines were discarded
        s.cmd("MAIL FROM:<a@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("QUIT", 221)


def test_text_line_too_long_in_data(server):
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<a@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        s.send("Subject: long line\r\n\r\n" + "z" * 1200 + "\r\nshort\r\n.\r\n")
        code, lines = s.read_reply()
        assert code == 500 and lines[-1][4:].startswith("5.5.6"), lines
        s.cmd("NOOP", 250)
    assert server.maildir_messages("alice@example.test") == []


def test_error_limit_disconnects(server):
    with server.raw() as s:
        s.greet()
        replies = []
        for _ in range(40):
            try:
                s.send("BOGUS\r\n")
            except OSError:
                break
            reply = s.read_reply()
            if reply is None:
                break
            replies.append(reply)
            if reply[0] == 421:
                break
        assert replies and replies[-1][0] == 421, f"no 421 after {len(replies)} errors: {replies[-3:]}"


# --------------------------------------------------------------------------------------------------
# STARTTLS


INJECTED = "MAIL FROM:<x@y.test>\r\n"


def test_starttls_injection_is_discarded(server):
    """CVE-2011-0411 class: plaintext pipelined behind STARTTLS must never be executed in the TLS session.

    docs/smtp.md: after `220 2.0.0 Ready to start TLS` the bytes pipelined behind STARTTLS are discarded
    and logged, and the session goes on inside TLS (reset: EHLO again, no STARTTLS offered). That is the
    only passing behaviour: a plaintext reply, a dropped connection, a failed handshake or a dead server
    all fail."""
    with server.raw() as s:
        s.greet()
        s.send("STARTTLS\r\n" + INJECTED)  # one segment
        s.expect(220, "2.0.0")
        # Nothing may follow the 220 in plaintext: neither a reply to the injected MAIL nor an EOF.
        assert s.buf == b"", f"plaintext after 220: {s.buf!r}"
        readable, _, _ = select.select([s.sock], [], [], 0.5)
        if readable:
            peek = s.sock.recv(4096, socket.MSG_PEEK)
            raise AssertionError(f"after the 220 the server sent {peek!r} in plaintext"
                                 + (" (b'' = it closed the connection)" if peek == b"" else "")
                                 + f"\n{server.log_tail()}")
        try:
            s.starttls()
        except (ssl.SSLError, OSError) as exc:
            raise AssertionError(f"TLS handshake after STARTTLS failed (the injected bytes must be discarded, "
                                 f"not break the session): {exc!r}\n{server.log_tail()}")
        # If the injected MAIL had been run inside TLS, its reply would arrive unasked.
        s.sock.settimeout(0.5)
        try:
            early = s.sock.recv(4096)
        except (socket.timeout, TimeoutError):
            early = None
        assert early is None, (f"unsolicited data inside TLS: {early!r}" if early else "closed right after the handshake")
        s.sock.settimeout(IO_TIMEOUT)
        assert s.cmd("NOOP", 250, "2.0.0") == ["250 2.0.0 Ok"]
        s.cmd("MAIL FROM:<a@remote.test>", 503, "5.5.1")  # EHLO is required again after STARTTLS
        ehlo = s.cmd("EHLO client.example.net", 250)
        assert not any("STARTTLS" in line.upper() for line in ehlo), ehlo
        s.cmd("RCPT TO:<alice@example.test>", 503, "5.5.1")  # no MAIL transaction survived
        s.cmd("MAIL FROM:<a@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        s.send("Subject: after tls\r\n\r\nbody\r\n.\r\n")
        s.expect(250)
        s.cmd("QUIT", 221)
        assert s.read_reply() is None, "server must close after QUIT"
    msgs = server.wait_messages("alice@example.test", 1)
    assert [m["Subject"] for m in msgs] == ["after tls"]
    assert "x@y.test" not in msgs[0]["Return-Path"]
    # The injected bytes were received and dropped (and logged) — exactly those bytes.
    wanted = f"discarding {len(INJECTED)} plaintext bytes pipelined after STARTTLS"
    assert wanted in server.log_text(), f"no {wanted!r} in the log\n{server.log_tail()}"
    # The server lives on and serves a new connection.
    assert server.proc.poll() is None, f"swallow serve exited with {server.proc.returncode}\n{server.log_tail()}"
    with server.raw() as s:
        s.greet()
        s.cmd("QUIT", 221, "2.0.0")


def test_starttls_state_reset_and_not_offered_twice(server):
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<before@remote.test>", 250)
        s.cmd("STARTTLS", 503, "5.5.1")  # not inside a mail transaction (like Postfix)
        s.cmd("RSET", 250)
        s.cmd("STARTTLS", 220)
        s.starttls()
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3"), s.sock.version()
        s.cmd("MAIL FROM:<a@remote.test>", 503, "5.5.1")  # EHLO needed again
        s.cmd("EHLO client.example.net", 250)
        s.cmd("RCPT TO:<alice@example.test>", 503, "5.5.1")
        s.send("STARTTLS\r\n")
        code, lines = s.read_reply()
        assert code in (503, 554) and lines[-1][4:].startswith("5.5.1"), lines  # Postfix: 554 5.5.1
        s.cmd("QUIT", 221)


def test_starttls_with_argument_is_syntax_error(server):
    with server.raw() as s:
        s.greet()
        s.cmd("STARTTLS now", 501, "5.5.4")
        s.cmd("NOOP", 250)


def test_self_signed_certificate_valid_for_hostname(server):
    """The generated certificate is in <data_dir>/tls, names the hostname, and its fingerprint is logged."""
    import hashlib

    tls_dir = server.data_dir / "tls"
    pems = [p for p in tls_dir.iterdir() if p.is_file() and b"BEGIN CERTIFICATE" in p.read_bytes()]
    assert pems, f"no certificate in {tls_dir}: {list(tls_dir.iterdir())}"
    ctx = ssl.create_default_context(cafile=str(pems[0]))
    ctx.check_hostname = True
    with server.raw() as s:
        s.greet()
        s.cmd("STARTTLS", 220)
        s.starttls(context=ctx, server_hostname=HOSTNAME)  # verifies chain and hostname
        der = s.sock.getpeercert(binary_form=True)
        s.cmd("EHLO client.example.net", 250)
        s.cmd("QUIT", 221)
    fingerprint = hashlib.sha256(der).hexdigest()
    log = server.log_text().replace(":", "").lower()
    assert fingerprint in log, "SHA-256 fingerprint of the self-signed certificate is not in the log"


# --------------------------------------------------------------------------------------------------
# SMTP smuggling (end-of-data variants)

SMUGGLED = (
    b"MAIL FROM:<evil@attacker.test>\r\n"
    b"RCPT TO:<bob@example.test>\r\n"
    b"DATA\r\n"
    b"From: evil@attacker.test\r\n"
    b"Subject: smuggled\r\n"
    b"\r\n"
    b"evil body\r\n"
)

VARIANTS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CR": b"\r.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
    "CRLF.LF": b"\r\n.\n",
    "LF.CR": b"\n.\r",
    "CR.LF": b"\r.\n",
    "CRLF.CRCRLF": b"\r\n.\r\r\n",
    "CRLF.LFCRLF": b"\r\n.\n\r\n",
    "LFLF.LFLF": b"\n\n.\n\n",
    "CRLF-NUL.CRLF": b"\r\n\x00.\r\n",
    "CRLF.NUL-CRLF": b"\r\n.\x00\r\n",
}


def has_bare_cr_or_lf(data: bytes) -> bool:
    return b"\n" in data.replace(b"\r\n", b"") or b"\r" in data.replace(b"\r\n", b"")


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS.keys()))
def test_smtp_smuggling_variant(server, variant):
    payload = (
        b"From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: carrier\r\n\r\nhello"
        + variant
        + SMUGGLED
        + b".\r\n"
    )
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        s.send(payload)
        s.send("QUIT\r\n")
        replies = s.read_all_replies()
    codes = [code for code, _ in replies]
    assert codes[-1:] == [221], f"server did not answer QUIT last: {replies}"
    assert len(replies) == 2, f"smuggled commands were executed (one reply expected before QUIT): {replies}"
    code, lines = replies[0]
    assert server.maildir_messages("bob@example.test") == [], "smuggled message was delivered to bob"
    alice = server.maildir_messages("alice@example.test")
    if has_bare_cr_or_lf(variant):
        assert code == 550 and lines[-1][4:].startswith("5.5.2"), f"bare CR/LF message not rejected: {lines}"
        assert alice == [], "rejected message was stored"
    else:
        # NUL variants: no bare CR/LF, so keeping the whole thing as one message is also correct
        assert code == 250 or 500 <= code < 600, lines
        if code == 250:
            assert len(alice) == 1
            assert b"evil body" in server.raw_messages("alice@example.test")[0]
        else:
            assert alice == []


def test_bare_lf_in_headers_rejected_and_session_continues(server):
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        s.send(b"Subject: bare\nX-Other: y\r\n\r\nbody\r\n.\r\n")
        s.expect(550, "5.5.2")
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        s.send(b"Subject: clean\r\n\r\nbody\r\n.\r\n")
        s.expect(250)
        s.cmd("QUIT", 221)
    assert [m["Subject"] for m in server.wait_messages("alice@example.test", 1)] == ["clean"]


def test_end_of_data_split_across_writes(server):
    """CRLF.CRLF split over several TCP segments is still the end (and nothing before it is)."""
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        for part in (b"Subject: split\r\n\r\nbody\r", b"\n", b".", b"\r", b"\n"):
            s.send(part)
        s.expect(250)
        s.cmd("QUIT", 221)
    raw = server.raw_messages("alice@example.test")
    assert len(raw) == 1 and raw[0].endswith(b"\n\nbody\n"), raw


# --------------------------------------------------------------------------------------------------
# BDAT (RFC 3030)


def test_bdat_last_single_chunk(server):
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.send(b"BDAT 5 LAST\r\nhello")
        lines = s.expect(250, "2.0.0")
        assert "queued as" in lines[-1]
        s.cmd("QUIT", 221)
    raws = server.raw_messages("alice@example.test")
    assert len(raws) == 1
    # a message that does not end in CRLF may be completed with a final newline on disk
    assert raws[0].endswith(b"\nhello") or raws[0].endswith(b"\nhello\n"), raws[0]


def test_bdat_several_chunks_pipelined(server):
    message = b"Subject: chunks\r\n\r\nfirst part\r\n.not a terminator\r\n\r\n.\r\nstill data\r\n"
    a, b = message[:23], message[23:]
    with server.raw() as s:
        s.greet()
        s.send(
            b"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
            + b"BDAT %d\r\n" % len(a) + a
            + b"BDAT %d LAST\r\n" % len(b) + b
            + b"QUIT\r\n"
        )
        s.expect(250)
        s.expect(250)
        s.expect(250, "2.0.0")  # chunk accepted
        s.expect(250, "2.0.0")  # message queued
        s.expect(221)
    raws = server.raw_messages("bob@example.test")
    assert len(raws) == 1
    assert raws[0].endswith(b"\nfirst part\n.not a terminator\n\n.\nstill data\n"), raws[0]


def test_bdat_then_data_not_mixed(server):
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.send(b"BDAT 4\r\nabcd")
        s.expect(250)
        s.cmd("DATA", 503, "5.5.1")
        s.cmd("RSET", 250)
        s.cmd("QUIT", 221)
    assert server.maildir_messages("alice@example.test") == []


def test_bdat_without_transaction_consumes_chunk(server):
    """A refused BDAT must still swallow its chunk, so the chunk bytes are never read as commands."""
    with server.raw() as s:
        s.greet()
        chunk = b"RSET\r\nMAIL FROM:<evil@attacker.test>\r\n"
        s.send(b"BDAT %d\r\n" % len(chunk) + chunk + b"NOOP\r\n")
        code, lines = s.read_reply()
        assert code == 503, lines
        s.expect(250)  # the NOOP, and nothing for the RSET/MAIL inside the chunk
        s.cmd("RCPT TO:<alice@example.test>", 503)


# --------------------------------------------------------------------------------------------------
# connection limits and timeouts


def greeted_connection(srv, timeout: float = 10.0) -> RawSMTP:
    """A connection that got 220. Polls: a client that just closed (like the readiness probe) may still
    hold its slot for a moment, and then we are told 421 and try again."""
    deadline = time.monotonic() + timeout
    while True:
        conn = srv.raw()
        reply = conn.read_reply()
        if reply is not None and reply[0] == 220:
            return conn
        conn.close()
        assert reply is None or reply[0] == 421, reply
        assert time.monotonic() < deadline, f"no 220 within {timeout}s (last: {reply})"
        time.sleep(0.05)


def test_too_many_connections_per_ip(make_server):
    srv = make_server(smtp_extra={"max_connections_per_ip": 2})
    first = greeted_connection(srv)
    second = greeted_connection(srv)
    try:
        with srv.raw() as third:
            third.sock.settimeout(5)
            third.expect(421, "4.7.0")
            assert third.read_reply() is None
        first.cmd("QUIT", 221)
        first.close()
        greeted_connection(srv).close()  # once a slot is free a new client gets in
    finally:
        first.close()
        second.close()


def test_too_many_connections_total(make_server):
    srv = make_server(smtp_extra={"max_connections": 2, "max_connections_per_ip": 50})
    conns = [greeted_connection(srv), greeted_connection(srv)]
    try:
        with srv.raw() as third:
            third.sock.settimeout(5)
            third.expect(421, "4.7.0")
    finally:
        for c in conns:
            c.close()


def test_command_timeout(make_server):
    srv = make_server(smtp_extra={"command_timeout": 2})
    with srv.raw() as s:
        s.greet()
        s.sock.settimeout(20)
        reply = s.read_reply()
        assert reply is not None and reply[0] == 421, f"expected 421 after idle timeout, got {reply}"
        assert s.read_reply() is None


def test_data_timeout(make_server):
    srv = make_server(smtp_extra={"data_timeout": 2})
    with srv.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<a@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        s.send("Subject: stalled\r\n\r\npart")
        s.sock.settimeout(20)
        reply = s.read_reply()
        assert reply is not None and reply[0] == 421, f"expected 421 after the data timeout, got {reply}"
    assert srv.maildir_messages("alice@example.test") == []


# --------------------------------------------------------------------------------------------------
# more RFC 5321 corners


def test_postmaster_without_domain(server):
    """RFC 5321 §4.5.1: RCPT TO:<Postmaster> (no domain) must be accepted."""
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<a@remote.test>", 250)
        s.cmd("RCPT TO:<Postmaster>", 250)
        s.cmd("DATA", 354)
        s.send("Subject: bare postmaster\r\n\r\nhi\r\n.\r\n")
        s.expect(250)
    assert [m["Subject"] for m in server.wait_messages("alice@example.test", 1)] == ["bare postmaster"]


def test_ehlo_resets_transaction_and_needs_argument(server):
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<a@remote.test>", 250)
        s.cmd("EHLO again.example.net", 250)
        s.cmd("RCPT TO:<alice@example.test>", 503, "5.5.1")
        s.cmd("EHLO", 501)
        s.cmd("HELO", 501)


def test_declared_size_boundary(make_server):
    srv = make_server(limits={"max_message_size": 10000})
    with srv.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<a@remote.test> SIZE=10001", 552, "5.3.4")
        s.cmd("MAIL FROM:<a@remote.test> SIZE=10000", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        header = b"Subject: exactly at the limit\r\n\r\n"
        line = b"x" * 98 + b"\r\n"
        body = header + line * ((10000 - len(header)) // 100)
        body += b"y" * (10000 - len(body) - 2) + b"\r\n"
        assert len(body) == 10000
        s.send(body + b".\r\n")
        s.expect(250)  # exactly max_message_size octets is allowed
        s.cmd("MAIL FROM:<a@remote.test>", 250)
        s.cmd("RCPT TO:<alice@example.test>", 250)
        s.cmd("DATA", 354)
        s.send(b"z" + body + b".\r\n")
        s.expect(552, "5.3.4")  # one octet more is not


def test_large_message_with_dot_lines_intact(server):
    """~3 MB with many dot-leading lines: unstuffing must be right across every TCP read boundary."""
    import hashlib
    import random

    rng = random.Random(1234)
    lines = []
    for i in range(40000):
        n = rng.randrange(0, 120)
        text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 .") for _ in range(n))
        if i % 7 == 0:
            text = "." + text
        lines.append(text)
    body = "\n".join(lines) + "\n"
    wire = "Subject: big\r\n\r\n" + body.replace("\n", "\r\n")
    with server.smtp() as client:
        assert client.sendmail("sender@remote.test", ["alice@example.test"], wire) == {}
    raw = server.raw_messages("alice@example.test")
    assert len(raw) == 1
    stored_body = raw[0].split(b"\n\n", 1)[1]
    assert hashlib.sha256(stored_body).hexdigest() == hashlib.sha256(body.encode()).hexdigest(), (
        len(stored_body), len(body)
    )


@pytest.mark.parametrize("hops,accepted", [(49, True), (50, False)])
def test_mail_loop_is_refused_at_the_hop_limit(server, hops, accepted):
    received = "".join(f"Received: from hop{i}.example.net by hop{i + 1}.example.net; Sun, 22 Nov 2026 07:00:{i % 60:02d} +0000\r\n"
                       for i in range(hops))
    with server.raw() as s:
        s.greet()
        s.send("MAIL FROM:<loop@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        s.expect(250)
        s.expect(250)
        s.expect(354)
        s.send(received + "Subject: around and around\r\n\r\nbody\r\n.\r\n")
        if accepted:
            s.expect(250)
        else:
            s.expect(554, "5.4.6")
        s.cmd("NOOP", 250)
    messages = server.maildir_messages("bob@example.test")
    assert len(messages) == (1 if accepted else 0)
    if accepted:
        assert len(messages[0].get_all("Received")) == hops + 1
    else:
        assert "too many hops" in server.log_text()
