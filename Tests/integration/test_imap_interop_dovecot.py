"""Dovecot as the reference on the same Maildir, and interimap's QRESYNC sync between Swallow and Dovecot.

Dovecot 2.3's `imap` binary (Debian package dovecot-imapd) runs pre-authenticated over a pipe on the very
Maildir that `swallow serve` uses, as the same unprivileged test user (Dovecot refuses to serve mail as
root). Both directions:

- what Swallow wrote (SMTP deliveries, STORE of flags and keywords, CREATE of Archive/2026 and Entwürfe,
  SUBSCRIBE, APPEND, COPY, EXPUNGE) reads the same through Dovecot: folders, subscriptions, UIDVALIDITY,
  UIDNEXT, UIDs, flags and keywords — also after Dovecot has built its own index there;
- a Maildir that Dovecot served (APPEND, STORE, CREATE, SUBSCRIBE, EXPUNGE) keeps its UIDs when Swallow
  serves it: the same answers over IMAP, and mbsync, synchronised against Dovecot first, finds nothing to
  download or delete when it is pointed at Swallow; then changes Dovecot makes while Swallow runs reach
  a selected Swallow session.

interimap (Debian package interimap) then synchronises Swallow (over IMAPS) with a Dovecot (over a pipe)
in both directions with QRESYNC, twice: the second run propagates flags, expunges and new messages only.
"""

from __future__ import annotations

import imaplib
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import require_tool
from imap_support import (ALICE, PASSWORD, TEST_USER, DovecotPipe, chown_tree, fetch_subjects, fetch_uid_flags,
                          list_names, logout, make_imap_server, message, ok, quote)  # noqa: F401  (fixture)
from test_imap_interop import describe, local_snapshot, run, traversable_dir  # noqa: F401  (fixture)

FOLDERS = ("Archive/2026", "Entw&APw-rfe")  # Entwürfe in modified UTF-7


def status(client: imaplib.IMAP4, name: str) -> tuple[int, int, int]:
    """(UIDVALIDITY, UIDNEXT, MESSAGES) of a folder."""
    data = ok(client.status(quote(name), "(UIDVALIDITY UIDNEXT MESSAGES)"))
    text = data[0].decode()
    return tuple(int(re.search(rf"{k} (\d+)", text).group(1)) for k in ("UIDVALIDITY", "UIDNEXT", "MESSAGES"))


def view(client: imaplib.IMAP4, folders) -> dict:
    """What a client sees of `folders`: status, UIDs with flags and subjects."""
    return {name: {"status": status(client, name), "flags": fetch_uid_flags(client, name),
                   "subjects": fetch_subjects(client, name)} for name in folders}


def account_view(client: imaplib.IMAP4) -> dict:
    names = list_names(client, selectable_only=True)
    return {"list": names, "lsub": list_names(client, "LSUB"), "folders": view(client, sorted(names))}


# --------------------------------------------------------------------------------------------------
# Swallow writes, Dovecot reads


def test_what_swallow_wrote_reads_the_same_through_dovecot(make_imap_server, tmp_path):
    server = make_imap_server(run_as=TEST_USER)
    for n in range(1, 5):
        server.deliver(message(f"delivered {n}"))
    dovecot = DovecotPipe(server.maildir_path(ALICE), server.base / "dovecot")
    # Dovecot looks first, building its index in the Maildir before Swallow changes anything
    d = dovecot.session()
    assert sorted(fetch_subjects(d, "INBOX").values()) == [f"delivered {n}" for n in range(1, 5)]
    logout(d)

    c = server.imap()
    for name in FOLDERS:
        ok(c.create(quote(name)))
        ok(c.subscribe(quote(name)))
    ok(c.select("INBOX"))
    ok(c.uid("STORE", "1", "+FLAGS", r"(\Seen \Flagged)"))
    ok(c.uid("STORE", "2", "+FLAGS", r"($Label1 Work)"))
    ok(c.uid("STORE", "3", "+FLAGS", r"(\Answered Work)"))
    ok(c.uid("STORE", "4", "+FLAGS", r"(\Deleted)"))
    ok(c.expunge())
    ok(c.uid("COPY", "2", quote("Entw&APw-rfe")))
    ok(c.append(quote("Archive/2026"), r"(\Seen $Label1 Projekt)", None, message("appended to archive")))
    ok(c.append(quote("Archive/2026"), r"(\Draft)", None, message("second in archive")))
    ok(c.select(quote("Archive/2026")))
    ok(c.uid("STORE", "2", "-FLAGS", r"(\Draft)"))
    ok(c.uid("STORE", "2", "+FLAGS", r"(\Flagged)"))
    swallow_view = account_view(c)
    logout(c)
    assert {"INBOX", *FOLDERS} <= swallow_view["list"]
    assert {"INBOX", *FOLDERS} <= swallow_view["lsub"]
    inbox = swallow_view["folders"]["INBOX"]
    assert inbox["flags"] == {1: {"\\Seen", "\\Flagged"}, 2: {"$Label1", "Work"}, 3: {"\\Answered", "Work"}}
    assert inbox["status"][1:] == (5, 3)
    assert swallow_view["folders"]["Archive/2026"]["flags"] == {1: {"\\Seen", "$Label1", "Projekt"}, 2: {"\\Flagged"}}
    assert swallow_view["folders"]["Entw&APw-rfe"]["flags"] == {1: {"$Label1", "Work"}}

    d = dovecot.session()
    dovecot_view = account_view(d)
    logout(d)
    assert dovecot_view == swallow_view, dovecot.log_text()
    assert os.path.isdir(server.maildir_path(ALICE) / ".Entw&APw-rfe")
    assert "Error" not in dovecot.log_text() and "Warning" not in dovecot.log_text(), dovecot.log_text()


# --------------------------------------------------------------------------------------------------
# Dovecot writes, Swallow serves


MBSYNC_TUNNEL_RC = """\
IMAPStore dovecot
Tunnel "{tunnel}"

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim
"""

MBSYNC_CHANNEL = """\

Channel migrate
Far :{far}:
Near :local:
Patterns *
Create Near
Remove None
Expunge Both
Sync All
SyncState *
"""

# (only once Swallow runs: its certificate is made on its first start)
MBSYNC_SWALLOW_RC = """\

IMAPAccount swallow
Host 127.0.0.1
Port {port}
User {user}
Pass "{password}"
SSLType IMAPS
CertificateFile {cert}
SystemCertificates no

IMAPStore swallow
Account swallow
"""


def mbsync(tmp: Path, far: str, dovecot: DovecotPipe, server) -> subprocess.CompletedProcess:
    """mbsync with the same near side and state, the far side being Dovecot (tunnel) or Swallow (IMAPS)."""
    (tmp / "Mail").mkdir(exist_ok=True)
    rc = tmp / f"mbsyncrc-{far}"
    text = MBSYNC_TUNNEL_RC.format(tunnel=dovecot.command_line().replace('"', '\\"'), local=tmp / "Mail")
    if far == "swallow":
        text += MBSYNC_SWALLOW_RC.format(port=server.imaps_port, user=ALICE, password=PASSWORD, cert=server.cert)
    text += MBSYNC_CHANNEL.format(far=far)
    rc.write_text(text)
    result = run([require_tool("mbsync"), "-c", str(rc), "-V", "migrate"], env={"HOME": str(tmp)})
    assert result.returncode == 0, describe(result) + "\n" + dovecot.log_text() + "\n" + server.log_tail(15)
    return result


def test_maildir_dovecot_served_keeps_its_uids_under_swallow(make_imap_server, tmp_path):
    server = make_imap_server(run_as=TEST_USER, start=False)
    maildir = server.maildir_path(ALICE)
    maildir.parent.mkdir(parents=True)
    chown_tree(server.base, TEST_USER)
    dovecot = DovecotPipe(maildir, server.base / "dovecot")

    d = dovecot.session()
    for n in range(1, 6):
        ok(d.append("INBOX", r"(\Seen)" if n % 2 else None, None, message(f"dovecot {n}")))
    for name in FOLDERS:
        ok(d.create(quote(name)))
        ok(d.subscribe(quote(name)))
    ok(d.subscribe("INBOX"))
    ok(d.append(quote("Archive/2026"), r"(\Answered $Label1)", None, message("archived by dovecot")))
    ok(d.append(quote("Entw&APw-rfe"), r"(\Draft)", None, message("draft by dovecot")))
    ok(d.select("INBOX"))
    ok(d.uid("STORE", "2", "+FLAGS", r"(\Flagged Work)"))
    ok(d.uid("STORE", "3", "+FLAGS", r"(\Deleted)"))
    ok(d.expunge())
    ok(d.uid("STORE", "4", "+FLAGS", r"($Label1)"))
    dovecot_view = account_view(d)
    logout(d)
    assert dovecot_view["folders"]["INBOX"]["flags"] == {
        1: {"\\Seen"}, 2: {"\\Flagged", "Work"}, 4: {"$Label1"}, 5: {"\\Seen"}}, dovecot_view

    # a client synchronises with Dovecot first
    mbsync(tmp_path, "dovecot", dovecot, server)
    local = tmp_path / "Mail"
    before = local_snapshot(local)
    assert sum(len(files) for files in before.values()) == 6, before

    server.start()
    c = server.imap()
    swallow_view = account_view(c)
    logout(c)
    assert dovecot_view["list"] <= swallow_view["list"]
    assert dovecot_view["lsub"] <= swallow_view["lsub"]
    for name, folder in dovecot_view["folders"].items():
        assert swallow_view["folders"][name] == folder, name

    # the same client pointed at Swallow: nothing downloaded again, nothing deleted, UIDVALIDITY accepted
    out = mbsync(tmp_path, "swallow", dovecot, server)
    assert not re.search(r"UIDVALIDITY .*changed|error", out.stdout + out.stderr, re.I), out.stdout + out.stderr
    # (Swallow's special-use folders, new to the client, arrive empty)
    assert {k: v for k, v in local_snapshot(local).items() if v} == {k: v for k, v in before.items() if v}

    # Dovecot goes on changing the Maildir while Swallow runs: Swallow's next session sees it
    d = dovecot.session()
    ok(d.select("INBOX"))
    ok(d.uid("STORE", "5", "+FLAGS", r"(\Flagged)"))
    ok(d.uid("STORE", "1", "+FLAGS", r"(\Deleted)"))
    ok(d.expunge())
    ok(d.append("INBOX", None, None, message("dovecot 6")))
    logout(d)
    logout(c)
    c = server.imap()
    assert fetch_uid_flags(c, "INBOX") == {2: {"\\Flagged", "Work"}, 4: {"$Label1"}, 5: {"\\Seen", "\\Flagged"}, 6: set()}
    assert fetch_subjects(c, "INBOX")[6] == "dovecot 6"
    logout(c)


def noop_until(client: imaplib.IMAP4, key: str, timeout: float = 3.0) -> None:
    """NOOP (RFC 9051 §6.1.2: the way to ask for updates) every 0.2 s until an untagged `key` came."""
    deadline = time.monotonic() + timeout
    while True:
        ok(client.noop())
        if client.untagged_responses.get(key) or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def test_dovecot_changes_reach_a_selected_swallow_session(make_imap_server):
    """Changes another process makes to a selected folder (Dovecot here; also mutt, an MDA) reach the
    session within [imap] poll_interval (1 s here): Swallow's FolderWatcher notices new/ or cur/ change."""
    server = make_imap_server(run_as=TEST_USER, imap_extra={"poll_interval": 1})
    for n in (1, 2, 3):
        server.deliver(message(f"delivered {n}"))
    dovecot = DovecotPipe(server.maildir_path(ALICE), server.base / "dovecot")
    c = server.imap()
    ok(c.select("INBOX"))
    d = dovecot.session()
    ok(d.select("INBOX"))
    ok(d.uid("STORE", "2", "+FLAGS", r"(\Flagged)"))
    ok(d.uid("STORE", "1", "+FLAGS", r"(\Deleted)"))
    ok(d.expunge())
    ok(d.append("INBOX", None, None, message("appended by dovecot")))
    logout(d)
    noop_until(c, "EXPUNGE")
    assert c.untagged_responses.get("EXPUNGE") == [b"1"], c.untagged_responses  # sequence number of UID 1
    # 2 left + 1 new; the changes may arrive over two polls, each announcing the count (EXISTS may repeat).
    assert (c.untagged_responses.get("EXISTS") or [b""])[-1] == b"3", c.untagged_responses
    logout(c)


# --------------------------------------------------------------------------------------------------
# interimap: QRESYNC two-way sync, Swallow (remote, IMAPS) ↔ Dovecot (local, over a pipe)


INTERIMAP_CONFIG = """\
database = {db}
logfile = {log}

[local]
type = tunnel
command = {tunnel}
null-stderr = NO

[remote]
type = imaps
host = 127.0.0.1
port = {port}
username = {user}
password = {password}
SSL_verify = NO
SSL_fingerprint = sha256${spki}
compress = NO
"""


def interimap(tmp: Path, server, dovecot: DovecotPipe) -> subprocess.CompletedProcess:
    config = tmp / "interimap.conf"
    config.write_text(INTERIMAP_CONFIG.format(db=tmp / "interimap.db", log=tmp / "interimap.log",
                                              tunnel=dovecot.command_line(), port=server.imaps_port, user=ALICE,
                                              password=PASSWORD, spki=server.spki_sha256()))
    result = run([require_tool("interimap"), "--debug", f"--config={config}"], env={"HOME": str(tmp)})
    log = (tmp / "interimap.log").read_text() if (tmp / "interimap.log").exists() else ""
    assert result.returncode == 0, describe(result) + "\n" + log + "\n" + server.log_tail(20)
    return result


def interimap_first_sync(make_imap_server, tmp_path, local_dir):
    """Swallow has INBOX (3 messages) and Projects (1), Dovecot has INBOX (1, \\Flagged); interimap's first
    run makes both sides equal. Returns the server, Dovecot, and each side's {subject: uid} of INBOX."""
    server = make_imap_server()
    for n in (1, 2, 3):
        server.deliver(message(f"swallow {n}"))
    c = server.imap()
    ok(c.create("Projects"))
    ok(c.append("Projects", r"(\Seen Work)", None, message("project 1")))
    logout(c)
    chown_tree(local_dir, TEST_USER)
    dovecot = DovecotPipe(local_dir / "Maildir", local_dir / "conf")
    d = dovecot.session()
    ok(d.append("INBOX", r"(\Flagged)", None, message("dovecot 1")))
    logout(d)

    interimap(tmp_path, server, dovecot)
    c, d = server.imap(), dovecot.session()
    for client in (c, d):
        assert sorted(fetch_subjects(client, "INBOX").values()) == ["dovecot 1", "swallow 1", "swallow 2", "swallow 3"]
        assert list(fetch_subjects(client, "Projects").values()) == ["project 1"]
    assert fetch_uid_flags(d, "Projects") == {1: {"\\Seen", "Work"}}
    swallow_uid = {s: u for u, s in fetch_subjects(c, "INBOX").items()}
    dovecot_uid = {s: u for u, s in fetch_subjects(d, "INBOX").items()}
    assert fetch_uid_flags(c, "INBOX")[swallow_uid["dovecot 1"]] == {"\\Flagged"}
    logout(c)
    logout(d)
    return server, dovecot, swallow_uid, dovecot_uid


def inbox_by_subject(client) -> dict[str, set[str]]:
    subjects = fetch_subjects(client, "INBOX")
    flags = fetch_uid_flags(client, "INBOX")
    return {s: flags[u] for u, s in subjects.items()}


def test_interimap_qresync_both_ways(make_imap_server, tmp_path, traversable_dir):
    server, dovecot, swallow_uid, dovecot_uid = interimap_first_sync(make_imap_server, tmp_path, traversable_dir)
    # changes on both sides, then a second run: QRESYNC SELECT reports them (flags, VANISHED), UIDNEXT the new one
    c, d = server.imap(), dovecot.session()
    ok(c.select("INBOX"))
    ok(c.uid("STORE", str(swallow_uid["swallow 1"]), "+FLAGS", r"(\Seen $Label1)"))
    ok(c.uid("STORE", str(swallow_uid["swallow 2"]), "+FLAGS", r"(\Deleted)"))
    ok(c.expunge())
    ok(d.select("INBOX"))
    ok(d.uid("STORE", str(dovecot_uid["swallow 3"]), "+FLAGS", r"(\Answered)"))
    ok(d.append("INBOX", None, None, message("dovecot 2")))
    ok(d.select("Projects"))
    ok(d.uid("STORE", "1", "+FLAGS", r"(\Deleted)"))
    ok(d.expunge())
    logout(c)
    logout(d)

    out = interimap(tmp_path, server, dovecot)
    log = (tmp_path / "interimap.log").read_text()
    assert "QRESYNC (" in log, "the second run resynchronises with QRESYNC"
    assert "WARNING" not in (out.stderr + log).upper().replace("WARNINGS", ""), out.stderr
    c, d = server.imap(), dovecot.session()
    want = {"swallow 1": {"\\Seen", "$Label1"}, "swallow 3": {"\\Answered"}, "dovecot 1": {"\\Flagged"}, "dovecot 2": set()}
    assert inbox_by_subject(c) == want, "swallow"
    assert inbox_by_subject(d) == want, "dovecot"
    assert fetch_subjects(c, "Projects") == {} and fetch_subjects(d, "Projects") == {}
    logout(c)
    logout(d)


def test_interimap_flag_removed_on_dovecot_reaches_swallow(make_imap_server, tmp_path, traversable_dir):
    server, dovecot, swallow_uid, dovecot_uid = interimap_first_sync(make_imap_server, tmp_path, traversable_dir)
    d = dovecot.session()
    ok(d.select("INBOX"))
    ok(d.uid("STORE", str(dovecot_uid["dovecot 1"]), "-FLAGS", r"(\Flagged)"))
    logout(d)
    out = interimap(tmp_path, server, dovecot)
    assert "Conflicting flag update" not in out.stderr, out.stderr
    c, d = server.imap(), dovecot.session()
    assert inbox_by_subject(d)["dovecot 1"] == set(), "dovecot"
    assert inbox_by_subject(c)["dovecot 1"] == set(), "swallow"
