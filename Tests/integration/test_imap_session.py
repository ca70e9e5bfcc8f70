"""IMAP sessions end to end against the real `swallow` binary over loopback: capabilities, STARTTLS and
implicit TLS, LOGIN / AUTHENTICATE (PLAIN, SCRAM-SHA-256), throttling, connection limits, timers, and
hostile input. Every response read by RawIMAP is grammar-checked with imap-codec (imap_e2e.py).

Bounds used here, and why:
  * timers: login_timeout = 1 s and autologout = 2 s; the close must come within timer + 3 s (the
    server's timer granularity plus a loaded CI machine), and not before the timer (−0.3 s slack);
  * "without waiting" for a refused literal: the tagged NO arrives within 2 s although not one byte of
    the literal was sent (a server waiting for it would wait for ever);
  * a 1 MB command line and a 10,000-deep nesting cost the server at most 16 MiB of resident memory
    (the parser keeps at most max_command_size = 64 KiB of a command; 16 MiB is far below the 1 MB × a
    few copies a buffering parser would need per connection, times the 5 connections tried);
  * 20 consecutive bad commands end the session (the server's documented limit, like Dovecot's).
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import time

import pytest

from conftest import HOSTNAME, IO_TIMEOUT, insecure_tls_context, rss_kib
from imap_e2e import (ALICE, BOB, PASSWORD, Closed, RawIMAP, ScramClient, b64, continuation_data, imap_session,
                          make_imap)


@pytest.fixture
def imap_server(make_server):
    return make_imap(make_server)


def caps_of(response: bytes) -> set[str]:
    m = re.search(rb"(?:\* CAPABILITY|\[CAPABILITY) ([^\]\r]*)", response)
    assert m, response
    return set(m.group(1).decode().split())


def capability(c: RawIMAP) -> set[str]:
    untagged, _ = c.cmd("CAPABILITY")
    assert len(untagged) == 1, untagged
    return caps_of(untagged[0])


AFTER_LOGIN = {"IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE", "NAMESPACE", "UNSELECT",
               "UIDPLUS", "MOVE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE",
               "STATUS=SIZE", "ESEARCH", "SEARCHRES", "CONDSTORE", "QRESYNC", "BINARY", "UTF8=ACCEPT",
               "APPENDLIMIT=52428800", "QUOTA", "QUOTA=RES-STORAGE", "SORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT"}


# --------------------------------------------------------------------------------------------------
# capabilities and TLS


def test_capabilities_before_and_after_starttls(imap_server):
    c = RawIMAP(imap_server)
    assert c.greeting.startswith(b"* OK [CAPABILITY ")
    greeting_caps = caps_of(c.greeting)
    before = capability(c)
    assert greeting_caps == before
    assert {"IMAP4rev1", "IMAP4rev2", "STARTTLS", "LOGINDISABLED", "SASL-IR", "LITERAL+"} <= before, before
    assert not any(cap.startswith("AUTH=") for cap in before), f"SASL offered before TLS: {before}"
    c.starttls()
    after = capability(c)
    assert "STARTTLS" not in after and "LOGINDISABLED" not in after, after
    assert {"AUTH=PLAIN", "AUTH=SCRAM-SHA-256", "IMAP4rev2"} <= after, after
    tagged = c.login()
    logged_in = caps_of(tagged)  # RFC 9051 §6.2.3: the OK may carry the new capabilities
    assert AFTER_LOGIN <= logged_in, AFTER_LOGIN - logged_in
    assert not any(cap.startswith("AUTH=") for cap in logged_in)
    assert capability(c) == logged_in
    c.cmd("LOGOUT")


def test_implicit_tls_capabilities_and_login(imap_server):
    c = RawIMAP(imap_server, implicit_tls=True)
    assert isinstance(c.sock, ssl.SSLSocket)
    caps = caps_of(c.greeting)
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
    assert {"AUTH=PLAIN", "AUTH=SCRAM-SHA-256"} <= caps
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    c.cmd("STARTTLS", expect="BAD")  # TLS is already on (RFC 9051 §6.2.1)
    c.login()
    c.cmd("LOGOUT")


def test_login_and_authenticate_refused_before_tls(imap_server):
    c = RawIMAP(imap_server)
    _, tagged = c.cmd(f'LOGIN "{ALICE}" "{PASSWORD}"', expect="NO")
    assert b"[PRIVACYREQUIRED]" in tagged
    _, tagged = c.cmd("AUTHENTICATE PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}".encode()).decode(), expect="NO")
    assert b"[PRIVACYREQUIRED]" in tagged
    tag = c.next_tag()
    c.send(f"{tag} AUTHENTICATE PLAIN\r\n")
    r = c.read_response()
    assert r.startswith(f"{tag} NO [PRIVACYREQUIRED]".encode()), f"a continuation before TLS would invite the password: {r!r}"
    c.cmd("AUTHENTICATE SCRAM-SHA-256", expect="NO")
    c.cmd("SELECT INBOX", expect="BAD")  # still not authenticated
    c.cmd("LOGOUT")


def test_allow_plaintext_auth(make_server):
    server = make_imap(make_server, imap_extra={"allow_plaintext_auth": True})
    c = RawIMAP(server)
    caps = capability(c)
    assert "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps and "STARTTLS" in caps, caps
    c.login()
    c.select()
    c.cmd("LOGOUT")


def test_plaintext_pipelined_behind_starttls_is_discarded(imap_server):
    """RFC 9051 §6.2.1 / RFC 3207-style injection: b arrives in the same segment as STARTTLS, in
    plaintext; it must be thrown away, never run after the handshake."""
    c = RawIMAP(imap_server)
    c.send(f'a STARTTLS\r\nb LOGIN "{ALICE}" "{PASSWORD}"\r\nc SELECT INBOX\r\n')
    r = c.read_response()
    assert r.startswith(b"a OK"), r
    assert c.buf == b"", f"the server answered the injected commands in plaintext: {c.buf!r}"
    c.sock = insecure_tls_context().wrap_socket(c.sock, server_hostname=HOSTNAME)
    c.sock.settimeout(1.0)
    with pytest.raises((socket.timeout, TimeoutError)):
        early = c.read_response()
        raise AssertionError(f"the injected command was answered after TLS: {early!r}")
    c.sock.settimeout(IO_TIMEOUT)
    caps = capability(c)
    assert "AUTH=PLAIN" in caps, "still not authenticated: SASL is offered"
    _, tagged = c.cmd("SELECT INBOX", expect="BAD")
    assert b"login" in tagged.lower()
    for r in c.transcript:
        assert not r.startswith((b"b ", b"c ")), c.transcript
    c.login()
    c.cmd("LOGOUT")


# --------------------------------------------------------------------------------------------------
# LOGIN, AUTHENTICATE


def test_login_good_and_bad(imap_server):
    c = imap_session(imap_server)
    c.select()
    c.cmd("LOGIN x y", expect="BAD")  # wrong state (RFC 9051 §6.2.3: only in not-authenticated)
    c.cmd("LOGOUT")
    answers = []
    for user, password in ((ALICE, "wrong"), ("nobody@example.test", "wrong"), ("alice", PASSWORD)):
        c = RawIMAP(imap_server, implicit_tls=True)
        _, tagged = c.cmd(f'LOGIN "{user}" "{password}"', expect="NO")
        assert b"[AUTHENTICATIONFAILED]" in tagged
        answers.append(tagged.split(b" ", 1)[1])
        c.cmd("SELECT INBOX", expect="BAD")
        c.login()  # the session goes on; the right password still works
        c.cmd("LOGOUT")
    assert len(set(answers)) == 1, f"answers differ between bad password and unknown user: {answers}"
    c = RawIMAP(imap_server, implicit_tls=True)
    c.login("ALICE@Example.TEST")  # the address is case-insensitive
    c.cmd("LOGOUT")


def test_failure_delay(make_server):
    server = make_imap(make_server, auth_extra={"failure_delay_ms": 700})
    c = RawIMAP(server, implicit_tls=True)
    t = time.monotonic()
    c.cmd(f'LOGIN "{ALICE}" "wrong"', expect="NO")
    assert time.monotonic() - t >= 0.6
    t = time.monotonic()
    c.login()
    assert time.monotonic() - t < 0.6, "a successful login must not be delayed"


def test_throttling_per_account_and_per_ip(make_server):
    """Past max_failures_per_account failures every login to that account fails — the right password
    too, with the answer of a wrong one; past max_failures_per_ip every account from this address."""
    server = make_imap(make_server, auth_extra={"max_failures_per_account": 3, "max_failures_per_ip": 8})

    def attempt(user, password):
        with RawIMAP(server, implicit_tls=True) as c:
            return c.cmd(f'LOGIN "{user}" "{password}"', expect=None)[1].split(b" ", 1)[1]

    refused = attempt(ALICE, "wrong")
    assert refused.startswith(b"NO [AUTHENTICATIONFAILED]")
    for _ in range(2):
        assert attempt(ALICE, "wrong") == refused
    assert attempt(ALICE, PASSWORD) == refused
    # SASL is throttled the same way
    with RawIMAP(server, implicit_tls=True) as c:
        _, tagged = c.cmd("AUTHENTICATE PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}".encode()).decode(), expect="NO")
        assert b"[AUTHENTICATIONFAILED]" in tagged
    assert attempt(BOB, PASSWORD).startswith(b"OK")
    for _ in range(3):
        attempt("nobody@example.test", "wrong")
    assert attempt(BOB, PASSWORD) == refused


def test_authenticate_plain_with_and_without_initial_response(imap_server):
    creds = b64(f"\0{ALICE}\0{PASSWORD}".encode())
    c = RawIMAP(imap_server, implicit_tls=True)
    _, tagged = c.cmd(b"AUTHENTICATE PLAIN " + creds)
    assert b"[CAPABILITY " in tagged
    c.select()
    c.cmd("LOGOUT")

    c = RawIMAP(imap_server, implicit_tls=True)
    tag = c.next_tag()
    c.send(f"{tag} AUTHENTICATE PLAIN\r\n")
    cont = c.read_response()
    assert cont.rstrip(b"\r\n") in (b"+", b"+ "), cont  # empty challenge
    c.send(creds + b"\r\n")
    _, tagged = c.until_tagged(tag)
    assert tagged.startswith(f"{tag} OK".encode()), tagged
    c.cmd("LOGOUT")

    c = RawIMAP(imap_server, implicit_tls=True)
    _, tagged = c.cmd(b"AUTHENTICATE PLAIN " + b64(f"\0{ALICE}\0wrong".encode()), expect="NO")
    assert b"[AUTHENTICATIONFAILED]" in tagged
    tag = c.next_tag()
    c.send(f"{tag} AUTHENTICATE PLAIN\r\n")
    c.read_response()
    c.send(b"*\r\n")  # the client cancels (RFC 9051 §6.2.2)
    _, tagged = c.until_tagged(tag)
    assert tagged.startswith(f"{tag} BAD".encode()), tagged
    _, tagged = c.cmd("AUTHENTICATE PLAIN !!notbase64!!", expect="BAD")
    c.cmd("AUTHENTICATE CRAM-MD5", expect="NO")  # not offered
    c.login()
    c.cmd("LOGOUT")


def scram_login(c: RawIMAP, user: str, password: str, *, initial_response: bool, tamper: bool = False) -> bytes:
    client = ScramClient(user, password)
    tag = c.next_tag()
    if initial_response:
        c.send(f"{tag} AUTHENTICATE SCRAM-SHA-256 ".encode() + b64(client.first()) + b"\r\n")
    else:
        c.send(f"{tag} AUTHENTICATE SCRAM-SHA-256\r\n")
        assert c.read_response().rstrip() in (b"+", b"+ ")
        c.send(b64(client.first()) + b"\r\n")
    server_first = continuation_data(c.read_response())
    c.send(b64(client.final(server_first, tamper_proof=tamper)) + b"\r\n")
    r = c.read_response()
    if r.startswith(b"+"):
        client.verify(continuation_data(r))
        c.send(b"\r\n")
        _, tagged = c.until_tagged(tag)
    else:
        tagged = r
    assert tagged.startswith(tag.encode() + b" "), tagged
    return tagged


@pytest.mark.parametrize("initial_response", [True, False], ids=["sasl-ir", "continuation"])
def test_scram_sha_256(imap_server, initial_response):
    c = RawIMAP(imap_server, implicit_tls=True)
    tagged = scram_login(c, ALICE, PASSWORD, initial_response=initial_response)
    assert tagged.split(b" ")[1] == b"OK", tagged
    c.select()
    c.cmd("LOGOUT")
    c = RawIMAP(imap_server, implicit_tls=True)
    tagged = scram_login(c, ALICE, PASSWORD, initial_response=initial_response, tamper=True)
    assert tagged.split(b" ", 2)[1:2] == [b"NO"] and b"[AUTHENTICATIONFAILED]" in tagged, tagged
    tagged = scram_login(c, BOB, "wrong password", initial_response=initial_response)
    assert b"NO [AUTHENTICATIONFAILED]" in tagged, tagged
    c.cmd("SELECT INBOX", expect="BAD")


def test_scram_unknown_user_looks_like_a_known_one(imap_server):
    """The server must not reveal which accounts exist: an unknown user still gets a salt and an
    iteration count, and fails only at the proof."""
    c = RawIMAP(imap_server, implicit_tls=True)
    tagged = scram_login(c, "nobody@example.test", PASSWORD, initial_response=True)
    assert b"NO [AUTHENTICATIONFAILED]" in tagged


def test_max_connections_per_user(make_server):
    server = make_imap(make_server, imap_extra={"max_connections_per_user": 2})
    first, second = imap_session(server), imap_session(server)
    c = RawIMAP(server, implicit_tls=True)
    _, tagged = c.cmd(f'LOGIN "{ALICE}" "{PASSWORD}"', expect="NO")
    assert b"[LIMIT]" in tagged, tagged
    assert any(r.startswith(b"* BYE") for r in c.read_until_closed(5))
    imap_session(server, BOB).cmd("LOGOUT")  # another user is not affected
    first.cmd("LOGOUT")
    first.read_until_closed(5)

    def third_login():
        with RawIMAP(server, implicit_tls=True) as c:
            if c.cmd(f'LOGIN "{ALICE}" "{PASSWORD}"', expect=None)[1].split(b" ")[1] != b"OK":
                return False
            c.cmd("LOGOUT")
            return True

    from conftest import wait_for
    wait_for(third_login, timeout=5, what="a slot after LOGOUT")
    second.cmd("NOOP")


# --------------------------------------------------------------------------------------------------
# timers


def closed_after(c: RawIMAP, started: float, limit: float) -> tuple[float, list[bytes]]:
    got = c.read_until_closed(limit + 3)
    return time.monotonic() - started, got


def test_login_timeout(make_server):
    server = make_imap(make_server, imap_extra={"login_timeout": 1, "autologout": 30})
    c = RawIMAP(server)
    t = time.monotonic()
    elapsed, got = closed_after(c, t, 1)
    assert 0.7 <= elapsed <= 4, elapsed
    assert got and got[-1].startswith(b"* BYE"), got
    # a client half way through a literal does not get more time
    c = RawIMAP(server)
    c.send(b"a LOGIN {5}\r\n")
    assert c.read_response().startswith(b"+")
    t = time.monotonic()
    elapsed, got = closed_after(c, t, 1)
    assert elapsed <= 4, elapsed


def test_autologout(make_server):
    server = make_imap(make_server, imap_extra={"autologout": 2, "login_timeout": 30})
    c = imap_session(server, select="INBOX")
    t = time.monotonic()
    c.cmd("NOOP")  # activity restarts the timer
    elapsed, got = closed_after(c, t, 2)
    assert 1.7 <= elapsed <= 5, elapsed
    assert any(r.startswith(b"* BYE") for r in got), got
    assert "autologout" in server.log_text()


def test_literal_that_never_comes_is_ended_by_the_timer(make_server):
    server = make_imap(make_server, imap_extra={"autologout": 2})
    c = imap_session(server)
    c.send(b"a APPEND INBOX {100}\r\n")
    assert c.read_response().startswith(b"+")
    c.send(b"only part of it")
    t = time.monotonic()
    elapsed, _ = closed_after(c, t, 2)
    assert elapsed <= 5, elapsed
    assert not list(server.maildir_path(ALICE).glob("cur/*")) + list(server.maildir_path(ALICE).glob("new/*"))
    c = imap_session(server, select="INBOX")  # the server is fine, the APPEND left nothing
    untagged, _ = c.cmd("STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 0" in untagged[0]


# --------------------------------------------------------------------------------------------------
# hostile input


def test_megabyte_command_line_is_too_big_and_the_session_goes_on(imap_server):
    c = imap_session(imap_server, select="INBOX")
    before = rss_kib(imap_server.proc.pid)
    for _ in range(5):
        _, tagged = c.cmd(b"NOOP " + b"x" * (1 << 20), expect="BAD")
        assert b"[TOOBIG]" in tagged, tagged
    c.cmd("NOOP")
    # a long line from a client that is not logged in either
    u = RawIMAP(imap_server, implicit_tls=True)
    _, tagged = u.cmd(b"LOGIN " + b"a" * (1 << 20) + b" b", expect="BAD")
    assert b"[TOOBIG]" in tagged
    u.login()
    grown = rss_kib(imap_server.proc.pid) - before
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB over 1 MB lines"


def test_literal_over_max_literal_is_refused_without_waiting(make_server):
    server = make_imap(make_server, imap_extra={"max_literal": 1 << 20})
    c = imap_session(server)
    assert "APPENDLIMIT=1048576" in capability(c)
    t = time.monotonic()
    _, tagged = c.cmd("APPEND INBOX {1048577}", expect="NO")
    assert time.monotonic() - t < 2
    assert b"[TOOBIG]" in tagged
    c.cmd("NOOP")
    # a literal inside another command, over max_command_size (64 KiB): no '+', a TOOBIG answer
    _, tagged = c.cmd("SELECT {100000}", expect=None)
    assert re.match(rb"\S+ (NO|BAD) \[TOOBIG\]", tagged), tagged
    c.cmd("NOOP")
    # a non-synchronising literal over the limit: the data follows at once and is not a command;
    # RFC 7888 §4 lets the server read and discard it (this one does) before the NO [TOOBIG]
    tag = c.next_tag()
    c.send(f"{tag} APPEND INBOX {{2000000+}}\r\n".encode() + b"x NOOP\r\n" * 250_000 + b"\r\n")
    untagged, tagged = c.until_tagged(tag)
    assert re.match(rf"{tag} (NO|BAD) \[TOOBIG\]".encode(), tagged), tagged
    assert not untagged
    untagged, _ = c.cmd("STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 0" in untagged[0]
    assert not any(r.startswith(b"x ") for r in c.transcript), "literal bytes were run as commands"


def test_deep_nesting_is_limit(imap_server):
    c = imap_session(imap_server, select="INBOX")
    before = rss_kib(imap_server.proc.pid)
    _, tagged = c.cmd(b"SEARCH " + b"(" * 10000 + b"ALL" + b")" * 10000, expect="BAD")
    assert b"[LIMIT]" in tagged, tagged
    _, tagged = c.cmd(b"FETCH 1 " + b"(" * 10000, expect="BAD")
    _, tagged = c.cmd(b"LIST " + b"(" * 10000 + b' "" *', expect="BAD")
    c.cmd("SEARCH ((((ALL))))")  # moderate nesting is fine
    c.cmd("NOOP")
    assert rss_kib(imap_server.proc.pid) - before < 16 * 1024


def test_unknown_and_wrong_state_commands_are_bad(imap_server):
    c = RawIMAP(imap_server, implicit_tls=True)
    for line in ("FROBNICATE", "SELECT INBOX", "FETCH 1 FLAGS", "IDLE", "APPEND INBOX {3+}\r\nabc", "ENABLE QRESYNC"):
        _, tagged = c.cmd(line, expect="BAD")
    c.send(b"* NOOP\r\n")  # '*' is not a tag
    assert c.read_response().startswith(b"* BAD")
    c.login()
    for line in ("FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "EXPUNGE", "CLOSE", "UID SEARCH ALL", "STARTTLS",
                 "AUTHENTICATE PLAIN", "FETCH", "SELECT", "LIST", "SEARCH ALL", "MOVE 1 Trash"):
        c.cmd(line, expect="BAD")
    c.select()
    for line in ("FETCH x FLAGS", "FETCH 1 (FLAGS", "STORE 1 FLAGS+ (\\Seen)", "SEARCH BEFORE 32-Jan-2024",
                 "FETCH 1 BODY[1.0]", "FETCH 0 FLAGS", "COPY 1:* \"unterminated"):
        c.cmd(line, expect="BAD")
    c.cmd("NOOP")
    c.send(b"zz SELECT \"\xff\xfe\"\r\n")  # not UTF-8
    assert re.match(rb"zz (BAD|NO)", c.read_response())
    c.cmd("LOGOUT")


def test_consecutive_bad_commands_end_the_session(imap_server):
    c = imap_session(imap_server)
    for i in range(19):
        c.cmd(f"BOGUS{i}", expect="BAD")
    c.cmd("NOOP")  # a good command resets the count
    c.send(b"".join(f"x{i} BOGUS\r\n".encode() for i in range(25)))
    got = c.read_until_closed(10)
    bads = [r for r in got if re.match(rb"x[0-9]+ BAD", r)]
    bye = [i for i, r in enumerate(got) if r.startswith(b"* BYE")]
    assert bye, f"no BYE after 25 bad commands: {got[-3:]}"
    assert bye[0] == len(got) - 1, "nothing may follow the BYE"
    assert len(bads) == 20, f"the documented limit is 20 consecutive bad commands, got {len(bads)}"


@pytest.mark.parametrize("name", ["&Jjo", "&AGE-b", "a&", "&-&", "&U,BTF2XlZyyKQ-&", "&ZeVnLIqe", "&2D0-", "&2D3dFQ"])
def test_broken_modified_utf7_names_are_bad(imap_server, name):
    """RFC 3501 §5.1.3: '&' starts a base64 run of UTF-16 ended by '-'; printable ASCII must not be
    encoded; no lone surrogate. Each name here breaks one of those rules."""
    c = imap_session(imap_server)
    c.cmd(f'CREATE "{name}"', expect="BAD")
    c.cmd(f'SELECT "{name}"', expect="BAD")
    c.cmd(f'LIST "" "{name}"', expect="BAD")
    c.cmd("NOOP")


def test_control_characters_in_names_are_refused(imap_server):
    """`&AAA-` is well-formed modified UTF-7 for U+0000: not a valid name (CREATE BAD, SELECT BAD or
    NO [CANNOT]/[NONEXISTENT]), and nothing is created on disk."""
    c = imap_session(imap_server)
    for name in ("&AAA-", "a&AAk-b", "&AH8-"):
        c.cmd(f'CREATE "{name}"', expect="BAD")
        _, tagged = c.cmd(f'SELECT "{name}"', expect=None)
        assert re.match(rb"\S+ (BAD|NO \[(CANNOT|NONEXISTENT)\])", tagged), tagged
    untagged, _ = c.cmd('LIST "" "*"')
    assert len(untagged) == 6, untagged  # INBOX and the five special-use folders only


def test_literal_plus_login_and_sync_literal_login(imap_server):
    c = RawIMAP(imap_server, implicit_tls=True)
    tag = c.next_tag()
    c.send(f"{tag} LOGIN {{{len(ALICE)}+}}\r\n{ALICE} {{{len(PASSWORD)}+}}\r\n{PASSWORD}\r\n".encode())
    _, tagged = c.until_tagged(tag)
    assert tagged.startswith(f"{tag} OK".encode())
    c = RawIMAP(imap_server, implicit_tls=True)
    c.send(f"a LOGIN {{{len(ALICE)}}}\r\n".encode())
    assert c.read_response().startswith(b"+")
    c.send(f"{ALICE} {{{len(PASSWORD)}}}\r\n".encode())
    assert c.read_response().startswith(b"+")
    c.send(f"{PASSWORD}\r\n".encode())
    _, tagged = c.until_tagged("a")
    assert tagged.startswith(b"a OK")
