"""IMAP COMPRESS=DEFLATE (RFC 4978) end to end: after `OK`, both directions are raw DEFLATE; the
session works through it (SELECT, FETCH of a body, APPEND), a second COMPRESS is refused with
[COMPRESSIONACTIVE], bytes sent before reading the OK close the connection, and a compressed command
stream that inflates to megabytes (a "zip bomb") is answered precisely with bounded memory."""

from __future__ import annotations

import socket
import ssl
import time
import zlib

from conftest import insecure_tls_context, rss_kib
from imap_e2e import ALICE, PASSWORD, deliver, make_imap, message


class Deflated:
    """A TLS IMAP connection that switches to DEFLATE after `COMPRESS DEFLATE`."""

    def __init__(self, port: int):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = insecure_tls_context().wrap_socket(raw, server_hostname="mx.example.test")
        self.compressed = False
        self.out = zlib.compressobj(wbits=-15)
        self.inflate = zlib.decompressobj(wbits=-15)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        if self.compressed:
            data = self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += self.inflate.decompress(chunk) if self.compressed else chunk
        return True

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed; buffered {self.buffer[-200:]!r}")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def until_tagged(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def closed(self, timeout: float = 10.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except (ConnectionError, ssl.SSLError, OSError):
            return True
        except socket.timeout:
            return False


def test_compress_deflate_session(make_server):
    server = make_imap(make_server)
    deliver(server, message(1, subject="compressed"))
    c = Deflated(server.imaps_port)
    assert c.line().startswith(b"* OK")
    c.send(f'a LOGIN {ALICE} "{PASSWORD}"\r\n'.encode())
    login = c.until_tagged(b"a")
    assert login[-1].startswith(b"a OK") and b"COMPRESS=DEFLATE" in login[-1], login
    c.send(b"b COMPRESS DEFLATE\r\n")
    assert c.until_tagged(b"b")[-1] == b"b OK DEFLATE active"
    c.compressed = True
    c.send(b"c SELECT INBOX\r\nd FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])\r\n")
    assert c.until_tagged(b"c")[-1].startswith(b"c OK [READ-WRITE]")
    fetched = b"\r\n".join(c.until_tagged(b"d"))
    assert b"Subject: compressed" in fetched and fetched.endswith(b"d OK FETCH completed"), fetched
    body = b"x" * 5000 + b"\r\n"
    c.send(b"e APPEND INBOX {%d+}\r\n" % (len(body) + 13) + b"Subject: z\r\n\r\n" + body + b"\r\n")
    assert c.until_tagged(b"e")[-1].startswith(b"e OK [APPENDUID "), "APPEND through DEFLATE"
    c.send(b"f COMPRESS DEFLATE\r\n")
    assert c.until_tagged(b"f")[-1].startswith(b"f NO [COMPRESSIONACTIVE]")
    c.send(b"g LOGOUT\r\n")
    assert c.until_tagged(b"g")[-1] == b"g OK LOGOUT completed"


def test_bytes_before_the_compress_ok_close_the_connection(make_server):
    server = make_imap(make_server)
    c = Deflated(server.imaps_port)
    c.line()
    c.send(f'a LOGIN {ALICE} "{PASSWORD}"\r\n'.encode())
    c.until_tagged(b"a")
    # The client must wait for the OK before compressing; bytes behind COMPRESS cannot be decoded.
    c.send(b"b COMPRESS DEFLATE\r\nc NOOP\r\n")
    assert c.line() == b"b OK DEFLATE active"
    assert c.closed(), "the server must close a connection that pipelined bytes behind COMPRESS"


def test_a_deflate_bomb_is_answered_with_bounded_memory(make_server):
    server = make_imap(make_server)
    c = Deflated(server.imaps_port)
    c.line()
    c.send(f'a LOGIN {ALICE} "{PASSWORD}"\r\n'.encode())
    c.until_tagged(b"a")
    c.send(b"b COMPRESS DEFLATE\r\n")
    c.until_tagged(b"b")
    c.compressed = True
    before = rss_kib(server.proc.pid)
    # 64 MiB of one command line inflate from about 64 KiB on the wire.
    c.send(b"c NOOP " + b"A" * (64 << 20) + b"\r\nd NOOP\r\n")
    replies = c.until_tagged(b"d")
    assert any(r.startswith(b"c BAD [TOOBIG]") for r in replies), replies
    assert replies[-1] == b"d OK NOOP completed"
    grown = rss_kib(server.proc.pid) - before
    assert grown < 32 * 1024, f"RSS grew by {grown} KiB for a 64 MiB inflated line"
