"""`swallow config check` and `swallow serve` with good and bad configuration files."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import render_config, free_port


def run(swallow_bin, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(swallow_bin), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def good_config(tmp_path) -> str:
    return render_config(data_dir=tmp_path / "data", port=free_port())


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in config")


def insert_after(text: str, anchor: str, new_line: str) -> str:
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(anchor))
    lines.insert(index + 1, new_line)
    return "\n".join(lines) + "\n"


def assert_names_key_and_line(result, key: str, line: int):
    assert result.returncode != 0, f"bad config accepted:\n{result.stdout}{result.stderr}"
    assert key in result.stderr, f"stderr does not name {key!r}: {result.stderr!r} (stdout {result.stdout!r})"
    assert re.search(rf"(?<!\d){line}(?!\d)", result.stderr), f"stderr does not name line {line}: {result.stderr!r}"
    assert "Traceback" not in result.stderr and "Fatal error" not in result.stderr, result.stderr


def test_help(swallow_bin):
    result = run(swallow_bin, "--help")
    assert result.returncode == 0, result.stderr
    for word in ("serve", "config", "user", "alias"):
        assert word in result.stdout, result.stdout


def test_good_config_passes(swallow_bin, tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(good_config(tmp_path))
    result = run(swallow_bin, "config", "check", "--config", str(path))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_unknown_top_level_key(swallow_bin, tmp_path):
    text = insert_after(good_config(tmp_path), "domains", "hostnmae = \"typo.example.test\"")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run(swallow_bin, "config", "check", "--config", str(path))
    assert_names_key_and_line(result, "hostnmae", line_of(text, "hostnmae"))


def test_unknown_key_in_section(swallow_bin, tmp_path):
    text = insert_after(good_config(tmp_path), "relay_networks", "max_conections = 10")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run(swallow_bin, "config", "check", "--config", str(path))
    assert_names_key_and_line(result, "max_conections", line_of(text, "max_conections"))


def test_wrong_type_in_limits(swallow_bin, tmp_path):
    text = good_config(tmp_path).replace("max_recipients = 100", 'max_recipients = "many"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run(swallow_bin, "config", "check", "--config", str(path))
    assert_names_key_and_line(result, "max_recipients", line_of(text, "max_recipients"))


def test_wrong_type_for_list(swallow_bin, tmp_path):
    text = good_config(tmp_path).replace('domains = ["example.test"]', 'domains = "example.test"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run(swallow_bin, "config", "check", "--config", str(path))
    assert_names_key_and_line(result, "domains", line_of(text, "domains ="))


def test_toml_syntax_error_names_line(swallow_bin, tmp_path):
    text = insert_after(good_config(tmp_path), "[limits]", "max_message_size = = 5")
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("max_message_size = 26214400\n", ""))
    text = path.read_text()
    result = run(swallow_bin, "config", "check", "--config", str(path))
    assert result.returncode != 0
    line = line_of(text, "= = 5")
    assert re.search(rf"(?<!\d){line}(?!\d)", result.stderr), result.stderr


def test_unreadable_certificate(swallow_bin, tmp_path):
    text = render_config(
        data_dir=tmp_path / "data", port=free_port(),
        tls={"certificate": tmp_path / "missing-cert.pem", "private_key": tmp_path / "missing-key.pem"},
    )
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run(swallow_bin, "config", "check", "--config", str(path))
    assert result.returncode != 0, result.stdout
    assert "certificate" in result.stderr or "missing-cert.pem" in result.stderr, result.stderr


def test_missing_config_file(swallow_bin, tmp_path):
    result = run(swallow_bin, "config", "check", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode != 0
    assert "nope.toml" in result.stderr, result.stderr


def test_serve_refuses_bad_config(swallow_bin, tmp_path):
    port = free_port()
    text = render_config(data_dir=tmp_path / "data", port=port).replace("max_recipients = 100", 'max_recipients = "x"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    try:
        result = run(swallow_bin, "serve", "--config", str(path), timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("serve kept running with a bad config")
    assert result.returncode != 0
    assert "max_recipients" in result.stderr, result.stderr


def test_serve_without_config_uses_embedded_default(swallow_bin, tmp_path):
    """No --config: data in ./swallow-data, domain localhost, SMTP on 127.0.0.1:2525."""
    import signal
    import smtplib
    import socket
    import time

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 2525)) == 0:
            pytest.skip("something already listens on 127.0.0.1:2525")
    add = subprocess.run(
        [str(swallow_bin), "user", "add", "you@localhost", "--password-stdin"],
        input="a long passphrase\n", capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert add.returncode == 0, add.stderr
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(swallow_bin), "serve"], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", 2525), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "default server not listening on 2525"
                time.sleep(0.05)
        with smtplib.SMTP("127.0.0.1", 2525, timeout=15) as client:
            assert client.sendmail("s@remote.test", ["you@localhost"], "Subject: default\r\n\r\nhi\r\n") == {}
        new = tmp_path / "swallow-data" / "mail" / "localhost" / "you" / "new"
        assert new.is_dir() and len(list(new.iterdir())) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "2525" in output and "user add" in output, "serve should say where it listens and how to add a user"
