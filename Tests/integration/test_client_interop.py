"""Our clients (`swallow send`, `swallow fetch`) against servers nobody here wrote.

- aiosmtpd (PyPI), run inside this process: STARTTLS required, AUTH PLAIN and LOGIN only after TLS.
- Postfix from Debian: a private instance on 127.0.0.1 with its own configuration, queue and log, STARTTLS,
  PIPELINING, CHUNKING, `smtpd_forbid_bare_newline = reject`, `reject_unauth_pipelining`.
- Dovecot's POP3 from Debian: a private instance with its own configuration, STLS and implicit TLS.
- Swallow's own server, end to end with the CLI: send, fetch over POP3S, `swallow mime show --json`.

The peers are installed by .ci/run; a missing one fails in CI (CI=true) and skips elsewhere. Postfix and
Dovecot need root (their master processes switch users); every server listens on 127.0.0.1 only and is
stopped by its fixture. Their files live in a private directory under /tmp made traversable (0755) for
the unprivileged users they switch to (pytest's own tmp directories are 0700), removed afterwards.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (IN_CI, SWALLOW_BIN, PostfixPeer, free_port, insecure_tls_context, kill_leftovers, make_cert,
                      maildir_files, require_root, require_tool, session_pids, shared_tmpdir, stop_private_daemon, wait_for,
                      wait_port)

SUBJECT = "中文主题 测试"
FROM_NAME = "发件人名称"
FROM = f"{FROM_NAME} <alice@example.test>"
ATTACHMENT_NAME = "数据 report.bin"
ATTACHMENT_BYTES = bytes(range(256)) * 8 + b"\r\n.\r\nend\n\r\x00"
CLI_TIMEOUT = 60


# --------------------------------------------------------------------------------------------------
# helpers


def swallow(*args: str, input: bytes | str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    if not SWALLOW_BIN.exists():
        pytest.fail(f"swallow binary not found at {SWALLOW_BIN} (build it first, or set SWALLOW_BIN)")
    if isinstance(input, str):
        input = input.encode("utf-8")
    return subprocess.run(
        [str(SWALLOW_BIN), *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=CLI_TIMEOUT,
        env={**os.environ, **(env or {})},
    )


def describe(result: subprocess.CompletedProcess) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout.decode('utf-8', 'replace')}"
        f"\n--- stderr\n{result.stderr.decode('utf-8', 'replace')}"
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, describe(result)
    return result.stdout.decode("utf-8")


def require_module(name: str):
    try:
        return __import__(name)
    except ImportError:
        message = f"Python package {name} is not installed (pip install {name})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def compose_args(attach: Path) -> list[str]:
    return ["--from", FROM, "--to", "bob@example.org", "--subject", SUBJECT,
            "--body", "你好 — a body with UTF-8.\nSecond line.\n.leading dot\n", "--attach", str(attach)]


def attachment_file(directory: Path) -> Path:
    path = directory / ATTACHMENT_NAME
    path.write_bytes(ATTACHMENT_BYTES)
    return path


def check_composed(raw: bytes) -> email.message.EmailMessage:
    """The message `compose_args` describes, as Python's email package reads it."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == SUBJECT
    assert msg["From"].addresses[0].display_name == FROM_NAME
    assert msg["From"].addresses[0].addr_spec == "alice@example.test"
    body = msg.get_body(("plain",))
    assert body is not None and "你好 — a body with UTF-8." in body.get_content()
    assert ".leading dot" in body.get_content()
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == [ATTACHMENT_NAME]
    assert attachments[0].get_content() == ATTACHMENT_BYTES
    return msg


# --------------------------------------------------------------------------------------------------
# certificate shared by all peers


@pytest.fixture(scope="module")
def cert_dir():
    d = shared_tmpdir("swallow-interop-cert-")
    try:
        make_cert(d)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# 1. aiosmtpd


USER, PASSWORD = "sender@example.test", "s3cret pass wörd"


class AiosmtpdPeer:
    def __init__(self, cert_dir: Path, exclude: list[str]):
        require_module("aiosmtpd")
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[dict] = []
        self.auth_calls: list[dict] = []
        peer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                peer.messages.append({
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "content": envelope.original_content or envelope.content,
                    "tls": session.ssl is not None,
                    "authenticated": session.authenticated,
                    "login": getattr(session.auth_data, "login", None),
                })
                return "250 2.0.0 OK accepted by aiosmtpd"

        def authenticator(server, session, envelope, mechanism, auth_data):
            good = (isinstance(auth_data, LoginPassword)
                    and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode())
            peer.auth_calls.append({"mechanism": mechanism, "success": good, "tls": session.ssl is not None})
            # handled=False: aiosmtpd itself answers 535 (its default, handled=True, expects us to have replied)
            return AuthResult(success=good, handled=False, auth_data=auth_data)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_dir / "cert.pem", cert_dir / "key.pem")
        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, server_hostname="aiosmtpd.example.test",
            tls_context=context, require_starttls=True,
            authenticator=authenticator, auth_require_tls=True, auth_exclude_mechanism=exclude,
        )
        self.controller.start()

    def stop(self):
        self.controller.stop()


@pytest.fixture
def aiosmtpd_peer(cert_dir):
    peers = []

    def factory(exclude: list[str] | None = None) -> AiosmtpdPeer:
        p = AiosmtpdPeer(cert_dir, exclude or [])
        peers.append(p)
        return p

    yield factory
    for p in peers:
        p.stop()


@pytest.mark.parametrize("exclude, mechanism", [([], "PLAIN"), (["PLAIN"], "LOGIN")])
def test_aiosmtpd_starttls_auth_chinese_subject_attachment(aiosmtpd_peer, tmp_path, exclude, mechanism):
    """aiosmtpd offers AUTH LOGIN and PLAIN (we prefer PLAIN); with PLAIN excluded our client uses LOGIN."""
    peer = aiosmtpd_peer(exclude)
    attach = attachment_file(tmp_path)
    out = ok(swallow("send", "--server", f"127.0.0.1:{peer.port}", "--starttls", "--insecure",
                     "--user", USER, "--password-stdin", *compose_args(attach), input=PASSWORD + "\n"))
    assert "accepted by aiosmtpd" in out
    assert peer.auth_calls == [{"mechanism": mechanism, "success": True, "tls": True}]
    assert len(peer.messages) == 1
    got = peer.messages[0]
    assert got["mail_from"] == "alice@example.test"
    assert got["rcpt_tos"] == ["bob@example.org"]
    assert got["tls"] and got["authenticated"] and got["login"] == USER.encode()
    check_composed(got["content"])
    assert b"\r\n" in got["content"] and b"\n" not in got["content"].replace(b"\r\n", b"")


def test_aiosmtpd_wrong_password_is_one_line_535(aiosmtpd_peer, tmp_path):
    peer = aiosmtpd_peer()
    result = swallow("send", "--server", f"127.0.0.1:{peer.port}", "--starttls", "--insecure",
                     "--user", USER, "--password-stdin", *compose_args(attachment_file(tmp_path)),
                     input="wrong password\n")
    assert result.returncode != 0, describe(result)
    stderr = result.stderr.decode("utf-8").strip()
    print(stderr)
    assert len(stderr.splitlines()) == 1 and "535" in stderr, describe(result)
    assert [c["success"] for c in peer.auth_calls] == [False]
    assert peer.messages == []


def test_aiosmtpd_raw_from_stdin_lf_and_dots(aiosmtpd_peer):
    """--raw sends stdin as is, except that line ends become CRLF and leading dots are stuffed (aiosmtpd
    unstuffs them, so the handler sees the original lines)."""
    peer = aiosmtpd_peer()
    raw = (
        "From: =?UTF-8?B?5Y+R5Lu25Lq6?= <alice@example.test>\n"
        "To: bob@example.org\n"
        "Subject: raw message\n"
        "Message-ID: <raw-1@example.test>\n"
        "\n"
        "first line\n"
        ".a line starting with a dot\n"
        "..two dots\n"
        ".\n"
        "last line\n"
    ).encode()
    ok(swallow("send", "--server", f"127.0.0.1:{peer.port}", "--starttls", "--insecure",
               "--user", USER, "--from", "alice@example.test", "--to", "bob@example.org", "--raw",
               input=raw, env={"SWALLOW_PASSWORD": PASSWORD}))
    assert len(peer.messages) == 1
    assert peer.messages[0]["content"] == raw.replace(b"\n", b"\r\n")


def test_aiosmtpd_opportunistic_starttls_before_auth(aiosmtpd_peer, tmp_path):
    """aiosmtpd requires STARTTLS; our client without --starttls still upgrades (opportunistic) and logs in."""
    peer = aiosmtpd_peer()
    ok(swallow("send", "--server", f"127.0.0.1:{peer.port}", "--insecure", "--user", USER, "--password-stdin",
               *compose_args(attachment_file(tmp_path)), input=PASSWORD + "\n"))
    assert peer.auth_calls == [{"mechanism": "PLAIN", "success": True, "tls": True}]
    assert [m["tls"] for m in peer.messages] == [True]


# --------------------------------------------------------------------------------------------------
# 2. Postfix


@pytest.fixture(scope="module")
def postfix(cert_dir):
    peer = PostfixPeer(cert_dir)
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()


def queue_id(out: str) -> str:
    m = re.search(r"queued as ([0-9A-F]+)", out)
    assert m, out
    return m.group(1)


def pipelining_evidence(session: list[str]) -> tuple[int, int]:
    """From smtpd's -vvv log of one session: (bytes smtpd read in the read that delivered MAIL FROM, number
    of further reads from the client before the last RCPT TO was parsed). With PIPELINING the RCPT TO
    commands are already in smtpd's input buffer when it parses MAIL FROM, so the second number is 0."""
    mail_re = re.compile(r": < localhost\[127\.0\.0\.1\]: MAIL FROM:", re.I)
    rcpt_re = re.compile(r": < localhost\[127\.0\.0\.1\]: RCPT TO:", re.I)
    mail = next(i for i, l in enumerate(session) if mail_re.search(l))
    last_rcpt = max(i for i, l in enumerate(session) if rcpt_re.search(l))
    read = re.compile(r"vstream_buf_get_ready: fd (\d+) got (\d+)")
    fd, got = next(read.search(l).groups() for l in reversed(session[:mail]) if read.search(l))
    later = [l for l in session[mail:last_rcpt] if (m := read.search(l)) and m.group(1) == fd]
    return int(got), len(later)


def test_postfix_starttls_pipelining_attachment(postfix, tmp_path):
    attach = attachment_file(tmp_path)
    out = ok(swallow("send", "--server", f"127.0.0.1:{postfix.port}", "--starttls", "--insecure",
                     *compose_args(attach), "--cc", "ctl@example.org"))
    assert "sent to 2 recipients: 250 2.0.0 Ok" in out
    session = postfix.wait_delivered(queue_id(out))
    text = "\n".join(session)
    # STARTTLS, then everything else inside TLS
    assert re.search(r"< localhost\[127\.0\.0\.1\]: STARTTLS", text), text[-3000:]
    assert re.search(r"TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.[23]", text)
    assert re.search(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=2 starttls=1 mail=1 rcpt=2 (data|bdat)=1 quit=1", text), text[-2000:]
    assert "improper command pipelining" not in postfix.log_text()
    got, later_reads = pipelining_evidence(session)
    # shown with `pytest -s`: the lines that prove STARTTLS and PIPELINING
    print("\n".join(l for l in session if re.search(
        r"STARTTLS$|TLS connection established|vstream_buf_get_ready|: < |disconnect from", l)))
    assert later_reads == 0 and got > len("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.org>\r\n"), (got, later_reads)
    for box in ("bob", "ctl"):
        files = maildir_files(postfix.vmail / box)
        assert len(files) == 1, box
        check_composed(files[0].read_bytes())


def test_postfix_pipelining_detector_control(postfix):
    """The same log analysis on Python's smtplib, which does not pipeline: a read between MAIL and RCPT."""
    with smtplib.SMTP("127.0.0.1", postfix.port, local_hostname="control.example", timeout=15) as s:
        s.starttls(context=insecure_tls_context())
        s.ehlo("control.example")
        s.sendmail("ctl@example.test", ["ctl@example.org", "bob@example.org"], b"Subject: control\r\n\r\nno pipelining\r\n")
        reply = s.noop()
    _, later_reads = pipelining_evidence(postfix.connection("]: ehlo control.example"))
    assert later_reads >= 1
    assert reply[0] == 250


def test_postfix_raw_lf_message_accepted_with_forbid_bare_newline(postfix):
    if not postfix.knows_bare_newline:
        pytest.skip("this Postfix has no smtpd_forbid_bare_newline")
    raw = (
        b"From: alice@example.test\nTo: lf@example.org\nSubject: LF only\nMessage-ID: <lf-1@example.test>\n\n"
        b"line one\n.line with a leading dot\nline three\n"
    )
    # Control: the same bytes sent as is over a socket are refused, so the setting is in force.
    with socket.create_connection(("127.0.0.1", postfix.port), timeout=15) as s:
        f = s.makefile("rb")

        def reply() -> bytes:
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    return line

        assert reply().startswith(b"220")
        for cmd, code in ((b"EHLO raw.example", b"250"), (b"MAIL FROM:<alice@example.test>", b"250"),
                          (b"RCPT TO:<lf@example.org>", b"250"), (b"DATA", b"354")):
            s.sendall(cmd + b"\r\n")
            assert reply().startswith(code)
        s.sendall(raw.replace(b"\n.", b"\n..") + b"\r\n.\r\n")
        refused = reply()
        s.sendall(b"QUIT\r\n")
    assert refused.startswith(b"550") and b"bare <LF>" in refused, refused
    # Our client normalises to CRLF: accepted and delivered.
    out = ok(swallow("send", "--server", f"127.0.0.1:{postfix.port}", "--starttls", "--insecure",
                     "--from", "alice@example.test", "--to", "lf@example.org", "--raw", input=raw))
    session = "\n".join(postfix.wait_delivered(queue_id(out)))
    assert "bare <LF> received" not in session
    files = maildir_files(postfix.vmail / "lf")
    assert len(files) == 1
    delivered = files[0].read_bytes()
    header, _, body = delivered.partition(b"\n\n")
    assert body == b"line one\n.line with a leading dot\nline three\n"
    assert b"Subject: LF only" in header


# --------------------------------------------------------------------------------------------------
# 3. Dovecot POP3


POP_USER, POP_PASSWORD = "carol", "pop pass 密码"


class DovecotPeer:
    def __init__(self, cert_dir: Path):
        require_root("Dovecot")
        self.dovecot = require_tool("dovecot")
        self.dir = shared_tmpdir("swallow-dovecot-")
        self.conf = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self.home = self.dir / "home" / POP_USER
        self.maildir = self.home / "Maildir"
        self.pop3_port, self.pop3s_port = free_port(), free_port()
        self.master_pid: int | None = None
        for d in ("run", "state"):
            (self.dir / d).mkdir()
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        self._chown_home()
        (self.dir / "passwd").write_text(f"{POP_USER}:{{PLAIN}}{POP_PASSWORD}::::::\n")
        self.conf.write_text(f"""\
protocols = pop3
listen = 127.0.0.1
base_dir = {self.dir}/run
state_dir = {self.dir}/state
instance_name = swallow-test-{os.getpid()}-{self.pop3_port}
log_path = {self.log}
info_log_path = {self.log}
ssl = required
ssl_cert = <{cert_dir}/cert.pem
ssl_key = <{cert_dir}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={self.dir}/home/%u
}}
mail_location = maildir:~/Maildir
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""")

    def _chown_home(self):
        for root, dirs, files in os.walk(self.dir / "home"):
            for name in dirs + files + [""]:
                shutil.chown(os.path.join(root, name), "nobody", "nogroup")

    def start(self):
        # Dovecot's daemons inherit stdout/stderr: a file, not a pipe that would never reach EOF.
        with open(self.dir / "dovecot.out", "wb") as out:
            result = subprocess.run([self.dovecot, "-c", str(self.conf)], stdout=out, stderr=out, timeout=30,
                                    stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"dovecot failed: {(self.dir / 'dovecot.out').read_text()}\n{self.log_text()}"
        pid_file = self.dir / "run" / "master.pid"
        self.master_pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="dovecot pid"))
        wait_port(self.pop3_port, what="dovecot pop3")
        wait_port(self.pop3s_port, what="dovecot pop3s")

    def stop(self):
        stop_private_daemon(self.dovecot, self.conf, self.master_pid, self.dir)

    def log_text(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def add(self, name: str, data: bytes) -> None:
        path = self.maildir / "new" / f"{int(time.time())}.{name}.interop"
        path.write_bytes(data)
        shutil.chown(path, "nobody", "nogroup")

    def server_messages(self) -> list[Path]:
        return maildir_files(self.maildir)


@pytest.fixture
def dovecot(cert_dir):
    peer = DovecotPeer(cert_dir)
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()


def pop_messages() -> dict[str, bytes]:
    big_line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-_+=0123456789\n"
    return {
        "plain": b"From: a@example.test\nTo: carol@example.test\nSubject: plain\nMessage-ID: <p1@example.test>\n\nhello\n",
        "dots": (b"From: a@example.test\nTo: carol@example.test\nSubject: dots\nMessage-ID: <p2@example.test>\n\n"
                 b".leading dot\n..two dots\n.\nend\n"),
        "large": (b"From: a@example.test\nTo: carol@example.test\nSubject: large\nMessage-ID: <p3@example.test>\n\n"
                  + big_line * (1_048_576 // len(big_line) + 1)),
        "utf8": "From: 发件人 <a@example.test>\nSubject: =?UTF-8?B?5Lit5paH?=\n\n正文 body\n".encode(),
    }


def fetch(dovecot: DovecotPeer, maildir: Path, *flags: str, tls: bool = False, password: str = POP_PASSWORD):
    port = dovecot.pop3s_port if tls else dovecot.pop3_port
    return swallow("fetch", "--server", f"127.0.0.1:{port}", "--tls" if tls else "--stls", "--insecure",
                   "--user", POP_USER, "--password-stdin", "--maildir", str(maildir), *flags, input=password + "\n")


def fetched(maildir: Path) -> list[bytes]:
    return sorted(lf(p.read_bytes()) for p in maildir_files(maildir))


@pytest.mark.parametrize("tls", [False, True], ids=["stls", "pop3s"])
def test_dovecot_fetch_keep_then_delete(dovecot, tmp_path, tls):
    sent = pop_messages()
    for name, data in sent.items():
        dovecot.add(name, data)
    local = tmp_path / "Mail"
    out = ok(fetch(dovecot, local, "--keep", tls=tls))
    assert "fetched 4 messages" in out and "left on the server" in out
    assert fetched(local) == sorted(sent.values())
    assert len(dovecot.server_messages()) == 4
    assert re.search(r"pop3-login: Info: Login: user=<carol>, method=PLAIN, rip=127\.0\.0\.1.*, TLS", dovecot.log_text())

    second = tmp_path / "Mail2"
    out = ok(fetch(dovecot, second, tls=tls))
    assert "fetched 4 messages" in out
    assert fetched(second) == sorted(sent.values())
    assert dovecot.server_messages() == []
    assert re.search(r"Disconnected: Logged out .*del=4/4", dovecot.log_text()), dovecot.log_text()


def test_dovecot_new_only(dovecot, tmp_path):
    sent = pop_messages()
    for name in ("plain", "dots"):
        dovecot.add(name, sent[name])
    local = tmp_path / "Mail"
    assert "fetched 2 messages" in ok(fetch(dovecot, local, "--keep", "--new-only", tls=True))
    assert "fetched 0 messages" in ok(fetch(dovecot, local, "--keep", "--new-only", tls=True))
    assert fetched(local) == sorted([sent["plain"], sent["dots"]])
    dovecot.add("utf8", sent["utf8"])
    assert "fetched 1 message " in ok(fetch(dovecot, local, "--keep", "--new-only", tls=True))
    assert fetched(local) == sorted([sent["plain"], sent["dots"], sent["utf8"]])
    assert len(dovecot.server_messages()) == 3


def test_dovecot_wrong_password(dovecot, tmp_path):
    dovecot.add("plain", pop_messages()["plain"])
    result = fetch(dovecot, tmp_path / "Mail", tls=True, password="nope")
    assert result.returncode != 0, describe(result)
    stderr = result.stderr.decode("utf-8").strip()
    print(stderr)
    assert len(stderr.splitlines()) == 1, describe(result)
    assert "-ERR" in stderr and "Authentication failed" in stderr, describe(result)
    assert len(dovecot.server_messages()) == 1


# --------------------------------------------------------------------------------------------------
# 4. Swallow ↔ Swallow through the CLI


def test_swallow_send_fetch_mime_show(make_server, tmp_path):
    pop3s_port = free_port()
    server = make_server(pop3s={"listen": [f"127.0.0.1:{pop3s_port}"]},
                         auth={"failure_delay_ms": 50, "max_failures_per_ip": 50, "max_failures_per_account": 50,
                               "failure_window": 900})
    wait_port(pop3s_port, what="swallow pop3s")
    attach = attachment_file(tmp_path)
    args = compose_args(attach)
    args[args.index("--to") + 1] = "alice@example.test"
    args[args.index("--from") + 1] = f"{FROM_NAME} <carol@remote.example>"
    out = ok(swallow("send", "--server", f"127.0.0.1:{server.port}", "--starttls", "--insecure", *args))
    assert "sent to 1 recipient: 250" in out

    local = tmp_path / "Fetched"
    out = ok(swallow("fetch", "--server", f"127.0.0.1:{pop3s_port}", "--tls", "--insecure",
                     "--user", "alice@example.test", "--password-stdin", "--maildir", str(local),
                     input="correct horse battery staple\n"))
    assert "fetched 1 message " in out
    files = maildir_files(local)
    assert len(files) == 1
    assert server.raw_messages("alice@example.test") == []  # fetched without --keep: deleted on the server

    shown = json.loads(ok(swallow("mime", "show", "--json", "--data", str(files[0]))))
    assert shown["subject"] == SUBJECT
    assert shown["from"] == [{"name": FROM_NAME, "address": "carol@remote.example"}]
    assert [(a["filename"], a["size"]) for a in shown["attachments"]] == [(ATTACHMENT_NAME, len(ATTACHMENT_BYTES))]
    assert shown["diagnostics"] == []
    assert "你好 — a body with UTF-8." in shown["text_body"]
    # and Python agrees on the same file
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == SUBJECT
    assert [a.get_content() for a in msg.iter_attachments()] == [ATTACHMENT_BYTES]
