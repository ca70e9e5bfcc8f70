"""Disk full: the data directory on a tiny tmpfs. A message that cannot be written is refused with a
temporary error (452 4.3.1, or 451 4.3.0), nothing half-written is left visible, and once space is
back mail flows again. Needs root for the mount; otherwise skipped (a failure in CI)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import IN_CI, fill_up

MARKER_FULL = "DISKFULL-MARKER-7f3a"
MARKER_OK = "AFTER-SPACE-MARKER-91c2"


@pytest.fixture
def tmpfs_dir(tmp_path):
    if os.geteuid() != 0:
        message = "disk-full test needs root to mount a tmpfs"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    mount_point = tmp_path / "tinyfs"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        message = f"cannot mount tmpfs: {result.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield mount_point
    if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)




def message(marker: str) -> bytes:
    body = (f"{marker} " + "x" * 70 + "\r\n") * 700  # ~55 kB, bigger than any slack
    return f"Subject: {marker}\r\nX-Marker: {marker}\r\n\r\n{body}".encode()


def send_and_collect(server, marker: str) -> list[tuple[int, list[str]]]:
    """Run one transaction step by step; stop at the first non-2xx/3xx reply."""
    replies = []
    with server.raw() as s:
        s.greet()
        for command in ("MAIL FROM:<sender@remote.test>", "RCPT TO:<alice@example.test>", "DATA"):
            s.send(command + "\r\n")
            reply = s.read_reply()
            assert reply is not None, f"connection closed after {command}"
            replies.append(reply)
            if reply[0] >= 400:
                return replies
        s.send(message(marker) + b".\r\n")
        reply = s.read_reply()
        assert reply is not None, "connection closed at end of data"
        replies.append(reply)
        s.send(b"QUIT\r\n")
        s.read_all_replies()
    return replies


def files_containing(root, marker: str, skip=("filler",)) -> list:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and path.name not in skip:
            try:
                if marker.encode() in path.read_bytes():
                    hits.append(path)
            except OSError:
                pass
    return hits


def test_disk_full_gives_temporary_error_and_leaves_nothing(tmpfs_dir, make_server):
    data_dir = tmpfs_dir / "data"
    server = make_server(data_dir=data_dir)
    # a first delivery so the mailbox exists and the server is warmed up
    with server.smtp() as client:
        assert client.sendmail("sender@remote.test", ["alice@example.test"], b"Subject: warm-up\r\n\r\nhi\r\n") == {}
    assert len(server.wait_messages("alice@example.test", 1)) == 1

    fill_up(tmpfs_dir)
    replies = send_and_collect(server, MARKER_FULL)
    final_code, final_lines = replies[-1]
    assert final_code in (451, 452), f"expected 452 4.3.1 / 451 4.3.0 on a full disk, got {replies}"
    enhanced = final_lines[-1][4:9]
    assert (final_code, enhanced) in ((452, "4.3.1"), (451, "4.3.0")), final_lines
    assert not any(code == 250 and "queued" in lines[-1] for code, lines in replies), replies

    mailbox = server.maildir_path("alice@example.test")
    for sub in ("new", "cur", "tmp"):
        leftovers = [p for p in server.maildir_files("alice@example.test", sub) if MARKER_FULL.encode() in p.read_bytes() or p.stat().st_size == 0 or sub == "tmp"]
        assert not leftovers, f"partial message left in {mailbox / sub}: {leftovers}"
    assert len(server.maildir_messages("alice@example.test")) == 1  # only the warm-up
    assert not files_containing(data_dir, MARKER_FULL), "half-written copy of the refused message left behind"

    # space comes back → mail flows again without a restart
    (tmpfs_dir / "filler").unlink()
    replies = send_and_collect(server, MARKER_OK)
    assert replies[-1][0] == 250 and "queued" in replies[-1][1][-1], replies
    msgs = server.wait_messages("alice@example.test", 2)
    assert sorted(str(m["Subject"]) for m in msgs) == sorted(["warm-up", MARKER_OK])
    assert server.proc.poll() is None, "server died on a full disk"
