"""Running Swallow as a service: the systemd unit in contrib/ (systemd-analyze), the unit's process
model (an unprivileged user holding only CAP_NET_BIND_SERVICE, through setpriv), and the log
formats and outputs of `[log]` (JSON and logfmt on stderr; syslog received by a real rsyslogd)."""
from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import (DOMAIN, REPO_ROOT, SwallowServer, require_root, require_tool, shared_tmpdir, wait_for)

UNIT = REPO_ROOT / "contrib" / "swallow.service"
SYSUSERS = REPO_ROOT / "contrib" / "swallow.sysusers"


def unit_for(binary: Path, directory: Path) -> Path:
    """The unit with ExecStart and ExecStartPre pointing at the binary under test."""
    text = UNIT.read_text().replace("/usr/local/bin/swallow", str(binary))
    path = directory / "swallow.service"
    path.write_text(text)
    return path


def test_systemd_unit_verifies_and_is_hardened(swallow_bin, tmp_path):
    analyze = require_tool("systemd-analyze")
    unit = unit_for(swallow_bin, tmp_path)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # Every complaint about our unit (unknown keys, unsafe settings, a missing binary) goes to stderr.
    ours = [l for l in result.stderr.splitlines() if "swallow.service" in l]
    assert not ours, result.stderr
    text = UNIT.read_text()
    for line in ("User=swallow", "ExecReload=/bin/kill -HUP $MAINPID", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "StateDirectory=swallow"):
        assert f"\n{line}\n" in text, line
    security = subprocess.run([analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for swallow\.service: ([0-9.]+)", security.stdout)
    assert level, security.stdout[-2000:] + security.stderr
    # systemd rates 0–10 (lower is better): "OK" below 2.0; the distribution's postfix@.service rates 9.6.
    assert float(level.group(1)) < 2.0, security.stdout[-3000:]


def test_sysusers_file_declares_the_service_user():
    sysusers = require_tool("systemd-sysusers")
    result = subprocess.run([sysusers, "--dry-run", str(SYSUSERS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    try:
        pwd.getpwnam("swallow")  # already there: nothing to create
    except KeyError:
        assert "Creating user 'swallow'" in out and "Creating group 'swallow'" in out, out


def free_privileged_port() -> int:
    """A free port below 1024 on 127.0.0.1 (binding it needs CAP_NET_BIND_SERVICE)."""
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port below 1024")


def capabilities(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", status, flags=re.M)}


def test_runs_as_an_unprivileged_user_with_only_the_bind_capability(make_server):
    """The unit's process model without systemd: setpriv gives the server the user nobody, no
    capability but CAP_NET_BIND_SERVICE (ambient) and no_new_privs, as the unit's User=,
    AmbientCapabilities=, CapabilityBoundingSet= and NoNewPrivileges= do; it binds a port below
    1024, stores mail it accepts and writes its data directory as that user."""
    require_root("setpriv (running the server as another user)")
    setpriv = require_tool("setpriv")
    base = shared_tmpdir("swallow-setpriv-")
    try:
        server = make_server(start=False, data_dir=base / "data")
        server.port = free_privileged_port()
        server.config_path = base / "swallow.toml"
        server.write_config()
        nobody = pwd.getpwnam("nobody")
        subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", str(base / "data")], check=True)
        os.chmod(server.config_path, 0o644)
        server.command_prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
                                 "--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service",
                                 "--bounding-set=-all,+net_bind_service", "--no-new-privs"]
        server.start()
        pid = server.proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", status, flags=re.M).groups()
        assert set(uids) == {str(nobody.pw_uid)}, status
        caps = capabilities(pid)
        bind = 1 << 10  # CAP_NET_BIND_SERVICE
        assert caps["CapEff"] == bind and caps["CapPrm"] == bind and caps["CapBnd"] == bind, caps
        assert re.search(r"^NoNewPrivs:\s+1$", status, flags=re.M), status
        with server.smtp() as s:
            s.sendmail("someone@example.net", [f"bob@{DOMAIN}"], b"Subject: as nobody\r\n\r\nhello\r\n")
        stored = server.maildir_files(f"bob@{DOMAIN}")
        assert len(stored) == 1 and stored[0].stat().st_uid == nobody.pw_uid
        assert server.stop() == 0, server.log_tail()
    finally:
        shutil.rmtree(base, ignore_errors=True)


LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"=]*)(?:\s+|$)')


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict logfmt reading: the whole line must be key=value pairs (values bare or JSON-quoted)."""
    fields, pos = {}, 0
    for m in LOGFMT_PAIR.finditer(line):
        assert m.start() == pos, f"not logfmt at {pos}: {line!r}"
        value = m.group(2)
        fields[m.group(1)] = json.loads(value) if value.startswith('"') else value
        pos = m.end()
    assert pos == len(line), f"not logfmt at {pos}: {line!r}"
    return fields


def log_lines(server: SwallowServer) -> list[str]:
    """The server's log lines, without the start-up banner (stdout, in the same file)."""
    return [l for l in server.log_text().splitlines()
            if l and not l.startswith(("Swallow is running", "  ", "Add a first user"))]


def test_json_log_lines(make_server):
    server = make_server(log={"format": "json"})
    with server.smtp() as s:
        s.sendmail("someone@example.net", [f"bob@{DOMAIN}"], b"Subject: json\r\n\r\nhello\r\n")
        # A refused recipient with quotes and a backslash in the address (escaped in the log).
        try:
            s.sendmail('"odd\\\\name"@example.net', [f"nobody-here@{DOMAIN}"], b"Subject: x\r\n\r\nx\r\n")
        except Exception:
            pass
    assert server.stop() == 0
    events = [json.loads(l) for l in log_lines(server)]  # every line is one JSON object
    assert events
    for e in events:
        assert {"time", "level", "logger", "source", "msg"} <= e.keys(), e
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), e
        assert e["level"] in ("trace", "debug", "info", "notice", "warning", "error", "critical"), e
    accepted = [e for e in events if e["msg"] == "accepted"]
    assert len(accepted) == 1, events
    assert accepted[0]["to"] == f"<bob@{DOMAIN}>" and accepted[0]["client"] == "127.0.0.1" and accepted[0]["mailboxes"] == "1"
    assert any(e["msg"] == "stopped" for e in events)


def test_logfmt_log_lines(make_server):
    server = make_server(log={"format": "logfmt"})
    with server.smtp() as s:
        s.sendmail("someone@example.net", [f"bob@{DOMAIN}"], b"Subject: logfmt\r\n\r\nhello\r\n")
    assert server.stop() == 0
    events = [parse_logfmt(l) for l in log_lines(server)]
    accepted = [e for e in events if e.get("msg") == "accepted"]
    assert len(accepted) == 1, events
    e = accepted[0]
    assert e["level"] == "info" and e["to"] == f"<bob@{DOMAIN}>" and e["from"] == "<someone@example.net>", e
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), e


class Rsyslog:
    """A private rsyslogd: imuxsock on a socket of its own (not /dev/log), every message written to a
    file as `facility.severity tag msg`."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.socket = directory / "log.sock"
        self.out = directory / "messages"
        self.pid_file = directory / "rsyslogd.pid"
        (directory / "work").mkdir(parents=True)
        self.conf = directory / "rsyslog.conf"
        self.conf.write_text(f"""\
global(workDirectory="{directory / 'work'}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{self.socket}" CreatePath="on")
template(name="line" type="string" string="%syslogfacility-text%.%syslogseverity-text% %syslogtag% %msg%\\n")
*.* action(type="omfile" file="{self.out}" template="line")
""")
        self.proc: subprocess.Popen | None = None

    def start(self):
        binary = require_tool("rsyslogd")
        self.proc = subprocess.Popen([binary, "-n", "-f", str(self.conf), "-i", str(self.pid_file)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(self.socket.exists, timeout=15, what="rsyslogd's socket")

    def lines(self) -> list[str]:
        try:
            return self.out.read_text("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_syslog_output_reaches_rsyslog_as_facility_mail(make_server, tmp_path):
    rsyslog = Rsyslog(tmp_path / "rsyslog")
    rsyslog.start()
    try:
        server = make_server(log={"format": "logfmt", "output": "syslog", "syslog_socket": str(rsyslog.socket)})
        with server.smtp() as s:
            s.sendmail("someone@example.net", [f"bob@{DOMAIN}"], b"Subject: syslog\r\n\r\nhello\r\n")
        pid = server.proc.pid
        wait_for(lambda: any("msg=accepted" in l for l in rsyslog.lines()), timeout=15, what="the accepted line in rsyslog")
        line = next(l for l in rsyslog.lines() if "msg=accepted" in l)
        facility, tag, message = line.split(" ", 2)
        assert facility == "mail.info" and tag == f"swallow[{pid}]:", line
        fields = parse_logfmt(message.strip())
        assert fields["to"] == f"<bob@{DOMAIN}>" and "time" not in fields, fields  # syslog stamps the time
        # Nothing but the banner on stderr/stdout while syslog takes the lines.
        assert not log_lines(server), log_lines(server)
        # rsyslogd restarted: the next lines reach the new one (the server reconnects).
        rsyslog.stop()
        rsyslog.out.unlink()
        rsyslog.socket.unlink(missing_ok=True)
        rsyslog.start()
        with server.smtp() as s:
            s.sendmail("someone@example.net", [f"bob@{DOMAIN}"], b"Subject: syslog 2\r\n\r\nhello\r\n")
        wait_for(lambda: any("msg=accepted" in l for l in rsyslog.lines()), timeout=15, what="a line after the restart")
        assert server.stop() == 0
        wait_for(lambda: any(l.startswith("mail.info") and "msg=stopped" in l for l in rsyslog.lines()), timeout=15,
                 what="the stopped line")
    finally:
        rsyslog.stop()


def test_syslog_without_a_daemon_falls_back_to_stderr(make_server, tmp_path):
    server = make_server(log={"format": "logfmt", "output": "syslog", "syslog_socket": str(tmp_path / "nobody-listens")})
    with server.smtp() as s:
        s.sendmail("someone@example.net", [f"bob@{DOMAIN}"], b"Subject: fallback\r\n\r\nhello\r\n")
    assert server.stop() == 0
    assert any(parse_logfmt(l).get("msg") == "accepted" for l in log_lines(server)), server.log_tail()


def test_log_settings_are_checked(swallow_bin, tmp_path):
    for key, value, message in (("format", "xml", "log.format: must be one of text, logfmt, json"),
                                ("output", "file", "log.output: must be one of stderr, syslog")):
        config = tmp_path / f"{key}.toml"
        config.write_text(f'data_dir = "{tmp_path / "data"}"\n[log]\n{key} = "{value}"\n')
        result = subprocess.run([str(swallow_bin), "config", "check", "--config", str(config)], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0 and message in result.stderr, result.stderr
