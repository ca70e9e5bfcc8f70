"""Storage faults under a running `swallow serve`, with the replies the documentation promises.

- Read-only data directory (a read-only bind mount of data_dir over itself, so files the server already
  has open stay writable and everything it opens afterwards is not): SMTP answers the end of data with
  `451 4.3.0` (docs/smtp.md: "any other local failure"), never 250, for local, queued and spooled
  (> 1 MiB) messages; once the directory is writable again mail flows without a restart.
- Disk full (data_dir on a tiny tmpfs filled to the last byte): a message for a remote domain gets
  `452 4.3.1` (docs/smtp.md, README "On disk") and leaves nothing in the queue; a queued message whose
  delivery attempt happens while the disk is full is deferred — not bounced, not lost — and delivered once
  space is back, without a restart; the same when the *receiving* Swallow's disk is full.
- POP3 UPDATE on a maildir that cannot be changed: `-ERR [SYS/TEMP]` (RFC 3206; docs/pop3.md) and every
  message still there; once it can be changed, the same session works.

Needs root (mount); otherwise skipped, a failure in CI.
"""

from __future__ import annotations

import os
import poplib
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IN_CI, RawSMTP, fill_up, free_port, wait_for

ALICE = "alice@example.test"
CAROL = "carol@remote.test"
PASSWORD = "correct horse battery staple"
QUEUE_STATES = ("incoming", "active", "deferred", "hold", "corrupt")


# --------------------------------------------------------------------------------------------------
# mounts


def _require_root():
    if os.geteuid() != 0:
        message = "storage-fault tests need root to mount"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        message = f"mount {' '.join(args)} failed: {result.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path):
    """Factory: tmpfs(name, size) → a fresh tmpfs mount point; unmounted at the end."""
    _require_root()
    mounts: list[Path] = []

    def factory(name: str = "tinyfs", size: str = "4m") -> Path:
        point = tmp_path / name
        point.mkdir()
        _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(point))
        mounts.append(point)
        return point

    yield factory
    for point in reversed(mounts):
        _umount(point)


class ReadOnly:
    """`path` bind-mounted over itself read-only; `writable()` turns the same mount read-write."""

    def __init__(self, path: Path):
        self.path = path
        _mount("--bind", str(path), str(path))
        self.mounted = True
        _mount("-o", "remount,bind,ro", str(path))

    def writable(self) -> None:
        _mount("-o", "remount,bind,rw", str(self.path))

    def remove(self) -> None:
        if self.mounted:
            _umount(self.path)
            self.mounted = False


@pytest.fixture
def read_only():
    """Factory: read_only(path) → ReadOnly; every bind mount is removed at the end (servers stop first:
    this fixture is requested before make_server, so it is torn down after it)."""
    _require_root()
    made: list[ReadOnly] = []

    def factory(path: Path) -> ReadOnly:
        ro = ReadOnly(path)
        made.append(ro)
        return ro

    yield factory
    for ro in reversed(made):
        ro.remove()




def free_space(directory: Path) -> None:
    (directory / "filler").unlink()


# --------------------------------------------------------------------------------------------------
# SMTP and queue helpers


def message(marker: str, size: int = 60_000) -> bytes:
    line = f"{marker} " + "x" * 70 + "\r\n"
    body = line * max(1, size // len(line))
    return f"From: <{ALICE}>\r\nSubject: {marker}\r\nX-Marker: {marker}\r\n\r\n{body}".encode()


def transaction(server, rcpts: list[str], data: bytes, sender: str = ALICE) -> list[tuple[int, list[str]]]:
    """One transaction step by step, stopping at the first reply ≥ 400; returns every reply."""
    replies = []
    with RawSMTP(server.host, server.port, timeout=60) as s:
        s.greet()
        for command in [f"MAIL FROM:<{sender}>"] + [f"RCPT TO:<{r}>" for r in rcpts] + ["DATA"]:
            s.send(command + "\r\n")
            reply = s.read_reply()
            assert reply is not None, f"connection closed after {command}"
            replies.append(reply)
            if reply[0] >= 400:
                return replies
        s.send(data + b".\r\n")
        reply = s.read_reply()
        assert reply is not None, "connection closed at the end of data"
        replies.append(reply)
        s.send(b"QUIT\r\n")
        s.read_all_replies()
    return replies


def assert_refused_at_end_of_data(replies, code: int, enhanced: str):
    """MAIL, RCPT…, DATA accepted; the final dot answered `code enhanced`; no 250 for the message."""
    *before, (final_code, final_lines) = replies
    assert [c for c, _ in before[:-1]] == [250] * (len(before) - 1) and before[-1][0] == 354, replies
    assert (final_code, final_lines[-1][4:9]) == (code, enhanced), f"expected {code} {enhanced}, got {final_lines}"


def assert_accepted(replies) -> str:
    code, lines = replies[-1]
    assert code == 250 and "queued as" in lines[-1], replies
    return re.search(r"queued as (\S+)", lines[-1]).group(1)


def queue_ids(server) -> dict[str, list[str]]:
    root = server.data_dir / "queue"
    return {s: sorted(os.listdir(root / s)) if (root / s).is_dir() else [] for s in QUEUE_STATES + ("tmp",)}


def queue_state(server, qid: str) -> str | None:
    return next((s for s, ids in queue_ids(server).items() if qid in ids), None)


def files_containing(root: Path, marker: str) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and path.name != "filler":
            try:
                if marker.encode() in path.read_bytes():
                    hits.append(path)
            except OSError:
                pass
    return hits


def subjects(server, address: str) -> list[str]:
    return [str(m["Subject"]) for m in server.maildir_messages(address)]


def make_pair(make_server, *, receiver_data_dir: Path | None = None, sender_data_dir: Path | None = None,
              start_receiver: bool = True, delivery: dict | None = None):
    """A receiving Swallow for remote.test and a sending one (relays for 127.0.0.1, routes remote.test to
    the receiver, retries after 1–2 s)."""
    receiver = make_server(name="receiver", hostname="mx.remote.test", domains=("remote.test",), users=(CAROL,),
                           postmaster=CAROL, data_dir=receiver_data_dir, start=start_receiver)
    d = {"retry_initial": 1, "retry_maximum": 2}
    d.update(delivery or {})
    sender = make_server(name="sender", data_dir=sender_data_dir, smtp_extra={"relay_networks": ["127.0.0.1/32"]},
                         delivery=d, routes=[{"domain": "remote.test", "via": f"127.0.0.1:{receiver.port}"}])
    return receiver, sender


def warm_up(sender, receiver):
    """One local and one remote message through, so Maildirs and queue directories exist."""
    assert_accepted(transaction(sender, [ALICE], message("warm-up local", 200)))
    assert_accepted(transaction(sender, [CAROL], message("warm-up remote", 200)))
    wait_for(lambda: "warm-up remote" in subjects(receiver, CAROL), timeout=30, what="the warm-up at the receiver")
    wait_for(lambda: not any(v for v in queue_ids(sender).values()), timeout=30, what="the sender's queue empty")


def attempts_logged(server, qid: str) -> int:
    """Failed delivery attempts of `qid` the log tells of (one `deferred` line per attempt and recipient)."""
    return sum(1 for line in server.log_text().splitlines() if qid in line and "[MailQueue] deferred" in line)


def bounces(server, address: str = ALICE) -> list[str]:
    """Subjects of the delivery status notifications in `address`'s Maildir (null sender)."""
    return [str(m["Subject"]) for m in server.maildir_messages(address) if m["Return-Path"] == "<>"]


# --------------------------------------------------------------------------------------------------
# read-only data directory


def test_read_only_data_dir_answers_451_and_recovers_without_restart(read_only, make_server):
    receiver, sender = make_pair(make_server)
    warm_up(sender, receiver)
    pid = sender.proc.pid
    before_local = sorted(subjects(sender, ALICE))

    ro = read_only(sender.data_dir)
    cases = {
        "RO-LOCAL": ([ALICE], 60_000),
        "RO-REMOTE": ([CAROL], 60_000),
        "RO-BOTH": ([ALICE, CAROL], 60_000),
        "RO-SPOOLED": ([ALICE], 2_200_000),  # over 1 MiB: the content goes to data_dir/spool while it arrives
    }
    for marker, (rcpts, size) in cases.items():
        replies = transaction(sender, rcpts, message(marker, size))
        assert_refused_at_end_of_data(replies, 451, "4.3.0")
    assert sender.proc.poll() is None, "the server died on a read-only data directory"
    assert sorted(subjects(sender, ALICE)) == before_local
    assert not any(queue_ids(sender)[s] for s in QUEUE_STATES)

    ro.writable()  # no restart
    for marker, (rcpts, size) in cases.items():
        assert_accepted(transaction(sender, rcpts, message(marker.replace("RO-", "RW-"), size)))
    wait_for(lambda: {"RW-REMOTE", "RW-BOTH"} <= set(subjects(receiver, CAROL)), timeout=30, what="relayed mail")
    assert sorted(subjects(sender, ALICE)) == sorted(before_local + ["RW-LOCAL", "RW-BOTH", "RW-SPOOLED"])
    assert not any(s.startswith("RO-") for s in subjects(receiver, CAROL) + subjects(sender, ALICE))
    assert sender.proc.pid == pid and sender.proc.poll() is None


# --------------------------------------------------------------------------------------------------
# disk full


@pytest.mark.parametrize("case", ["remote", "local+remote", "remote-spooled", "local-spooled"])
def test_disk_full_answers_452_4_3_1_and_queues_nothing(tmpfs, make_server, case):
    """A full disk is `452 4.3.1 Insufficient system storage` (docs/smtp.md) whatever the path: the queue,
    the queue and a Maildir together, and content over 1 MiB spooled while it arrives."""
    # A spooled message needs room twice (the spool file, then its copy in the queue or a Maildir).
    mount = tmpfs(size="16m" if "spooled" in case else "4m")
    receiver, sender = make_pair(make_server, sender_data_dir=mount / "data")
    warm_up(sender, receiver)
    rcpts, size = {"remote": ([CAROL], 60_000), "local+remote": ([ALICE, CAROL], 60_000),
                   "remote-spooled": ([CAROL], 2_200_000), "local-spooled": ([ALICE], 2_200_000)}[case]
    marker = f"FULL-{case}"
    fill_up(mount)
    replies = transaction(sender, rcpts, message(marker, size))
    assert sender.proc.poll() is None, "the server died on a full disk"
    assert not files_containing(mount, marker), "a copy of the refused message was left behind"
    assert not any(queue_ids(sender).values()), queue_ids(sender)
    assert_refused_at_end_of_data(replies, 452, "4.3.1")

    free_space(mount)
    ok = marker.replace("FULL", "SPACE")
    assert_accepted(transaction(sender, rcpts, message(ok, size)))
    wait_for(lambda: ok in subjects(receiver, CAROL) if CAROL in rcpts else True, timeout=30, what="the relayed message")
    if ALICE in rcpts:
        assert ok in subjects(sender, ALICE)


def test_delivery_attempt_while_own_disk_full_defers_then_delivers(tmpfs, make_server):
    """A queued message whose delivery attempts fail (next hop down) while the sender's own disk is full:
    still queued, no bounce, and delivered once the disk has space and the next hop is back — without a
    restart."""
    mount = tmpfs()
    receiver, sender = make_pair(make_server, sender_data_dir=mount / "data", start_receiver=False)
    qid = assert_accepted(transaction(sender, [CAROL], message("queued-before-full", 2000)))
    wait_for(lambda: queue_state(sender, qid) == "deferred", timeout=30, what="the message deferred (next hop down)")
    stored = (sender.data_dir / "queue" / "deferred" / qid / "message").read_bytes()

    fill_up(mount)
    seen = attempts_logged(sender, qid)
    wait_for(lambda: attempts_logged(sender, qid) > seen, timeout=30, what="a delivery attempt on a full disk")
    time.sleep(3)  # retries are 1–2 s apart: let more attempts fall on the full disk
    state = queue_state(sender, qid)
    assert state in ("incoming", "active", "deferred"), f"message {qid} in {state!r} after attempts on a full disk"
    assert (sender.data_dir / "queue" / state / qid / "message").read_bytes() == stored
    assert bounces(sender) == [], "a bounce for a temporary failure"

    free_space(mount)
    receiver.start()
    try:
        wait_for(lambda: "queued-before-full" in subjects(receiver, CAROL), timeout=30,
                 what="delivery after space came back (no restart)")
    except AssertionError:
        state, listing, tail = queue_state(sender, qid), sender.cli("queue", "list").stdout, sender.log_tail(6)
        sender.stop()  # for the report: does a restart get it going?
        sender.start()
        try:
            wait_for(lambda: "queued-before-full" in subjects(receiver, CAROL), timeout=30, what="delivery after a restart")
            after_restart = "delivered after a restart"
        except AssertionError:
            after_restart = "not delivered even after a restart"
        raise AssertionError(
            f"not delivered 30 s after space came back and the next hop started (retries are 1–2 s apart); the "
            f"message stayed in {state!r} ({after_restart})\n{listing}\n{tail}") from None
    wait_for(lambda: not any(v for v in queue_ids(sender).values()), timeout=30, what="the sender's queue empty")
    time.sleep(2.5)
    assert subjects(receiver, CAROL) == ["queued-before-full"]
    assert bounces(sender) == []


def test_delivery_to_a_receiver_with_a_full_disk_defers_not_bounces(tmpfs, make_server):
    """The receiving Swallow's disk is full: it answers 452 4.3.1, the sender defers (no bounce), and the
    message arrives once when space is back."""
    mount = tmpfs()
    receiver, sender = make_pair(make_server, receiver_data_dir=mount / "data")
    warm_up(sender, receiver)
    fill_up(mount)
    qid = assert_accepted(transaction(sender, [CAROL], message("to-a-full-receiver")))
    wait_for(lambda: attempts_logged(sender, qid) >= 2, timeout=30, what="two deferred attempts")
    listing = sender.cli("queue", "list").stdout
    assert "452 4.3.1" in listing, listing
    assert bounces(sender) == [], "a bounce for a temporary failure"
    assert "to-a-full-receiver" not in subjects(receiver, CAROL)

    free_space(mount)
    wait_for(lambda: "to-a-full-receiver" in subjects(receiver, CAROL), timeout=30, what="delivery after space came back")
    wait_for(lambda: not any(v for v in queue_ids(sender).values()), timeout=30, what="the sender's queue empty")
    time.sleep(2.5)
    assert sorted(subjects(receiver, CAROL)) == ["to-a-full-receiver", "warm-up remote"]
    assert bounces(sender) == []


# --------------------------------------------------------------------------------------------------
# POP3 UPDATE on a maildir that cannot be changed


def pop_server(make_server, **config):
    port = free_port()
    server = make_server(pop3={"listen": [f"127.0.0.1:{port}"], "allow_plaintext_auth": True},
                         auth={"failure_delay_ms": 50, "max_failures_per_ip": 1000, "max_failures_per_account": 1000},
                         **config)
    server.pop3_port = port
    return server


def maildir_names(server, address: str) -> dict[str, list[str]]:
    return {sub: sorted(p.name for p in server.maildir_files(address, sub)) for sub in ("new", "cur")}


def pop_session(server, retr: list[int], dele: list[int]) -> str:
    """USER/PASS, RETR and DELE the given numbers, QUIT; returns the QUIT answer (or the -ERR text)."""
    client = poplib.POP3(server.host, server.pop3_port, timeout=60)
    try:
        client.user(ALICE)
        client.pass_(PASSWORD)
        for n in retr:
            client.retr(n)
        for n in dele:
            client.dele(n)
        try:
            return client._shortcmd("QUIT").decode()
        except poplib.error_proto as e:
            return e.args[0].decode() if isinstance(e.args[0], bytes) else str(e)
    finally:
        client.close()


@pytest.mark.parametrize("fault", ["read-only", "disk-full"])
def test_pop3_update_on_unchangeable_maildir_says_sys_temp(read_only, tmpfs, make_server, fault):
    """RETR 1, DELE 1, DELE 2, QUIT while the maildir cannot be changed → -ERR [SYS/TEMP], all three
    messages still there (and not [IN-USE] afterwards); when it can be changed again the same session
    deletes 1 and 2 and answers +OK. On a full disk deletion needs no space: there the session may
    succeed — but a +OK must mean the messages are gone, an -ERR that none is."""
    mount = tmpfs() if fault == "disk-full" else None
    server = pop_server(make_server, data_dir=(mount / "data") if mount else None)
    for i in range(3):
        assert_accepted(transaction(server, [ALICE], message(f"pop-{i}", 500)))
    before = maildir_names(server, ALICE)
    assert len(before["new"]) == 3

    ro = read_only(server.data_dir) if fault == "read-only" else None
    if mount:
        fill_up(mount)
    answer = pop_session(server, retr=[1], dele=[1, 2])
    after = maildir_names(server, ALICE)
    print(f"\n[{fault}] QUIT → {answer!r}; maildir after: new {len(after['new'])}, cur {len(after['cur'])}")
    if fault == "read-only":
        assert answer.startswith("-ERR [SYS/TEMP]"), answer
    if answer.startswith("-ERR"):
        assert answer.startswith("-ERR [SYS/TEMP]"), answer
        assert after == before, f"an UPDATE answered -ERR changed the maildir: {before} → {after}"
        # the failed UPDATE released the maildrop
        second = pop_session(server, retr=[], dele=[])
        assert second.startswith("+OK"), second
    else:
        assert answer.startswith("+OK"), answer
        remaining = after["new"] + after["cur"]
        assert len(remaining) == 1, after
    assert server.proc.poll() is None

    if ro:
        ro.writable()
    if mount:
        free_space(mount)
    if answer.startswith("-ERR"):
        answer2 = pop_session(server, retr=[1], dele=[1, 2])
        assert answer2.startswith("+OK"), answer2
    final = maildir_names(server, ALICE)
    assert len(final["new"] + final["cur"]) == 1, final
    assert [str(m["Subject"]) for m in server.maildir_messages(ALICE)] == ["pop-2"]
