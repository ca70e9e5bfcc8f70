"""Crash consistency of the real `swallow` binary.

- `scripts/crash-cycles --kills 20`: two instances (A relays through its queue to B, found through a
  private DNS server), SMTP and POP3 load on A, A killed with SIGKILL at random points 20 times and
  restarted on the same data directory, then an audit of every Maildir and the queue (see the script's
  docstring). Run the script by hand with a large `--kills` for a long soak.
- Power-loss ordering, read from an strace of `swallow serve`: the message file and the directory that
  makes it visible are fsynced before the `250` reply is written to the socket (Maildir delivery, the
  outbound queue, and both at once). Needs strace (Debian package `strace`; missing → failure in CI,
  skip elsewhere).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SWALLOW_BIN, RawSMTP, free_port, require_dnslib, require_tool, wait_port

SCRIPT = REPO_ROOT / "scripts" / "crash-cycles"
KILLS = 20




def test_crash_cycles_20_kills(tmp_path, capsys):
    """20 × kill -9 of A under SMTP + POP3 load: nothing acknowledged lost, local delivery exactly once,
    remote at least once with duplicates ≤ kills × concurrency, committed POP3 deletions stay deleted,
    nothing half-written visible, queue/corrupt empty, every restart answers 220."""
    require_dnslib()
    if not SWALLOW_BIN.exists():
        pytest.fail(f"swallow binary not found at {SWALLOW_BIN}")
    report = tmp_path / "crash-cycles.json"
    env = dict(os.environ, SWALLOW_BIN=str(SWALLOW_BIN))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--kills", str(KILLS), "--drain-timeout", "120", "--start-timeout", "30",
         "--workdir", str(tmp_path / "work"), "--json", str(report)],
        capture_output=True, text=True, timeout=900, env=env, stdin=subprocess.DEVNULL,
    )
    with capsys.disabled():
        summary = [l for l in result.stdout.splitlines() if l.startswith("crash-cycles:")]
        print("\n" + ("\n".join(summary) or result.stdout[-2000:]) + f"  [test {time.monotonic() - started:.0f}s]")
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    figures = json.loads(report.read_text())
    assert figures["kills"] == KILLS, figures
    assert figures["failures"] == [], figures["failures"]
    # the load really ran: every kind of message was acknowledged and POP3 deletions were committed
    for key in ("acknowledged_local_only", "acknowledged_remote_only", "acknowledged_mixed", "deletions_committed"):
        assert figures[key] > 0, (key, figures)
    assert figures["lost"] == 0
    assert figures["duplicates"] <= figures["duplicate_bound"], figures


# --------------------------------------------------------------------------------------------------
# strace: durable before 250


TRACED = "fsync,fdatasync,write,sendto,sendmsg,writev,rename,link,linkat,renameat,renameat2"
SYNCS = ("fsync", "fdatasync")
SOCKET_WRITES = ("write", "writev", "sendto", "sendmsg")


@dataclass
class Call:
    pid: str
    name: str
    args: str            # everything between the opening parenthesis and " = result"
    result: str | None   # None while unfinished (the process died in the call)
    start: int           # line number where the call was entered
    end: int | None = None  # line number where it returned (same as start unless <unfinished ...>)
    time: str = ""

    def fd_path(self) -> str | None:
        m = re.match(r"\s*\d+<(.*?)>(?:,|\)|$)", self.args)
        return m.group(1) if m else None

    def paths(self) -> list[str]:
        return re.findall(r'"((?:[^"\\]|\\.)*)"', self.args)


@dataclass
class Trace:
    calls: list[Call] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)


LINE_RE = re.compile(r"^(?:\[pid\s+)?(?P<pid>\d+)?\]?\s*(?P<time>\d\d:\d\d:\d\d\.\d+)\s+(?P<rest>.*)$")
CALL_RE = re.compile(r"^(?P<name>[a-z_0-9]+)\((?P<args>.*)$")
RESUMED_RE = re.compile(r"^<\.\.\. (?P<name>[a-z_0-9]+) resumed>(?P<args>.*)$")


def split_result(text: str) -> tuple[str, str | None]:
    """'fd, "buf", 42) = 42' → ('fd, "buf", 42', '42'); the result is after the last ') = '."""
    i = text.rfind(") = ")
    if i < 0:
        return text, None
    return text[:i], text[i + 4:].strip()


def parse_strace(text: str) -> Trace:
    """Parses `strace -f -tt -y -o FILE` output: lines `PID HH:MM:SS.us call(args) = result`, with
    `<unfinished ...>` / `<... call resumed>` pairs from other threads interleaved."""
    trace = Trace()
    pending: dict[tuple[str, str], Call] = {}
    for n, line in enumerate(text.splitlines()):
        m = LINE_RE.match(line)
        if not m:
            if line.strip():
                trace.unparsed.append(line)
            continue
        pid, rest = m.group("pid") or "main", m.group("rest")
        if rest.startswith(("---", "+++")):
            continue
        r = RESUMED_RE.match(rest)
        if r:
            call = pending.pop((pid, r.group("name")), None)
            if call is None:
                trace.unparsed.append(line)
                continue
            args, result = split_result(r.group("args"))
            call.args += args
            call.result = result
            call.end = n
            continue
        c = CALL_RE.match(rest)
        if not c:
            trace.unparsed.append(line)
            continue
        body = c.group("args")
        if body.endswith("<unfinished ...>"):
            call = Call(pid, c.group("name"), body[: -len("<unfinished ...>")].rstrip(), None, n, None, m.group("time"))
            pending[(pid, call.name)] = call
            trace.calls.append(call)
            continue
        args, result = split_result(body)
        trace.calls.append(Call(pid, c.group("name"), args, result, n, n, m.group("time")))
    return trace


def traced_server_pid(strace_pid: int, config_path: Path, timeout: float = 30.0) -> int:
    """The `swallow serve --config CONFIG` child of strace (strace also forks short-lived probe children at
    start, so the child is identified by its command line, never by position)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            children = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
        except OSError:
            children = []
        for pid in children:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in argv and str(config_path).encode() in argv:
                return int(pid)
        if time.monotonic() > deadline:
            raise AssertionError(f"strace {strace_pid} has no `swallow serve` child after {timeout}s")
        time.sleep(0.05)


def traced_delivery(server, rcpts: list[str], trace_path: Path) -> tuple[str, str]:
    """Runs `swallow serve` under strace, sends one message, stops the server; returns (queue ID, trace)."""
    strace = require_tool("strace")
    out = open(server.base / "strace-serve.log", "wb")
    proc = subprocess.Popen(
        [strace, "-f", "-tt", "-y", "-s", "512", "-o", str(trace_path), "-e", f"trace={TRACED}",
         str(SWALLOW_BIN), "serve", "--config", str(server.config_path)],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out,
    )
    serve_pid = None
    try:
        wait_port(server.port, timeout=60, what="swallow serve under strace")
        serve_pid = traced_server_pid(proc.pid, server.config_path)
        body = "Subject: traced\r\nFrom: <alice@example.test>\r\n\r\n" + "durable line\r\n" * 50
        with RawSMTP(server.host, server.port, timeout=60) as s:
            s.greet()
            s.cmd("MAIL FROM:<alice@example.test>", 250)
            for r in rcpts:
                s.cmd(f"RCPT TO:<{r}>", 250)
            s.cmd("DATA", 354)
            s.send(body + ".\r\n")
            lines = s.expect(250, "2.0.0")
            s.cmd("QUIT", 221)
        qid = re.search(r"queued as (\S+)", lines[-1]).group(1)
        time.sleep(0.5)
    finally:
        if serve_pid is None and proc.poll() is None:
            try:
                serve_pid = traced_server_pid(proc.pid, server.config_path, timeout=5)
            except AssertionError:
                pass
        if serve_pid is not None:
            try:
                os.kill(serve_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            if serve_pid is not None:
                try:
                    os.kill(serve_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.kill()
            proc.wait()
        out.close()
    return qid, trace_path.read_text("utf-8", "replace")


def reply_write(trace: Trace, qid: str) -> Call:
    hits = [c for c in trace.calls if c.name in SOCKET_WRITES and f"250 2.0.0 Ok: queued as {qid}" in c.args]
    assert hits, f"no socket write of the 250 for {qid} in the trace"
    return hits[0]


def synced_before(trace: Trace, path: str, before: Call, after: Call | None = None) -> Call:
    """A successful fsync/fdatasync of `path` that returned before `before` was entered (and, with
    `after`, was entered after `after` returned)."""
    candidates = [c for c in trace.calls if c.name in SYNCS and c.fd_path() == path]
    good = [c for c in candidates if c.result == "0" and c.end is not None and c.end < before.start
            and (after is None or c.start > after.end)]
    assert good, (f"no fsync of {path} completed before the 250 (line {before.start})"
                  + (f" and after line {after.end}" if after else "")
                  + f"; fsyncs of it: {[(c.start, c.end, c.result) for c in candidates]}")
    return good[-1]


def maildir_link(trace: Trace, maildir: Path, before: Call) -> Call:
    # a hard link for every mailbox but the last, a rename into the last one's new/
    links = [c for c in trace.calls if c.name in ("link", "linkat", "rename", "renameat", "renameat2")
             and len(c.paths()) == 2 and c.paths()[1].startswith(f"{maildir}/new/")]
    assert len(links) == 1, f"expected one link or rename into {maildir}/new, got {[c.args for c in links]}"
    link = links[0]
    assert link.result == "0" and link.end < before.start, (link, before.start)
    return link


def check_maildir_ordering(trace: Trace, maildir: Path, w: Call):
    link = maildir_link(trace, maildir, w)
    tmp_file = link.paths()[0]
    assert tmp_file.startswith(f"{maildir}/tmp/"), tmp_file
    file_sync = synced_before(trace, tmp_file, w)
    assert file_sync.end < link.start, "the message file must be fsynced before it is linked or renamed into new/"
    synced_before(trace, f"{maildir}/new", w, after=link)
    return link


def check_queue_ordering(trace: Trace, data_dir: Path, qid: str, w: Call):
    q = data_dir / "queue"
    entry_tmp, entry = f"{q}/tmp/{qid}", f"{q}/incoming/{qid}"
    synced_before(trace, f"{entry_tmp}/message", w)
    synced_before(trace, f"{entry_tmp}/envelope", w)
    renames = [c for c in trace.calls if c.name.startswith("rename") and c.paths() == [entry_tmp, entry]]
    assert len(renames) == 1, f"expected one rename {entry_tmp} → {entry}: {[c.args for c in trace.calls if c.name.startswith('rename')][:10]}"
    rename = renames[0]
    assert rename.result == "0" and rename.end < w.start, (rename, w.start)
    dir_sync = synced_before(trace, entry_tmp, w)
    assert dir_sync.end < rename.start, "the entry directory must be fsynced before it is renamed into incoming/"
    synced_before(trace, f"{q}/incoming", w, after=rename)


@pytest.mark.parametrize("case", ["local", "queue", "local+queue"])
def test_fsyncs_complete_before_the_250_is_written(make_server, tmp_path, case):
    """strace -f of `swallow serve` receiving one message: every fsync that makes it durable (the file, then
    new/ after the link; the queue's message, envelope, entry directory and incoming/ after the rename)
    returns before the write of the 250 to the socket begins."""
    require_tool("strace")
    closed = free_port()  # the queue's next hop: nothing listens, the message stays deferred
    server = make_server(start=False, smtp_extra={"relay_networks": ["127.0.0.1/32"]},
                         delivery={"retry_initial": 3600, "retry_maximum": 3600},
                         routes=[{"domain": "remote.test", "via": f"127.0.0.1:{closed}"}])
    rcpts = {"local": ["alice@example.test"], "queue": ["carol@remote.test"],
             "local+queue": ["alice@example.test", "carol@remote.test"]}[case]
    trace_path = tmp_path / "strace.txt"
    qid, text = traced_delivery(server, rcpts, trace_path)
    trace = parse_strace(text)
    assert trace.calls, text[:2000]
    w = reply_write(trace, qid)
    print(f"\n[{case}] 250 for {qid} written at line {w.start} ({w.time}, pid {w.pid}); "
          f"{len(trace.calls)} calls, {len(trace.unparsed)} unparsed lines; "
          f"{sum(1 for c in trace.calls if c.end != c.start)} interrupted by other threads")
    if "alice@example.test" in rcpts:
        check_maildir_ordering(trace, server.maildir_path("alice@example.test"), w)
    if "carol@remote.test" in rcpts:
        check_queue_ordering(trace, server.data_dir, qid, w)
    else:
        assert not any(f"/queue/tmp/{qid}" in c.args for c in trace.calls), "a local-only message touched the queue"


def test_strace_parser_handles_interleaved_threads():
    text = "\n".join([
        "101   10:00:00.000001 fsync(21</d/new> <unfinished ...>",
        "102   10:00:00.000002 write(20<socket:[1]>, \"250 2.0.0 Ok: queued as X) = 1\\r\\n\", 35 <unfinished ...>",
        "101   10:00:00.000003 <... fsync resumed>) = 0",
        "102   10:00:00.000004 <... write resumed>) = 35",
        "103   10:00:00.000005 link(\"/d/tmp/a\", \"/d/new/a,S=1\") = 0",
        "103   10:00:00.000006 +++ killed by SIGKILL +++",
        "10:00:00.000007 fsync(3</x>) = -1 EIO (Input/output error)",
    ])
    t = parse_strace(text)
    fs, wr, ln, bad = t.calls
    assert (fs.name, fs.fd_path(), fs.result, fs.start, fs.end) == ("fsync", "/d/new", "0", 0, 2)
    assert (wr.name, wr.result, wr.start, wr.end) == ("write", "35", 1, 3)
    assert "queued as X) = 1" in wr.args
    assert ln.paths() == ["/d/tmp/a", "/d/new/a,S=1"] and ln.result == "0"
    assert bad.result.startswith("-1 EIO") and bad.pid == "main"
    assert not t.unparsed


def test_ordering_check_rejects_a_directory_fsync_that_returns_after_the_reply():
    def trace(fsync_returns_late: bool) -> Trace:
        lines = [
            '11 10:00:00.000001 fsync(5</m/tmp/a>) = 0',
            '11 10:00:00.000002 link("/m/tmp/a", "/m/new/a,S=1,W=2") = 0',
            '12 10:00:00.000003 fsync(6</m/new> <unfinished ...>',
        ]
        resumed = '12 10:00:00.000005 <... fsync resumed>) = 0'
        write = '13 10:00:00.000004 write(7<socket:[9]>, "250 2.0.0 Ok: queued as Q\\r\\n", 27) = 27'
        lines += [write, resumed] if fsync_returns_late else [resumed, write]
        return parse_strace("\n".join(lines))

    good = trace(False)
    check_maildir_ordering(good, Path("/m"), reply_write(good, "Q"))
    bad = trace(True)
    with pytest.raises(AssertionError, match="no fsync of /m/new completed before the 250"):
        check_maildir_ordering(bad, Path("/m"), reply_write(bad, "Q"))
