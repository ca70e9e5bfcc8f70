"""Peers that do not play along at the connection level: clients that pipeline without reading the
answers, TLS handshakes that never finish, POP3 clients that stop reading in the middle of a RETR,
over-limit connections on implicit-TLS listeners, and an MX that stops reading our message. Each must be
cut off within its timeout with memory bounded, and the server must keep serving everyone else.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import IO_TIMEOUT, free_port, insecure_tls_context, rss_kib, wait_for

PASSWORD = "correct horse battery staple"




def flood_without_reading(port: int, payload: bytes, seconds: float) -> int:
    """Sends `payload` again and again for `seconds` without reading anything; returns the bytes the
    kernel took (it stops taking them once the server stops reading)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(0.5)
    block = payload * (65536 // len(payload) + 1)
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                sent += s.send(block)
            except socket.timeout:
                continue
            except OSError:
                break
    finally:
        s.close()
    return sent


def server_answers(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert s.recv(512).startswith((b"220 ", b"+OK"))


@pytest.mark.parametrize("listener,payload", [("smtp", b"HELP\r\n"), ("smtp", b"EHLO client.example.net\r\n"),
                                              ("pop3", b"CAPA\r\n")])
def test_pipelining_without_reading_keeps_memory_bounded(make_server, listener, payload):
    pop3 = free_port()
    server = make_server(pop3={"listen": [f"127.0.0.1:{pop3}"]})
    port = server.port if listener == "smtp" else pop3
    before = rss_kib(server.proc.pid)
    sent = flood_without_reading(port, payload, seconds=6)
    grown = rss_kib(server.proc.pid) - before
    # Each short command asks for a reply many times its size; a server that kept reading would have
    # hundreds of MiB of replies queued by now. Ours stops reading at its output high watermark.
    print(f"\n{listener} {payload!r}: the kernel took {sent / 1e6:.1f} MB, server RSS grew {grown / 1024:.1f} MiB")
    assert grown < 32 * 1024, f"RSS grew by {grown} KiB"
    assert sent < 64 * 1024 * 1024, f"the server kept reading: {sent} bytes"
    server_answers(port)


def test_stalled_tls_handshakes_are_closed_at_the_timeout(make_server):
    ports = {name: free_port() for name in ("submission", "submissions", "pop3", "pop3s")}
    server = make_server(smtp_extra={"command_timeout": 2},
                         submission={"listen": [f"127.0.0.1:{ports['submission']}"]},
                         submissions={"listen": [f"127.0.0.1:{ports['submissions']}"]},
                         pop3={"listen": [f"127.0.0.1:{ports['pop3']}"], "autologout": 2},
                         pop3s={"listen": [f"127.0.0.1:{ports['pop3s']}"]})
    stalled = []
    for port, starttls in ((server.port, b"STARTTLS"), (ports["submission"], b"STARTTLS"), (ports["pop3"], b"STLS"),
                           (ports["submissions"], None), (ports["pop3s"], None)):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        if starttls:
            f = s.makefile("rb")
            f.readline()
            if starttls == b"STARTTLS":
                s.sendall(b"EHLO client.example.net\r\n")
                while not f.readline().startswith(b"250 "):
                    pass
            s.sendall(starttls + b"\r\n")
            assert f.readline().startswith((b"220", b"+OK"))
        # Now say nothing: no ClientHello.
        stalled.append((port, s, time.monotonic()))
    for port, s, t0 in stalled:
        data = s.recv(100)
        waited = time.monotonic() - t0
        assert data == b"", (port, data)
        assert waited < 20, f"port {port} closed only after {waited:.1f}s"
        s.close()
    log = server.log_text()
    assert "timeout during the TLS handshake" in log
    assert "autologout during the TLS handshake" in log


def test_pop3_client_that_stops_reading_a_retr_is_logged_out_and_the_lock_released(make_server):
    pop3 = free_port()
    server = make_server(pop3={"listen": [f"127.0.0.1:{pop3}"], "allow_plaintext_auth": True, "autologout": 3})
    body = ("x" * 998 + "\r\n") * 20_000  # 20 MB: far more than the socket buffers hold
    with server.smtp() as c:
        c.sendmail("alice@example.test", ["bob@example.test"], "Subject: big\r\n\r\n" + body)
    s = socket.create_connection(("127.0.0.1", pop3), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"USER bob@example.test\r\nPASS {PASSWORD}\r\n".encode())
    assert f.readline().startswith(b"+OK") and f.readline().startswith(b"+OK")
    s.sendall(b"RETR 1\r\n")
    t0 = time.monotonic()
    # Do not read. The server must give up after autologout (3 s) without progress.
    wait_for(lambda: "autologout while the client does not read" in server.log_text(), timeout=30,
             what="autologout of a client that does not read")
    assert time.monotonic() - t0 < 30
    s.close()
    # The maildrop lock is free again.
    import poplib
    p = poplib.POP3("127.0.0.1", pop3, timeout=IO_TIMEOUT)
    p.user("bob@example.test")
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    p.quit()


def test_over_limit_connections_on_implicit_tls_are_closed_at_once(make_server):
    ports = {name: free_port() for name in ("submissions", "pop3s")}
    server = make_server(smtp_extra={"max_connections_per_ip": 2},
                         submissions={"listen": [f"127.0.0.1:{ports['submissions']}"]},
                         pop3s={"listen": [f"127.0.0.1:{ports['pop3s']}"]})
    # The readiness probe of the fixture counts against the SMTP listeners' limit until it is gone.
    wait_for(lambda: "disconnect" in server.log_text(), what="the readiness probe gone")
    for port in ports.values():
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        time.sleep(0.3)
        t0 = time.monotonic()
        extra = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert extra.recv(10) == b""
        assert time.monotonic() - t0 < 5
        extra.close()
        for h in held:
            h.close()
        # Once the held ones are gone, TLS clients are served again.
        context = insecure_tls_context()

        def greeted():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, context.wrap_socket(raw) as t:
                    return t.recv(100).startswith((b"220 ", b"+OK"))
            except OSError:
                return False
        wait_for(greeted, what="served again after the held connections closed")


class NonReadingMX:
    """Answers EHLO, MAIL, RCPT and DATA (354), then never reads again."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(5)
        self.connections = []
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        self.sock.settimeout(0.5)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections.append(conn)
            f = conn.makefile("rb")
            conn.sendall(b"220 stall.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-stall.test\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    break  # and read no more
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"250 ok\r\n")

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.connections:
            c.close()


def test_mx_that_stops_reading_defers_after_the_data_block_timeout(make_server):
    mx = NonReadingMX()
    try:
        server = make_server(smtp_extra={"relay_networks": ["127.0.0.1/32"]},
                             delivery={"retry_initial": 3600, "data_block_timeout": 2, "command_timeout": 5},
                             routes=[{"domain": "stall.test", "via": f"127.0.0.1:{mx.port}"}])
        body = ("y" * 998 + "\r\n") * 5000  # 5 MB: more than the peer's socket buffers
        with server.smtp() as c:
            c.sendmail("alice@example.test", ["someone@stall.test"], "Subject: stall\r\n\r\n" + body)
        wait_for(lambda: "did not answer in time" in server.cli("queue", "list").stdout, timeout=40,
                 what="delivery deferred with a timeout")
        # No worker is stuck: mail for a local user still flows, and the queue still answers.
        with server.smtp() as c:
            c.sendmail("alice@example.test", ["bob@example.test"], "Subject: local\r\n\r\nstill served\r\n")
        assert server.wait_messages("bob@example.test", 1)
    finally:
        mx.close()

