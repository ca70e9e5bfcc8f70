"""Fixtures for the loopback integration tests of the real `swallow` binary.

Every test gets its own data directory under pytest's tmp_path, its own free port on 127.0.0.1 and its
own `swallow serve` process, which the fixture finalizer stops (SIGTERM, then SIGKILL after 10 s).

The binary is `$SWALLOW_BIN`, or `<repo>/.build/debug/swallow` where `<repo>` is found relative to this
file (Tests/integration/conftest.py → two levels up).
"""

from __future__ import annotations

import email
import errno
import email.policy
import json
import mailbox
import os
import shutil
import signal
import socket
import ssl
import smtplib
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SWALLOW_BIN = Path(os.environ.get("SWALLOW_BIN", REPO_ROOT / ".build" / "debug" / "swallow"))
IN_CI = os.environ.get("CI") == "true"

HOSTNAME = "mx.example.test"
DOMAIN = "example.test"
DEFAULT_USERS = ("alice@example.test", "bob@example.test")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
IO_TIMEOUT = 15.0


# --------------------------------------------------------------------------------------------------
# helpers usable from tests


_HANDED_OUT_PORTS: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this test run has not
    handed out before (the kernel may offer the same ephemeral port twice before a server binds it)."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT_PORTS:
            _HANDED_OUT_PORTS.add(port)
            return port
    raise RuntimeError("no unused port found")


def insecure_tls_context() -> ssl.SSLContext:
    """A client context that accepts the server's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def require_tool(name: str) -> str:
    """Path of an external peer; a missing one fails in CI and skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package '{name}')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_config(
    *,
    data_dir: Path,
    port: int,
    hostname: str = HOSTNAME,
    domains=(DOMAIN,),
    postmaster: str | None = "alice@example.test",
    smtp_extra: dict | None = None,
    limits: dict | None = None,
    tls: dict | None = None,
    pop3: dict | None = None,
    pop3s: dict | None = None,
    imap: dict | None = None,
    imaps: dict | None = None,
    submission: dict | None = None,
    submissions: dict | None = None,
    auth: dict | None = None,
    delivery: dict | None = None,
    routes: list[dict] | None = None,
    dns: dict | None = None,
    spf: dict | None = None,
    dmarc: dict | None = None,
    srs: dict | None = None,
    arc: dict | None = None,
    log: dict | None = None,
) -> str:
    lines = [
        f"hostname = {toml_str(hostname)}",
        f"domains = [{', '.join(toml_str(d) for d in domains)}]",
        f"data_dir = {toml_str(str(data_dir))}",
    ]
    if postmaster is not None:
        lines.append(f"postmaster = {toml_str(postmaster)}")
    smtp = {"relay_networks": []}
    smtp.update(smtp_extra or {})
    lines += ["", "[smtp]", f'listen = ["127.0.0.1:{port}"]']
    for key, value in smtp.items():
        lines.append(f"{key} = {json.dumps(value)}")
    # POP3, IMAP and submission listeners default to fixed ports (2110/2995/2143/2993/2587/2465); tests
    # that do not ask for them switch them off so that several servers can run at once.
    for name, table in (("submission", submission), ("submissions", submissions), ("pop3", pop3), ("pop3s", pop3s),
                        ("imap", imap), ("imaps", imaps), ("auth", auth)):
        if table is None and name == "auth":
            continue
        lines += ["", f"[{name}]"]
        for key, value in (table if table is not None else {"listen": []}).items():
            lines.append(f"{key} = {json.dumps(value)}")
    if tls:
        lines += ["", "[tls]"]
        for key, value in tls.items():
            lines.append(f"{key} = {toml_str(str(value))}")
    # [delivery] and [dns] are plain tables; [[routes]] is an array of tables ({"domain": …, "via": …}).
    # Every server asks a loopback DNS server (NXDOMAIN for all names unless a test brings its own):
    # the SPF/DMARC checks of incoming mail must not query the machine's resolver.
    if dns is None and (shared := shared_dns()) is not None:
        dns = {"nameservers": [shared.nameserver]}
    for name, table in (("delivery", delivery), ("dns", dns), ("spf", spf), ("dmarc", dmarc), ("srs", srs), ("arc", arc),
                        ("log", log)):
        if table:
            lines += ["", f"[{name}]"]
            for key, value in table.items():
                lines.append(f"{key} = {json.dumps(value)}")
    for route in routes or []:
        lines += ["", "[[routes]]"]
        for key, value in route.items():
            lines.append(f"{key} = {json.dumps(value)}")
    lim = {"max_message_size": 26214400, "max_recipients": 100}
    lim.update(limits or {})
    lines += ["", "[limits]"]
    for key, value in lim.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def mailbox_dir(data_dir: Path, address: str) -> Path:
    local, _, domain = address.rpartition("@")
    return data_dir / "mail" / domain.lower() / local.lower()


class RawSMTP:
    """A deliberately dumb SMTP client over a plain socket: it sends exactly the bytes it is given."""

    def __init__(self, host: str, port: int, timeout: float = IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout

    # -- I/O
    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_reply(self) -> tuple[int, list[str]] | None:
        """One (possibly multi-line) reply as (code, [text lines including code]); None on EOF."""
        lines: list[str] = []
        while True:
            line = self.read_line()
            if line is None:
                if lines:
                    raise AssertionError(f"connection closed inside a multi-line reply: {lines!r}")
                return None
            text = line.decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            raise AssertionError(f"malformed reply: {lines!r}")
        return code, lines

    def expect(self, code: int, enhanced: str | None = None) -> list[str]:
        reply = self.read_reply()
        assert reply is not None, f"connection closed while expecting {code}"
        got, lines = reply
        assert got == code, f"expected {code}, got {lines!r}"
        if enhanced is not None:
            assert lines[-1][4:].startswith(enhanced), f"expected {code} {enhanced}, got {lines!r}"
        return lines

    def cmd(self, line: str, code: int, enhanced: str | None = None) -> list[str]:
        self.send(line + "\r\n")
        return self.expect(code, enhanced)

    def greet(self, helo: str = "client.example.net") -> list[str]:
        self.expect(220)
        return self.cmd(f"EHLO {helo}", 250)

    def read_all_replies(self) -> list[tuple[int, list[str]]]:
        """Every reply until the server closes the connection."""
        replies = []
        while True:
            try:
                reply = self.read_reply()
            except (ConnectionResetError, socket.timeout, ssl.SSLError):
                break
            if reply is None:
                break
            replies.append(reply)
        return replies

    def starttls(self, context: ssl.SSLContext | None = None, server_hostname: str = HOSTNAME) -> None:
        assert self.buf == b"", f"plaintext bytes buffered before TLS: {self.buf!r}"
        self.sock = (context or insecure_tls_context()).wrap_socket(self.sock, server_hostname=server_hostname)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SwallowServer:
    """One `swallow` data directory + config, and the `swallow serve` process using it."""

    def __init__(self, base: Path, *, users=DEFAULT_USERS, data_dir: Path | None = None, **config):
        self.base = base
        self.host = "127.0.0.1"
        self.port = free_port()
        self.data_dir = data_dir or (base / "data")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = base / "swallow.toml"
        self.config = config
        self.log_path = base / "swallow.log"
        self.proc: subprocess.Popen | None = None
        # Put before the binary by `start` (a test runs the server through setpriv, say).
        self.command_prefix: list[str] = []
        self._log_file = None
        self.write_config()
        for user in users:
            self.add_user(user)

    # -- configuration and CLI
    def write_config(self) -> None:
        self.config_path.write_text(
            render_config(data_dir=self.data_dir, port=self.port, **self.config), encoding="utf-8"
        )

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(SWALLOW_BIN), *args, "--config", str(self.config_path)]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=None if input is not None else subprocess.DEVNULL
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def add_user(self, address: str, password: str = "correct horse battery staple") -> None:
        self.cli("user", "add", address, "--password-stdin", input=password + "\n")

    # -- process
    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log_file = open(self.log_path, "ab")
        self._ready_offset = self._log_file.tell()
        self.proc = subprocess.Popen(
            [*self.command_prefix, str(SWALLOW_BIN), "serve", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the port takes connections and the start-up banner (printed just after the listeners
        bind) is in the log, so that a test's log offsets start after it."""
        deadline = time.monotonic() + timeout
        listening = False
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"swallow serve exited with {self.proc.returncode} before listening\n{self.log_tail()}"
                )
            if not listening:
                try:
                    with socket.create_connection((self.host, self.port), timeout=1.0):
                        listening = True
                except OSError:
                    pass
            if listening:
                try:
                    with open(self.log_path, "rb") as f:
                        f.seek(getattr(self, "_ready_offset", 0))
                        if b"Add a first user" in f.read():
                            return
                except FileNotFoundError:
                    pass
            if time.monotonic() > deadline:
                what = "printed its banner" if listening else f"listening on {self.port}"
                raise AssertionError(f"swallow serve not {what} after {timeout}s\n{self.log_tail()}")
            time.sleep(0.02)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "--- swallow log (tail) ---\n" + "\n".join(self.log_text().splitlines()[-lines:])

    # -- clients
    def smtp(self, **kwargs) -> smtplib.SMTP:
        client = smtplib.SMTP(self.host, self.port, local_hostname="client.example.net", timeout=IO_TIMEOUT, **kwargs)
        return client

    def raw(self) -> RawSMTP:
        return RawSMTP(self.host, self.port)

    # -- mailboxes
    def maildir_path(self, address: str) -> Path:
        return mailbox_dir(self.data_dir, address)

    def maildir_files(self, address: str, sub: str = "new") -> list[Path]:
        """Message files in `sub`; a Maildir (or subdirectory) not created yet has none."""
        return _files_in(self.maildir_path(address) / sub)

    def raw_messages(self, address: str) -> list[bytes]:
        """Raw bytes of every message in new/ and cur/, in the order of Python's mailbox.Maildir keys
        (the name up to the ':' info). A Maildir that does not exist yet, or is being created (new/
        made, cur/ not yet), has no messages so far rather than being an error: the server may be
        creating it right now (a DSN to a first-time recipient). A file moved from new/ to cur/ between
        listing and reading is read from its new place."""
        path = self.maildir_path(address)
        while True:
            found: dict[str, Path] = {}
            for sub in ("new", "cur"):
                for f in _files_in(path / sub):
                    found[f.name.split(mailbox.Maildir.colon, 1)[0]] = f
            out = []
            try:
                for key in sorted(found):
                    out.append(found[key].read_bytes())
            except FileNotFoundError:
                continue  # renamed under us (new/ → cur/): list again
            return out

    def maildir_messages(self, address: str) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in self.raw_messages(address)]

    def wait_messages(self, address: str, count: int, timeout: float = 10.0) -> list[email.message.EmailMessage]:
        """Messages once at least `count` are there (the server acknowledges only after they are, so
        this normally returns at once; the poll only covers designs that deliver asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.maildir_messages(address)
            if len(msgs) >= count or time.monotonic() > deadline:
                return msgs
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------------
# daemons run as peers (Postfix): private instances on 127.0.0.1, files under a traversable /tmp dir


def proc_status_kib(pid: int, field: str) -> int:
    """A KiB figure (VmRSS, VmHWM, …) from /proc/<pid>/status. A process that is gone, or a zombie
    (no memory fields any more), is a failure: a dead server must never pass a memory bound."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        raise AssertionError(f"cannot read /proc/{pid}/status (process gone?): {exc!r}") from exc
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status (process exited?)")


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid` (VmRSS), KiB; fails when the process is gone."""
    return proc_status_kib(pid, "VmRSS")


def fill_up(directory: Path) -> int:
    """Writes `directory/filler` until the file system refuses even one more byte."""
    written = 0
    with open(directory / "filler", "wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 512, 1):
            block = b"\0" * size
            while True:
                try:
                    written += f.write(block) or 0
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return written


class ZoneDNS:
    """An authoritative DNS server (dnslib, UDP and TCP) on 127.0.0.1 for `records`: a dict of lower-case
    name → list of (type, value) with type A/AAAA/MX/TXT/PTR/CNAME; MX values are (preference, host);
    TXT values are strings (split into 255-octet character-strings). NXDOMAIN for other names."""

    def __init__(self, records: dict | None = None):
        require_dnslib()
        from dnslib import QTYPE, RCODE, RR, SOA
        from dnslib.server import BaseResolver, DNSServer

        self.records: dict[str, list] = dict(records or {})
        self.queries: list[tuple[str, str]] = []
        self.port = free_port()
        outer = self

        class Resolver(BaseResolver):
            def resolve(self, request, handler):
                reply = request.reply()
                reply.header.aa = 1
                name = str(request.q.qname).rstrip(".").lower()
                qtype = QTYPE[request.q.qtype]
                outer.queries.append((name, qtype))
                soa = RR("test.", QTYPE.SOA, ttl=60, rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, 60)))
                entries = outer.records.get(name)
                exists = entries is not None or any(n.endswith("." + name) for n in outer.records)
                if not exists:
                    reply.header.rcode = RCODE.NXDOMAIN
                    reply.add_auth(soa)
                    return reply
                answered = False
                for rtype, value in entries or []:
                    if rtype == qtype:
                        reply.add_answer(outer._rr(name, rtype, value))
                        answered = True
                if not answered:
                    reply.add_auth(soa)
                return reply

        class QuietLogger:
            def __getattr__(self, name):
                return lambda *args, **kwargs: None

        self.servers = [DNSServer(Resolver(), address="127.0.0.1", port=self.port, tcp=tcp, logger=QuietLogger())
                        for tcp in (False, True)]
        for server in self.servers:
            server.start_thread()

    @staticmethod
    def _rr(name: str, rtype: str, value):
        from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RR, TXT, A
        if rtype == "TXT":
            raw = value.encode()
            rdata = TXT([raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""])
        elif rtype == "MX":
            rdata = MX(value[1].rstrip(".") + ".", value[0])
        else:
            rdata = {"A": A, "AAAA": AAAA, "PTR": PTR, "CNAME": CNAME}[rtype](value)
        return RR(name + ".", getattr(QTYPE, rtype), rdata=rdata, ttl=60)

    def add(self, name: str, rtype: str, value) -> None:
        self.records.setdefault(name.lower(), []).append((rtype, value))

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            server.server.server_close()


_SHARED_DNS: list = []


def shared_dns() -> ZoneDNS | None:
    """One empty-zone DNS server per test process (started on first use); None without dnslib outside CI."""
    if not _SHARED_DNS:
        try:
            import dnslib  # noqa: F401
        except ImportError:
            if os.environ.get("CI") == "true":
                pytest.fail("Python package dnslib is not installed (pip install dnslib)")
            return None
        _SHARED_DNS.append(ZoneDNS())
    return _SHARED_DNS[0]


def require_dnslib() -> None:
    """dnslib (PyPI) runs the test DNS servers; missing → skip, or fail in CI."""
    try:
        import dnslib  # noqa: F401
        import dnslib.server  # noqa: F401
    except ImportError:
        message = "Python package dnslib is not installed (pip install dnslib)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def require_root(peer: str) -> None:
    if os.geteuid() != 0:
        message = f"{peer} needs root to run a private instance"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for CN=localhost, made with the openssl CLI."""
    openssl = require_tool("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    key.chmod(0o600)
    cert.chmod(0o644)
    return cert, key


def shared_tmpdir(prefix: str) -> Path:
    """A directory under /tmp that unprivileged daemon users can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def wait_port(port: int, timeout: float = 20.0, what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: nothing listens on 127.0.0.1:{port} after {timeout}s")
            time.sleep(0.05)


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    """The first truthy value of `predicate()`, polled every 50 ms. A FileNotFoundError from the
    predicate (a directory it lists is not there yet, or is being created) counts as "not yet"; the
    last one is reported if the time runs out."""
    deadline = time.monotonic() + timeout
    missing: FileNotFoundError | None = None
    while True:
        try:
            value = predicate()
        except FileNotFoundError as exc:
            value, missing = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f" (last: {missing!r})" if missing else ""))
        time.sleep(0.05)


def assert_stays(predicate, duration: float, what: str = "condition", detail=None, interval: float = 0.05) -> None:
    """`predicate()` is truthy at every poll for `duration` seconds; fails at the first poll where it is
    not (with `detail()` in the message when given). For "X must still hold after a while": it watches
    the whole window instead of looking once after a sleep."""
    start = time.monotonic()
    while True:
        if not predicate():
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"{what} stopped holding after {time.monotonic() - start:.1f} s{extra}")
        if time.monotonic() - start >= duration:
            return
        time.sleep(interval)


def _files_in(d: Path) -> list[Path]:
    """Regular files in directory `d`, sorted; none when `d` does not exist (yet)."""
    try:
        entries = list(d.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for p in entries:
        try:
            if p.is_file():
                out.append(p)
        except FileNotFoundError:
            pass
    return sorted(out)


def maildir_files(path: Path) -> list[Path]:
    """Message files in new/ and cur/ of Maildir `path`; a Maildir not (fully) created yet has none."""
    return sorted(_files_in(path / "new") + _files_in(path / "cur"))


def session_pids(pid: int) -> list[int]:
    """Processes whose session id is `pid` (a daemon's master and its children), from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == pid:  # fields: state ppid pgrp session ...
            pids.append(int(entry))
    return pids


def kill_leftovers(master_pid: int | None) -> None:
    if not master_pid:
        return
    for pid in session_pids(master_pid) + [master_pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd{verbose}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""


def stop_private_daemon(binary: str, conf, master_pid: int | None, workdir) -> None:
    """Stop a private Postfix or Dovecot instance (`BINARY -c CONF stop`), wait for its processes, kill
    leftovers by PID and remove its directory."""
    try:
        subprocess.run([binary, "-c", str(conf), "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30, stdin=subprocess.DEVNULL)
        if master_pid:
            deadline = time.monotonic() + 10
            while session_pids(master_pid) and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        kill_leftovers(master_pid)
        shutil.rmtree(workdir, ignore_errors=True)


class PostfixPeer:
    """A private Postfix: config, queue, data, log and virtual mailboxes in one directory."""

    def __init__(self, cert_dir: Path, *, domain: str = "example.org", mailboxes=("bob", "lf", "ctl"),
                 main_extra: dict | None = None, smtpd_verbose: bool = True):
        """Virtual mailboxes `<name>@<domain>` under `vmail/<name>/`; `main_extra` adds or overrides
        main.cf parameters; `smtpd_verbose` runs smtpd with -v -v -v (the interop tests read its I/O)."""
        require_root("Postfix")
        self.postfix = require_tool("postfix")
        self.postconf = require_tool("postconf")
        self.dir = shared_tmpdir("swallow-postfix-")
        self.conf = self.dir / "conf"
        self.vmail = self.dir / "vmail"
        self.log = self.dir / "maillog"
        self.port = free_port()
        self.master_pid: int | None = None
        for d in (self.conf, self.dir / "queue", self.dir / "data", self.vmail):
            d.mkdir()
        shutil.chown(self.dir / "data", "postfix")
        shutil.chown(self.vmail, "nobody", "nogroup")
        nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout.strip()
        nogroup = subprocess.run(["id", "-g", "nobody"], capture_output=True, text=True).stdout.strip()
        defaults = subprocess.run([self.postconf, "-d", "smtpd_forbid_bare_newline"], capture_output=True, text=True)
        self.knows_bare_newline = defaults.returncode == 0 and "smtpd_forbid_bare_newline =" in defaults.stdout
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.dir / "queue",
            "data_directory": self.dir / "data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix.example.test",
            "mydomain": "example.test",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.dir,
            "smtpd_banner": "$myhostname ESMTP Postfix",
            "smtpd_tls_cert_file": cert_dir / "cert.pem",
            "smtpd_tls_key_file": cert_dir / "key.pem",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_loglevel": "1",
            "smtpd_data_restrictions": "reject_unauth_pipelining",
            "virtual_mailbox_domains": domain,
            "virtual_mailbox_base": self.vmail,
            "virtual_mailbox_maps": "inline:{ " + ", ".join(f"{b}@{domain}={b}/" for b in mailboxes) + " }",
            "virtual_uid_maps": f"static:{nobody}",
            "virtual_gid_maps": f"static:{nogroup}",
            "alias_maps": "",
            "alias_database": "",
        }
        if self.knows_bare_newline:
            # 'reject' (not 'yes' = 'normalize' in 3.7.11) refuses any bare LF, in DATA and in BDAT; the
            # exclusions default to $mynetworks, which would exempt loopback.
            main["smtpd_forbid_bare_newline"] = "reject"
            main["smtpd_forbid_bare_newline_exclusions"] = ""
        main.update(main_extra or {})
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (self.conf / "master.cf").write_text(POSTFIX_MASTER_CF.format(port=self.port, verbose=" -v -v -v" if smtpd_verbose else ""))

    def start(self):
        with open(self.dir / "postfix.out", "wb") as out:  # a file: a daemon could keep a pipe open
            result = subprocess.run([self.postfix, "-c", str(self.conf), "start"], stdout=out, stderr=out,
                                    timeout=60, stdin=subprocess.DEVNULL)
        pid_file = self.dir / "queue" / "pid" / "master.pid"
        if pid_file.exists():
            self.master_pid = int(pid_file.read_text().split()[0])
        assert result.returncode == 0, f"postfix start failed: {(self.dir / 'postfix.out').read_text()}\n{self.log_text()}"
        wait_port(self.port, what="postfix")
        if self.master_pid is None and pid_file.exists():
            self.master_pid = int(pid_file.read_text().split()[0])

    def stop(self):
        stop_private_daemon(self.postfix, self.conf, self.master_pid, self.dir)

    def log_text(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def connections(self) -> list[list[str]]:
        """smtpd's log lines per client connection (one smtpd process serves several in turn)."""
        by_pid: dict[str, list[list[str]]] = {}
        for line in self.log_text().splitlines():
            m = re.search(r"postfix/smtpd\[(\d+)\]: (.*)", line)
            if not m:
                continue
            conns = by_pid.setdefault(m.group(1), [])
            if m.group(2).startswith("connect from ") or not conns:
                conns.append([])
            conns[-1].append(line)
        return [c for conns in by_pid.values() for c in conns]

    def connection(self, marker: str) -> list[str]:
        """The log of the finished connection whose lines contain `marker`."""
        def find():
            return next((c for c in self.connections()
                         if any(marker in l for l in c) and any(": disconnect from " in l for l in c)), None)
        return wait_for(find, what=f"a finished smtpd connection with {marker!r}")

    def wait_delivered(self, queue_id: str) -> list[str]:
        """Log lines of the smtpd connection that queued `queue_id`, once the message is delivered."""
        wait_for(lambda: re.search(rf"{queue_id}: to=<[^>]+>.*status=sent", self.log_text()), what=f"{queue_id} delivered")
        return self.connection(f"{queue_id}: client=")


# --------------------------------------------------------------------------------------------------
# pytest plumbing


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long measurements, run only with SWALLOW_SLOW=1")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _check_binary():
    if not SWALLOW_BIN.exists():
        pytest.fail(f"swallow binary not found at {SWALLOW_BIN} (build it first, or set SWALLOW_BIN)")


@pytest.fixture
def swallow_bin() -> Path:
    _check_binary()
    return SWALLOW_BIN


@pytest.fixture
def make_server(tmp_path, request):
    """Factory: make_server(**config) → a started SwallowServer (config keys as in render_config,
    plus users=, start=False to only prepare it)."""
    _check_binary()
    servers: list[SwallowServer] = []

    def factory(*, start: bool = True, name: str | None = None, **config) -> SwallowServer:
        base = tmp_path / (name or f"server{len(servers)}")
        base.mkdir(parents=True, exist_ok=True)
        server = SwallowServer(base, **config)
        servers.append(server)
        if start:
            server.start()
        return server

    yield factory

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for server in servers:
        server.stop()
        if failed:
            print(f"\n=== {server.base.name}: port {server.port}, data {server.data_dir}")
            print(server.log_tail(60))


@pytest.fixture
def zone() -> ZoneDNS:
    """A loopback DNS server of the test's own (empty until the test adds records), stopped afterwards."""
    z = ZoneDNS()
    yield z
    z.stop()


@pytest.fixture
def server(make_server) -> SwallowServer:
    """A running server for example.test with users alice and bob; postmaster → alice."""
    return make_server()
