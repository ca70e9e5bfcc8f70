#!/usr/bin/env python3
"""Swallow against Postfix and Dovecot, side by side, on loopback — see Benchmarks/README.md.

Every server is a private instance under one work directory, bound to 127.0.0.1 on fixed high ports,
started inside its own cgroup-v1 cpuacct group (so CPU per message includes every process it forks),
and stopped by PID at the end, also on errors and ^C. Each case runs a bounded number of messages with
a time limit, REPS times interleaved (all configurations once, then again …); the table shows the
median and [min–max] of each figure and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "integration"))
from conftest import POSTFIX_MASTER_CF, kill_leftovers, session_pids  # noqa: E402  (shared with the interop tests)

PORTS = {"swallow": 25025, "postfix": 25026, "sink": 25027, "relay_sink": 25028, "swallow_pop3": 25110,
         "dovecot": 25111, "swallow_imap": 25143, "dovecot_imap": 25144}
RUN_TIMEOUT = 300
DOMAIN = "bench.test"
USER = f"bench@{DOMAIN}"


# ------------------------------------------------------------------------------------------------
# processes, cgroups, memory


class Cgroup:
    """A cpuacct group; processes started with `preexec` (and their children) are accounted in it."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, name: str):
        self.path = self.ROOT / f"swallow-bench-{name}"
        if self.path.exists():
            self.kill_all()
            self.path.rmdir()
        self.path.mkdir()

    def preexec(self):
        procs = str(self.path / "cgroup.procs")

        def enter():
            os.setsid()
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        return enter

    def cpu_seconds(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def pids(self) -> list[int]:
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def kill_all(self):
        for _ in range(50):
            pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def remove(self):
        self.kill_all()
        try:
            self.path.rmdir()
        except OSError:
            pass


def memory_kib(pids: list[int]) -> tuple[int, int]:
    """(RSS, USS) in KiB summed over `pids`, from smaps_rollup."""
    rss = uss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = {}
        for line in text.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1])
        rss += fields.get("Rss", 0)
        uss += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return rss, uss


def wait_port(port: int, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def run(argv, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", RUN_TIMEOUT)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw)


def count_files(d: Path) -> int:
    try:
        return sum(1 for _ in os.scandir(d))
    except FileNotFoundError:
        return 0


def settle():
    """Called after the harness deletes the previous run's files and before the next timed run, for
    every server alike. ext4 without a journal (this machine's disk) skips inodes deleted in the last
    60–300 s when it allocates a new one, looking each up in the buffer cache (kernel
    `recently_deleted()`); after 5,000 deletions every file created in the next run pays for that scan
    (measured: inbound 10 KiB × 10 sessions 1,390 msg/s at 1,040 µs CPU per message instead of 2,500 at
    470). Writing the deletions out and dropping the clean caches ends it, so no run pays for the
    harness's cleanup; what a server deletes itself while it runs (Postfix's queue files) still counts."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def clear_dir(d: Path):
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, exist_ok=True)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# ------------------------------------------------------------------------------------------------
# the servers


class Swallow:
    def __init__(self, work: Path, binary: Path, *, pop3: bool = False, imap: bool = False, routes: dict | None = None,
                 relay: bool = False, extra: str = "", domain: str = DOMAIN, check_authentication: bool = False):
        self.dir = work / "swallow"
        self.binary = binary
        self.data = self.dir / "data"
        self.domain = domain
        clear_dir(self.dir)
        lines = [f'hostname = "swallow.{domain}"', f'domains = ["{domain}"]', f'data_dir = "{self.data}"',
                 "[smtp]", f'listen = ["127.0.0.1:{PORTS["swallow"]}"]',
                 'relay_networks = ["127.0.0.0/8"]' if relay else "relay_networks = []",
                 "max_connections = 20000", "max_connections_per_ip = 20000",
                 # Except in the `auth` case, Postfix runs without milters, so Swallow does not check
                 # SPF/DKIM/DMARC either (and asks no DNS server: the benchmark stays on loopback).
                 f"check_authentication = {'true' if check_authentication else 'false'}",
                 "[submission]", "listen = []", "[submissions]", "listen = []",
                 "[pop3]", f'listen = ["127.0.0.1:{PORTS["swallow_pop3"]}"]' if pop3 else "listen = []",
                 "allow_plaintext_auth = true", "[pop3s]", "listen = []",
                 "[imap]", f'listen = ["127.0.0.1:{PORTS["swallow_imap"]}"]' if imap else "listen = []",
                 "allow_plaintext_auth = true", "max_connections_per_user = 100", "[imaps]", "listen = []",
                 "[delivery]", "retry_initial = 3600", "concurrency = 100", "destination_concurrency = 20"]
        for domain, via in (routes or {}).items():
            lines += ["[[routes]]", f'domain = "{domain}"', f'via = "{via}"']
        self.config = self.dir / "swallow.toml"
        self.config.write_text("\n".join(lines) + "\n" + extra)
        self.cli("user", "add", f"bench@{domain}")
        self.cgroup = Cgroup("swallow")
        self.proc = None
        self.log = open(self.dir / "swallow.log", "ab")

    def cli(self, *args, input: str | None = None):
        return run([self.binary, *args, "--config", self.config], input=input,
                   stdin=None if input is not None else subprocess.DEVNULL)

    def maildir(self, local: str = "bench") -> Path:
        return self.data / "mail" / self.domain / local

    def start(self):
        self.proc = subprocess.Popen([str(self.binary), "serve", "--config", str(self.config)], stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL, preexec_fn=self.cgroup.preexec())
        wait_port(PORTS["swallow"])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.cgroup.remove()


class Postfix:
    """A private Postfix: smtpd → cleanup → qmgr → local(8) into a Maildir (alias target ending in /)."""

    def __init__(self, work: Path, *, relayhost: str | None = None, domain: str = DOMAIN, extra: dict | None = None):
        self.dir = work / "postfix"
        clear_dir(self.dir)
        self.conf = self.dir / "conf"
        for d in ("conf", "queue", "data"):
            (self.dir / d).mkdir()
        shutil.chown(self.dir / "data", "postfix")
        self.mail = self.dir / "Maildir"
        self.mail.mkdir()
        shutil.chown(self.mail, "nobody", "nogroup")
        main = {
            "compatibility_level": "3.6", "queue_directory": self.dir / "queue", "data_directory": self.dir / "data",
            "mail_owner": "postfix", "setgid_group": "postdrop", "myhostname": f"postfix.{domain}",
            "mydomain": domain, "mydestination": f"{domain}, localhost", "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4", "mynetworks": "127.0.0.0/8", "maillog_file": self.dir / "maillog",
            "maillog_file_prefixes": self.dir, "alias_maps": "inline:{ bench=" + f"{self.mail}/" + " }",
            "alias_database": "", "local_recipient_maps": "$alias_maps", "smtpd_tls_security_level": "none",
        }
        if relayhost:
            main["relayhost"] = relayhost
            main["smtpd_end_of_data_restrictions"] = "check_client_access static:HOLD"
            main["smtp_tls_security_level"] = "none"
        main.update(extra or {})
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (self.conf / "master.cf").write_text(
            POSTFIX_MASTER_CF.format(port=PORTS["postfix"], verbose="").replace("1000?", "1000"))
        self.cgroup = Cgroup("postfix")
        self.master_pid = None

    def start(self):
        with open(self.dir / "postfix.out", "wb") as out:  # a file: a daemon could keep a pipe open
            subprocess.run(["postfix", "-c", str(self.conf), "start"], check=True, stdout=out, stderr=out,
                           preexec_fn=self.cgroup.preexec(), timeout=60, stdin=subprocess.DEVNULL)
        pid_file = self.dir / "queue" / "pid" / "master.pid"
        wait_until(pid_file.exists, 10, "postfix master.pid")
        self.master_pid = int(pid_file.read_text().split()[0])
        wait_port(PORTS["postfix"])

    def queue_empty(self) -> bool:
        q = self.dir / "queue"
        # deferred/ (and any hashed queue) holds subdirectories: look for files, not entries
        return not any(files for d in ("maildrop", "incoming", "active", "deferred", "hold")
                       for _, _, files in os.walk(q / d))

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True, timeout=60)
        if self.master_pid:
            wait_until(lambda: not session_pids(self.master_pid), 15, "postfix processes to exit")
            kill_leftovers(self.master_pid)
        self.cgroup.remove()


class Sink:
    """Postfix's smtp-sink: speaks SMTP, stores nothing (the protocol ceiling)."""

    def __init__(self, port: int, name: str):
        self.port = port
        self.cgroup = Cgroup(name)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-m", "2000", f"127.0.0.1:{self.port}", "1024"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                     preexec_fn=self.cgroup.preexec())
        wait_port(self.port)

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        self.cgroup.remove()


class Dovecot:
    def __init__(self, work: Path, home: Path, hashes: dict[str, str], *, protocol: str = "pop3", extra: str = ""):
        """`hashes`: user → the crypt(3) hash Swallow stores for that user (yescrypt), so that a login
        costs both servers the same work. `protocol`: pop3 or imap (the other's listener is off)."""
        self.port = PORTS["dovecot"] if protocol == "pop3" else PORTS["dovecot_imap"]
        self.dir = work / "dovecot"
        clear_dir(self.dir)
        (self.dir / "run").mkdir()
        passwd = self.dir / "passwd"
        passwd.write_text("".join(f"{user}:{{CRYPT}}{h}\n" for user, h in hashes.items()))
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(f"""\
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = {protocol}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={home}/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {PORTS["dovecot"] if protocol == "pop3" else 0}
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {PORTS["dovecot_imap"] if protocol == "imap" else 0}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{extra}""")
        self.cgroup = Cgroup("dovecot")

    def start(self):
        with open(self.dir / "dovecot.out", "wb") as out:  # a file: the daemon keeps its stdout open
            subprocess.run(["dovecot", "-c", str(self.conf)], check=True, stdout=out, stderr=out, timeout=60,
                           preexec_fn=self.cgroup.preexec(), stdin=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        subprocess.run(["dovecot", "-c", str(self.conf), "stop"], capture_output=True, timeout=60)
        time.sleep(0.5)
        self.cgroup.remove()


# ------------------------------------------------------------------------------------------------
# results


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)

    def add(self, v: float):
        self.values.append(v)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def text(self, digits: int = 0) -> str:
        if not self.values:
            return "–"
        f = (lambda v: f"{v:,.{digits}f}")
        if len(self.values) == 1:
            return f(self.values[0])
        return f"{f(self.median)} [{f(min(self.values))}–{f(max(self.values))}]"


class Results:
    def __init__(self):
        self.rows: dict[tuple, dict[str, Cell]] = {}
        self.notes: list[str] = []

    def add(self, case: str, params: str, column: str, value: float):
        self.rows.setdefault((case, params), {}).setdefault(column, Cell()).add(value)

    def get(self, case: str, params: str, column: str) -> Cell:
        return self.rows.get((case, params), {}).get(column, Cell())


def smtp_source(port: int, sessions: int, count: int, size: int, to: str = USER, message: Path | None = None) -> float:
    """smtp-source: one connection per message, one recipient, no pipelining; returns seconds. With
    `message`, every message is that file (LF line ends; smtp-source sends CRLF and dot-stuffs)."""
    t0 = time.monotonic()
    payload = ["-F", message] if message else ["-l", size]
    run(["smtp-source", "-4", "-s", sessions, "-m", count, *payload, "-M", "client.bench.test",
         "-f", f"sender@{DOMAIN}", "-t", to, f"127.0.0.1:{port}"])
    return time.monotonic() - t0


# ------------------------------------------------------------------------------------------------
# cases


def case_inbound(work: Path, binary: Path, res: Results, reps: int, count: int, sizes, concurrencies):
    """smtp-source → port 25 → durable in a Maildir. Swallow: 250 only after the Maildir file and its
    directory are fsynced, so accepted = delivered. Postfix: smtpd → cleanup (queue file fsynced) →
    qmgr → local(8) (Maildir file fsynced); end-to-end until the queue is empty and every file is there.
    smtp-sink: the same SMTP, nothing stored."""
    sw, pf, sink = Swallow(work, binary), Postfix(work), Sink(PORTS["sink"], "sink")
    try:
        sw.start()
        pf.start()
        sink.start()
        # warm-up (process start, page cache)
        smtp_source(PORTS["swallow"], 10, 200, 10240)
        smtp_source(PORTS["postfix"], 10, 200, 10240)
        wait_until(pf.queue_empty, 60, "postfix warm-up")
        for rep in range(reps):
            for size in sizes:
                for c in concurrencies:
                    params = f"{size // 1024} KiB, {c} sessions"
                    # Swallow
                    clear_dir(sw.maildir() / "new")
                    settle()
                    cpu0 = sw.cgroup.cpu_seconds()
                    dt = smtp_source(PORTS["swallow"], c, count, size)
                    got = count_files(sw.maildir() / "new")
                    if got != count:
                        raise RuntimeError(f"Swallow stored {got} of {count} messages ({params})")
                    res.add("inbound", params, "swallow", count / dt)
                    res.add("inbound", params, "swallow_cpu", (sw.cgroup.cpu_seconds() - cpu0) / count * 1e6)
                    # Postfix
                    clear_dir(pf.mail / "new")
                    shutil.chown(pf.mail / "new", "nobody", "nogroup")
                    settle()
                    cpu0 = pf.cgroup.cpu_seconds()
                    t0 = time.monotonic()
                    accepted = smtp_source(PORTS["postfix"], c, count, size)
                    wait_until(lambda: pf.queue_empty() and count_files(pf.mail / "new") >= count, RUN_TIMEOUT,
                               "postfix to deliver")
                    dt = time.monotonic() - t0
                    got = count_files(pf.mail / "new")
                    if got != count:
                        raise RuntimeError(f"Postfix delivered {got} of {count} messages ({params})")
                    res.add("inbound", params, "postfix", count / dt)
                    res.add("inbound", params, "postfix_accepted", count / accepted)
                    res.add("inbound", params, "postfix_cpu", (pf.cgroup.cpu_seconds() - cpu0) / count * 1e6)
                    # ceiling
                    dt = smtp_source(PORTS["sink"], c, count, size)
                    res.add("inbound", params, "sink", count / dt)
                    print(f"  inbound {params} rep {rep + 1}: swallow {res.get('inbound', params, 'swallow').values[-1]:,.0f}"
                          f" postfix {res.get('inbound', params, 'postfix').values[-1]:,.0f}"
                          f" sink {res.get('inbound', params, 'sink').values[-1]:,.0f} msg/s", flush=True)
    finally:
        sink.stop()
        pf.stop()
        sw.stop()


def case_drain(work: Path, binary: Path, res: Results, reps: int, count: int, sizes):
    """5,000 queued messages relayed to smtp-sink. Swallow: messages queued while the sink is down
    (deferred), then the sink starts and `swallow queue retry` runs; timed until the queue is empty.
    Postfix: held at end of data, then `postsuper -H ALL` + `postqueue -f`; timed until empty."""
    for rep in range(reps):
        for size in sizes:
            params = f"{size // 1024} KiB"
            # Swallow
            sw = Swallow(work, binary, relay=True, routes={"relay.test": f"127.0.0.1:{PORTS['relay_sink']}"})
            sink = Sink(PORTS["relay_sink"], "relay-sink")
            try:
                settle()
                sw.start()
                smtp_source(PORTS["swallow"], 10, count, size, to="bench@relay.test")
                deferred = sw.data / "queue" / "deferred"
                wait_until(lambda: count_files(deferred) == count, RUN_TIMEOUT, "Swallow to defer every message")
                sink.start()
                cpu0 = sw.cgroup.cpu_seconds()
                t0 = time.monotonic()
                sw.cli("queue", "retry")
                q = sw.data / "queue"
                wait_until(lambda: all(count_files(q / d) == 0 for d in ("incoming", "active", "deferred")),
                           RUN_TIMEOUT, "Swallow's queue to drain")
                dt = time.monotonic() - t0
                res.add("drain", params, "swallow", count / dt)
                res.add("drain", params, "swallow_cpu", (sw.cgroup.cpu_seconds() - cpu0) / count * 1e6)
            finally:
                sink.stop()
                sw.stop()
            # Postfix
            pf = Postfix(work, relayhost=f"[127.0.0.1]:{PORTS['relay_sink']}")
            sink = Sink(PORTS["relay_sink"], "relay-sink")
            try:
                settle()
                pf.start()
                sink.start()
                smtp_source(PORTS["postfix"], 10, count, size, to="bench@relay.test")
                hold = pf.dir / "queue" / "hold"
                wait_until(lambda: count_files(hold) == count, RUN_TIMEOUT, "Postfix to hold every message")
                cpu0 = pf.cgroup.cpu_seconds()
                t0 = time.monotonic()
                run(["postsuper", "-c", pf.conf, "-H", "ALL"], preexec_fn=pf.cgroup.preexec())
                run(["postqueue", "-c", pf.conf, "-f"], preexec_fn=pf.cgroup.preexec())
                wait_until(pf.queue_empty, RUN_TIMEOUT, "Postfix's queue to drain")
                dt = time.monotonic() - t0
                res.add("drain", params, "postfix", count / dt)
                res.add("drain", params, "postfix_cpu", (pf.cgroup.cpu_seconds() - cpu0) / count * 1e6)
            finally:
                sink.stop()
                pf.stop()
            print(f"  drain {params} rep {rep + 1}: swallow {res.get('drain', params, 'swallow').values[-1]:,.0f}"
                  f" postfix {res.get('drain', params, 'postfix').values[-1]:,.0f} msg/s", flush=True)


def make_maildir(cur: Path, count: int, size: int, tag: str):
    """`count` messages of exactly `size` octets (LF on disk) in `cur/`, named like Dovecot's with S= and W=."""
    cur.mkdir(parents=True, exist_ok=True)
    for d in ("new", "tmp"):
        (cur.parent / d).mkdir(exist_ok=True)
    line = "x" * 75 + "\n"
    for i in range(count):
        head = f"From: sender@example.net\nTo: {tag}\nSubject: message {i}\nMessage-ID: <{i}.{tag}@bench>\n\n"
        body_len = size - len(head)
        body = (line * (body_len // len(line) + 1))[:body_len - 1] + "\n"
        text = head + body
        lines = text.count("\n")
        (cur / f"{1700000000 + i}.M{i}P1.bench,S={len(text)},W={len(text) + lines}:2,S").write_text(text)


def pop3_client(work: Path) -> Path:
    """Compiles Benchmarks/pop3load.c (a pipelining POP3 client in C: a Python client was the limit with
    four users on two cores) with the system's C compiler, or the Swift toolchain's clang."""
    out = work / "pop3load"
    compiler = shutil.which("cc") or shutil.which("clang")
    if compiler is None:
        sys.exit("no C compiler (cc or clang) for Benchmarks/pop3load.c")
    subprocess.run([compiler, "-O2", "-o", str(out), str(Path(__file__).with_name("pop3load.c"))], check=True)
    return out


def case_pop3(work: Path, binary: Path, res: Results, reps: int, count: int, users: int):
    """RETR every message of 10 KiB maildrops: 1 user × count, and `users` users × count/users in
    parallel, with a pipelining raw-socket client (one process per user) so that the client is not the
    limit. Swallow vs Dovecot (private instance, static passdb, one pop3 process per session)."""
    client = pop3_client(work)
    home = work / "dovecot-home"
    clear_dir(home)
    sw = Swallow(work, binary, pop3=True)
    per_user = count // users
    accounts = [("popuser", count)] + [(f"popuser{i}", per_user) for i in range(1, users + 1)]
    for name, n in accounts:
        sw.cli("user", "add", f"{name}@{DOMAIN}", "--password-stdin", input="benchpass\n")
        make_maildir(sw.maildir(name) / "cur", n, 10240, name)
        make_maildir(home / name / "Maildir" / "cur", n, 10240, name)
    shutil.chown(home, "nobody", "nogroup")
    subprocess.run(["chown", "-R", "nobody:nogroup", str(home)], check=True)
    # Dovecot checks the same yescrypt hashes Swallow stores (a static passdb would skip the hashing
    # that Swallow's logins pay for).
    db = sqlite3.connect(sw.data / "swallow.sqlite")
    hashes = {name: db.execute("SELECT password FROM users WHERE address = ?", (f"{name}@{DOMAIN}",)).fetchone()[0]
              for name, _ in accounts}
    db.close()
    dv = Dovecot(work, home, hashes)
    try:
        sw.start()
        dv.start()
        for rep in range(reps):
            for label, who in ((f"1 user × {count:,}", [("popuser", count)]),
                               (f"{users} users × {per_user:,} in parallel", accounts[1:])):
                for server, port, cg in (("swallow", PORTS["swallow_pop3"], sw.cgroup), ("dovecot", PORTS["dovecot"], dv.cgroup)):
                    login = (lambda n: f"{n}@{DOMAIN}") if server == "swallow" else (lambda n: n)
                    cpu0 = cg.cpu_seconds()
                    idle_rss = memory_kib(cg.pids())[0]
                    peak = [0]
                    t0 = time.monotonic()
                    procs = [subprocess.Popen([str(client), "127.0.0.1", str(port), login(n), "benchpass", str(k), "16"],
                                              stdout=subprocess.PIPE, text=True) for n, k in who]
                    while any(p.poll() is None for p in procs):
                        peak[0] = max(peak[0], memory_kib(cg.pids())[0])
                        time.sleep(0.05)
                    dt = time.monotonic() - t0
                    for p in procs:
                        if p.returncode != 0:
                            raise RuntimeError(f"POP3 client against {server} failed")
                    total = sum(k for _, k in who)
                    res.add("pop3", label, server, total / dt)
                    res.add("pop3", label, f"{server}_cpu", (cg.cpu_seconds() - cpu0) / total * 1e6)
                    res.add("pop3", label, f"{server}_rss", peak[0] / 1024)
                    # What the sessions add: peak minus the server at rest, per session (Dovecot: the
                    # pop3 process of each session, plus what its login process and master add).
                    res.add("pop3", label, f"{server}_session", max(0, peak[0] - idle_rss) / len(who))
                print(f"  pop3 {label} rep {rep + 1}: swallow {res.get('pop3', label, 'swallow').values[-1]:,.0f}"
                      f" dovecot {res.get('pop3', label, 'dovecot').values[-1]:,.0f} msg/s", flush=True)
    finally:
        dv.stop()
        sw.stop()


IDLE_CLIENT = r"""
import socket, sys, time, resource
port, n = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port)); socks.append(s)
for s in socks:
    f = s.recv(512)
    assert f.startswith(b"220"), f
    s.sendall(b"EHLO idle.bench.test\r\n")
for s in socks:
    data = b""
    while not data.endswith(b"\r\n") or b"250 " not in data:
        data += s.recv(4096)
print("ready", flush=True)
sys.stdin.readline()
"""


def case_idle(work: Path, binary: Path, res: Results, reps: int, counts):
    """Memory of idle SMTP sessions (after EHLO): Swallow with 1,000 and 10,000; Postfix with 50
    (one smtpd process each; its default_process_limit is 100), per connection."""
    client = work / "idleclient.py"
    client.write_text(IDLE_CLIENT)

    def measure(port: int, cg: Cgroup, n: int) -> tuple[float, float, float]:
        time.sleep(0.5)
        rss0, uss0 = memory_kib(cg.pids())
        p = subprocess.Popen([sys.executable, str(client), str(port), str(n)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        try:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("idle client failed")
            time.sleep(1.0)
            rss1, uss1 = memory_kib(cg.pids())
        finally:
            p.stdin.write("\n")
            p.stdin.flush()
            p.wait(60)
        return rss1 / 1024, (rss1 - rss0) / n, (uss1 - uss0) / n

    for rep in range(reps):
        for n in counts:
            sw = Swallow(work, binary)
            try:
                sw.start()
                total, rss, uss = measure(PORTS["swallow"], sw.cgroup, n)
                res.add("idle", f"{n:,} sessions", "swallow_total", total)
                res.add("idle", f"{n:,} sessions", "swallow_rss", rss)
                res.add("idle", f"{n:,} sessions", "swallow_uss", uss)
            finally:
                sw.stop()
        pf = Postfix(work)
        try:
            pf.start()
            total, rss, uss = measure(PORTS["postfix"], pf.cgroup, 50)
            res.add("idle", "50 sessions", "postfix_total", total)
            res.add("idle", "50 sessions", "postfix_rss", rss)
            res.add("idle", "50 sessions", "postfix_uss", uss)
        finally:
            pf.stop()
        print(f"  idle rep {rep + 1}: USS KiB/session " + ", ".join(
            f"{server} {params}: {cols[server + '_uss'].values[-1]:,.1f}" for (case, params), cols in res.rows.items()
            if case == "idle" for server in ("swallow", "postfix") if server + "_uss" in cols), flush=True)



# ------------------------------------------------------------------------------------------------
# IMAP

IMAP_PHASES = [  # (row of the table, the client's phases for it); one session runs them all in order
    ("first sync, cold index: SELECT + UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)", ["select", "headers"]),
    ("the same UID FETCH again (index built)", ["headers"]),
    ("every body: UID FETCH lo:hi (UID BODY.PEEK[]), 100 UIDs per command, 2 in flight", ["bodies:100:2"]),
    ("UID SEARCH TEXT (a word in 3 % of the bodies)", ["search:{word}"]),
    ("STORE 1:* +FLAGS (\\Seen)", ["store:+"]),
    ("STORE 1:* -FLAGS (\\Seen)", ["store:-"]),
]


def c_client(work: Path, name: str) -> Path:
    out = work / name
    compiler = shutil.which("cc") or shutil.which("clang")
    if compiler is None:
        sys.exit(f"no C compiler (cc or clang) for Benchmarks/{name}.c")
    subprocess.run([compiler, "-O2", "-o", str(out), str(Path(__file__).with_name(f"{name}.c"))], check=True)
    return out


class PhaseClient:
    """One imapload session; each phase starts when the harness says so, so that the server's cgroup
    CPU (and the client's own) is read exactly around it."""

    def __init__(self, argv: list, cgroup: Cgroup):
        self.cgroup = cgroup
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, phase: str) -> dict:
        line = self.proc.stdout.readline().split()
        if line != ["ready", phase]:
            self.proc.kill()
            raise RuntimeError(f"imapload: expected 'ready {phase}', got {line} (exit {self.proc.wait()})")
        cpu0 = self.cgroup.cpu_seconds()
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        cpu1 = self.cgroup.cpu_seconds()
        if len(line) != 6 or line[:2] != ["done", phase]:
            self.proc.kill()
            raise RuntimeError(f"imapload {phase} failed (exit {self.proc.wait()})")
        return {"seconds": float(line[2]), "count": int(line[3]), "octets": int(line[4]),
                "cpu": cpu1 - cpu0, "client_cpu": float(line[5])}

    def finish(self):
        self.proc.stdin.close()
        if self.proc.wait(60) != 0:
            raise RuntimeError("imapload failed at LOGOUT")


def deliver_corpus(corpus: Path, manifest: dict, maildir: Path, owner: str | None = None, limit: int | None = None,
                   link: bool = False):
    """Puts the corpus into `maildir`/new/ as a delivery agent would (Dovecot LDA-style names with S= and
    W=, mtime = the Date header), for both servers the same way: copies (or hard links, for the IDLE
    users' small mailboxes, which no one writes)."""
    clear_dir(maildir)
    for d in ("cur", "new", "tmp"):
        (maildir / d).mkdir()
    for i, (name, date, size, vsize) in enumerate(manifest["messages"][:limit]):
        dst = maildir / "new" / f"{date}.M{i}P4242.bench,S={size},W={vsize}"
        if link:
            os.link(corpus / name, dst)
        else:
            shutil.copy2(corpus / name, dst)
    if owner:
        subprocess.run(["chown", "-R", owner, str(maildir)], check=True)


def warm(maildir: Path):
    """Reads every message once, so that both servers start with the files in the page cache."""
    for d in ("new", "cur"):
        for e in os.scandir(maildir / d):
            with open(e.path, "rb") as f:
                while f.read(1 << 20):
                    pass


def swallow_users(sw: Swallow, names: list[str], password_hash: str | None = None) -> dict[str, str]:
    """Adds `names` (with the password "benchpass") and returns name → the hash Swallow stores. With
    `password_hash`, the first is added by the CLI and the others copy its row with that hash (the IDLE
    case's 1,000 users: a cheaper yescrypt, so that 10,000 logins do not take minutes)."""
    sw.cli("user", "add", f"{names[0]}@{DOMAIN}", "--password-stdin", input="benchpass\n")
    db = sqlite3.connect(sw.data / "swallow.sqlite")
    if password_hash:
        scram = db.execute("SELECT scram FROM users WHERE address = ?", (f"{names[0]}@{DOMAIN}",)).fetchone()[0]
        db.execute("UPDATE users SET password = ? WHERE address = ?", (password_hash, f"{names[0]}@{DOMAIN}"))
        db.executemany("INSERT INTO users(address, password, scram) VALUES (?, ?, ?)",
                       [(f"{n}@{DOMAIN}", password_hash, scram) for n in names[1:]])
        db.commit()
    else:
        for n in names[1:]:
            sw.cli("user", "add", f"{n}@{DOMAIN}", "--password-stdin", input="benchpass\n")
    hashes = {n: db.execute("SELECT password FROM users WHERE address = ?", (f"{n}@{DOMAIN}",)).fetchone()[0]
              for n in names}
    db.close()
    return hashes


def cheap_yescrypt(password: str) -> str:
    """A yescrypt hash of the lowest cost (`$y$j75$`, about 1.6 ms instead of 30–40 ms), from libxcrypt."""
    import ctypes
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$y$", 1, None, 0)
    return lib.crypt(password.encode(), salt).decode()


DOVECOT_IMAP = """\
mail_fsync = optimized
protocol imap {
  mail_max_userip_connections = 100
}
service imap {
  process_limit = 12000
  vsz_limit = 1G
}
service imap-login {
  process_limit = 200
}
default_client_limit = 12000
"""

DOVECOT_HIBERNATE = """\
imap_hibernate_timeout = 1s
service imap {
  unix_listener imap-master {
    mode = 0666
  }
}
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0666
  }
  client_limit = 12000
}
"""


def case_imap(work: Path, binary: Path, res: Results, reps: int, count: int, idle_sessions: int, idle_users: int):
    """A `count`-message mailbox (Benchmarks/imap_corpus.py) delivered into new/ of both servers' Maildirs
    by copying, cold index (no dovecot-uidlist, no dovecot.index*), files in the page cache; both servers
    restarted every repetition. One imapload session per server runs the phases of IMAP_PHASES, the two
    servers' phases interleaved (the first server alternates). Then `idle_sessions` IDLE sessions."""
    client = c_client(work, "imapload")
    corpus = work / "imap-corpus"
    manifest = _imap_corpus().generate(corpus, count)
    word = manifest["word"]
    home = work / "dovecot-home"
    for rep in range(reps):
        clear_dir(home)
        sw = Swallow(work, binary, imap=True)
        hashes = swallow_users(sw, ["imapuser"])
        deliver_corpus(corpus, manifest, sw.maildir("imapuser"))
        deliver_corpus(corpus, manifest, home / "imapuser" / "Maildir")
        subprocess.run(["chown", "-R", "nobody:nogroup", str(home)], check=True)
        dv = Dovecot(work, home, hashes, protocol="imap", extra=DOVECOT_IMAP)
        settle()
        warm(sw.maildir("imapuser"))
        warm(home / "imapuser" / "Maildir")
        try:
            sw.start()
            dv.start()
            phases = [p.replace("{word}", word) for _, ps in IMAP_PHASES for p in ps]
            clients = {
                "swallow": PhaseClient([client, "127.0.0.1", PORTS["swallow_imap"], f"imapuser@{DOMAIN}", "benchpass", *phases], sw.cgroup),
                "dovecot": PhaseClient([client, "127.0.0.1", dv.port, "imapuser", "benchpass", *phases], dv.cgroup),
            }
            order = ["swallow", "dovecot"] if rep % 2 == 0 else ["dovecot", "swallow"]
            time.sleep(1.0)  # logins done, nothing pending
            for label, ps in IMAP_PHASES:
                for server in order:
                    got = [clients[server].run(p.replace("{word}", word)) for p in ps]
                    seconds = sum(g["seconds"] for g in got)
                    last = got[-1]
                    res.add("imap", label, server, count / seconds)
                    res.add("imap", label, f"{server}_seconds", seconds)
                    res.add("imap", label, f"{server}_cpu", sum(g["cpu"] for g in got) / count * 1e6)
                    res.add("imap", label, f"{server}_client", sum(g["client_cpu"] for g in got) / count * 1e6)
                    res.add("imap", label, f"{server}_count", last["count"])
                    if last["octets"]:
                        res.add("imap", label, f"{server}_mib", last["octets"] / seconds / 2**20)
                    expected = manifest["matches"] if ps[0].startswith("search") else count
                    if last["count"] != expected:
                        msg = f"{server}: {label}: {last['count']:,} responses/matches, expected {expected:,}"
                        print("  WARNING " + msg, flush=True)
                        if msg not in res.notes:
                            res.notes.append(msg)
                print(f"  imap rep {rep + 1}: {label[:40]}: " + ", ".join(
                    f"{s} {res.get('imap', label, s).values[-1]:,.0f} msg/s {res.get('imap', label, s + '_cpu').values[-1]:,.1f} µs"
                    for s in order), flush=True)
            for c in clients.values():
                c.finish()
        finally:
            dv.stop()
            sw.stop()
    # One repetition: setting up 10,000 Dovecot sessions takes minutes; the runs give the spread.
    case_imap_idle(work, binary, client, corpus, manifest, res, 1, idle_sessions, idle_users)


def _imap_corpus():
    sys.path.insert(0, str(Path(__file__).parent))
    import imap_corpus
    return imap_corpus


def case_imap_idle(work: Path, binary: Path, client: Path, corpus: Path, manifest: dict, res: Results, reps: int,
                   sessions: int, users: int, messages: int = 100):
    """`sessions` connections in IDLE on INBOX, spread over `users` users of `messages` messages each
    (10 sessions per user: phones, desktops, a client per folder): the whole server's RSS and USS.
    Swallow: one process. Dovecot: one imap process per session (its default), measured with
    sessions / 10 (its processes would need about 10 GB at 10,000), and with IMAP hibernation
    (`imap_hibernate_timeout = 1s`: an IDLE session's state moves into a shared imap-hibernate
    process), its own answer to many idle sessions, with all of them. Logins use a cheap yescrypt."""
    names = [f"idle{i}" for i in range(users)]
    password_hash = cheap_yescrypt("benchpass")
    home = work / "dovecot-home"

    def measure(label: str, server: str, port: int, cg: Cgroup, n: int, fmt: str):
        time.sleep(0.5)
        rss0, uss0 = memory_kib(cg.pids())
        t0 = time.monotonic()
        p = subprocess.Popen([str(client), "127.0.0.1", str(port), "idle", f"{fmt},{users}", "benchpass", str(n), "32"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline().split()
            if line != ["idling", str(n)]:
                raise RuntimeError(f"IDLE client against {server} failed: {line}")
            dt = time.monotonic() - t0
            time.sleep(3.0 if "hibernat" in label else 1.0)
            pids = cg.pids()
            rss1, uss1 = memory_kib(pids)
        finally:
            p.stdin.close()
            p.wait(120)
        row = f"{label}, {n:,} sessions"
        res.add("imap_idle", row, "total", rss1 / 1024)
        res.add("imap_idle", row, "uss_total", uss1 / 1024)
        res.add("imap_idle", row, "rss", (rss1 - rss0) / n)
        res.add("imap_idle", row, "uss", (uss1 - uss0) / n)
        res.add("imap_idle", row, "processes", len(pids))
        res.add("imap_idle", row, "setup", n / dt)
        print(f"  imap idle {row}: {rss1 / 1024:,.1f} MiB RSS, {uss1 / 1024:,.1f} MiB USS, {len(pids)} processes,"
              f" {n / dt:,.0f} sessions/s set up", flush=True)

    for rep in range(reps):
        clear_dir(home)
        sw = Swallow(work, binary, imap=True)
        hashes = swallow_users(sw, names, password_hash)
        for n in names:
            deliver_corpus(corpus, manifest, sw.maildir(n), limit=messages, link=True)
            deliver_corpus(corpus, manifest, home / n / "Maildir", limit=messages, link=True)
        subprocess.run(["chown", "-R", "nobody:nogroup", str(home)], check=True)
        settle()
        try:
            sw.start()
            measure("Swallow", "swallow", PORTS["swallow_imap"], sw.cgroup, sessions, f"idle%d@{DOMAIN}")
        finally:
            sw.stop()
        # Every Dovecot IDLE session holds an inotify instance (handed to imap-hibernate when it
        # hibernates; without one it polls and cannot hibernate): the default of 128 per user is raised
        # for the measurement, as Dovecot's documentation asks, and restored after.
        limit = Path("/proc/sys/fs/inotify/max_user_instances")
        saved = limit.read_text()
        limit.write_text(f"{max(int(saved), sessions + 1000)}\n")
        try:
            for label, extra, n in (("Dovecot, a process per session", DOVECOT_IMAP, sessions // 10),
                                    ("Dovecot with IMAP hibernation", DOVECOT_IMAP + DOVECOT_HIBERNATE, sessions)):
                dv = Dovecot(work, home, hashes, protocol="imap", extra=extra)
                try:
                    dv.start()
                    measure(label, "dovecot", dv.port, dv.cgroup, n, "idle%d")
                finally:
                    dv.stop()
        finally:
            limit.write_text(saved)


# ------------------------------------------------------------------------------------------------
# inbound with SPF, DKIM and DMARC: Swallow against Postfix + OpenDKIM + OpenDMARC milters

AUTH_DOMAIN = "example.test"          # both servers' own domain; the messages go to bench@example.test
AUTH_SELECTOR = "bench2048"           # the sender domain's (bench.test, DOMAIN) RSA-2048 key
AUTH_ID = f"postfix.{AUTH_DOMAIN}"    # OpenDKIM's and OpenDMARC's authserv-id (Postfix's myhostname)
AUTH_SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]


def auth_material(d: Path) -> tuple[dict, Path, bytes]:
    """A fresh RSA-2048 key for bench.test and the zone publishing it with SPF `ip4:127.0.0.1 -all` and
    DMARC `p=reject`; the signed 10 KiB message (10,240 octets with CRLF, written with LF for
    smtp-source -F), verified here with dkimpy; and a forged copy (CRLF) whose body was changed after
    signing, for a sender whose SPF passes but does not align (other.test), so DMARC fails."""
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    zone = {DOMAIN: {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
            f"_dmarc.{DOMAIN}": {"TXT": ["v=DMARC1; p=reject"]},
            f"{AUTH_SELECTOR}._domainkey.{DOMAIN}": {"TXT": [record]},
            "other.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}}
    head = (f"From: Bench Sender <sender@{DOMAIN}>\r\nTo: <bench@{AUTH_DOMAIN}>\r\nSubject: authenticated intake\r\n"
            f"Date: Sat, 05 Dec 2026 06:00:00 +0000\r\nMessage-ID: <auth-benchmark@{DOMAIN}>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()

    def signed(body: bytes) -> bytes:
        message = head + body
        return dkim.sign(message, AUTH_SELECTOR.encode(), DOMAIN.encode(), pem, canonicalize=(b"relaxed", b"relaxed"),
                         include_headers=AUTH_SIGNED) + message

    line = b"The quick brown fox jumps over the lazy dog, and a benchmark counts every octet. 0123\r\n"
    room = 10240 - len(signed(b""))  # the signature's length does not depend on the body
    body = (line * (room // len(line) + 1))[:room - 2] + b"\r\n"
    message = signed(body)
    assert len(message) == 10240, len(message)
    assert dkim.verify(message, dnsfunc=lambda name, timeout=5: record.encode()), "dkimpy does not verify its own signature"
    path = d / "signed.eml"
    path.write_bytes(message.replace(b"\r\n", b"\n"))
    forged = message.replace(b"lazy dog", b"lazy cat", 1)
    assert forged != message and not dkim.verify(forged, dnsfunc=lambda name, timeout=5: record.encode())
    return zone, path, forged


class AuthDNS:
    """Benchmarks/authdns.py on 127.0.0.1:53 of the case's network namespace, in a cgroup of its own;
    `counts()` gives the queries answered so far per "name TYPE"."""

    def __init__(self, work: Path, zone: dict):
        self.dir = work / "dns"
        clear_dir(self.dir)
        (self.dir / "zone.json").write_text(json.dumps(zone))
        self.stats = self.dir / "stats.json"
        self.cgroup = Cgroup("dns")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("authdns.py")), str(self.dir / "zone.json"),
                                      "53", str(self.stats)], stdin=subprocess.DEVNULL, preexec_fn=self.cgroup.preexec())
        wait_until(self.stats.exists, 10, "the DNS server")

    def counts(self) -> dict[str, int]:
        self.stats.unlink()
        self.proc.send_signal(signal.SIGUSR1)
        wait_until(self.stats.exists, 10, "the DNS server's counts")
        return json.loads(self.stats.read_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.cgroup.remove()


class Milters:
    """OpenDKIM (verify only) and OpenDMARC (SPF itself, RejectFailures) for `pf`, on UNIX sockets in
    its directory, started in Postfix's cgroup so their CPU counts as Postfix's."""

    def __init__(self, pf: "Postfix"):
        self.pf = pf
        self.dir = pf.dir / "milters"
        clear_dir(self.dir)
        os.chmod(self.dir, 0o1777)  # the milters write their sockets and PID files as their own users
        # Both skip mail from 127.0.0.1 by default (OpenDKIM would sign it, OpenDMARC ignore it); the
        # load comes from 127.0.0.1, so their lists name another address.
        (self.dir / "not-loopback").write_text("192.0.2.1\n")
        (self.dir / "opendkim.conf").write_text(f"""\
Syslog no
Mode v
Socket local:{self.dir}/opendkim.sock
PidFile {self.dir}/opendkim.pid
UserID opendkim:opendkim
UMask 000
AuthservID {AUTH_ID}
InternalHosts {self.dir}/not-loopback
OversignHeaders From
""")
        (self.dir / "opendmarc.conf").write_text(f"""\
Syslog false
Socket local:{self.dir}/opendmarc.sock
PidFile {self.dir}/opendmarc.pid
UserID opendmarc:opendmarc
UMask 000
AuthservID {AUTH_ID}
TrustedAuthservIDs {AUTH_ID}
IgnoreHosts {self.dir}/not-loopback
PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat
RejectFailures true
SPFSelfValidate true
""")
        self.sockets = {"opendkim": self.dir / "opendkim.sock", "opendmarc": self.dir / "opendmarc.sock"}

    @staticmethod
    def postfix_settings(milter_dir: Path) -> dict:
        return {"smtpd_milters": f"unix:{milter_dir}/opendkim.sock, unix:{milter_dir}/opendmarc.sock",
                "non_smtpd_milters": "", "milter_default_action": "tempfail"}

    def start(self):
        for name, argv in (("opendkim", ["opendkim", "-x", self.dir / "opendkim.conf"]),
                           ("opendmarc", ["opendmarc", "-c", self.dir / "opendmarc.conf"])):
            with open(self.dir / f"{name}.out", "wb") as out:
                subprocess.run([str(a) for a in argv], check=True, stdout=out, stderr=out, timeout=60,
                               stdin=subprocess.DEVNULL, preexec_fn=self.pf.cgroup.preexec())
            wait_until(self.sockets[name].exists, 10, f"{name}'s socket")

    def stop(self):
        for name in ("opendmarc", "opendkim"):
            pid_file = self.dir / f"{name}.pid"
            if not pid_file.exists():
                continue
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGTERM)
                wait_until(lambda: not Path(f"/proc/{pid}").exists(), 15, f"{name} to exit")
            except ProcessLookupError:
                pass


def auth_results(path: Path, authserv_id: str | None = None) -> str:
    """The Authentication-Results fields of a stored message (unfolded, joined), optionally only those
    of `authserv_id`."""
    head = path.read_bytes().split(b"\n\n", 1)[0].decode("ascii", "replace")
    fields = re.split(r"\n(?![ \t])", head)
    found = [re.sub(r"\s+", " ", f.split(":", 1)[1]).strip() for f in fields
             if f.lower().startswith("authentication-results:")]
    if authserv_id:
        found = [f for f in found if f.lower().startswith(authserv_id.lower())]
    return " | ".join(found)


def refused(port: int, message: bytes, sender: str, to: str) -> str:
    """Sends `message` once; the server's reply if it refused it (5xx), else raises."""
    import smtplib
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.bench.test", timeout=30) as s:
        try:
            s.sendmail(sender, [to], message)
        except smtplib.SMTPDataError as e:
            if 500 <= e.smtp_code < 600:
                return f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"
            raise
    raise RuntimeError(f"the forged message was accepted on port {port}")


def case_auth(work: Path, binary: Path, res: Results, reps: int, count: int, concurrencies):
    """Runs `auth_in_namespace` in a network and mount namespace of its own (`unshare --net --mount`:
    only loopback, a DNS server on 127.0.0.1:53, /etc/resolv.conf bind-mounted to point at it, as
    Tests/integration/test_dkim_judges.py does for OpenDKIM) and adds its figures to `res`."""
    out = work / "auth-results.json"
    out.unlink(missing_ok=True)
    subprocess.run(["unshare", "--net", "--mount", sys.executable, str(Path(__file__).resolve()), "_auth",
                    "--work", str(work), "--binary", str(binary), "--reps", str(reps), "--auth-count", str(count),
                    "--auth-sessions", ",".join(str(c) for c in concurrencies)], check=True, timeout=4 * 3600)
    got = json.loads(out.read_text())
    for key, cols in got["rows"].items():
        case, params = key.split("|", 1)
        for column, values in cols.items():
            for v in values:
                res.add(case, params, column, v)
    res.notes += [f"auth: {n}" for n in got["notes"]]


def auth_in_namespace(work: Path, binary: Path, reps: int, count: int, concurrencies) -> None:
    """Inbound port 25 with every check on, one signed 10 KiB message per session. Swallow:
    `check_authentication = true`, its resolver pointed at 127.0.0.1:53 (caches). Postfix: smtpd with
    the OpenDKIM (Mode v) and OpenDMARC (SPFSelfValidate, RejectFailures) milters, which resolve through
    /etc/resolv.conf, delivering to a Maildir like `inbound` and timed until its queue is empty. Before
    timing: stored messages carry dkim=pass, spf=pass and dmarc=pass from both, and a forged message
    (p=reject) is refused by both."""
    run(["ip", "link", "set", "lo", "up"])
    resolv = work / "auth-resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    run(["mount", "--bind", resolv, "/etc/resolv.conf"])
    res = Results()
    zone, message, forged = auth_material(work)
    to = f"bench@{AUTH_DOMAIN}"
    dns = AuthDNS(work, zone)
    sw = Swallow(work, binary, domain=AUTH_DOMAIN, check_authentication=True,
                 extra='[dns]\nnameservers = ["127.0.0.1:53"]\n')
    pf = Postfix(work, domain=AUTH_DOMAIN, extra=Milters.postfix_settings(work / "postfix" / "milters"))
    milters = Milters(pf)
    sink = Sink(PORTS["sink"], "sink")
    servers = {"swallow": (PORTS["swallow"], sw.cgroup, sw.maildir() / "new"),
               "postfix": (PORTS["postfix"], pf.cgroup, pf.mail / "new")}
    try:
        dns.start()
        sw.start()
        milters.start()
        pf.start()
        sink.start()
        # warm-up, and what each server concluded
        for name, (port, _, new) in servers.items():
            smtp_source(port, 10, 200, 0, to=to, message=message)
            if name == "postfix":
                wait_until(lambda: pf.queue_empty() and count_files(new) >= 200, 60, "postfix warm-up")
            stored = sorted(new.iterdir())
            if len(stored) != 200:
                raise RuntimeError(f"{name} stored {len(stored)} of 200 warm-up messages")
            for f in (stored[0], stored[-1]):
                ar = auth_results(f, AUTH_ID if name == "postfix" else None)
                missing = [r for r in ("dkim=pass", "spf=pass", "dmarc=pass") if r not in ar]
                if missing:
                    raise RuntimeError(f"{name}: {', '.join(missing)} missing from {f.name}: {ar or 'no Authentication-Results'}")
            reply = refused(port, forged, "sender@other.test", to)
            note = f"{name}: stored {ar}; forged copy (p=reject): {reply}"
            print(f"  auth {note}", flush=True)
            res.notes.append(note)
        for rep in range(reps):
            for c in concurrencies:
                params = f"10 KiB, {c} sessions"
                for name in (("swallow", "postfix") if rep % 2 == 0 else ("postfix", "swallow")):
                    port, cg, new = servers[name]
                    clear_dir(new)
                    if name == "postfix":
                        shutil.chown(new, "nobody", "nogroup")
                    settle()
                    q0, dns0, cpu0 = sum(dns.counts().values()), dns.cgroup.cpu_seconds(), cg.cpu_seconds()
                    t0 = time.monotonic()
                    accepted = smtp_source(port, c, count, 0, to=to, message=message)
                    if name == "postfix":
                        wait_until(lambda: pf.queue_empty() and count_files(new) >= count, RUN_TIMEOUT,
                                   "postfix to deliver")
                    dt = time.monotonic() - t0
                    got = count_files(new)
                    if got != count:
                        raise RuntimeError(f"{name} stored {got} of {count} messages ({params})")
                    res.add("auth", params, name, count / dt)
                    if name == "postfix":
                        res.add("auth", params, "postfix_accepted", count / accepted)
                    res.add("auth", params, f"{name}_cpu", (cg.cpu_seconds() - cpu0) / count * 1e6)
                    res.add("auth", params, f"{name}_dns", (sum(dns.counts().values()) - q0) / count)
                    res.add("auth", params, f"{name}_dns_cpu", (dns.cgroup.cpu_seconds() - dns0) / count * 1e6)
                res.add("auth", params, "sink", count / smtp_source(PORTS["sink"], c, count, 0, to=to, message=message))
                g = lambda col: res.get("auth", params, col).values[-1]
                print(f"  auth {params} rep {rep + 1}: swallow {g('swallow'):,.0f} ({g('swallow_cpu'):,.0f} µs,"
                      f" {g('swallow_dns'):.3f} q) postfix {g('postfix'):,.0f} ({g('postfix_cpu'):,.0f} µs,"
                      f" {g('postfix_dns'):.2f} q) sink {g('sink'):,.0f} msg/s", flush=True)
        per_name = dns.counts()
        res.notes.append("DNS questions over the whole case: " + ", ".join(f"{k} {v:,}" for k, v in sorted(per_name.items())))
    finally:
        sink.stop()
        milters.stop()
        pf.stop()
        sw.stop()
        dns.stop()
        (work / "auth-results.json").write_text(json.dumps(
            {"rows": {f"{k[0]}|{k[1]}": {c: v.values for c, v in cols.items()} for k, cols in res.rows.items()},
             "notes": res.notes}, indent=1))


def case_micro(res: Results):
    """ordo-one/benchmark in Benchmarks/Micro (its own release build): p50 wall clock and mallocs per
    operation, against the allocation budget written next to each benchmark."""
    micro = REPO / "Benchmarks" / "Micro"
    out = run(["swift", "package", "--disable-sandbox", "benchmark", "--format", "markdown", "--no-progress"],
              cwd=micro, timeout=3600).stdout
    budgets = dict(re.findall(r'Benchmark\("([^"]+)", configuration: budget\((\d+)\)\)',
                              (micro / "Benchmarks" / "SwallowMicro" / "SwallowMicro.swift").read_text()))
    name = None
    scale = {"(ns)": 1.0, "(μs)": 1e3, "(us)": 1e3, "(ms)": 1e6, "(s)": 1e9}
    for line in out.splitlines():
        if line.startswith("### "):
            name = line[4:].strip()
            if name in budgets:
                res.add("micro", name, "budget", float(budgets[name]))
            continue
        if not name or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 4:
            continue
        label, p50 = cells[0], cells[3]
        try:
            value = float(p50.replace(",", ""))
        except ValueError:
            continue
        if label.startswith("Time (wall clock)"):
            unit = next((u for u in scale if u in label), "(ns)")
            res.add("micro", name, "time_ns", value * scale[unit])
        elif label.startswith("Malloc (total)"):
            res.add("micro", name, "mallocs", value * (1000 if "(K)" in label else 1))
        elif label.startswith("Throughput"):
            pass
    print(f"  micro: {sum(1 for k in res.rows if k[0] == 'micro')} benchmarks", flush=True)


def case_mime(res: Results):
    """The MIME corpus through Python's email package and fast-mail-parser (Benchmarks/mime_compare.py);
    Swallow's figure for the same files comes from the micro benchmarks (case `micro`)."""
    out = run([sys.executable, str(REPO / "Benchmarks" / "mime_compare.py"), "--json"], timeout=600).stdout
    for name, row in json.loads(out).items():
        res.add("mime", name, "size", row["size"])
        res.add("mime", name, "python_email_us", row["python_email_us"])
        if row["fast_mail_parser_us"] is not None:
            res.add("mime", name, "fast_mail_parser_us", row["fast_mail_parser_us"])
    print("  mime: " + ", ".join(f"{k[1]}" for k in res.rows if k[0] == "mime"), flush=True)


# ------------------------------------------------------------------------------------------------
# report


def ratio(a: Cell, b: Cell) -> str:
    if not a.values or not b.values or b.median == 0:
        return "–"
    return f"{a.median / b.median:.2f}×"


def report(res: Results, meta: dict) -> str:
    out = ["# Benchmarks: Swallow side by side with Postfix and Dovecot", "",
           "Generated by `Benchmarks/run` (see [Benchmarks/README.md](../Benchmarks/README.md)); do not edit by hand.", "",
           "## Machine and versions", ""]
    out += [f"- {k}: {v}" for k, v in meta.items()]
    out += ["", "Each cell: median of the repetitions, [min–max]. Ratios compare medians measured in the same run. "
            "CPU is server CPU per message (user + system of the whole process tree, cgroup cpuacct). "
            "The load generators share the 2 cores with the servers.", ""]
    rows = [(k, v) for k, v in res.rows.items()]
    if any(k[0] == "inbound" for k, _ in rows):
        out += ["## 1. Durable inbound: smtp-source → port 25 → fsynced Maildir", "",
                "Swallow answers 250 only after the Maildir file and `new/` are fsynced (accepted = delivered). "
                "Postfix: end to end (smtpd → cleanup → queue → local(8) → Maildir), until every file is there. "
                "smtp-sink stores nothing (the protocol ceiling).", "",
                "| size, sessions | Swallow msg/s | Postfix msg/s (end to end) | ratio | Postfix accepted msg/s | smtp-sink msg/s | Swallow CPU µs/msg | Postfix CPU µs/msg |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "inbound":
                continue
            g = lambda c: cols.get(c, Cell())
            out.append(f"| {params} | {g('swallow').text()} | {g('postfix').text()} | **{ratio(g('swallow'), g('postfix'))}** | "
                       f"{g('postfix_accepted').text()} | {g('sink').text()} | {g('swallow_cpu').text()} | {g('postfix_cpu').text()} |")
        out.append("")
    if any(k[0] == "drain" for k, _ in rows):
        out += ["## 2. Outbound drain: queued messages → smtp-sink", "",
                "| size | Swallow msg/s | Postfix msg/s | ratio | Swallow CPU µs/msg | Postfix CPU µs/msg |",
                "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "drain":
                continue
            g = lambda c: cols.get(c, Cell())
            out.append(f"| {params} | {g('swallow').text()} | {g('postfix').text()} | **{ratio(g('swallow'), g('postfix'))}** | "
                       f"{g('swallow_cpu').text()} | {g('postfix_cpu').text()} |")
        out.append("")
    if any(k[0] == "pop3" for k, _ in rows):
        out += ["## 3. POP3: RETR every 10 KiB message (pipelining C client, 16 in flight)", "",
                "| maildrop | Swallow msg/s | Dovecot msg/s | ratio | Swallow CPU µs/RETR | Dovecot CPU µs/RETR | CPU ratio | Swallow peak RSS MiB | Dovecot peak RSS MiB | Swallow KiB/session | Dovecot KiB/session |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "pop3":
                continue
            g = lambda c: cols.get(c, Cell())
            out.append(f"| {params} | {g('swallow').text()} | {g('dovecot').text()} | **{ratio(g('swallow'), g('dovecot'))}** | "
                       f"{g('swallow_cpu').text(1)} | {g('dovecot_cpu').text(1)} | {ratio(g('swallow_cpu'), g('dovecot_cpu'))} | "
                       f"{g('swallow_rss').text(1)} | {g('dovecot_rss').text(1)} | "
                       f"{g('swallow_session').text()} | {g('dovecot_session').text()} |")
        out.append("")
    if any(k[0] == "idle" for k, _ in rows):
        out += ["## 4. Idle SMTP sessions (after EHLO)", "",
                "Postfix runs one smtpd process per session (`default_process_limit = 100`, so at most 100 "
                "concurrent sessions per service by default); it is measured with 50.", "",
                "| server, sessions | total RSS MiB | RSS KiB/session | USS KiB/session |", "| --- | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "idle":
                continue
            for server in ("swallow", "postfix"):
                if f"{server}_rss" in cols:
                    out.append(f"| {server.capitalize()}, {params} | {cols[server + '_total'].text(1)} | "
                               f"{cols[server + '_rss'].text(1)} | {cols[server + '_uss'].text(1)} |")
        out.append("")
    if any(k[0] == "imap" for k, _ in rows):
        out += ["## 7. IMAP: a 10,000-message mailbox (about 10 KiB each), Swallow against Dovecot", "",
                "`Benchmarks/imap_corpus.py` generates the mailbox once (realistic headers; text/plain, multipart/alternative, "
                "multipart/mixed with attachments); both servers get the same files copied into `new/` with Dovecot-LDA names "
                "(`S=`, `W=`), no index, the files in the page cache, each server restarted every repetition. One session per "
                "server (`Benchmarks/imapload.c`, plain sockets) runs the rows in order, the two servers' rows interleaved. "
                "The first row includes each server building its index (UIDs, and Dovecot's `dovecot.index*` and cache; "
                "both servers move every file from `new/` to `cur/`). msg/s: messages of the "
                "mailbox handled per second (for SEARCH: scanned); CPU: server CPU per message (cgroup); client: imapload's "
                "own CPU per message.", "",
                "| operation | Swallow msg/s | Dovecot msg/s | ratio | Swallow CPU µs/msg | Dovecot CPU µs/msg | CPU ratio | client CPU µs/msg (vs Swallow, Dovecot) | responses (Swallow, Dovecot) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "imap":
                continue
            g = lambda c: cols.get(c, Cell())
            out.append(f"| {params} | {g('swallow').text()} | {g('dovecot').text()} | **{ratio(g('swallow'), g('dovecot'))}** | "
                       f"{g('swallow_cpu').text(1)} | {g('dovecot_cpu').text(1)} | {ratio(g('swallow_cpu'), g('dovecot_cpu'))} | "
                       f"{g('swallow_client').text(1)}, {g('dovecot_client').text(1)} | "
                       f"{g('swallow_count').median:,.0f}, {g('dovecot_count').median:,.0f} |")
        out.append("")
        notes = [n for n in res.notes if not n.startswith("auth: ")]
        if notes:
            out += [f"- {n}" for n in notes] + [""]
    if any(k[0] == "auth" for k, _ in rows):
        out += ["## 8. Inbound with SPF, DKIM and DMARC checked: Swallow against Postfix + OpenDKIM + OpenDMARC", "",
                "Like table 1 (10 KiB, one message per session, durable Maildir), every message DKIM-signed (RSA-2048, "
                "relaxed/relaxed) by a sender domain publishing SPF `ip4:127.0.0.1 -all` and DMARC `p=reject`, answered by "
                "`Benchmarks/authdns.py` on 127.0.0.1:53 inside a network namespace of the case's own. Swallow: "
                "`check_authentication = true` (its own SPF, DKIM and DMARC, its resolver cache). Postfix: the Debian "
                "OpenDKIM (`Mode v`) and OpenDMARC (`SPFSelfValidate`, `RejectFailures`) milters on UNIX sockets, which "
                "resolve through libresolv without a cache (a real host would add a caching resolver; the DNS server's "
                "CPU is shown apart and counted for neither). Before timing, a stored message from each server must "
                "carry dkim=pass, spf=pass and dmarc=pass, and a forged copy must be refused by both. Milter CPU counts "
                "as Postfix's.", "",
                "| size, sessions | Swallow msg/s | Postfix + milters msg/s (end to end) | ratio | Postfix accepted msg/s | smtp-sink msg/s | Swallow CPU µs/msg | Postfix + milters CPU µs/msg | DNS queries/msg (Swallow, Postfix) | DNS server CPU µs/msg (Swallow, Postfix) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "auth":
                continue
            g = lambda c: cols.get(c, Cell())
            out.append(f"| {params} | {g('swallow').text()} | {g('postfix').text()} | **{ratio(g('swallow'), g('postfix'))}** | "
                       f"{g('postfix_accepted').text()} | {g('sink').text()} | {g('swallow_cpu').text()} | {g('postfix_cpu').text()} | "
                       f"{g('swallow_dns').median:.3f}, {g('postfix_dns').median:.2f} | "
                       f"{g('swallow_dns_cpu').text()}, {g('postfix_dns_cpu').text()} |")
        out.append("")
        notes = [n[len("auth: "):] for n in res.notes if n.startswith("auth: ")]
        if notes:
            out += [f"- {n}" for n in notes] + [""]
    if any(k[0] == "imap_idle" for k, _ in rows):
        out += ["### IMAP IDLE sessions", "",
                "Sessions in IDLE on INBOX, 10 per user, each user's INBOX 100 messages; logins with a cheap yescrypt "
                "(`$y$j75$`, the same hash for both). Memory of the whole server (every process in its cgroup), after "
                "the last session is idling; per session: the growth over the server at rest. Dovecot's default runs one "
                "imap process per session (measured with a tenth of the sessions: all of them would need about 10 GB); "
                "with `imap_hibernate_timeout` it hands idle sessions to one imap-hibernate process.", "",
                "| server, sessions | total RSS MiB | total USS MiB | RSS KiB/session | USS KiB/session | processes | sessions/s set up |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "imap_idle":
                continue
            g = lambda c: cols.get(c, Cell())
            out.append(f"| {params} | {g('total').text(1)} | {g('uss_total').text(1)} | {g('rss').text(1)} | "
                       f"{g('uss').text(1)} | {g('processes').text()} | {g('setup').text()} |")
        out.append("")
    if any(k[0] == "micro" for k, _ in rows):
        harness = next((cols.get("mallocs", Cell()) for (case, params), cols in rows
                        if case == "micro" and params.startswith("Harness:")), Cell())
        base = harness.median if harness.values else 0.0
        out += ["## 5. Micro benchmarks (ordo-one/benchmark, p50 per operation)", "",
                "`cd Benchmarks/Micro && swift package --disable-sandbox benchmark`. Every iteration is one measurement, and "
                f"the harness allocates {base:,.0f} times per measurement on its own (the empty operation below; "
                "`--allocation-stacks` runs see only our code and agree with the net column). The budget is what one "
                "operation of our code may allocate; the benchmark's `thresholds` allow budget + the harness's share "
                "(`swift package benchmark thresholds check` fails above it).", "",
                "| benchmark | time per op | mallocs per op (measured) | mallocs of our code (net) | allocation budget |",
                "| --- | ---: | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "micro":
                continue
            t = cols.get("time_ns", Cell()).median
            shown = f"{t / 1000:,.1f} µs" if t >= 1000 else f"{t:,.0f} ns"
            m = cols.get("mallocs", Cell())
            b = cols.get("budget", Cell())
            net = f"{max(0.0, m.median - base):,.0f}" if m.values and not params.startswith("Harness:") else "–"
            over = " (over)" if m.values and b.values and m.median - base > b.median else ""
            out.append(f"| {params} | {shown} | {m.text()} | {net}{over} | {b.text() if b.values else '–'} |")
        out.append("")
    if any(k[0] == "mime" for k, _ in rows):
        out += ["## 6. MIME parsing against Python", "",
                "The same files (`Benchmarks/Micro/corpus/`), the same work: structure, Subject and From decoded, every leaf "
                "part decoded. Python figures from `Benchmarks/mime_compare.py` (median of 5 rounds), Swallow's from the "
                "micro benchmark of the same file.", "",
                "| file | size | Swallow µs | Python `email` µs | `fast-mail-parser` (Rust) µs | Swallow's speed vs `email` | vs `fast-mail-parser` |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for (case, params), cols in rows:
            if case != "mime":
                continue
            micro_name = next((p for (c, p) in res.rows if c == "micro" and params in p), None)
            sw = res.get("micro", micro_name, "time_ns") if micro_name else Cell()
            sw_us = Cell([v / 1000 for v in sw.values])
            py, fmp = cols.get("python_email_us", Cell()), cols.get("fast_mail_parser_us", Cell())
            speed = lambda other: f"{other.median / sw_us.median:.2f}×" if sw_us.values and other.values else "–"
            out.append(f"| {params} | {cols['size'].text()} B | {sw_us.text(1)} | {py.text(1)} | {fmp.text(1)} | "
                       f"{speed(py)} | {speed(fmp)} |")
        out.append("")
    return "\n".join(out) + "\n"


def versions(binary: Path) -> dict:
    def pkg(name):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
        return r.stdout.strip() or "?"
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    return {
        "Date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "CPU": f"{os.cpu_count()} × {cpu}", "Memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "Kernel": platform.release(),
        "Swallow": f"{binary} (git {subprocess.run(['git', '-C', str(REPO), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()})",
        "Postfix": pkg("postfix"), "Dovecot": pkg("dovecot-core"), "Python (clients)": platform.python_version(),
    }


def auth_main(argv: list[str]):
    """`bench.py _auth …`: the `auth` case inside its namespace (started by `case_auth`)."""
    ap = argparse.ArgumentParser(prog="bench.py _auth")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--binary", type=Path, required=True)
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--auth-count", type=int, required=True)
    ap.add_argument("--auth-sessions", required=True)
    a = ap.parse_args(argv)
    auth_in_namespace(a.work, a.binary, a.reps, a.auth_count, [int(c) for c in a.auth_sessions.split(",")])


def main():
    if sys.argv[1:2] == ["_auth"]:
        return auth_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", default=["inbound", "drain", "pop3", "idle", "imap", "micro", "mime"])
    ap.add_argument("--binary", type=Path, default=Path(os.environ.get("SWALLOW_BIN", REPO / ".build-release" / "release" / "swallow")))
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/swallow-bench"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 repetition, fewer messages, 10 KiB only (a smoke run)")
    ap.add_argument("--output", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    args = ap.parse_args()
    if args.cases == ["report"]:
        args.cases = []  # rewrite docs/BENCHMARKS.md from the stored results only
    if os.geteuid() != 0:
        sys.exit("Benchmarks/run needs root (private Postfix and Dovecot instances, cgroups)")
    reps = 1 if args.quick else args.reps
    inbound_n, drain_n, pop_n = (1000, 1000, 2000) if args.quick else (5000, 5000, 10000)
    imap_n, imap_idle, imap_users = (2000, 1000, 100) if args.quick else (10000, 10000, 1000)
    sizes = [10240] if args.quick else [1024, 10240, 102400]
    concs = [1, 10, 100]
    args.work.mkdir(parents=True, exist_ok=True)
    res = Results()
    previous = args.work / "results.json"
    carried: list[str] = []
    if previous.exists():
        # Cases not run this time keep their last figures (marked below), so one file holds them all.
        for key, cols in json.loads(previous.read_text()).items():
            case, params = key.split("|", 1)
            if {"imap_idle": "imap"}.get(case, case) in args.cases:
                continue
            for column, values in cols.items():
                for v in values:
                    res.add(case, params, column, v)
            if case not in carried:
                carried.append(case)
    case_meta_path = args.work / "case-meta.json"
    case_meta = json.loads(case_meta_path.read_text()) if case_meta_path.exists() else {}
    meta = versions(args.binary)
    for case in args.cases:
        case_meta[case] = f"{meta['Date']}, git {meta['Swallow'].rsplit('git ', 1)[-1].rstrip(')')}"
    meta["Messages per run"] = (f"inbound {inbound_n:,}, drain {drain_n:,}, POP3 {pop_n:,}, IMAP {imap_n:,} "
                                f"(IDLE {imap_idle:,} sessions of {imap_users:,} users); repetitions {reps}")
    started = time.monotonic()
    try:
        for case in args.cases:
            print(f"== {case}", flush=True)
            if case == "inbound":
                case_inbound(args.work, args.binary, res, reps, inbound_n, sizes, concs)
            elif case == "drain":
                case_drain(args.work, args.binary, res, reps, drain_n, sizes)
            elif case == "pop3":
                case_pop3(args.work, args.binary, res, reps, pop_n, 4)
            elif case == "idle":
                case_idle(args.work, args.binary, res, reps, [1000] if args.quick else [1000, 10000])
            elif case == "imap":
                case_imap(args.work, args.binary, res, reps, imap_n, imap_idle, imap_users)
            elif case == "micro":
                case_micro(res)
            elif case == "mime":
                case_mime(res)
            elif case == "auth":
                case_auth(args.work, args.binary, res, reps, 1000 if args.quick else 5000, [10, 100])
            else:
                sys.exit(f"unknown case {case} (inbound, drain, pop3, idle, imap, auth, micro, mime)")
    finally:
        if args.cases:
            meta["Duration"] = f"{(time.monotonic() - started) / 60:.1f} min for {', '.join(args.cases)}"
        else:
            meta.pop("Swallow", None)
            meta["Date"] += " (report rewritten; each table comes from the run named below)"
        if carried:
            meta["Carried over from earlier runs"] = "; ".join(f"{c} ({case_meta.get(c, 'earlier run')})" for c in carried)
        case_meta_path.write_text(json.dumps(case_meta, indent=1))
        text = report(res, meta)
        print(text)
        args.output.write_text(text)
        (args.work / "results.json").write_text(json.dumps({f"{k[0]}|{k[1]}": {c: v.values for c, v in cols.items()}
                                                            for k, cols in res.rows.items()}, indent=1))


if __name__ == "__main__":
    main()
