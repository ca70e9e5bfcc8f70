"""Whole paths that end in IMAP, against the real `swallow` binary:

- submission on 587 (STARTTLS + AUTH, Python's smtplib) → local delivery → an IMAP IDLE session (imaplib,
  with the IDLE exchange written here from RFC 2177) sees EXISTS within a second → FETCH → UID MOVE to
  Archive (COPYUID) → Archive holds it;
- the same across two Swallow servers: alice submits on server A, A's queue relays to server B through a
  [[routes]] entry, and dave's IDLE session on B sees the message arrive;
- POP3 and IMAP on one mailbox with real POP3 clients (mpop, fetchmail): a message expunged over IMAP is
  gone for POP3, and one that POP3 downloaded and deleted is EXPUNGEd in a selected IMAP session.
"""

from __future__ import annotations

import imaplib
import re
import smtplib
import time
from pathlib import Path

import pytest

from conftest import free_port, insecure_tls_context, require_tool, wait_port
from imap_support import (ALICE, PASSWORD, fetch_subjects, fetch_uid_flags, logout, make_imap_server,  # noqa: F401
                          message, ok, quote)
from test_imap_interop import describe, md5_fingerprint, run

imaplib.Commands.setdefault("MOVE", ("SELECTED",))
DAVE = "dave@remote.test"


class Idle:
    """An IDLE command on an imaplib session (RFC 2177): start, wait for untagged lines, DONE."""

    def __init__(self, client: imaplib.IMAP4):
        self.client = client
        self.tag = client._new_tag()
        client.send(self.tag + b" IDLE\r\n")
        line = client._get_line()
        assert line.startswith(b"+"), line
        self.lines: list[bytes] = []

    def wait_for(self, pattern: bytes, timeout: float) -> bytes:
        """The first untagged line matching `pattern` within `timeout` seconds (a read timeout on the
        socket bounds each wait; the server sends whole lines)."""
        deadline = time.monotonic() + timeout
        sock = self.client.sock
        previous = sock.gettimeout()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {pattern!r} within {timeout}s during IDLE; got {self.lines!r}")
                sock.settimeout(remaining)
                try:
                    line = self.client._get_line()
                except (TimeoutError, OSError) as exc:
                    raise AssertionError(f"no {pattern!r} within {timeout}s during IDLE ({exc!r}); got {self.lines!r}")
                self.lines.append(line)
                if re.search(pattern, line):
                    return line
        finally:
            sock.settimeout(previous)

    def done(self) -> None:
        self.client.send(b"DONE\r\n")
        while True:
            line = self.client._get_line()
            if line.startswith(self.tag + b" "):
                assert line.split()[1] == b"OK", line
                return
            self.lines.append(line)


def submission_server(make_imap_server, **config):
    sub = free_port()
    server = make_imap_server(submission={"listen": [f"127.0.0.1:{sub}"]}, **config)
    server.sub_port = sub
    wait_port(sub, what="swallow submission")
    return server


def submit(server, raw: bytes, to: str, user: str = ALICE) -> None:
    """587-style: EHLO, STARTTLS, EHLO, AUTH (smtplib picks PLAIN), MAIL/RCPT/DATA."""
    with smtplib.SMTP(server.host, server.sub_port, local_hostname="client.example.net", timeout=15) as s:
        s.starttls(context=insecure_tls_context())
        s.ehlo("client.example.net")
        s.login(user, PASSWORD)
        refused = s.sendmail(user, [to], raw)
        assert refused == {}, refused


def test_submit_587_idle_sees_exists_fetch_move_to_archive(make_imap_server):
    server = submission_server(make_imap_server)
    c = server.imap()
    ok(c.select("INBOX"))
    assert c.untagged_responses.get("EXISTS") == [b"0"], c.untagged_responses
    idle = Idle(c)
    raw = message("seed path", "Hello from 587.\n", to=ALICE).replace(b"From: Sender <sender@example.net>",
                                                                       b"From: Alice <alice@example.test>")
    submit(server, raw, ALICE)
    submitted = time.monotonic()
    line = idle.wait_for(rb"^\* 1 EXISTS", timeout=1.0)
    elapsed = time.monotonic() - submitted
    idle.done()
    print(f"\n[imap paths] EXISTS {elapsed * 1000:.0f} ms after the submission was accepted ({line!r})")

    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    [(head, body)] = [d for d in data if isinstance(d, tuple)]
    uid = int(re.search(rb"UID (\d+)", head).group(1))
    assert body.endswith(raw.split(b"\r\n\r\n", 1)[1]), body
    assert b"\r\nSubject: seed path\r\n" in body and b"Received: " in body

    uidvalidity_archive = int(re.search(rb"UIDVALIDITY (\d+)", ok(c.status("Archive", "(UIDVALIDITY)"))[0]).group(1))
    typ, data = c.uid("MOVE", str(uid), "Archive")
    assert typ == "OK", data
    copyuid = (c.untagged_responses.pop("COPYUID", None) or [b""])[0] or data[0]
    m = re.search(rb"(?:\[COPYUID )?(\d+) (\d+) (\d+)", copyuid)
    assert m, (copyuid, data)
    assert (int(m.group(1)), int(m.group(2))) == (uidvalidity_archive, uid), copyuid
    new_uid = int(m.group(3))
    assert c.untagged_responses.get("EXPUNGE") == [b"1"] or c.untagged_responses.get("VANISHED"), c.untagged_responses
    assert fetch_subjects(c, "INBOX") == {}
    assert fetch_subjects(c, "Archive") == {new_uid: "seed path"}
    logout(c)
    assert server.maildir_files(ALICE) == [] and len(list((server.maildir_path(ALICE) / ".Archive" / "cur").iterdir())) == 1


def test_submit_on_a_relay_to_b_idle_on_b_sees_it(make_imap_server):
    b = make_imap_server(hostname="mx.remote.test", domains=("remote.test",), users=(DAVE,), postmaster=DAVE)
    a = submission_server(make_imap_server, smtp_extra={"relay_networks": []},
                          delivery={"retry_initial": 1, "retry_maximum": 2},
                          routes=[{"domain": "remote.test", "via": f"127.0.0.1:{b.port}"}])
    c = b.imap(DAVE)
    ok(c.select("INBOX"))
    idle = Idle(c)
    raw = message("across two servers", "Hello Dave.\n", to=DAVE).replace(b"From: Sender <sender@example.net>",
                                                                           b"From: Alice <alice@example.test>")
    submit(a, raw, DAVE)
    submitted = time.monotonic()
    idle.wait_for(rb"^\* 1 EXISTS", timeout=15.0)
    print(f"\n[imap paths] A → B → IDLE EXISTS after {(time.monotonic() - submitted) * 1000:.0f} ms")
    idle.done()
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
    [(_, body)] = [d for d in data if isinstance(d, tuple)]
    assert b"Subject: across two servers" in body and b"Hello Dave." in body
    assert body.count(b"Received: ") >= 2, body  # A's and B's trace headers
    logout(c)
    assert a.maildir_files(ALICE) == []


# --------------------------------------------------------------------------------------------------
# POP3 and IMAP on one mailbox


def test_pop3_and_imap_on_one_mailbox(make_imap_server, tmp_path):
    pop3_port = free_port()
    server = make_imap_server(pop3={"listen": [f"127.0.0.1:{pop3_port}"]})
    wait_port(pop3_port, what="swallow pop3")
    for n in (1, 2, 3):
        server.deliver(message(f"shared {n}"))
    c = server.imap()
    ok(c.select("INBOX"))
    uids = {s: u for u, s in fetch_subjects(c, "INBOX").items()}
    ok(c.select("INBOX"))
    ok(c.uid("STORE", str(uids["shared 2"]), "+FLAGS", r"(\Deleted)"))
    ok(c.expunge())
    logout(c)

    # mpop (keep) sees only what IMAP left
    mpop_dir = tmp_path / "mpop"
    for sub in ("tmp", "new", "cur"):
        (mpop_dir / sub).mkdir(parents=True)
    fingerprint = ":".join(re.findall("..", server.cert_sha256().upper()))
    result = run([require_tool("mpop"), "--host=127.0.0.1", f"--port={pop3_port}", "--tls=on", "--tls-starttls=on",
                  f"--tls-fingerprint={fingerprint}", "--auth=user", f"--user={ALICE}",
                  f"--passwordeval=echo '{PASSWORD}'", f"--delivery=maildir,{mpop_dir}",
                  f"--uidls-file={tmp_path / 'uidls'}", "--keep=on"], env={"HOME": str(tmp_path)})
    assert result.returncode == 0, describe(result)
    got = sorted(p.read_bytes() for p in (mpop_dir / "new").iterdir())
    assert len(got) == 2 and all(b"Subject: shared 2" not in g for g in got), got

    # an IMAP session keeps INBOX selected while fetchmail downloads over POP3 and deletes
    c = server.imap()
    ok(c.select("INBOX"))
    assert c.untagged_responses.get("EXISTS") == [b"2"], c.untagged_responses
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 protocol pop3 port {pop3_port} user "{ALICE}" password "{PASSWORD}"\n')
    rc.chmod(0o600)
    outdir = tmp_path / "fetched"
    outdir.mkdir()
    result = run([require_tool("fetchmail"), "-f", str(rc), "--nodetach", "--nosyslog", "--idfile", str(tmp_path / "ids"),
                  "--pidfile", str(tmp_path / "pid"), "--sslproto", "auto", "--nosslcertck",
                  "--sslfingerprint", md5_fingerprint(server), "--norewrite", "--nokeep",
                  "--mda", f"/bin/sh -c 'cat > {outdir}/msg.$$'"],
                 env={"HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path)})
    assert result.returncode == 0, describe(result) + server.log_tail(15)
    assert len(list(outdir.iterdir())) == 2
    assert server.raw_messages(ALICE) == []
    ok(c.noop())
    expunged = [int(n) for n in c.untagged_responses.get("EXPUNGE", [])]
    assert len(expunged) == 2 and expunged[0] <= 2 and expunged[1] <= 1, c.untagged_responses
    ok(c.select("INBOX"))
    assert c.untagged_responses.get("EXISTS") == [b"0"], c.untagged_responses
    logout(c)


def test_sigterm_stops_a_server_after_imap_sessions(make_imap_server):
    """The clients above leave sessions behind them (logged out, dropped in IDLE); SIGTERM still stops
    the server promptly and cleanly (exit 0, "stopped" logged) rather than hanging until SIGKILL."""
    server = make_imap_server()
    c = server.imap()
    ok(c.select("INBOX"))
    logout(c)
    c = server.imap(implicit=True)
    ok(c.select("INBOX"))
    Idle(c)
    c.shutdown()  # dropped in IDLE: socket and imaplib's file on it closed, no DONE, no LOGOUT
    started = time.monotonic()
    code = server.stop(timeout=8)
    elapsed = time.monotonic() - started
    assert code == 0 and elapsed < 5, f"exit {code} after {elapsed:.1f} s\n{server.log_tail(10)}"
    assert "stopped" in server.log_text().splitlines()[-1], server.log_tail(5)
