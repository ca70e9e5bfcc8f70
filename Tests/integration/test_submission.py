"""Message submission (RFC 6409) on 587-style STARTTLS and 465-style implicit TLS (RFC 8314) with AUTH
(RFC 4954), against the real binary and real clients: Python's smtplib, swaks, `swallow send`, and an
independent SCRAM-SHA-256 client written here from RFC 5802.

Covers: AUTH only after TLS, MAIL before AUTH, PLAIN/LOGIN/SCRAM, throttling (454/421, same answer for
unknown users), sender ownership (MAIL FROM and From:, aliases, +tags, null sender), RFC 6409 §8 header
fixes, per-user limits, open-relay probes on every listener, the STARTTLS injection segment, and the
whole path alice → 587 → queue → DNS → another Swallow → POP3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import (CLI_TIMEOUT, IN_CI, SWALLOW_BIN, IO_TIMEOUT, RawSMTP, free_port, insecure_tls_context,
                      require_tool, wait_for, wait_port)
from test_queue import DNSPeer, dns  # noqa: F401  (fixture)

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "correct horse battery staple"
TLS = insecure_tls_context()


@pytest.fixture
def make_submission_server(make_server):
    """Factory: a started server with [submission] and [submissions] on free ports, a short failure
    delay, and alice/bob (password PASSWORD)."""

    def factory(*, submission_extra: dict | None = None, auth: dict | None = None, **config):
        sub, subs = free_port(), free_port()
        submission = {"listen": [f"127.0.0.1:{sub}"]}
        submission.update(submission_extra or {})
        a = {"failure_delay_ms": 50}
        a.update(auth or {})
        server = make_server(submission=submission, submissions={"listen": [f"127.0.0.1:{subs}"]}, auth=a,
                             start=False, **config)
        server.sub_port, server.subs_port = sub, subs
        server.start()
        wait_port(sub)
        wait_port(subs)
        return server

    return factory


@pytest.fixture
def sub_server(make_submission_server):
    return make_submission_server()


def submission(server, user: str = ALICE, password: str | None = PASSWORD) -> smtplib.SMTP:
    s = smtplib.SMTP(server.host, server.sub_port, timeout=IO_TIMEOUT)
    s.ehlo("client.example.net")
    s.starttls(context=TLS)
    s.ehlo("client.example.net")
    if password is not None:
        s.login(user, password)
    return s


def submissions(server, user: str = ALICE, password: str | None = PASSWORD) -> smtplib.SMTP_SSL:
    s = smtplib.SMTP_SSL(server.host, server.subs_port, timeout=IO_TIMEOUT, context=TLS)
    s.ehlo("client.example.net")
    if password is not None:
        s.login(user, password)
    return s


def message(frm: str = ALICE, to: str = BOB, subject: str = "hello", extra: str = "", date: bool = True) -> bytes:
    head = f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
    if date:
        head += "Date: Sat, 22 Nov 2025 10:00:00 +0000\r\nMessage-ID: <%s@client.example.net>\r\n" % time.monotonic_ns()
    return (head + "\r\nBody line.\r\n").encode()


def raw_submission(server, *, tls: bool = True) -> RawSMTP:
    r = RawSMTP(server.host, server.sub_port)
    r.expect(220)
    if tls:
        r.cmd("EHLO client.example.net", 250)
        r.cmd("STARTTLS", 220)
        r.starttls(TLS)
        r.cmd("EHLO client.example.net", 250)
    return r


def auth_plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


# --------------------------------------------------------------------------------------------------
# AUTH: where it is offered, every mechanism, every failure


def test_auth_not_offered_or_accepted_before_tls_and_mail_needs_auth(sub_server):
    with RawSMTP(sub_server.host, sub_server.sub_port) as r:
        r.expect(220)
        ehlo = r.cmd("EHLO client.example.net", 250)
        assert not any(line[4:].startswith("AUTH") for line in ehlo), ehlo
        assert "STARTTLS" in [line[4:] for line in ehlo]
        r.cmd(f"AUTH PLAIN {auth_plain(ALICE, PASSWORD)}", 530, "5.7.0")
        r.cmd(f"MAIL FROM:<{ALICE}>", 530, "5.7.0")
        r.cmd("STARTTLS", 220)
        r.starttls(TLS)
        ehlo = r.cmd("EHLO client.example.net", 250)
        assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in [line[4:] for line in ehlo], ehlo
        r.cmd(f"MAIL FROM:<{ALICE}>", 530, "5.7.0")
        r.cmd(f"AUTH PLAIN {auth_plain(ALICE, PASSWORD)}", 235, "2.7.0")
        r.cmd(f"MAIL FROM:<{ALICE}>", 250)


def test_smtplib_starttls_plain_and_login_and_smtp_ssl(sub_server):
    with submission(sub_server) as s:  # smtplib picks PLAIN
        s.sendmail(ALICE, [BOB], message(subject="plain on 587"))
    with submission(sub_server, password=None) as s:
        s.user, s.password = ALICE, PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        s.sendmail(ALICE, [BOB], message(subject="login on 587"))
    with submissions(sub_server) as s:
        s.sendmail(ALICE, [BOB], message(subject="plain on 465"))
    got = sub_server.wait_messages(BOB, 3)
    assert sorted(m["Subject"] for m in got) == ["login on 587", "plain on 465", "plain on 587"]
    for m in got:
        received = m.get_all("Received")[0]
        assert "with ESMTPSA" in received and "using TLSv1." in received, received
        assert ALICE not in received  # the user name only with received_header_user


def test_wrong_password_unknown_user_and_malformed_exchanges(sub_server):
    r = raw_submission(sub_server)
    t0 = time.monotonic()
    r.cmd(f"AUTH PLAIN {auth_plain(ALICE, 'wrong')}", 535, "5.7.8")
    r.cmd(f"AUTH PLAIN {auth_plain('nobody@example.test', 'wrong')}", 535, "5.7.8")
    assert time.monotonic() - t0 >= 0.1  # each failure waits failure_delay_ms
    r.cmd("AUTH CRAM-MD5", 504, "5.5.4")
    r.cmd("AUTH PLAIN !!!", 501, "5.5.2")
    r.cmd("AUTH LOGIN", 334)
    r.cmd("*", 501, "5.7.0")
    r.cmd(f"AUTH PLAIN {base64.b64encode(b'admin@example.test' + bytes([0]) + ALICE.encode() + bytes([0]) + PASSWORD.encode()).decode()}",
          535, "5.7.8")  # authorization identity other than the user
    r.cmd(f"AUTH PLAIN {auth_plain(ALICE, PASSWORD)}", 235)
    r.cmd(f"AUTH PLAIN {auth_plain(ALICE, PASSWORD)}", 503, "5.5.1")
    r.close()
    log = sub_server.log_text()
    assert PASSWORD not in log, log
    assert "login=alice@example.test" in log and "login=nobody@example.test" in log  # who failed, never with what


def test_throttling_per_account_and_per_ip_same_for_unknown_users(make_submission_server):
    server = make_submission_server(auth={"max_failures_per_account": 2, "max_failures_per_ip": 6})
    r = raw_submission(server)
    for user in (ALICE, "nobody@example.test"):
        r.cmd(f"AUTH PLAIN {auth_plain(user, 'wrong')}", 535, "5.7.8")
        r.cmd(f"AUTH PLAIN {auth_plain(user, 'wrong')}", 535, "5.7.8")
        # now even the right password is refused, and an unknown user looks exactly the same
        lines = r.cmd(f"AUTH PLAIN {auth_plain(user, PASSWORD)}", 454, "4.7.0")
        assert "Too many failed logins for this account" in lines[0]
    r.close()
    # 6 failures from this address so far: the next attempt (any account) closes the connection
    r = raw_submission(server)
    r.send(f"AUTH PLAIN {auth_plain(BOB, PASSWORD)}\r\n")
    r.expect(421, "4.7.0")
    assert r.read_reply() is None
    r.close()


class ScramClient:
    """SCRAM-SHA-256 client side written from RFC 5802 §3, independent of our Swift code."""

    def __init__(self, user: str, password: str):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r={self.nonce}"

    def client_first(self) -> str:
        return base64.b64encode(("n,," + self.first_bare).encode()).decode()

    def client_final(self, server_first_b64: str) -> str:
        server_first = base64.b64decode(server_first_b64).decode()
        attrs = dict(part.split("=", 1) for part in server_first.split(","))
        assert attrs["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.expected = "v=" + base64.b64encode(hmac.new(server_key, auth_message, "sha256").digest()).decode()
        return base64.b64encode(f"{without_proof},p={base64.b64encode(proof).decode()}".encode()).decode()


def test_scram_sha_256_with_an_independent_client(sub_server):
    r = raw_submission(sub_server)
    c = ScramClient(ALICE, PASSWORD)
    first = r.cmd(f"AUTH SCRAM-SHA-256 {c.client_first()}", 334)[0][4:]
    final = r.cmd(c.client_final(first), 334)[0][4:]
    assert base64.b64decode(final).decode() == c.expected  # the server proves it knows the keys
    r.cmd("", 235, "2.7.0")
    r.cmd(f"MAIL FROM:<{ALICE}>", 250)
    r.cmd("RSET", 250)
    r.close()
    # wrong password and unknown user: the same shape of exchange, then 535
    for user, password in ((ALICE, "wrong"), ("nobody@example.test", "wrong")):
        r = raw_submission(sub_server)
        c = ScramClient(user, password)
        first = r.cmd(f"AUTH SCRAM-SHA-256 {c.client_first()}", 334)[0][4:]
        assert "s=" in base64.b64decode(first).decode() and "i=4096" in base64.b64decode(first).decode()
        r.cmd(c.client_final(first), 535, "5.7.8")
        r.close()
    # a password changed with `swallow user passwd` changes the SCRAM keys too
    sub_server.cli("user", "passwd", ALICE, "--password-stdin", input="new secret\n")
    r = raw_submission(sub_server)
    c = ScramClient(ALICE, "new secret")
    first = r.cmd(f"AUTH SCRAM-SHA-256 {c.client_first()}", 334)[0][4:]
    r.cmd(c.client_final(first), 334)
    r.cmd("", 235)
    r.close()


def test_accounts_without_scram_keys_gain_them_at_a_password_login(sub_server):
    """A user created before SCRAM support (only a yescrypt hash) cannot use SCRAM until a PLAIN/LOGIN
    login succeeds; then the keys are derived from the verified password and SCRAM works."""
    import sqlite3
    db = sqlite3.connect(sub_server.data_dir / "swallow.sqlite")
    db.execute("UPDATE users SET scram = NULL WHERE address = ?", (ALICE,))
    db.commit()
    db.close()

    def scram_login() -> int:
        r = raw_submission(sub_server)
        c = ScramClient(ALICE, PASSWORD)
        first = r.cmd(f"AUTH SCRAM-SHA-256 {c.client_first()}", 334)[0][4:]
        r.send(c.client_final(first) + "\r\n")
        code = r.read_reply()[0]
        r.close()
        return code

    assert scram_login() == 535
    with submission(sub_server):  # PLAIN
        pass
    assert scram_login() == 334  # the server-final message: authenticated


def test_swaks_plain_and_login_with_tls_and_tls_on_connect(sub_server):
    swaks = require_tool("swaks")
    for port, tls_flag, mech in ((sub_server.sub_port, "--tls", "PLAIN"), (sub_server.sub_port, "--tls", "LOGIN"),
                                 (sub_server.subs_port, "--tls-on-connect", "PLAIN"),
                                 (sub_server.subs_port, "--tls-on-connect", "LOGIN")):
        out = subprocess.run(
            [swaks, "--server", f"127.0.0.1:{port}", tls_flag, "--auth", mech, "--auth-user", ALICE,
             "--auth-password", PASSWORD, "--from", ALICE, "--to", BOB, "--helo", "client.example.net",
             "--header", f"Subject: swaks {mech} {tls_flag}", "--body", "via swaks"],
            capture_output=True, text=True, timeout=CLI_TIMEOUT)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "235 2.7.0" in out.stdout and "250 2.0.0 Ok: queued" in out.stdout
    got = sub_server.wait_messages(BOB, 4)
    assert sorted(m["Subject"] for m in got) == sorted(
        ["swaks PLAIN --tls", "swaks LOGIN --tls", "swaks PLAIN --tls-on-connect", "swaks LOGIN --tls-on-connect"])


@pytest.mark.parametrize("auth", ["scram-sha-256", "plain", "login"])
def test_msmtp_with_gnu_sasl(sub_server, tmp_path, auth):
    """msmtp (Debian, GNU SASL) on 587 with STARTTLS and on 465 with TLS: an independent SCRAM-SHA-256."""
    msmtp = require_tool("msmtp")
    for port, starttls in ((sub_server.sub_port, "on"), (sub_server.subs_port, "off")):
        out = subprocess.run(
            [msmtp, "--host=127.0.0.1", f"--port={port}", "--tls=on", f"--tls-starttls={starttls}",
             "--tls-certcheck=off", f"--auth={auth}", f"--user={ALICE}", f"--passwordeval=echo '{PASSWORD}'",
             f"--from={ALICE}", "--domain=client.example.net", "--", BOB],
            input=f"From: {ALICE}\nTo: {BOB}\nSubject: msmtp {auth} {starttls}\n\nvia msmtp\n",
            capture_output=True, text=True, timeout=CLI_TIMEOUT)
        assert out.returncode == 0, out.stdout + out.stderr
    got = sub_server.wait_messages(BOB, 2)
    assert sorted(m["Subject"] for m in got) == [f"msmtp {auth} off", f"msmtp {auth} on"]
    assert len(re.findall(rf"mechanism={auth.upper()} .*authenticated", sub_server.log_text())) == 2
    out = subprocess.run(
        [msmtp, "--host=127.0.0.1", f"--port={sub_server.sub_port}", "--tls=on", "--tls-starttls=on",
         "--tls-certcheck=off", f"--auth={auth}", f"--user={ALICE}", "--passwordeval=echo wrong",
         f"--from={ALICE}", "--", BOB], input="Subject: x\n\nx\n", capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert out.returncode != 0 and "535" in out.stderr, out.stderr


def test_swallow_send_on_587_and_465(sub_server):
    for flag, port in (("--starttls", sub_server.sub_port), ("--tls", sub_server.subs_port)):
        out = subprocess.run(
            [str(SWALLOW_BIN), "send", "--server", f"127.0.0.1:{port}", flag, "--insecure", "--user", ALICE,
             "--password-stdin", "--from", f"Alice <{ALICE}>", "--to", BOB, "--subject", f"swallow send {flag}",
             "--body", "Grüße"], input=PASSWORD + "\n", capture_output=True, text=True, timeout=CLI_TIMEOUT)
        assert out.returncode == 0, out.stdout + out.stderr
    got = sub_server.wait_messages(BOB, 2)
    assert sorted(m["Subject"] for m in got) == ["swallow send --starttls", "swallow send --tls"]
    # our client prefers SCRAM-SHA-256 when offered
    assert len(re.findall(r"mechanism=SCRAM-SHA-256 .*authenticated", sub_server.log_text())) == 2, sub_server.log_text()
    # a wrong password: one line on stderr, non-zero exit
    out = subprocess.run(
        [str(SWALLOW_BIN), "send", "--server", f"127.0.0.1:{sub_server.sub_port}", "--starttls", "--insecure", "--user",
         ALICE, "--password-stdin", "--from", ALICE, "--to", BOB, "--subject", "x", "--body", "x"],
        input="wrong\n", capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert out.returncode != 0 and "535" in out.stderr, out.stderr


# --------------------------------------------------------------------------------------------------
# Who may send what


def test_sender_must_be_owned_mail_from_and_from_header(sub_server):
    sub_server.cli("alias", "add", "sales@example.test", ALICE)
    with submission(sub_server) as s:
        code, text = s.mail(BOB)
        assert code == 553 and b"5.7.1" in text and b"not owned" in text
        code, text = s.mail("")
        assert code == 553 and b"5.7.1" in text
        code, text = s.mail("mallory@elsewhere.test")
        assert code == 553
        # own address in any case, +tag, and an alias pointing to alice are hers
        for frm in ("Alice@Example.TEST", "alice+lists@example.test", "sales@example.test"):
            s.sendmail(frm, [BOB], message(frm=f"Alice <{frm}>", subject=f"as {frm}"))
        # envelope fine, From: header someone else's → refused at the end of data
        s.mail(ALICE)
        s.rcpt(BOB)
        code, text = s.data(message(frm=f"Bob <{BOB}>", subject="spoof"))
        assert code == 553 and b"5.7.1" in text and b"From:" in text, text
        for frm in (f"{ALICE}, {BOB}", "undisclosed"):  # one foreign address among several; nothing parseable
            s.mail(ALICE)
            s.rcpt(BOB)
            code, _ = s.data(message(frm=frm, subject="spoof"))
            assert code == 553
    got = sub_server.wait_messages(BOB, 3)
    assert all(m["Subject"] != "spoof" for m in got)
    # Local mail is stored before the 250, a refusal stores nothing, and nothing waits in the queue
    # that could still arrive later: exactly the three accepted messages, now and for good.
    assert len(sub_server.raw_messages(BOB)) == 3
    assert sub_server.cli("queue", "list").stdout.strip() == "the queue is empty"


def test_submission_header_fixes(make_submission_server):
    server = make_submission_server(submission_extra={"received_header_user": True})
    raw = (f"From: {ALICE}\r\nTo: {BOB}\r\nBcc: secret@example.test,\r\n  other@example.test\r\n"
           "Subject: no date, no id\r\n\r\nBody.\r\n").encode()
    with submission(server) as s:
        s.sendmail(ALICE, [BOB], raw)
        s.sendmail(ALICE, [BOB], b"Subject: no from\r\n\r\nBody.\r\n")
    got = {m["Subject"]: m for m in server.wait_messages(BOB, 2)}
    m = got["no date, no id"]
    stored = bytes(m)
    assert b"Bcc" not in stored and b"secret@" not in stored and b"other@" not in stored
    assert m["Date"] and re.match(r"<[^@>]+@mx\.example\.test>$", m["Message-ID"]), (m["Date"], m["Message-ID"])
    assert "(Authenticated sender: alice@example.test)" in m.get_all("Received")[0]
    assert got["no from"]["From"].strip("<>") == ALICE


def test_per_user_limits(make_submission_server):
    server = make_submission_server(submission_extra={"max_messages_per_hour": 2, "max_recipients_per_message": 2})
    server.add_user("carol@example.test")
    with submission(server) as s:
        s.mail(ALICE)
        assert s.rcpt(BOB)[0] == 250
        assert s.rcpt("carol@example.test")[0] == 250
        code, text = s.rcpt(ALICE)
        assert code == 452 and b"4.5.3" in text
        assert s.data(message())[0] == 250
        s.sendmail(ALICE, [BOB], message())
        code, text = s.mail(ALICE)
        assert code == 450 and b"4.7.1" in text, text
    with submissions(server, user=BOB) as s:  # limits are per user
        s.sendmail(BOB, [ALICE], message(frm=BOB, to=ALICE))


# --------------------------------------------------------------------------------------------------
# No open relay, on every listener; injection


def test_no_open_relay_on_any_listener(make_submission_server):
    server = make_submission_server()
    # port 25 without relay_networks: local mail fine, foreign refused; AUTH not offered (smtp.auth = false)
    with RawSMTP(server.host, server.port) as r:
        r.greet()
        r.cmd(f"MAIL FROM:<{ALICE}>", 250)
        r.cmd("RCPT TO:<victim@elsewhere.test>", 554, "5.7.1")
        r.cmd("RSET", 250)
        r.cmd("STARTTLS", 220)
        r.starttls(TLS)
        ehlo = r.cmd("EHLO client.example.net", 250)
        assert not any(line[4:].startswith("AUTH") for line in ehlo)
        r.cmd(f"AUTH PLAIN {auth_plain(ALICE, PASSWORD)}", 503, "5.5.1")
    # 587 and 465 without AUTH: nothing at all
    with RawSMTP(server.host, server.sub_port) as r:
        r.greet()
        r.cmd(f"MAIL FROM:<{ALICE}>", 530, "5.7.0")
    s = smtplib.SMTP_SSL(server.host, server.subs_port, timeout=IO_TIMEOUT, context=TLS)
    s.ehlo("client.example.net")
    code, _ = s.mail(ALICE)
    assert code == 530
    s.close()


def test_port_25_auth_when_enabled_allows_relaying(make_submission_server):
    server = make_submission_server(smtp_extra={"relay_networks": [], "auth": True})
    with RawSMTP(server.host, server.port) as r:
        ehlo = r.greet()
        assert not any(line[4:].startswith("AUTH") for line in ehlo)  # never before TLS
        r.cmd(f"AUTH PLAIN {auth_plain(ALICE, PASSWORD)}", 530, "5.7.0")
        r.cmd("STARTTLS", 220)
        r.starttls(TLS)
        assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in [line[4:] for line in r.cmd("EHLO client.example.net", 250)]
        r.cmd(f"MAIL FROM:<{ALICE}>", 250)  # MX traffic needs no AUTH
        r.cmd("RCPT TO:<victim@elsewhere.test>", 554, "5.7.1")
        r.cmd("RSET", 250)
        r.cmd(f"AUTH PLAIN {auth_plain(ALICE, PASSWORD)}", 235)
        r.cmd(f"MAIL FROM:<{BOB}>", 553, "5.7.1")  # the same sender rules as on submission
        r.cmd(f"MAIL FROM:<{ALICE}>", 250)
        r.cmd("RCPT TO:<someone@elsewhere.test>", 250)
        r.cmd("RSET", 250)


def test_starttls_injection_on_submission_is_discarded(sub_server):
    r = RawSMTP(sub_server.host, sub_server.sub_port)
    r.expect(220)
    r.cmd("EHLO client.example.net", 250)
    # the plaintext AUTH pipelined behind STARTTLS must never be executed inside TLS
    r.send(f"STARTTLS\r\nAUTH PLAIN {auth_plain(ALICE, PASSWORD)}\r\n")
    r.expect(220)
    r.sock = TLS.wrap_socket(r.sock, server_hostname="mx.example.test")
    r.buf = b""
    r.send(f"MAIL FROM:<{ALICE}>\r\n")
    r.expect(503, "5.5.1")  # EHLO needed again, and no authentication happened
    r.cmd("EHLO client.example.net", 250)
    r.cmd(f"MAIL FROM:<{ALICE}>", 530, "5.7.0")
    r.close()


# --------------------------------------------------------------------------------------------------
# The whole path of the seeds


def test_alice_submits_on_587_bob_on_another_swallow_fetches_over_pop3(make_server, make_submission_server, dns):
    """alice@example.test → 587 (STARTTLS + AUTH) → queue → MX lookup in the test DNS → the Swallow that
    owns remote.test → Maildir → dave fetches it over POP3 with STLS."""
    pop3_port = free_port()
    receiver = make_server(name="receiver", hostname="mx.remote.test", domains=("remote.test",),
                           users=("dave@remote.test",), postmaster="dave@remote.test",
                           pop3={"listen": [f"127.0.0.1:{pop3_port}"]}, auth={"failure_delay_ms": 50})
    wait_port(pop3_port)
    sender = make_submission_server(name="sender", delivery={"smtp_port": receiver.port, "retry_initial": 1, "retry_maximum": 2},
                                    dns={"nameservers": [dns.nameserver]})
    body = "Hello Dave,\r\n.a line that starts with a dot\r\nGrüße, Alice\r\n"
    raw = (f"From: Alice <{ALICE}>\r\nTo: Dave <dave@remote.test>\r\nBcc: hidden@remote.test\r\n"
           "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n" + body).encode()
    with submission(sender) as s:
        refused = s.sendmail(ALICE, ["dave@remote.test"], raw)
        assert refused == {}
    wait_for(lambda: receiver.raw_messages("dave@remote.test"), timeout=30, what="delivery to the receiver")
    p = poplib.POP3(receiver.host, pop3_port, timeout=IO_TIMEOUT)
    p.stls(context=TLS)
    p.user("dave@remote.test")
    p.pass_(PASSWORD)
    count, _ = p.stat()
    assert count == 1
    lines = p.retr(1)[1]
    p.quit()
    text = b"\r\n".join(lines).decode("utf-8")
    assert "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=" in text
    assert ".a line that starts with a dot" in text and "Grüße, Alice" in text
    assert "Bcc" not in text and "hidden@" not in text
    assert "Message-ID: <" in text and "Date: " in text
    received = text.split("\r\n\r\n")[0].split("Received:")[1:]
    assert len(received) == 2, received  # the receiver's, then the sender's (ESMTPSA)
    assert "by mx.remote.test" in received[0] and "with ESMTPS" in received[0], received[0]
    assert "by mx.example.test" in received[1] and "with ESMTPSA" in received[1], received[1]
    assert dns.asked("remote.test", "MX")
