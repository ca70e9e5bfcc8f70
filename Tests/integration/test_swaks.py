"""swaks (Debian's Swiss Army Knife for SMTP) against `swallow serve`.

swaks is installed by the CI script; a missing swaks fails in CI and skips elsewhere.
Its --tls needs the Perl modules Net::SSLeay and IO::Socket::SSL (Debian: libnet-ssleay-perl,
libio-socket-ssl-perl).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import require_tool


def swaks(server, *args: str) -> subprocess.CompletedProcess:
    exe = require_tool("swaks")
    argv = [
        exe,
        "--server", f"{server.host}:{server.port}",
        "--helo", "swaks.client.example",
        "--from", "swaks@remote.test",
        "--timeout", "20",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_swaks_plain(server):
    result = swaks(server, "--to", "alice@example.test", "--header", "Subject: swaks plain", "--body", "plain body")
    assert result.returncode == 0, describe(result)
    assert re.search(r"<[-~] +250 2\.0\.0 Ok: queued as \S+", result.stdout), describe(result)
    msgs = server.wait_messages("alice@example.test", 1)
    assert [m["Subject"] for m in msgs] == ["swaks plain"]
    assert "plain body" in msgs[0].get_content()
    assert "swaks.client.example" in str(msgs[0]["Received"])


def test_swaks_starttls(server):
    result = swaks(server, "--tls", "--to", "bob@example.test", "--header", "Subject: swaks tls")
    assert result.returncode == 0, describe(result)
    assert "TLS started" in result.stdout, describe(result)
    msgs = server.wait_messages("bob@example.test", 1)
    assert [m["Subject"] for m in msgs] == ["swaks tls"]
    assert re.search(r"TLS|ESMTPS", str(msgs[0]["Received"])), msgs[0]["Received"]


def test_swaks_pipeline(server):
    result = swaks(
        server, "--pipeline", "--to", "alice@example.test,bob@example.test", "--header", "Subject: swaks pipelined"
    )
    assert result.returncode == 0, describe(result)
    for rcpt in ("alice@example.test", "bob@example.test"):
        assert [m["Subject"] for m in server.wait_messages(rcpt, 1)] == ["swaks pipelined"], rcpt


def test_swaks_tls_and_pipeline_several_recipients(server):
    result = swaks(
        server, "--tls", "--pipeline", "--to", "alice@example.test,nobody@example.test,bob@example.test",
        "--header", "Subject: swaks mixed",
    )
    # swaks reports a partial RCPT failure but the message still goes to the valid recipients
    assert "550 5.1.1" in result.stdout, describe(result)
    for rcpt in ("alice@example.test", "bob@example.test"):
        assert [m["Subject"] for m in server.wait_messages(rcpt, 1)] == ["swaks mixed"], rcpt


def test_swaks_unknown_user_fails_550(server):
    result = swaks(server, "--to", "nobody@example.test")
    assert result.returncode != 0, describe(result)
    assert re.search(r"<\*\* +550 5\.1\.1", result.stdout), describe(result)
    assert server.maildir_messages("alice@example.test") == []


def test_swaks_8bit_body(server):
    """An 8-bit UTF-8 body survives byte for byte."""
    body = "caf\u00e9 \u2014 na\u00efve"
    result = swaks(
        server, "--to", "alice@example.test", "--header", "Subject: 8bit",
        "--add-header", "Content-Type: text/plain; charset=utf-8",
        "--body", body,
    )
    assert result.returncode == 0, describe(result)
    raw = server.raw_messages("alice@example.test")
    assert len(raw) == 1 and body.encode("utf-8") in raw[0]
