"""TLS configuration of every listener, checked by a scanner nobody here wrote (sslyze, from PyPI), and
certificate reload on SIGHUP without dropping connections.

Default policy ([tls] in README): TLS 1.2 and 1.3 only; TLS 1.2 suites are ECDHE with AES-GCM or
ChaCha20-Poly1305 (forward secrecy, AEAD); no compression; secure renegotiation; not vulnerable to the
classic attacks sslyze knows (Heartbleed, CCS injection, ROBOT).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, IO_TIMEOUT, free_port, insecure_tls_context, make_cert, wait_for

PASSWORD = "correct horse battery staple"


def require_sslyze() -> None:
    try:
        import sslyze  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("sslyze is not installed (pip install sslyze)")
        pytest.skip("sslyze is not installed (pip install sslyze)")


def all_listeners(make_server, **extra):
    ports = {name: free_port() for name in ("submission", "submissions", "pop3", "pop3s", "imap", "imaps")}
    server = make_server(
        submission={"listen": [f"127.0.0.1:{ports['submission']}"]},
        submissions={"listen": [f"127.0.0.1:{ports['submissions']}"]},
        pop3={"listen": [f"127.0.0.1:{ports['pop3']}"]},
        pop3s={"listen": [f"127.0.0.1:{ports['pop3s']}"]},
        imap={"listen": [f"127.0.0.1:{ports['imap']}"]},
        imaps={"listen": [f"127.0.0.1:{ports['imaps']}"]},
        **extra,
    )
    ports["smtp"] = server.port
    return server, ports


def sslyze_scan(targets: list[tuple[str, int, str | None]], tmp_path: Path) -> dict:
    """Scans (host, port, starttls protocol or None) with one sslyze run; results by port."""
    results = {}
    # One sslyze run per STARTTLS protocol (the option applies to the whole run).
    by_protocol: dict[str | None, list[int]] = {}
    for host, port, protocol in targets:
        by_protocol.setdefault(protocol, []).append(port)
    for protocol, ports in by_protocol.items():
        out = tmp_path / f"sslyze-{protocol or 'tls'}.json"
        argv = [sys.executable, "-m", "sslyze", "--json_out", str(out), "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1",
                "--tlsv1_2", "--tlsv1_3", "--compression", "--reneg", "--heartbleed", "--openssl_ccs", "--robot",
                "--elliptic_curves", "--mozilla_config", "disable"]
        if protocol:
            argv += ["--starttls", protocol]
        argv += [f"127.0.0.1:{p}" for p in ports]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert out.exists(), f"sslyze wrote nothing: {run.stdout}\n{run.stderr}"
        document = json.loads(out.read_text())
        for result in document["server_scan_results"]:
            assert result["scan_status"] == "COMPLETED", result.get("connectivity_error_trace") or result
            results[result["server_location"]["port"]] = result["scan_result"]
    return results


def accepted(scan: dict, command: str) -> list[str]:
    entry = scan[command]
    assert entry["status"] == "COMPLETED", entry
    return [s["cipher_suite"]["openssl_name"] for s in entry["result"]["accepted_cipher_suites"]]


def test_every_listener_offers_only_modern_tls(make_server, tmp_path):
    require_sslyze()
    server, ports = all_listeners(make_server)
    scans = sslyze_scan([("127.0.0.1", ports["smtp"], "smtp"), ("127.0.0.1", ports["submission"], "smtp"),
                         ("127.0.0.1", ports["submissions"], None), ("127.0.0.1", ports["pop3"], "pop3"),
                         ("127.0.0.1", ports["pop3s"], None), ("127.0.0.1", ports["imap"], "imap"),
                         ("127.0.0.1", ports["imaps"], None)], tmp_path)
    assert set(scans) == set(ports.values())
    for name, port in ports.items():
        scan = scans[port]
        for old in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"):
            assert accepted(scan, old) == [], f"{name}: {old} accepted"
        tls12 = accepted(scan, "tls_1_2_cipher_suites")
        assert tls12, f"{name}: no TLS 1.2 suite"
        for suite in tls12:
            assert suite.startswith("ECDHE-") and ("GCM" in suite or "CHACHA20" in suite), f"{name}: weak TLS 1.2 suite {suite}"
        assert accepted(scan, "tls_1_3_cipher_suites"), f"{name}: no TLS 1.3"
        assert scan["tls_compression"]["result"]["supports_compression"] is False, name
        reneg = scan["session_renegotiation"]["result"]
        assert reneg["is_vulnerable_to_client_renegotiation_dos"] is False, name
        assert scan["heartbleed"]["result"]["is_vulnerable_to_heartbleed"] is False, name
        assert scan["openssl_ccs_injection"]["result"]["is_vulnerable_to_ccs_injection"] is False, name
        assert scan["robot"]["result"]["robot_result"] in ("NOT_VULNERABLE_NO_ORACLE", "NOT_VULNERABLE_RSA_NOT_SUPPORTED"), name
    print(f"\nTLS 1.2 suites on 25: {accepted(scans[ports['smtp']], 'tls_1_2_cipher_suites')}")


def test_min_version_13_refuses_tls12(make_server):
    server, ports = all_listeners(make_server, tls={"min_version": "1.3"})
    context = insecure_tls_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", ports["submissions"]), timeout=IO_TIMEOUT) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw).do_handshake()
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", ports["submissions"]), timeout=IO_TIMEOUT) as raw:
        with context.wrap_socket(raw) as tls:
            assert tls.version() == "TLSv1.3"
            assert tls.recv(100).startswith(b"220 ")


def test_bad_tls_settings_are_configuration_errors(make_server):
    server = make_server(start=False, users=(), tls={"min_version": "1.1"})
    result = server.cli("config", "check", check=False)
    assert result.returncode != 0 and "tls.min_version" in result.stderr + result.stdout
    # A cipher list the TLS library cannot use is a configuration error with its key and line (the
    # library itself would stop the process).
    for ciphers in ("NO-SUCH-CIPHER", "ECDHE-RSA-AES128-GCM-SHA256:RC4-MD5", ""):
        server = make_server(start=False, users=(), tls={"ciphers": ciphers})
        result = server.cli("config", "check", check=False)
        assert result.returncode == 1, result
        assert "tls.ciphers" in result.stderr, result.stderr
    # A narrower list works: only that suite is negotiated over TLS 1.2.
    server, ports = all_listeners(make_server, tls={"ciphers": "ECDHE-ECDSA-CHACHA20-POLY1305"})
    context = insecure_tls_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", ports["submissions"]), timeout=IO_TIMEOUT) as raw:
        with context.wrap_socket(raw) as tls:
            assert tls.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"


def peer_fingerprint(port: int, starttls: bool) -> tuple[str, socket.socket]:
    """Connects (STARTTLS on SMTP or implicit TLS) and returns the SHA-256 of the server's
    certificate and the open TLS socket."""
    context = insecure_tls_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    if starttls:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220")
        raw.sendall(b"EHLO client.example.net\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220")
    tls = context.wrap_socket(raw)
    der = tls.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest().upper(), tls


def fingerprint_of(cert: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return hashlib.sha256(der).hexdigest().upper()


def test_sighup_reloads_certificate_without_dropping_sessions(make_server, tmp_path):
    first = tmp_path / "first"; first.mkdir()
    second = tmp_path / "second"; second.mkdir()
    cert_a, key_a = make_cert(first)
    cert_b, key_b = make_cert(second)
    live = tmp_path / "live"; live.mkdir()
    shutil.copy(cert_a, live / "cert.pem"); shutil.copy(key_a, live / "key.pem")
    server, ports = all_listeners(make_server, tls={"certificate": str(live / "cert.pem"), "private_key": str(live / "key.pem")})

    before, held_smtp = peer_fingerprint(ports["submission"], starttls=True)
    before_pop3s, held_pop3 = peer_fingerprint(ports["pop3s"], starttls=False)
    assert before == before_pop3s == fingerprint_of(cert_a)

    shutil.copy(cert_b, live / "cert.pem.new"); os.replace(live / "cert.pem.new", live / "cert.pem")
    shutil.copy(key_b, live / "key.pem.new"); os.replace(live / "key.pem.new", live / "key.pem")
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "TLS certificate reloaded" in server.log_text(), what="reload logged")
    assert server.proc.poll() is None

    # New handshakes on every TLS listener present the new certificate.
    for port, starttls in ((ports["smtp"], True), (ports["submission"], True), (ports["submissions"], False), (ports["pop3s"], False),
                           (ports["imaps"], False)):
        after, s = peer_fingerprint(port, starttls)
        s.close()
        assert after == fingerprint_of(cert_b), port

    # The sessions opened before the reload go on: log in and send over the held submission session,
    # list over the held POP3S session.
    f = held_smtp.makefile("rb")
    held_smtp.sendall(b"EHLO client.example.net\r\n")
    while not (line := f.readline()).startswith(b"250 "):
        assert line.startswith(b"250-"), line
    held_smtp.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()) + b"\r\n")
    assert f.readline().startswith(b"235 ")
    held_smtp.sendall(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert f.readline().startswith(b"250 ") and f.readline().startswith(b"250 ") and f.readline().startswith(b"354 ")
    held_smtp.sendall(b"From: alice@example.test\r\nSubject: across a reload\r\n\r\nstill here\r\n.\r\nQUIT\r\n")
    assert f.readline().startswith(b"250 ")
    held_smtp.close()
    p = held_pop3.makefile("rb")
    assert p.readline().startswith(b"+OK")
    held_pop3.sendall(b"USER bob@example.test\r\nPASS " + PASSWORD.encode() + b"\r\nSTAT\r\nQUIT\r\n")
    assert p.readline().startswith(b"+OK") and p.readline().startswith(b"+OK")
    assert p.readline().startswith(b"+OK 1 ")
    held_pop3.close()

    # A broken pair is refused: the server logs it, keeps the certificate in use and keeps running.
    (live / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "TLS certificate not reloaded" in server.log_text(), what="failed reload logged")
    assert server.proc.poll() is None
    after, s = peer_fingerprint(ports["submissions"], starttls=False)
    s.close()
    assert after == fingerprint_of(cert_b)
    # A key that does not belong to the certificate is refused too.
    shutil.copy(key_a, live / "key.pem")
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: server.log_text().count("TLS certificate not reloaded") >= 2, what="mismatched pair refused")
    after, s = peer_fingerprint(ports["pop3s"], starttls=False)
    s.close()
    assert after == fingerprint_of(cert_b)
