"""Fixtures for the loopback integration tests of the real `swallow` binary.

Every test gets its own data directory under pytest's tmp_path, its own free port on 127.0.0.1 and its
own `swallow serve` process, which the fixture finalizer stops (SIGTERM, then SIGKILL after 10 s).

The binary is `$SWALLOW_BIN`, or `<repo>/.build/debug/swallow` where `<repo>` is found relative to this
file (Tests/integration/conftest.py → two levels up).
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import os
import shutil
import signal
import socket
import ssl
import smtplib
import subprocess
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
    auth: dict | None = None,
) -> str:
    lines = [
        f"hostname = {toml_str(hostname)}",
        f"domains = [{', '.join(toml_str(d) for d in domains)}]",
        f"data_dir = {toml_str(str(data_dir))}",
    ]
    if postmaster is not None:
        lines.append(f"postmaster = {toml_str(postmaster)}")
    lines += ["", "[smtp]", f'listen = ["127.0.0.1:{port}"]', "relay_networks = []"]
    for key, value in (smtp_extra or {}).items():
        lines.append(f"{key} = {json.dumps(value)}")
    # POP3 listeners default to fixed ports (2110/2995); tests that do not ask for them switch them off
    # so that several servers can run at once.
    for name, table in (("pop3", pop3), ("pop3s", pop3s), ("auth", auth)):
        if table is None and name == "auth":
            continue
        lines += ["", f"[{name}]"]
        for key, value in (table if table is not None else {"listen": []}).items():
            lines.append(f"{key} = {json.dumps(value)}")
    if tls:
        lines += ["", "[tls]"]
        for key, value in tls.items():
            lines.append(f"{key} = {toml_str(str(value))}")
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
        self.proc = subprocess.Popen(
            [str(SWALLOW_BIN), "serve", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"swallow serve exited with {self.proc.returncode} before listening\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"swallow serve not listening on {self.port} after {timeout}s\n{self.log_tail()}")
                time.sleep(0.05)

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
        d = self.maildir_path(address) / sub
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.is_file())

    def raw_messages(self, address: str) -> list[bytes]:
        """Raw bytes of every message in new/ and cur/, read through Python's mailbox.Maildir."""
        path = self.maildir_path(address)
        if not path.is_dir():
            return []
        md = mailbox.Maildir(str(path), factory=None, create=False)
        return [md.get_bytes(key) for key in sorted(md.keys())]

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
# pytest plumbing


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
def server(make_server) -> SwallowServer:
    """A running server for example.test with users alice and bob; postmaster → alice."""
    return make_server()
