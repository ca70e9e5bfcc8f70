"""Shared pieces of the IMAP interop tests (test_imap_interop*.py): a Swallow server with [imap] and
[imaps] on free ports, imaplib sessions, SMTP delivery, and Dovecot's `imap` binary run pre-authenticated
over a pipe on the same Maildir.

Dovecot refuses to serve mail as root ("Mail access not allowed for root"), so the tests that put Dovecot
on Swallow's Maildir run both as one unprivileged test user (`nobody`): Swallow's data directory lives in
a traversable directory under /tmp owned by that user, and `swallow serve` is started with that user's
uid and gid. Everything listens on 127.0.0.1 at free ports and is stopped by its PID.
"""

from __future__ import annotations

import hashlib
import imaplib
import os
import re
import shlex
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (IN_CI, IO_TIMEOUT, SWALLOW_BIN, SwallowServer, free_port, insecure_tls_context, require_root,
                      require_tool, shared_tmpdir, wait_port)

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "correct horse battery staple"
TEST_USER, TEST_GROUP = "nobody", "nogroup"
DOVECOT_IMAP = "/usr/lib/dovecot/imap"
TOOL_TIMEOUT = 120

imaplib._MAXLINE = 1 << 20


# --------------------------------------------------------------------------------------------------
# the server


class IMAPSwallow(SwallowServer):
    """A SwallowServer with IMAP (STARTTLS) and IMAPS listeners on free ports; optionally run as an
    unprivileged user (`run_as`), with its whole base directory owned by that user."""

    def __init__(self, base: Path, *, run_as: str | None = None, **config):
        self.run_as = run_as
        self.imap_port, self.imaps_port = free_port(), free_port()
        imap_extra = config.pop("imap_extra", {})  # further [imap] keys (poll_interval, …)
        config.setdefault("imap", {"listen": [f"127.0.0.1:{self.imap_port}"], **imap_extra})
        config.setdefault("imaps", {"listen": [f"127.0.0.1:{self.imaps_port}"]})
        config.setdefault("auth", {"failure_delay_ms": 50, "max_failures_per_ip": 50,
                                   "max_failures_per_account": 50, "failure_window": 900})
        super().__init__(base, **config)

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        kwargs = {}
        if self.run_as:
            chown_tree(self.base, self.run_as)
            kwargs = {"user": self.run_as, "group": TEST_GROUP, "extra_groups": []}
        self._log_file = open(self.log_path, "ab")
        self._ready_offset = self._log_file.tell()
        self.proc = subprocess.Popen([str(SWALLOW_BIN), "serve", "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=self._log_file, **kwargs)
        self.wait_ready()
        wait_port(self.imap_port, what="swallow imap")
        wait_port(self.imaps_port, what="swallow imaps")

    @property
    def cert(self) -> Path:
        """The self-signed certificate the server generated in <data_dir>/tls/ (SAN mx.example.test, localhost)."""
        return self.data_dir / "tls" / "cert.pem"

    def cert_sha256(self) -> str:
        """SHA-256 of the certificate (DER), lower-case hex without colons."""
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(self.cert.read_text())).hexdigest()

    def spki_sha256(self) -> str:
        """SHA-256 of the certificate's SubjectPublicKeyInfo (interimap's SSL_fingerprint)."""
        pub = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-pubkey", "-noout"], capture_output=True, check=True)
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub.stdout, capture_output=True, check=True)
        return hashlib.sha256(der.stdout).hexdigest()

    # -- IMAP sessions
    def imap(self, user: str = ALICE, password: str = PASSWORD, *, implicit: bool = False) -> imaplib.IMAP4:
        """A logged-in imaplib session: STARTTLS on the IMAP port, or implicit TLS on IMAPS."""
        if implicit:
            client = imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=insecure_tls_context(), timeout=IO_TIMEOUT)
        else:
            client = imaplib.IMAP4(self.host, self.imap_port, timeout=IO_TIMEOUT)
            client.starttls(insecure_tls_context())
        client.login(user, password)
        return client

    def deliver(self, raw: bytes, to: str = ALICE, sender: str = "sender@example.net") -> None:
        with self.smtp() as smtp:
            smtp.sendmail(sender, [to], raw)


def chown_tree(path: Path, user: str, group: str = TEST_GROUP) -> None:
    for root, dirs, files in os.walk(path):
        shutil.chown(root, user, group)
        for name in files:
            shutil.chown(os.path.join(root, name), user, group)


@pytest.fixture
def make_imap_server(request):
    """Factory: make_imap_server(run_as=None, **render_config keys) → a started IMAPSwallow. Its base
    directory is a fresh traversable directory under /tmp (removed afterwards), so an unprivileged test
    user and the peers run as that user can reach it."""
    if not SWALLOW_BIN.exists():
        pytest.fail(f"swallow binary not found at {SWALLOW_BIN} (build it first, or set SWALLOW_BIN)")
    servers: list[IMAPSwallow] = []
    dirs: list[Path] = []

    def factory(*, start: bool = True, run_as: str | None = None, **config) -> IMAPSwallow:
        if run_as:
            require_root(f"running swallow as {run_as}")
        base = shared_tmpdir("swallow-imap-")
        dirs.append(base)
        server = IMAPSwallow(base, run_as=run_as, **config)
        servers.append(server)
        if start:
            server.start()
        return server

    yield factory

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for server in servers:
        server.stop(timeout=5)
        if failed:
            print(f"\n=== {server.base}: smtp {server.port}, imap {server.imap_port}, imaps {server.imaps_port}")
            print(server.log_tail(60))
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# messages and IMAP answers


def message(subject: str, body: str = "Hello.\n", to: str = ALICE, mid: str | None = None) -> bytes:
    mid = mid or re.sub(r"[^A-Za-z0-9]", "", subject) + f".{time.time_ns()}@example.net"
    return (f"From: Sender <sender@example.net>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n"
            f"Date: Mon, 05 Jan 2026 10:00:00 +0000\r\n\r\n" + body.replace("\n", "\r\n")).encode()


def ok(response):
    typ, data = response
    assert typ == "OK", response
    return data


def uidvalidity(client: imaplib.IMAP4, mailbox: str = "INBOX") -> int:
    data = ok(client.status(quote(mailbox), "(UIDVALIDITY)"))
    return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))


def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetch_uid_flags(client: imaplib.IMAP4, mailbox: str = "INBOX") -> dict[int, set[str]]:
    """{uid: {flags}} of every message in `mailbox` (selected read-only; \\Recent left out)."""
    ok(client.select(quote(mailbox), readonly=True))
    typ, data = client.uid("FETCH", "1:*", "(UID FLAGS)")
    assert typ == "OK", data
    out = {}
    for item in data:
        if not item:
            continue
        line = item if isinstance(item, bytes) else item[0]
        m = re.search(rb"UID (\d+)", line)
        f = re.search(rb"FLAGS \(([^)]*)\)", line)
        if m and f:
            out[int(m.group(1))] = {x for x in f.group(1).decode().split() if x != "\\Recent"}
    return out


def fetch_subjects(client: imaplib.IMAP4, mailbox: str = "INBOX") -> dict[int, str]:
    ok(client.select(quote(mailbox), readonly=True))
    typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            out[uid] = item[1].decode().split(":", 1)[1].strip() if b":" in item[1] else ""
    return out


def list_names(client: imaplib.IMAP4, command: str = "LIST", *, selectable_only: bool = False) -> set[str]:
    """Names from `LIST "" "*"` (or LSUB); `selectable_only` leaves out \\Noselect and \\NonExistent ones."""
    typ, data = client._simple_command(command, '""', '"*"')
    assert typ == "OK", data
    typ, data = client._untagged_response(typ, data, command)
    names = set()
    for line in data:
        if line is None:
            continue
        line = line if isinstance(line, bytes) else line[0]
        m = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
        assert m, line
        name = m.group(2).decode()
        attributes = m.group(1).decode().lower().split()
        if selectable_only and ("\\noselect" in attributes or "\\nonexistent" in attributes):
            continue
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        names.add(name)
    return names


def logout(client: imaplib.IMAP4) -> None:
    try:
        client.logout()
    except (imaplib.IMAP4.error, OSError):
        pass


# --------------------------------------------------------------------------------------------------
# Dovecot over a pipe


class DovecotPipe:
    """Dovecot's `imap` binary, pre-authenticated (PREAUTH) on stdin/stdout, serving `maildir` (the
    default Maildir++ layout, namespace separator `/`, indexes in the Maildir as a migrated account
    has them), run as the unprivileged test user. No listener, no daemon: each session is one process
    that exits on LOGOUT."""

    def __init__(self, maildir: Path, workdir: Path, user: str = TEST_USER):
        require_root("Dovecot as an unprivileged user")
        require_tool("dovecot")
        if not os.path.exists(DOVECOT_IMAP):
            message = f"{DOVECOT_IMAP} is missing (Debian package 'dovecot-imapd')"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        self.setpriv = require_tool("setpriv")
        self.user = user
        self.maildir = maildir
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        for d in ("run", "state", "home"):
            (self.dir / d).mkdir(exist_ok=True)
        self.conf = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self.conf.write_text(f"""\
mail_location = maildir:{maildir}
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log}
info_log_path = {self.log}
ssl = no
mail_fsync = always
namespace inbox {{
  inbox = yes
  separator = /
}}
""")
        chown_tree(self.dir, user)

    def command(self) -> list[str]:
        return [self.setpriv, f"--reuid={self.user}", f"--regid={TEST_GROUP}", "--clear-groups",
                "env", "-i", "USER=alice", f"HOME={self.dir}/home", "PATH=/usr/bin:/bin",
                DOVECOT_IMAP, "-c", str(self.conf)]

    def command_line(self) -> str:
        return " ".join(shlex.quote(a) for a in self.command())

    def session(self) -> imaplib.IMAP4_stream:
        client = imaplib.IMAP4_stream(self.command_line())
        assert client.state == "AUTH", f"Dovecot did not greet with PREAUTH: {client.welcome!r}\n{self.log_text()}"
        return client

    def log_text(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""
