"""SIGTERM/SIGINT: stop accepting, let a transaction in flight finish, close sessions with 421 4.3.2,
exit 0."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import pytest

from conftest import RawSMTP


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_idle_session_with_421(make_server, sig):
    server = make_server()
    with server.raw() as s:
        s.greet()
        server.proc.send_signal(sig)
        s.expect(421, "4.3.2")
        assert s.read_reply() is None, "connection should be closed after 421"
    try:
        code = server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("server did not exit within 10 s of the signal")
    assert code == 0, f"exit code {code}\n{server.log_tail()}"


def wait_until_not_accepting(server, timeout: float = 10.0) -> None:
    """Poll until a new connection is refused, reset or greeted with 421."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with RawSMTP(server.host, server.port, timeout=5) as probe:
                reply = probe.read_reply()
                if reply is None or reply[0] == 421:
                    return
        except (ConnectionRefusedError, ConnectionResetError, socket.timeout):
            return
        assert time.monotonic() < deadline, "server still greets new clients 10 s after SIGTERM"
        time.sleep(0.05)


def test_transaction_in_flight_finishes_before_shutdown(make_server):
    server = make_server()
    busy, idle = server.raw(), server.raw()
    try:
        busy.greet()
        idle.greet()
        busy.cmd("MAIL FROM:<sender@remote.test>", 250)
        busy.cmd("RCPT TO:<alice@example.test>", 250)
        busy.cmd("DATA", 354)
        busy.send("Subject: in flight\r\n\r\nfirst half\r\n")

        server.proc.send_signal(signal.SIGTERM)
        wait_until_not_accepting(server)  # proves the shutdown has begun

        # end of data and one more command in one write: the answer to it must be the closing 421
        busy.send("second half\r\n.\r\nNOOP\r\n")
        lines = busy.expect(250, "2.0.0")
        assert "queued as" in lines[-1]
        reply = busy.read_reply()
        assert reply is not None and reply[0] == 421, f"expected 421 4.3.2 after the last transaction, got {reply}"
        assert reply[1][-1][4:].startswith("4.3.2"), reply
        idle.expect(421, "4.3.2")
    finally:
        busy.close()
        idle.close()
    assert server.proc.wait(timeout=10) == 0
    msgs = server.maildir_messages("alice@example.test")
    assert len(msgs) == 1 and "second half" in msgs[0].get_content()


def test_restart_on_same_port_after_shutdown(make_server):
    """A stopped server can be started again on the same port and data directory."""
    server = make_server()
    with server.smtp() as client:
        assert client.sendmail("s@remote.test", ["alice@example.test"], "Subject: one\r\n\r\n1\r\n") == {}
    assert server.stop() == 0
    server.start()
    with server.smtp() as client:
        assert client.sendmail("s@remote.test", ["alice@example.test"], "Subject: two\r\n\r\n2\r\n") == {}
    assert sorted(str(m["Subject"]) for m in server.maildir_messages("alice@example.test")) == ["one", "two"]
