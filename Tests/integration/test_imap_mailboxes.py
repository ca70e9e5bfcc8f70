"""IMAP mailbox operations end to end: default folders with SPECIAL-USE, LIST (patterns, LIST-EXTENDED,
LIST-STATUS, CHILDREN), LSUB, CREATE (USE), DELETE, RENAME (INBOX), SUBSCRIBE, modified UTF-7 and
UTF8=ACCEPT, the Maildir on disk afterwards, quotas (SMTP, APPEND, GETQUOTAROOT) and the CLI
(`swallow mailbox …`, `swallow user quota …`)."""

from __future__ import annotations

import re

import pytest

from conftest import wait_for
from imap_e2e import ALICE, BOB, RawIMAP, append, deliver, imap_session, make_imap, message


@pytest.fixture
def imap_server(make_server):
    return make_imap(make_server)


def listed(untagged: list[bytes], kind: bytes = b"LIST") -> dict[str, tuple[set[str], bytes]]:
    """{mailbox name: (attributes, the rest of the line)} of LIST/LSUB responses."""
    out = {}
    for r in untagged:
        m = re.match(rb'\* ' + kind + rb' \(([^)]*)\) (?:"/"|NIL) ("(?:[^"\\]|\\.)*"|[^ \r]+)(.*)\r\n$', r)
        if m:
            name = m.group(2).decode("utf-8")
            if name.startswith('"'):
                name = name[1:-1]
            out[name] = (set(m.group(1).decode().split()), m.group(3))
    return out


SPECIAL = {"Archive": "\\Archive", "Drafts": "\\Drafts", "Junk": "\\Junk", "Sent": "\\Sent", "Trash": "\\Trash"}


def test_default_folders_with_special_use_on_first_login(imap_server):
    root = imap_server.maildir_path(ALICE)
    assert not (root / ".Sent").exists(), "folders are made at first login, not before"
    c = imap_session(imap_server)
    untagged, _ = c.cmd('LIST "" "*"')
    boxes = listed(untagged)
    assert set(boxes) == {"INBOX", *SPECIAL}, boxes
    for name, use in SPECIAL.items():
        assert use in boxes[name][0], (name, boxes[name])
        assert (root / f".{name}" / "cur").is_dir()
    untagged, _ = c.cmd('LIST (SPECIAL-USE) "" "*"')
    assert set(listed(untagged)) == set(SPECIAL)
    untagged, _ = c.cmd('LIST "" "*" RETURN (SPECIAL-USE)')
    assert set(listed(untagged)) == {"INBOX", *SPECIAL}
    untagged, _ = c.cmd('LSUB "" "*"')
    assert set(listed(untagged, b"LSUB")) == {"INBOX", *SPECIAL}, "default folders are subscribed"
    c.cmd("LOGOUT")
    c = imap_session(imap_server)  # a second login changes nothing
    untagged, _ = c.cmd('LIST "" "*"')
    assert set(listed(untagged)) == {"INBOX", *SPECIAL}


def test_list_patterns_children_extended_and_status(imap_server):
    c = imap_session(imap_server)
    for name in ("Work", "Work/Projects", "Work/Projects/Alpha", "Work/Old", "Private"):
        c.cmd(f'CREATE "{name}"')
    two = [message(1), message(2)]
    for m in two:
        append(c, m, "Work/Projects")
    boxes = listed(c.cmd('LIST "" "%"')[0])
    assert set(boxes) == {"INBOX", "Private", "Work", *SPECIAL}, boxes
    assert "\\HasChildren" in boxes["Work"][0] and "\\HasNoChildren" in boxes["Private"][0]
    assert set(listed(c.cmd('LIST "Work/" "%"')[0])) == {"Work/Projects", "Work/Old"}
    assert set(listed(c.cmd('LIST "" "Work/*"')[0])) == {"Work/Projects", "Work/Projects/Alpha", "Work/Old"}
    assert set(listed(c.cmd('LIST "" "*Pro*"')[0])) == {"Work/Projects", "Work/Projects/Alpha"}  # * spans "/"
    assert set(listed(c.cmd('LIST "" "%Pro%"')[0])) == set()  # % does not
    assert set(listed(c.cmd('LIST "" "inbox"')[0])) == {"INBOX"}, "INBOX is case-insensitive"
    assert set(listed(c.cmd('LIST "" "Nothing*"')[0])) == set()
    hier = c.cmd('LIST "" ""')[0]  # RFC 9051 §6.3.9: the hierarchy delimiter
    assert hier == [b'* LIST (\\Noselect) "/" ""\r\n'], hier
    # LIST-EXTENDED (RFC 5258) with several patterns and return options
    boxes = listed(c.cmd('LIST "" ("INBOX" "Work/%") RETURN (CHILDREN)')[0])
    assert set(boxes) == {"INBOX", "Work/Projects", "Work/Old"}
    assert "\\HasChildren" in boxes["Work/Projects"][0] and "\\HasNoChildren" in boxes["Work/Old"][0]
    # LIST-STATUS (RFC 5819)
    untagged, _ = c.cmd('LIST "" "Work/%" RETURN (STATUS (MESSAGES UIDNEXT UNSEEN SIZE))')
    status = [r for r in untagged if r.startswith(b"* STATUS")]
    assert len(status) == 2, untagged
    proj = next(r for r in status if b"Work/Projects" in r)
    assert re.search(rb"MESSAGES 2\b", proj) and re.search(rb"UIDNEXT 3\b", proj) and re.search(rb"UNSEEN 2\b", proj), proj
    size = int(re.search(rb"SIZE ([0-9]+)", proj).group(1))
    assert size == sum(map(len, two)), (size, proj)  # RFC 8438: the RFC822.SIZE total
    # SUBSCRIBED selection and RECURSIVEMATCH
    c.cmd('SUBSCRIBE "Work/Projects/Alpha"')
    boxes = listed(c.cmd('LIST (SUBSCRIBED) "" "*"')[0])
    assert "Work/Projects/Alpha" in boxes and "\\Subscribed" in boxes["Work/Projects/Alpha"][0]
    assert "Work" not in boxes
    untagged, _ = c.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    boxes = listed(untagged)
    assert "Work" in boxes and b'"CHILDINFO" ("SUBSCRIBED")' in boxes["Work"][1], untagged
    c.cmd('LIST (RECURSIVEMATCH) "" "%"', expect="BAD")  # RFC 5258 §3: needs another selection option
    c.cmd('UNSUBSCRIBE "Work/Projects/Alpha"')
    assert "Work/Projects/Alpha" not in listed(c.cmd('LSUB "" "*"')[0], b"LSUB")
    # LSUB's % shows an unsubscribed parent of a subscribed child as \Noselect (RFC 3501 §6.3.9)
    c.cmd('SUBSCRIBE "Work/Old"')
    lsub = listed(c.cmd('LSUB "" "%"')[0], b"LSUB")
    assert "Work" in lsub and "\\Noselect" in lsub["Work"][0], lsub


def test_create_with_use_delete_and_rename(imap_server):
    c = imap_session(imap_server)
    c.cmd('CREATE "Outbox" (USE (\\Sent))')
    boxes = listed(c.cmd('LIST "" "Outbox" RETURN (SPECIAL-USE)')[0])
    assert "\\Sent" in boxes["Outbox"][0]
    _, tagged = c.cmd('CREATE "Weird" (USE (\\Bogus))', expect="NO")
    assert b"[USEATTR]" in tagged
    _, tagged = c.cmd('CREATE "Outbox"', expect="NO")
    assert b"[ALREADYEXISTS]" in tagged
    _, tagged = c.cmd("CREATE inbox", expect="NO")
    assert b"[ALREADYEXISTS]" in tagged
    c.cmd('CREATE "Trailing/"')  # RFC 9051 §6.3.4: a trailing delimiter is dropped
    assert "Trailing" in listed(c.cmd('LIST "" "Trailing"')[0])
    _, tagged = c.cmd("DELETE INBOX", expect="NO")
    assert b"[CANNOT]" in tagged or b"[NOPERM]" in tagged
    _, tagged = c.cmd('DELETE "Nope"', expect="NO")
    assert b"[NONEXISTENT]" in tagged
    c.cmd('CREATE "Parent"')
    c.cmd('CREATE "Parent/Child"')
    # RFC 9051 §6.3.5: deleting a parent either works (it becomes \Noselect / \NonExistent and its
    # child stays) or is refused with NO [HASCHILDREN]
    _, tagged = c.cmd('DELETE "Parent"', expect=None)
    boxes = listed(c.cmd('LIST "" "Parent*"')[0])
    assert "Parent/Child" in boxes, boxes
    if tagged.split(b" ")[1] == b"OK":
        assert "Parent" not in boxes or boxes["Parent"][0] & {"\\Noselect", "\\NonExistent"}, boxes
        c.cmd('SELECT "Parent"', expect="NO")
    else:
        assert b"NO [HASCHILDREN]" in tagged, tagged
    c.cmd('DELETE "Parent/Child"')
    c.cmd('DELETE "Nested/Only/Leaf"', expect="NO")
    # RENAME moves children along, and the source disappears
    c.cmd('CREATE "A"')
    c.cmd('CREATE "A/B"')
    append(c, message(7), "A/B")
    c.cmd('RENAME "A" "Z"')
    boxes = listed(c.cmd('LIST "" "*"')[0])
    assert "Z/B" in boxes and "A/B" not in boxes and "A" not in boxes, boxes
    assert b"MESSAGES 1" in c.cmd('STATUS "Z/B" (MESSAGES)')[0][0]
    _, tagged = c.cmd('RENAME "Nope" "X"', expect="NO")
    assert b"[NONEXISTENT]" in tagged
    _, tagged = c.cmd('RENAME "Z" "Sent"', expect="NO")
    assert b"[ALREADYEXISTS]" in tagged


def test_rename_inbox_moves_the_messages_and_leaves_an_empty_inbox(imap_server):
    deliver(imap_server, message(1))
    deliver(imap_server, message(2))
    c = imap_session(imap_server)
    c.cmd('CREATE "Holder/Sub"')
    c.cmd('RENAME INBOX "Old Mail"')  # RFC 9051 §6.3.6
    assert b"MESSAGES 2" in c.cmd('STATUS "Old Mail" (MESSAGES)')[0][0]
    assert b"MESSAGES 0" in c.cmd("STATUS INBOX (MESSAGES)")[0][0]
    assert "Holder/Sub" in listed(c.cmd('LIST "" "*"')[0]), "INBOX's rename moves no other mailbox"
    deliver(imap_server, message(3))  # delivery goes on into the new INBOX
    assert b"MESSAGES 1" in c.cmd("STATUS INBOX (MESSAGES)")[0][0]
    assert len(list((imap_server.maildir_path(ALICE) / ".Old Mail" / "cur").iterdir()) +
               list((imap_server.maildir_path(ALICE) / ".Old Mail" / "new").iterdir())) == 2


def test_modified_utf7_and_utf8_accept(imap_server):
    c = imap_session(imap_server)
    c.cmd('CREATE "Entw&APw-rfe"')
    c.cmd('CREATE "&ZeVnLIqe-/Sub &- more"')  # 日本語/Sub & more
    root = imap_server.maildir_path(ALICE)
    assert (root / ".Entw&APw-rfe").is_dir(), sorted(p.name for p in root.iterdir())
    boxes = listed(c.cmd('LIST "" "*"')[0])
    assert "Entw&APw-rfe" in boxes and "&ZeVnLIqe-/Sub &- more" in boxes, boxes
    c.cmd('CREATE "Entwürfe"', expect="BAD")  # 8-bit names need UTF8=ACCEPT (RFC 6855 §3)
    untagged, _ = c.cmd("ENABLE UTF8=ACCEPT")
    assert untagged == [b"* ENABLED UTF8=ACCEPT\r\n"]
    boxes = listed(c.cmd('LIST "" "*"')[0])
    assert "Entwürfe" in boxes and "日本語/Sub & more" in boxes, boxes
    c.cmd('SELECT "Entwürfe"')
    c.cmd('CREATE "Größe"')
    assert (root / ".Gr&APYA3w-e").is_dir()
    assert b'"Gr\xc3\xb6\xc3\x9fe"' in c.cmd('STATUS "Größe" (MESSAGES)')[0][0]
    c2 = imap_session(imap_server)
    assert "Gr&APYA3w-e" in listed(c2.cmd('LIST "" "Gr*"')[0])
    cli = imap_server.cli("mailbox", "list", ALICE).stdout
    assert "Entwürfe" in cli and "Größe" in cli and "日本語/Sub & more" in cli, cli


def test_maildir_on_disk_after_imap_operations(imap_server):
    deliver(imap_server, message(1))
    deliver(imap_server, message(2))
    c = imap_session(imap_server, select="INBOX")
    c.cmd("STORE 1 +FLAGS (\\Seen \\Flagged)")
    c.cmd("STORE 2 +FLAGS (\\Answered $Work)")
    c.cmd('CREATE "Projects"')
    c.cmd('SUBSCRIBE "Projects"')
    c.cmd("NOOP")
    root = imap_server.maildir_path(ALICE)
    names = sorted(p.name for p in (root / "cur").iterdir())
    assert len(names) == 2 and not list((root / "new").iterdir()), names
    infos = sorted(n.rsplit(":2,", 1)[1] for n in names)
    assert "FS" in infos, names  # Maildir flags in ASCII order (maildir.html: F, R, S, …)
    keyword = [i for i in infos if "R" in i][0]
    assert re.fullmatch(r"R?[a-z]*R?", keyword) and re.search(r"[a-z]", keyword), names  # $Work as a letter
    keywords_file = (root / "dovecot-keywords").read_text()
    assert "$Work" in keywords_file, keywords_file
    uidlist = (root / "dovecot-uidlist").read_text().splitlines()
    assert re.fullmatch(r"3 V[0-9]+ N3( G[0-9a-f]{32})?.*", uidlist[0]), uidlist[0]
    entries = [line.split(" ", 1)[0] for line in uidlist[1:]]
    assert entries == ["1", "2"], uidlist
    for line in uidlist[1:]:
        assert re.search(r":[^ ]+$", line), line  # each entry names its file (base name after ':')
    subs = (root / "subscriptions").read_text().splitlines()
    assert subs[0] == "V\t2" and "Projects" in subs, subs
    c.cmd("STORE 1 -FLAGS (\\Flagged)")
    c.cmd("NOOP")
    infos = [p.name.rsplit(":2,", 1)[1] for p in (root / "cur").iterdir()]
    assert "S" in infos, infos


# --------------------------------------------------------------------------------------------------
# quotas


def test_quota_end_to_end_smtp_append_getquotaroot(make_server):
    server = make_imap(make_server)
    server.cli("user", "quota", ALICE, "20K")
    c = imap_session(server)
    untagged, _ = c.cmd("GETQUOTAROOT INBOX")
    root = re.match(rb'\* QUOTAROOT INBOX ("?)([^"\r]*)\1\r\n', untagged[0])
    assert root, untagged
    quota = [r for r in untagged if r.startswith(b"* QUOTA ")]
    assert quota and re.search(rb"\(STORAGE 0 20\)", quota[0]), untagged  # KiB (RFC 9208 §5.1)
    _, tagged = c.cmd('SETQUOTA "" (STORAGE 100)', expect="NO")  # the administrator sets quotas (docs/imap.md)
    assert b"[NOPERM]" in tagged, tagged
    big = message(1, body=("x" * 75 + "\r\n") * 400)  # 30,800 bytes
    deliver(server, big)  # under quota when it arrives: accepted, now over
    untagged, _ = c.cmd("GETQUOTAROOT INBOX")
    usage = int(re.search(rb"\(STORAGE ([0-9]+) 20\)", b"".join(untagged)).group(1))
    assert 29 <= usage <= 32, untagged
    with server.raw() as smtp:
        smtp.greet()
        smtp.cmd("MAIL FROM:<sender@example.net>", 250)
        smtp.cmd(f"RCPT TO:<{ALICE}>", 452, "4.2.2")
        smtp.cmd(f"RCPT TO:<{BOB}>", 250)  # bob has no quota
    tag = c.next_tag()
    c.send(f"{tag} APPEND INBOX {{10}}\r\n")
    r = c.read_response()
    if r.startswith(b"+"):
        c.send(b"0123456789\r\n")
        _, r = c.until_tagged(tag)
    assert re.match(rf"{tag} NO \[OVERQUOTA\]".encode(), r), r
    untagged, _ = c.cmd('GETQUOTA ""' if root.group(2) == b"" else f'GETQUOTA "{root.group(2).decode()}"')
    assert b"STORAGE" in untagged[0]
    # deleting makes room again
    c.select()
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.cmd("EXPUNGE")
    # the use is cached for up to 5 s (QuotaService.freshFor): the room is there within 6 s

    def fits():
        _, tagged = c.cmd("APPEND INBOX {25+}\r\nSubject: fits\r\n\r\nsmall\r\n", expect=None)
        return tagged.split(b" ")[1] == b"OK" or (b"[OVERQUOTA]" not in tagged and AssertionError(tagged))

    assert wait_for(fits, timeout=6, what="APPEND after EXPUNGE freed the quota") is True
    server.cli("user", "quota", ALICE, "none")
    untagged, _ = c.cmd("GETQUOTAROOT INBOX")
    assert untagged == [b"* QUOTAROOT INBOX\r\n"], untagged


def test_over_quota_permanent(make_server):
    server = make_imap(make_server, limits={"over_quota_permanent": True})
    server.cli("user", "quota", ALICE, "1K")
    deliver(server, message(1, body=("y" * 75 + "\r\n") * 60))
    with server.raw() as smtp:
        smtp.greet()
        smtp.cmd("MAIL FROM:<sender@example.net>", 250)
        smtp.cmd(f"RCPT TO:<{ALICE}>", 552, "5.2.2")


# --------------------------------------------------------------------------------------------------
# CLI


def test_cli_mailbox_list_create_delete(imap_server):
    out = imap_server.cli("mailbox", "list", ALICE).stdout
    assert [l.split("\t")[0] for l in out.splitlines()] == ["INBOX"], "before the first IMAP login: INBOX only"
    imap_session(imap_server).cmd("LOGOUT")
    out = imap_server.cli("mailbox", "list", ALICE).stdout
    lines = out.splitlines()
    assert lines and lines[0].startswith("INBOX"), out
    assert {l.split("\t")[0] for l in lines} == {"INBOX", *SPECIAL}, out
    assert any(l.startswith("Sent\t") and "\\Sent" in l for l in lines), out
    r = imap_server.cli("mailbox", "create", ALICE, "Neu/Entwürfe")
    assert r.stdout.strip() == "created Neu/Entwürfe"
    c = imap_session(imap_server)
    assert "Neu/Entw&APw-rfe" in listed(c.cmd('LIST "" "Neu/*"')[0])
    append(c, message(1), "Neu/Entw&APw-rfe")
    out = imap_server.cli("mailbox", "list", ALICE).stdout
    assert re.search(r"^Neu/Entwürfe\t1 messages?", out, re.M), out
    for args in (("create", ALICE, "Sent"), ("delete", ALICE, "Nope"), ("delete", ALICE, "INBOX"),
                 ("list", "nobody@example.test"), ("create", ALICE, ""),
                 ("create", ALICE, "a//b"), ("create", ALICE, "../escape")):
        r = imap_server.cli("mailbox", *args, check=False)
        assert r.returncode != 0, (args, r)
        err = r.stderr.strip()
        assert err.startswith("swallow: ") and "\n" not in err, (args, r.stderr)
    imap_server.cli("mailbox", "delete", ALICE, "Neu/Entwürfe")
    assert "Neu/Entw&APw-rfe" not in listed(c.cmd('LIST "" "*"')[0])


def test_cli_user_quota_show_set_none_and_bad_sizes(imap_server):
    r = imap_server.cli("user", "quota", ALICE)
    assert re.fullmatch(r"used 0 bytes in 0 messages; limit none\n", r.stdout), r.stdout
    assert imap_server.cli("user", "quota", ALICE, "500M").stdout.strip() == f"quota of {ALICE}: 500M"
    assert imap_server.cli("user", "quota", ALICE).stdout.strip().endswith("limit 500M")
    assert imap_server.cli("user", "quota", ALICE, "2G").stdout.strip() == f"quota of {ALICE}: 2G"
    assert imap_server.cli("user", "quota", ALICE, "none").stdout.strip() == f"quota of {ALICE}: none"
    assert imap_server.cli("user", "quota", ALICE).stdout.strip().endswith("limit none")
    for bad in ("12XB", "abc", "1.5.G", "", "99999999999999999999G", "0x10"):
        r = imap_server.cli("user", "quota", ALICE, bad, check=False)
        assert r.returncode != 0, (bad, r.stdout)
        err = r.stderr.strip()
        assert err.startswith("swallow: ") and "\n" not in err, (bad, r.stderr)
    r = imap_server.cli("user", "quota", "nobody@example.test", "1M", check=False)
    assert r.returncode != 0 and r.stderr.strip() == "swallow: no user 'nobody@example.test'", r.stderr
    assert imap_server.cli("user", "quota", ALICE).stdout.strip().endswith("limit none"), "a bad size changed nothing"
