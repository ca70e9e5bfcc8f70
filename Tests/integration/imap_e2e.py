"""Shared helpers of the end-to-end IMAP tests (test_imap_session, _mailboxes, _messages, _live, _clients; the interop tests use imap_support.py): the server factory, a raw IMAP client
that checks the grammar of every response it reads, a SCRAM-SHA-256 client (RFC 5802/7677), and
message builders.

Grammar check. Every complete server response a RawIMAP reads (the line and its literals) is decoded
with imap-codec's Python binding (PyPI `imap-codec` 0.1.0: `GreetingCodec`/`ResponseCodec.decode`, a
strict RFC 3501/9051 response parser in Rust). That binding has no support for some extensions this
server speaks; for exactly those response shapes the checker falls back as follows, and fails on
anything else imap-codec rejects:

  * `* ESEARCH …` (RFC 4731), `* VANISHED …` (RFC 7162 §3.2.10), `* NAMESPACE …` (RFC 2342): checked
    against their ABNF with an anchored regular expression below;
  * `BINARY[n]<origin>` in FETCH (RFC 3516 §4.2): the origin is removed, the rest decoded by imap-codec;
  * `MODSEQ (n)` in FETCH (RFC 7162 §3.1.4.1) and `(MODSEQ n)` after SEARCH/SORT (§3.1.5): the item is
    checked by regex, replaced by a core item and the rest decoded by imap-codec;
  * LIST/LSUB extended data `("CHILDINFO" (…))` / `("OLDNAME" (…))` (RFC 5258 §9): checked by regex,
    removed, the rest decoded by imap-codec;
  * `SIZE n` (RFC 8438) and `HIGHESTMODSEQ n` (RFC 7162) in STATUS: checked by regex, removed, the rest decoded by imap-codec;
  * UTF-8 quoted mailbox names after ENABLE UTF8=ACCEPT (RFC 6855 §3): re-encoded as modified UTF-7 and
    decoded by imap-codec.

`GRAMMAR_STATS` counts how each line was checked (printed by test_imap_clients.py's report).
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import os
import re
import secrets
import socket
import ssl
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import HOSTNAME, IO_TIMEOUT, free_port, insecure_tls_context, wait_port

try:
    import imap_codec
except ImportError:  # pragma: no cover - CI installs it (.ci/run)
    imap_codec = None

PASSWORD = "correct horse battery staple"
ALICE = "alice@example.test"
BOB = "bob@example.test"
FAST_AUTH = {"failure_delay_ms": 50, "max_failures_per_ip": 50, "max_failures_per_account": 50, "failure_window": 900}

GRAMMAR_STATS: Counter = Counter()


def _print_grammar_stats() -> None:
    if GRAMMAR_STATS:
        print(f"\n[imap grammar] responses checked: {dict(GRAMMAR_STATS)}")


atexit.register(_print_grammar_stats)


def require_module(name: str):
    """A PyPI package the tests need: missing → failure in CI, skip elsewhere."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"Python package {name} is not installed (see .ci/run's pip line)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


# --------------------------------------------------------------------------------------------------
# server


def make_imap(make_server, *, imap_extra: dict | None = None, auth_extra: dict | None = None, pop3: bool = False,
              start: bool = True, **config):
    """A server with [imap] (STARTTLS) and [imaps] on free ports, a short authentication failure delay
    and, with pop3=True, [pop3] too. Attributes imap_port, imaps_port (and pop3_port)."""
    imap_port, imaps_port = free_port(), free_port()
    imap = {"listen": [f"127.0.0.1:{imap_port}"], "autologout": 600, "login_timeout": 60}
    imap.update(imap_extra or {})
    auth = dict(FAST_AUTH)
    auth.update(auth_extra or {})
    if pop3:
        pop3_port = free_port()
        config["pop3"] = {"listen": [f"127.0.0.1:{pop3_port}"], "allow_plaintext_auth": True}
    server = make_server(imap=imap, imaps={"listen": [f"127.0.0.1:{imaps_port}"]}, auth=auth, start=False, **config)
    server.imap_port, server.imaps_port = imap_port, imaps_port
    # Clients still connected at the end of a test are closed before the server is stopped (an open
    # session would make the SIGTERM wait for it).
    server.imap_clients = []
    stop = server.stop

    def stop_after_clients(*args, **kwargs):
        for c in server.imap_clients:
            c.close()
        server.imap_clients.clear()
        return stop(*args, **kwargs)

    server.stop = stop_after_clients
    if pop3:
        server.pop3_port = pop3_port
    if start:
        start_imap(server)
    return server


def start_imap(server) -> None:
    server.start()
    wait_port(server.imap_port, what="imap")
    wait_port(server.imaps_port, what="imaps")
    if hasattr(server, "pop3_port"):
        wait_port(server.pop3_port, what="pop3")


# --------------------------------------------------------------------------------------------------
# grammar check


_NZ = r"[1-9][0-9]*"
_NUM = r"(?:0|[1-9][0-9]*)"
_SEQ_ITEM = rf"(?:{_NZ}|\*)(?::(?:{_NZ}|\*))?"
_SEQSET = rf"{_SEQ_ITEM}(?:,{_SEQ_ITEM})*"
_ESEARCH_RE = re.compile(
    rb'^\* ESEARCH(?: \(TAG "[^"\\\r\n]*"\))?(?: UID)?'
    + rf"(?: (?:MIN {_NZ}|MAX {_NZ}|COUNT {_NUM}|ALL {_SEQSET}|MODSEQ {_NZ}))*\r\n$".encode()
)
_VANISHED_RE = re.compile(rf"^\* VANISHED(?: \(EARLIER\))? {_SEQSET}\r\n$".encode())
_NS = r'(?:NIL|\((?:\("[^"\r\n]*" (?:"[^"\\\r\n]"|NIL)\))+\))'
_NAMESPACE_RE = re.compile(rf"^\* NAMESPACE {_NS} {_NS} {_NS}\r\n$".encode())
_MODSEQ_ITEM = re.compile(rb"MODSEQ \(([0-9]+)\)")
_BINARY_PARTIAL = re.compile(rb"( BINARY\[[0-9.]*\])<[0-9]+>(?= ~?\{[0-9]+\}\r\n)")
_SEARCH_MODSEQ = re.compile(rb"^(\* (?:SEARCH|SORT)(?: [0-9]+)+) \(MODSEQ [1-9][0-9]*\)\r\n$")
_LIST_EXT = re.compile(rb'^(\* (?:LIST|LSUB) .*) \((?:"CHILDINFO" \((?:"[A-Z-]+" ?)+\)|"OLDNAME" \("[^"\r\n]*"\))\)\r\n$')


class GrammarError(AssertionError):
    pass


def _decode(raw: bytes, greeting: bool) -> bool:
    codec = imap_codec.GreetingCodec if greeting else imap_codec.ResponseCodec
    try:
        rest, _ = codec.decode(raw)
    except imap_codec.DecodeError:
        return False
    return rest == b""


def _mutf7(name: str) -> str:
    out, run = [], []

    def flush():
        if run:
            b = base64.b64encode("".join(run).encode("utf-16-be")).rstrip(b"=").decode().replace("/", ",")
            out.append("&" + b + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


_CODE_ARGS = {
    b"APPENDUID": rb"[1-9][0-9]* [1-9][0-9]*(?:[:,][1-9][0-9]*)*",
    b"COPYUID": rb"[1-9][0-9]* [0-9:,]+ [0-9:,]+",
    b"UIDVALIDITY": rb"[1-9][0-9]*", b"UIDNEXT": rb"[1-9][0-9]*", b"UNSEEN": rb"[1-9][0-9]*",
    b"HIGHESTMODSEQ": rb"[1-9][0-9]*", b"MODIFIED": _SEQSET.encode(),
}


def _check_framing(raw: bytes) -> None:
    """Things imap-codec 0.1.0 lets through: a line must end in CRLF with no bare CR or LF outside
    literals, and a literal must be exactly as long as announced (the reader guarantees that), and the
    response codes imap-codec only knows as "Other" must have the arguments of their ABNF."""
    text, pos = b"", 0
    for m in re.finditer(rb"~?\{([0-9]+)\+?\}\r\n", raw):
        if m.start() < pos:
            continue
        text += raw[pos:m.start()] + b"{}"
        pos = m.end() + int(m.group(1))
    text += raw[pos:]
    if not text.endswith(b"\r\n") or b"\n" in text[:-2].replace(b"{}", b"") or b"\r" in text[:-2]:
        raise GrammarError(f"a response line must end in CRLF, with no CR or LF inside: {raw!r}")
    m = re.match(rb"^(?:\*|[^ ]+) (?:OK|NO|BAD|BYE|PREAUTH) \[([A-Z-]+)(?: ([^\]]*))?\]", raw)
    if m and m.group(1) in _CODE_ARGS:
        if m.group(2) is None or not re.fullmatch(_CODE_ARGS[m.group(1)], m.group(2)):
            raise GrammarError(f"[{m.group(1).decode()}] with bad arguments: {raw!r}")


def check_grammar(raw: bytes, *, greeting: bool = False) -> str:
    """Raises GrammarError unless `raw` (one complete response) is valid; returns how it was checked."""
    if imap_codec is None:
        require_module("imap_codec")
    _check_framing(raw)
    if _decode(raw, greeting):
        GRAMMAR_STATS["imap-codec"] += 1
        return "imap-codec"
    how = None
    if b"\r\n" in raw[:-2] and not re.search(rb"\{[0-9]+\+?\}\r\n", raw):
        raise GrammarError(f"CR LF inside a response line: {raw!r}")
    if raw.startswith(b"* ESEARCH"):
        how = "regex ESEARCH" if _ESEARCH_RE.match(raw) else None
    elif raw.startswith(b"* VANISHED"):
        how = "regex VANISHED" if _VANISHED_RE.match(raw) else None
    elif raw.startswith(b"* NAMESPACE"):
        how = "regex NAMESPACE" if _NAMESPACE_RE.match(raw) else None
    elif re.match(rb"^\* [0-9]+ FETCH \(", raw) and (_MODSEQ_ITEM.search(raw) or _BINARY_PARTIAL.search(raw)):
        if _decode(_BINARY_PARTIAL.sub(rb"\1", _MODSEQ_ITEM.sub(rb"RFC822.SIZE \1", raw)), False):
            how = "imap-codec, MODSEQ / BINARY[]<n> by regex"
    elif _SEARCH_MODSEQ.match(raw):
        if _decode(_SEARCH_MODSEQ.match(raw).group(1) + b"\r\n", False):
            how = "imap-codec, (MODSEQ) by regex"
    elif re.match(rb"^\* STATUS .* \(.*(SIZE|HIGHESTMODSEQ) [0-9]+", raw):  # RFC 8438, RFC 7162 §3.1.6
        if _decode(re.sub(rb" ?\b(SIZE|HIGHESTMODSEQ) [0-9]+", b"", raw).replace(b"( ", b"("), False):
            how = "imap-codec, STATUS SIZE/HIGHESTMODSEQ by regex"
    elif _LIST_EXT.match(raw):
        if _decode(_LIST_EXT.match(raw).group(1) + b"\r\n", False):
            how = "imap-codec, LIST extended data by regex"
    if how is None and any(b > 0x7F for b in raw.split(b"{", 1)[0]) and raw.startswith((b"* LIST", b"* LSUB", b"* STATUS")):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GrammarError(f"invalid UTF-8 in {raw!r}")
        recoded = re.sub(r'"((?:[^"\\]|\\.)*)"', lambda m: '"' + _mutf7(m.group(1)) + '"', text).encode("ascii")
        try:
            how = check_grammar(recoded) + " (UTF-8 name re-encoded)"
        except GrammarError:
            how = None
    if how is None:
        raise GrammarError(f"server response violates the IMAP grammar (imap-codec rejects it): {raw!r}")
    GRAMMAR_STATS[how] += 1
    return how


# --------------------------------------------------------------------------------------------------
# raw client


class Closed(Exception):
    """The server closed the connection."""


class RawIMAP:
    """A plain-socket IMAP client that sends exactly what it is given and reads whole responses
    (line + literals), checking each with check_grammar. `transcript` keeps every response."""

    def __init__(self, server, *, implicit_tls: bool = False, port: int | None = None, timeout: float = IO_TIMEOUT,
                 greeting: bool = True):
        self.server = server
        port = port or (server.imaps_port if implicit_tls else server.imap_port)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if implicit_tls:
            self.sock = insecure_tls_context().wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.buf = b""
        self.transcript: list[bytes] = []
        self._tag = 0
        getattr(server, "imap_clients", []).append(self)
        self.greeting = self.read_response(greeting=True) if greeting else None

    # -- I/O
    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise Closed(f"connection closed; unread {self.buf[:200]!r}")
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[: i + 2], self.buf[i + 2:]
                return line
            self._fill()

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, *, greeting: bool = False, check: bool = True) -> bytes:
        """One complete response, CRLF included; raises Closed at EOF."""
        out = b""
        while True:
            line = self._line()
            out += line
            m = re.search(rb"~?\{([0-9]+)\}\r\n$", line)
            if not m:
                break
            out += self._exactly(int(m.group(1)))
        self.transcript.append(out)
        if check:
            check_grammar(out, greeting=greeting)
        return out

    def settimeout(self, t: float | None) -> None:
        self.sock.settimeout(t)

    def next_tag(self) -> str:
        self._tag += 1
        return f"t{self._tag}"

    def until_tagged(self, tag: str) -> tuple[list[bytes], bytes]:
        untagged = []
        while True:
            r = self.read_response()
            if r.startswith(tag.encode() + b" "):
                return untagged, r
            untagged.append(r)

    def cmd(self, text: bytes | str, *, tag: str | None = None, expect: str | None = "OK") -> tuple[list[bytes], bytes]:
        """Sends `tag text`, reads up to the tagged reply; `expect` (OK/NO/BAD or None) is asserted."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        tag = tag or self.next_tag()
        self.send(tag.encode() + b" " + text + b"\r\n")
        untagged, tagged = self.until_tagged(tag)
        if expect is not None:
            assert tagged.startswith(f"{tag} {expect}".encode()), f"{text[:200]!r} → {tagged!r} (untagged {untagged[:5]!r})"
        return untagged, tagged

    def starttls(self) -> None:
        self.cmd("STARTTLS")
        assert self.buf == b"", f"bytes after the STARTTLS reply: {self.buf!r}"
        self.sock = insecure_tls_context().wrap_socket(self.sock, server_hostname=HOSTNAME)

    def login(self, user: str = ALICE, password: str = PASSWORD) -> bytes:
        return self.cmd(f'LOGIN "{user}" "{password}"')[1]

    def select(self, mailbox: str = "INBOX", extra: str = "") -> list[bytes]:
        return self.cmd(f'SELECT "{mailbox}"{extra}')[0]

    def read_until_closed(self, timeout: float = IO_TIMEOUT) -> list[bytes]:
        """Every response until the server closes."""
        self.sock.settimeout(timeout)
        out = []
        try:
            while True:
                out.append(self.read_response())
        except (Closed, ConnectionResetError, ssl.SSLError):
            return out

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def imap_session(server, user: str = ALICE, *, select: str | None = None, implicit_tls: bool = True) -> RawIMAP:
    """A logged-in RawIMAP over [imaps] (or STARTTLS with implicit_tls=False)."""
    c = RawIMAP(server, implicit_tls=implicit_tls)
    if not implicit_tls:
        c.starttls()
    c.login(user)
    if select:
        c.select(select)
    return c


# --------------------------------------------------------------------------------------------------
# response helpers


def fetch_items(responses: list[bytes]) -> dict[int, bytes]:
    """{sequence number: the FETCH response} of the `* n FETCH` responses."""
    out = {}
    for r in responses:
        m = re.match(rb"\* ([0-9]+) FETCH ", r)
        if m:
            out[int(m.group(1))] = r
    return out


def literal_of(response: bytes, item: bytes) -> bytes:
    """The literal value of `item` (e.g. b"BODY[]") in a FETCH response."""
    i = response.index(item + b" ")
    m = re.compile(rb"~?\{([0-9]+)\}\r\n").match(response, i + len(item) + 1)
    assert m, f"{item!r} is not a literal in {response[:300]!r}"
    return response[m.end(): m.end() + int(m.group(1))]


def search_numbers(responses: list[bytes], kind: bytes = b"SEARCH") -> list[int]:
    for r in responses:
        if r.startswith(b"* " + kind):
            return [int(x) for x in re.findall(rb" ([0-9]+)", r.split(b"(MODSEQ")[0])]
    raise AssertionError(f"no * {kind!r} in {responses!r}")


def uid_of(response: bytes) -> int:
    return int(re.search(rb"UID ([0-9]+)", response).group(1))


def flags_of(response: bytes) -> set[str]:
    m = re.search(rb"FLAGS \(([^)]*)\)", response)
    assert m, response
    return set(m.group(1).decode().split())


def modseq_of(response: bytes) -> int:
    return int(re.search(rb"MODSEQ \(([0-9]+)\)", response).group(1))


# --------------------------------------------------------------------------------------------------
# messages


def message(n: int = 1, *, subject: str | None = None, to: str = ALICE, frm: str = "Sender <sender@example.net>",
            body: str | None = None, headers: str = "", date: str = "Mon, 01 Jan 2024 00:00:00 +0000") -> bytes:
    return (
        f"From: {frm}\r\nTo: <{to}>\r\nSubject: {subject if subject is not None else f'message {n}'}\r\n"
        f"Message-ID: <m{n}.{time.time_ns()}@example.net>\r\nDate: {date}\r\n{headers}\r\n"
        f"{body if body is not None else f'body of message {n}'}\r\n"
    ).encode()


def deliver(server, raw: bytes, to: str = ALICE) -> None:
    with server.smtp() as smtp:
        smtp.sendmail("sender@example.net", [to], raw)


def append(c: RawIMAP, raw: bytes, mailbox: str = "INBOX", flags: str = "", date: str | None = None) -> int:
    """APPEND with LITERAL+; returns the UID from APPENDUID."""
    opts = (f" ({flags})" if flags else "") + (f' "{date}"' if date else "")
    tag = c.next_tag()
    c.send(f'{tag} APPEND "{mailbox}"{opts} {{{len(raw)}+}}\r\n'.encode() + raw + b"\r\n")
    _, tagged = c.until_tagged(tag)
    m = re.match(rb"\S+ OK \[APPENDUID [0-9]+ ([0-9]+)\]", tagged)
    assert m, tagged
    return int(m.group(1))


def write_maildir_messages(server, address: str, messages: list[bytes], folder: str | None = None) -> None:
    """Drops messages straight into the user's Maildir (or `.folder`) new/, as a delivery agent would."""
    root = server.maildir_path(address)
    if folder:
        root = root / ("." + folder)
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for i, raw in enumerate(messages):
        name = f"{stamp}.M{i}P{os.getpid()}.test,S={len(raw)}"  # S=: the size, as Dovecot writes it
        (root / "tmp" / name).write_bytes(raw)
        os.rename(root / "tmp" / name, root / "new" / name)


# --------------------------------------------------------------------------------------------------
# SCRAM-SHA-256 (RFC 5802, RFC 7677), client side


class ScramClient:
    def __init__(self, user: str, password: str, nonce: str | None = None):
        self.user, self.password = user, password
        self.nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.first_bare = f"n={name},r={self.nonce}"
        self.server_signature = b""

    def first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def final(self, server_first: bytes, *, tamper_proof: bool = False) -> bytes:
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce), server_first
        salt, iterations = base64.b64decode(attrs["s"]), int(attrs["i"])
        assert iterations >= 4096, f"RFC 7677 §4: iteration count {iterations} < 4096"
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c={base64.b64encode(b'n,,').decode()},r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        if tamper_proof:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        assert server_final == b"v=" + base64.b64encode(self.server_signature), \
            f"server signature wrong: {server_final!r}"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def continuation_data(response: bytes) -> bytes:
    assert response.startswith(b"+"), response
    return base64.b64decode(response[1:].strip())
