"""Real IMAP clients against the real `swallow` binary: mbsync (isync), offlineimap3, mutt, getmail6,
fetchmail and curl — Debian packages installed by .ci/run; a missing one fails in CI and skips elsewhere.

Every client talks to 127.0.0.1 only, over STARTTLS on the IMAP port or implicit TLS on the IMAPS port,
trusting the server's self-signed certificate from <data_dir>/tls/ (as a pinned certificate or
fingerprint, never "accept anything" where the client can pin). What the clients did is checked on the
other side: on the server over imaplib and in its Maildir, and in the client's local Maildir.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import require_tool, shared_tmpdir
from imap_support import (ALICE, PASSWORD, TEST_USER, TOOL_TIMEOUT, chown_tree, fetch_subjects, fetch_uid_flags, list_names, logout,
                          make_imap_server, message, ok, quote, uidvalidity)  # noqa: F401  (fixture)


def run(argv: list[str], *, env: dict | None = None, cwd: Path | None = None, timeout: float = TOOL_TIMEOUT,
        input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def local_maildir_subjects(path: Path) -> dict[str, str]:
    """{file key: Subject} of a Maildir on the client side."""
    md = mailbox.Maildir(path, factory=None, create=False)
    return {key: md[key]["Subject"] for key in md.keys()}


def local_flags(path: Path) -> dict[str, str]:
    """{Subject: Maildir flag letters} of a local Maildir."""
    md = mailbox.Maildir(path, factory=None, create=False)
    return {md[key]["Subject"]: md.get_message(key).get_flags() for key in md.keys()}


def set_local_flags(path: Path, subject: str, flags: str) -> None:
    md = mailbox.Maildir(path, factory=None, create=False)
    for key in md.keys():
        msg = md.get_message(key)
        if msg["Subject"] == subject:
            msg.set_subdir("cur")
            msg.set_flags(flags)
            md[key] = msg
            return
    raise AssertionError(f"no local message {subject!r} in {path}")


def remove_local(path: Path, subject: str) -> None:
    md = mailbox.Maildir(path, factory=None, create=False)
    for key in md.keys():
        if md[key]["Subject"] == subject:
            md.remove(key)
            return
    raise AssertionError(f"no local message {subject!r} in {path}")


def local_snapshot(root: Path) -> dict[str, list[str]]:
    """{folder path: sorted file names (with their flags)} of every Maildir under `root`."""
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            out[os.path.relpath(dirpath, root)] = sorted(files)
    return out


def server_snapshot(server) -> dict[str, dict[int, set[str]]]:
    """{folder: {uid: flags}} of every folder of alice's, with each folder's UIDVALIDITY."""
    c = server.imap()
    try:
        return {name: (uidvalidity(c, name), fetch_uid_flags(c, name)) for name in sorted(list_names(c))}
    finally:
        logout(c)


def uid_of(client, mailbox_name: str, subject: str) -> int:
    subjects = fetch_subjects(client, mailbox_name)
    [uid] = [u for u, s in subjects.items() if s == subject]
    return uid


def store(client, mailbox_name: str, subject: str, op: str, flags: str) -> int:
    """UID STORE on the message with `subject`; leaves `mailbox_name` selected read-write."""
    uid = uid_of(client, mailbox_name, subject)
    ok(client.select(quote(mailbox_name)))
    ok(client.uid("STORE", str(uid), op, flags))
    return uid


# --------------------------------------------------------------------------------------------------
# mbsync (isync 1.4)


MBSYNC_RC = """\
IMAPAccount swallow
Host 127.0.0.1
Port {port}
User {user}
Pass "{password}"
SSLType {ssltype}
SSLVersions TLSv1.2 TLSv1.3
CertificateFile {cert}
SystemCertificates no
AuthMechs PLAIN
Timeout 30

IMAPStore remote
Account swallow

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel swallow
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
CopyArrivalDate yes
SyncState *
"""


def mbsync(server, tmp: Path, implicit: bool) -> subprocess.CompletedProcess:
    rc = tmp / "mbsyncrc"
    (tmp / "Mail").mkdir(exist_ok=True)
    rc.write_text(MBSYNC_RC.format(port=server.imaps_port if implicit else server.imap_port, user=ALICE,
                                   password=PASSWORD, ssltype="IMAPS" if implicit else "STARTTLS",
                                   cert=server.cert, local=tmp / "Mail"))
    result = run([require_tool("mbsync"), "-c", str(rc), "-V", "-a"], env={"HOME": str(tmp)})
    assert result.returncode == 0, describe(result) + "\n" + server.log_tail(15)
    return result


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_mbsync_two_way_flags_folders_expunge(make_imap_server, tmp_path, implicit):
    server = make_imap_server()
    for n in (1, 2, 3):
        server.deliver(message(f"inbox {n}"))
    c = server.imap()
    ok(c.create("Projects"))
    ok(c.create("Archive/2026"))
    ok(c.append("Projects", r"(\Seen)", None, message("project 1")))
    ok(c.append("Archive/2026", r"(\Answered $Label1)", None, message("archived 1")))
    logout(c)

    out = mbsync(server, tmp_path, implicit)
    local = tmp_path / "Mail"
    assert sorted(local_maildir_subjects(local / "INBOX").values()) == ["inbox 1", "inbox 2", "inbox 3"], out.stdout
    assert list(local_maildir_subjects(local / "Projects").values()) == ["project 1"]
    assert list(local_maildir_subjects(local / "Archive" / "2026").values()) == ["archived 1"]
    assert local_flags(local / "Projects") == {"project 1": "S"}
    assert local_flags(local / "Archive" / "2026") == {"archived 1": "R"}  # keywords stay on the server

    # local changes: a flag, a new folder with a message, a message deleted
    set_local_flags(local / "INBOX", "inbox 1", "FS")
    os.makedirs(local / "Local" / "tmp")
    os.makedirs(local / "Local" / "new")
    os.makedirs(local / "Local" / "cur")
    mailbox.Maildir(local / "Local", create=False).add(message("local 1"))
    remove_local(local / "INBOX", "inbox 2")
    # server changes: a flag, a new folder with a message, a message expunged
    c = server.imap()
    store(c, "INBOX", "inbox 3", "+FLAGS", r"(\Flagged)")
    store(c, "Projects", "project 1", "+FLAGS", r"(\Deleted)")
    ok(c.expunge())
    ok(c.create("Remote"))
    ok(c.append("Remote", None, None, message("remote 1")))
    logout(c)

    mbsync(server, tmp_path, implicit)
    c = server.imap()
    inbox = fetch_subjects(c, "INBOX")
    flags = fetch_uid_flags(c, "INBOX")
    by_subject = {s: flags[u] for u, s in inbox.items()}
    assert by_subject == {"inbox 1": {"\\Flagged", "\\Seen"}, "inbox 3": {"\\Flagged"}}, by_subject
    assert "Local" in list_names(c)
    assert list(fetch_subjects(c, "Local").values()) == ["local 1"]
    assert fetch_subjects(c, "Projects") == {}
    logout(c)
    assert local_flags(local / "INBOX") == {"inbox 1": "FS", "inbox 3": "F"}
    assert list(local_maildir_subjects(local / "Remote").values()) == ["remote 1"]
    assert local_maildir_subjects(local / "Projects") == {}

    # and a third run has nothing to do: the UIDs it recorded are still the server's, nothing is copied
    # again in either direction
    before_local, before_server = local_snapshot(local), server_snapshot(server)
    mbsync(server, tmp_path, implicit)
    assert local_snapshot(local) == before_local
    assert server_snapshot(server) == before_server


# --------------------------------------------------------------------------------------------------
# offlineimap3


OFFLINEIMAP_RC = """\
[general]
accounts = swallow
metadata = {tmp}/offlineimap-meta
maxsyncaccounts = 1

[Account swallow]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {tmp}/OfflineMail
sep = /

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = {user}
remotepass = {password}
ssl = yes
cert_fingerprint = {fingerprint}
maxconnections = 1
"""


def offlineimap(server, tmp: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """One one-shot run; returns it and the messages it copied (offlineimap's "Copy message" lines)."""
    rc = tmp / "offlineimaprc"
    rc.write_text(OFFLINEIMAP_RC.format(tmp=tmp, port=server.imaps_port, user=ALICE, password=PASSWORD,
                                        fingerprint=server.cert_sha256()))
    result = run([require_tool("offlineimap"), "-c", str(rc), "-o", "-u", "basic"], env={"HOME": str(tmp)})
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "ERROR" not in output, describe(result) + "\n" + server.log_tail(15)
    return result, re.findall(r"^.*Copy message.*$", output, re.M)


def test_offlineimap_full_then_incremental_sync(make_imap_server, tmp_path):
    server = make_imap_server()
    for n in (1, 2, 3):
        server.deliver(message(f"inbox {n}"))
    c = server.imap()
    for name in ("Projects", "Archive/2026", "Entw&APw-rfe"):
        ok(c.create(quote(name)))
    ok(c.append("Projects", r"(\Seen \Flagged)", None, message("project 1")))
    ok(c.append("Projects", None, None, message("project 2")))
    ok(c.append("Archive/2026", r"(\Answered)", None, message("archived 1")))
    ok(c.append(quote("Entw&APw-rfe"), r"(\Draft)", None, message("draft 1")))
    logout(c)
    before = server_snapshot(server)

    _, copied = offlineimap(server, tmp_path)
    assert len(copied) == 7, copied
    local = tmp_path / "OfflineMail"
    assert sorted(local_maildir_subjects(local / "INBOX").values()) == ["inbox 1", "inbox 2", "inbox 3"]
    assert local_flags(local / "Projects") == {"project 1": "FS", "project 2": ""}
    assert local_flags(local / "Archive" / "2026") == {"archived 1": "R"}
    assert local_flags(local / "Entw&APw-rfe") == {"draft 1": "D"}  # the name as IMAP sends it (modified UTF-7)
    files = local_snapshot(local)

    # incremental: nothing new to download, nothing changed on either side, UIDs and UIDVALIDITY stable
    _, copied = offlineimap(server, tmp_path)
    assert copied == []
    assert local_snapshot(local) == files
    assert server_snapshot(server) == before

    # one new message: exactly that one is downloaded
    server.deliver(message("inbox 4"))
    _, copied = offlineimap(server, tmp_path)
    assert len(copied) == 1 and "INBOX" in copied[0], copied
    assert sorted(local_maildir_subjects(local / "INBOX").values()) == ["inbox 1", "inbox 2", "inbox 3", "inbox 4"]


# --------------------------------------------------------------------------------------------------
# mutt, headless: a pseudo-terminal it can draw on, keys pushed from the command line


MUTTRC = """\
set folder="imaps://{user_q}@localhost:{port}/"
set spoolfile="+INBOX"
set imap_user="{user}"
set imap_pass="{password}"
set certificate_file="{cert}"
set ssl_force_tls=yes
set ssl_starttls=yes
set header_cache=""
set message_cachedir=""
set imap_check_subscribed=no
set mail_check=0
set timeout=5
set move=no
set wait_key=no
set confirmappend=no
set quit=yes
set pipe_split=yes
set pipe_decode=no
set sort=date-sent
set mark_old=no
set beep=no
set record=""
set postponed=""
set mbox="+INBOX"
"""


def run_in_pty(argv: list[str], env: dict, timeout: float = 60) -> tuple[int, bytes]:
    """Runs a full-screen program on a pseudo-terminal (80x24); returns its exit code and what it drew."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"{argv[0]} still running after {timeout}s; screen:\n{screen.decode('utf-8', 'replace')[-3000:]}")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the program closed the terminal
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    return proc.returncode, screen


def test_mutt_reads_inbox_and_a_folder_and_flags(make_imap_server, tmp_path):
    mutt = require_tool("mutt")
    server = make_imap_server()
    server.deliver(message("mutt inbox 1", "first body\n"))
    server.deliver(message("mutt inbox 2", "second body\n"))
    c = server.imap()
    ok(c.create("Projects"))
    ok(c.append("Projects", None, None, message("mutt project", "project body\n")))
    logout(c)

    rc = tmp_path / "muttrc"
    rc.write_text(MUTTRC.format(user_q="alice%40example.test", user=ALICE, password=PASSWORD, port=server.imaps_port,
                                cert=server.cert))
    inbox_out, project_out = tmp_path / "inbox.txt", tmp_path / "projects.txt"
    keys = (f"<tag-pattern>~A<enter><tag-prefix><pipe-message>cat >> {inbox_out}<enter>"
            f"<tag-prefix><flag-message><sync-mailbox>"
            f"<change-folder>=Projects<enter><tag-pattern>~A<enter><tag-prefix><pipe-message>cat >> {project_out}<enter>"
            f"<quit>")
    env = {"HOME": str(tmp_path), "TERM": "xterm", "LANG": "C.UTF-8", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    code, screen = run_in_pty([mutt, "-n", "-F", str(rc), "-e", f"push '{keys}'"], env)
    shown = screen.decode("utf-8", "replace")
    assert code == 0, shown[-3000:]
    inbox_text = inbox_out.read_text()
    assert "Subject: mutt inbox 1" in inbox_text and "first body" in inbox_text, shown[-3000:]
    assert "Subject: mutt inbox 2" in inbox_text and "second body" in inbox_text
    assert "Subject: mutt project" in project_out.read_text() and "project body" in project_out.read_text()
    assert "mutt inbox 1" in shown  # the index it drew lists the messages
    c = server.imap()
    assert all("\\Flagged" in f for f in fetch_uid_flags(c, "INBOX").values()), fetch_uid_flags(c, "INBOX")
    assert all("\\Flagged" not in f for f in fetch_uid_flags(c, "Projects").values())
    logout(c)


# --------------------------------------------------------------------------------------------------
# getmail6


GETMAILRC = """\
[retriever]
type = SimpleIMAPSSLRetriever
server = localhost
port = {port}
username = {user}
password = {password}
mailboxes = ("INBOX", "Projects")
ca_certs = {cert}

[destination]
type = Maildir
path = {dest}/
user = {user_name}

[options]
verbose = 2
read_all = false
delete = {delete}
delivered_to = false
received = false
"""


def getmail(server, tmp: Path, dest: Path, delete: bool) -> subprocess.CompletedProcess:
    """getmail as root delivers into the Maildir as the destination's `user` (it refuses to deliver as
    root): `dest`, in a directory that user can reach."""
    for sub in ("tmp", "new", "cur"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    chown_tree(dest, TEST_USER)
    (tmp / "getmail-state").mkdir(exist_ok=True)
    rc = tmp / "getmail-state" / "getmailrc"
    rc.write_text(GETMAILRC.format(port=server.imaps_port, user=ALICE, password=PASSWORD, cert=server.cert, dest=dest,
                                   user_name=TEST_USER, delete="true" if delete else "false"))
    result = run([require_tool("getmail"), f"--getmaildir={tmp / 'getmail-state'}", f"--rcfile={rc}"], env={"HOME": str(tmp)})
    assert result.returncode == 0, describe(result) + "\n" + server.log_tail(15)
    return result


@pytest.fixture
def traversable_dir():
    path = shared_tmpdir("swallow-client-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_getmail_imaps_keep_then_delete(make_imap_server, tmp_path, traversable_dir):
    server = make_imap_server()
    dest = traversable_dir / "GetMail"
    server.deliver(message("getmail 1", "one\n"))
    server.deliver(message("getmail 2", "two\n"))
    c = server.imap()
    ok(c.create("Projects"))
    ok(c.append("Projects", None, None, message("getmail project")))
    logout(c)

    out = getmail(server, tmp_path, dest, delete=False)
    assert sorted(local_maildir_subjects(dest).values()) == ["getmail 1", "getmail 2", "getmail project"], out.stdout
    # a second run remembers what it took (oldmail, keyed by UIDVALIDITY/UID): nothing again
    out = getmail(server, tmp_path, dest, delete=False)
    assert len(local_maildir_subjects(dest)) == 3, out.stdout
    assert re.search(r"0 messages .*retrieved", out.stdout), out.stdout
    c = server.imap()
    assert len(fetch_subjects(c, "INBOX")) == 2 and len(fetch_subjects(c, "Projects")) == 1
    logout(c)

    server.deliver(message("getmail 3", "three\n"))
    getmail(server, tmp_path, dest, delete=True)
    assert sorted(local_maildir_subjects(dest).values()) == ["getmail 1", "getmail 2", "getmail 3", "getmail project"]
    c = server.imap()
    assert fetch_subjects(c, "INBOX") == {} and fetch_subjects(c, "Projects") == {}, "delete = true expunges on the server"
    logout(c)


# --------------------------------------------------------------------------------------------------
# fetchmail --protocol IMAP


def md5_fingerprint(server) -> str:
    import hashlib
    import ssl as _ssl
    digest = hashlib.md5(_ssl.PEM_cert_to_DER_cert(server.cert.read_text())).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def fetchmail(server, tmp: Path, *, implicit: bool, keep: bool) -> subprocess.CompletedProcess:
    outdir = tmp / "fetched"
    outdir.mkdir(exist_ok=True)
    rc = tmp / "fetchmailrc"
    port = server.imaps_port if implicit else server.imap_port
    rc.write_text(f'poll 127.0.0.1 protocol imap port {port} user "{ALICE}" password "{PASSWORD}"\n')
    rc.chmod(0o600)
    argv = [require_tool("fetchmail"), "-f", str(rc), "--nodetach", "--nosyslog", "--idfile", str(tmp / "fetchids"),
            "--pidfile", str(tmp / "pid"), "--nosslcertck", "--sslfingerprint", md5_fingerprint(server),
            "--norewrite", "--mda", f"/bin/sh -c 'cat > {outdir}/msg.$$'", "--keep" if keep else "--nokeep",
            *(["--ssl"] if implicit else ["--sslproto", "auto"])]
    return run(argv, env={"HOME": str(tmp), "FETCHMAILHOME": str(tmp)})


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_fetchmail_imap_keep_then_nokeep(make_imap_server, tmp_path, implicit):
    server = make_imap_server()
    sent = [message("fetchmail 1", ".leading dot\n..two\nend\n"), message("fetchmail 2")]
    for raw in sent:
        server.deliver(raw)
    result = fetchmail(server, tmp_path, implicit=implicit, keep=True)
    assert result.returncode == 0, describe(result) + server.log_tail(15)
    got = sorted(p.read_bytes() for p in (tmp_path / "fetched").iterdir())
    assert len(got) == 2, describe(result)
    for raw in sent:
        assert any(g.endswith(raw.replace(b"\r\n", b"\n")) for g in got), (got, raw)
    c = server.imap()
    flags = fetch_uid_flags(c, "INBOX")
    assert len(flags) == 2 and all("\\Seen" in f for f in flags.values()), flags  # kept, marked read
    logout(c)
    # kept and seen: a second run has nothing to fetch (exit 1 = no mail)
    again = fetchmail(server, tmp_path, implicit=implicit, keep=True)
    assert again.returncode == 1, describe(again)

    server.deliver(message("fetchmail 3"))
    result = fetchmail(server, tmp_path, implicit=implicit, keep=False)
    assert result.returncode == 0, describe(result)
    assert len(list((tmp_path / "fetched").iterdir())) == 3
    c = server.imap()
    assert sorted(fetch_subjects(c, "INBOX").values()) == ["fetchmail 1", "fetchmail 2"], "the fetched one is expunged"
    logout(c)
    assert len(server.raw_messages(ALICE)) == 2


# --------------------------------------------------------------------------------------------------
# curl imap:// and imaps://


def curl(server, url_path: str, *, implicit: bool, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    port = server.imaps_port if implicit else server.imap_port
    scheme = "imaps" if implicit else "imap"
    argv = [require_tool("curl"), "-sS", "--max-time", "30", "--cacert", str(server.cert),
            "--resolve", f"localhost:{port}:127.0.0.1", "-u", f"{ALICE}:{PASSWORD}",
            *([] if implicit else ["--ssl-reqd"]), *extra, f"{scheme}://localhost:{port}/{url_path}"]
    result = run(argv)
    assert result.returncode == 0, describe(result) + "\n" + server.log_tail(15)
    return result


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_curl_list_fetch_search_append(make_imap_server, tmp_path, implicit):
    server = make_imap_server()
    raw = message("curl 1", "body of curl 1\n.dot line\n")
    server.deliver(message("curl 0"))
    server.deliver(raw)
    c = server.imap()
    ok(c.create("Archive/2026"))
    uid = uid_of(c, "INBOX", "curl 1")
    logout(c)

    listing = curl(server, "", implicit=implicit).stdout
    assert '"/" INBOX' in listing and '"/" Archive/2026' in listing, listing
    fetched = curl(server, f"INBOX/;UID={uid}", implicit=implicit).stdout.encode()
    assert fetched.replace(b"\r\n", b"\n").endswith(raw.replace(b"\r\n", b"\n")), fetched
    assert fetched.startswith(b"Return-Path: <sender@example.net>")
    section = curl(server, f"INBOX/;UID={uid}/;SECTION=HEADER.FIELDS%20(SUBJECT)", implicit=implicit).stdout
    assert section.strip() == "Subject: curl 1", section
    search = curl(server, "INBOX?SUBJECT%20%22curl%201%22", implicit=implicit).stdout
    assert re.search(rf"^\* SEARCH {uid}\s*$", search, re.M), search
    upload = tmp_path / "upload.eml"
    upload.write_bytes(message("curl upload"))
    curl(server, "Archive/2026", implicit=implicit, extra=("-T", str(upload)))
    c = server.imap()
    assert list(fetch_subjects(c, "Archive/2026").values()) == ["curl upload"]
    logout(c)
