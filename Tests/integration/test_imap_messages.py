"""IMAP message commands end to end: SELECT/EXAMINE, FETCH (ENVELOPE, BODYSTRUCTURE, sections, partial,
PEEK vs \\Seen, BINARY, RFC822.SIZE, INTERNALDATE), SEARCH/ESEARCH/SEARCHRES, SORT, THREAD, STORE,
CONDSTORE, QRESYNC, COPY/MOVE, EXPUNGE, APPEND. Every response is grammar-checked (imap_e2e.py)."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from datetime import datetime, timezone

import pytest

from imap_e2e import (ALICE, RawIMAP, append, deliver, fetch_items, flags_of, imap_session, literal_of, make_imap,
                          message, modseq_of, search_numbers, start_imap, uid_of)


@pytest.fixture
def imap_server(make_server):
    return make_imap(make_server)


MIXED = (
    b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@example.net>\r\n"
    b"To: Alice <alice@example.test>, bob@example.test\r\n"
    b"Cc: \"Carol, C.\" <carol@example.org>\r\n"
    b"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n"  # Grüße aus Köln
    b"Date: Tue, 02 Jan 2024 10:00:00 +0100\r\n"
    b"Message-ID: <mixed1@example.net>\r\n"
    b"In-Reply-To: <root@example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"BB\"\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--BB\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"K=C3=A4sekuchen ist lecker=\r\n und teuer\r\n"
    b"--BB\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + base64.encodebytes("Das Geheimwort ist Zwetschgenkuchen.\n".encode()).replace(b"\n", b"\r\n")
    + b"--BB\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=\"x.bin\"\r\n"
    b"\r\n"
    b"AAECA/8=\r\n"
    b"--BB--\r\n"
)


def after_expunges(before: list, untagged: list[bytes]) -> list:
    """What is left of `before` (indexed by sequence number − 1) after the `* n EXPUNGE` responses, each
    renumbering the ones after it (RFC 9051 §7.5.1)."""
    left = list(before)
    for r in untagged:
        m = re.match(rb"\* ([0-9]+) EXPUNGE\r\n", r)
        if m:
            n = int(m.group(1))
            assert 1 <= n <= len(left), f"EXPUNGE {n} with {len(left)} messages"
            del left[n - 1]
    return left


def exists_of(untagged: list[bytes]) -> int:
    return int(next(re.match(rb"\* ([0-9]+) EXISTS", r).group(1) for r in untagged if re.match(rb"\* [0-9]+ EXISTS", r)))


def code_value(untagged: list[bytes], code: bytes) -> bytes:
    for r in untagged:
        m = re.search(rb"\[" + code + rb" ([^\]]*)\]", r)
        if m:
            return m.group(1)
    raise AssertionError(f"no [{code!r}] in {untagged!r}")


def test_select_and_examine(imap_server):
    for i in range(3):
        deliver(imap_server, message(i))
    c = imap_session(imap_server)
    untagged, tagged = c.cmd("SELECT INBOX")
    assert b"[READ-WRITE]" in tagged
    assert exists_of(untagged) == 3
    uidvalidity = int(code_value(untagged, b"UIDVALIDITY"))
    assert int(code_value(untagged, b"UIDNEXT")) == 4
    assert b"\\*" in code_value(untagged, b"PERMANENTFLAGS")
    assert any(r.startswith(b"* FLAGS (") for r in untagged)
    untagged, tagged = c.cmd("EXAMINE INBOX")
    assert b"[READ-ONLY]" in tagged
    assert not any(b"[CLOSED]" in r for r in untagged), "[CLOSED] is for IMAP4rev2 / QRESYNC clients only"
    c.cmd("ENABLE IMAP4rev2", expect="BAD")  # RFC 5161 §3.1: only before SELECT
    rev2 = imap_session(imap_server)
    assert rev2.cmd("ENABLE IMAP4rev2")[0] == [b"* ENABLED IMAP4rev2\r\n"]
    rev2.cmd("SELECT INBOX")
    untagged, tagged = rev2.cmd("EXAMINE INBOX")
    assert untagged[0].startswith(b"* OK [CLOSED]"), "RFC 9051 §7.1: [CLOSED] first, before the new mailbox's data"
    assert not any(r.startswith(b"* 0 RECENT") or b" RECENT" in r for r in untagged), "no RECENT in IMAP4rev2"
    assert int(code_value(untagged, b"UIDVALIDITY")) == uidvalidity
    _, tagged = c.cmd("STORE 1 +FLAGS (\\Seen)", expect="NO")  # read-only
    c.cmd("FETCH 1 BODY[]")
    assert "\\Seen" not in flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1]), "EXAMINE must not set \\Seen"
    _, tagged = c.cmd('SELECT "Nope"', expect="NO")
    assert b"[NONEXISTENT]" in tagged
    c.cmd("FETCH 1 FLAGS", expect="BAD")  # a failed SELECT leaves no mailbox selected
    c.cmd("SELECT Trash")
    assert exists_of(c.cmd("SELECT Trash")[0]) == 0
    c.cmd("UNSELECT")
    c.cmd("FETCH 1 FLAGS", expect="BAD")


def test_fetch_envelope_bodystructure_sections(imap_server):
    c = imap_session(imap_server, select="INBOX")
    uid = append(c, MIXED)
    untagged, _ = c.cmd(f"UID FETCH {uid} (ENVELOPE BODYSTRUCTURE RFC822.SIZE)")
    r = fetch_items(untagged)[1]
    env = re.search(rb"ENVELOPE \((.*)\) BODYSTRUCTURE", r, re.S).group(1)
    assert env.startswith(b'"Tue, 02 Jan 2024 10:00:00 +0100" "=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?="'), env
    assert b'(("=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=" NIL "j" "example.net"))' in env
    assert b'(("Alice" NIL "alice" "example.test")(NIL NIL "bob" "example.test"))' in env
    assert b'(("Carol, C." NIL "carol" "example.org"))' in env
    assert env.endswith(b'"<root@example.net>" "<mixed1@example.net>"'), env
    bs = re.search(rb"BODYSTRUCTURE (\(.*\)) RFC822", r, re.S).group(1)
    assert bs.startswith(b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" '), bs
    assert b'("application" "octet-stream" NIL NIL NIL "base64" 8 NIL ("attachment" ("filename" "x.bin"))' in bs
    assert b'"mixed" ("boundary" "BB")' in bs
    assert int(re.search(rb"RFC822.SIZE ([0-9]+)", r).group(1)) == len(MIXED)
    # sections and partial fetches
    untagged, _ = c.cmd(f"UID FETCH {uid} (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (Subject Date)] "
                        "BODY.PEEK[TEXT]<0.8> BODY.PEEK[]<10.20> BODY.PEEK[1]<1000.10> BODY.PEEK[4])")
    r = fetch_items(untagged)[1]
    assert literal_of(r, b"BODY[1]") == b"K=C3=A4sekuchen ist lecker=\r\n und teuer"
    assert literal_of(r, b"BODY[2.MIME]") == b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    assert literal_of(r, b"BODY[HEADER.FIELDS (SUBJECT DATE)]") == \
        b"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nDate: Tue, 02 Jan 2024 10:00:00 +0100\r\n\r\n"
    assert literal_of(r, b"BODY[TEXT]<0>") == b"preamble"
    assert literal_of(r, b"BODY[]<10>") == MIXED[10:30]
    assert b'BODY[1]<1000> ""' in r or literal_of(r, b"BODY[1]<1000>") == b"", r  # past the end: empty
    assert b'BODY[4] ""' in r or literal_of(r, b"BODY[4]") == b"", r  # nonexistent part: empty (Dovecot)
    assert "\\Seen" not in flags_of(fetch_items(c.cmd(f"UID FETCH {uid} FLAGS")[0])[1]), "BODY.PEEK set \\Seen"
    # BINARY decodes the transfer encoding (RFC 3516); literal8 for binary data
    untagged, _ = c.cmd(f"UID FETCH {uid} (BINARY.PEEK[1] BINARY.SIZE[3] BINARY.PEEK[3] BINARY.PEEK[2]<4.10>)")
    r = fetch_items(untagged)[1]
    assert literal_of(r, b"BINARY[1]") == "Käsekuchen ist lecker und teuer".encode()
    assert re.search(rb"BINARY\.SIZE\[3\] 5\b", r), r
    assert literal_of(r, b"BINARY[3]") == b"\x00\x01\x02\x03\xff"
    assert re.search(rb"BINARY\[3\] ~\{5\}", r), "binary data with NUL must be a literal8 (RFC 3516 §4.3)"
    assert literal_of(r, b"BINARY[2]<4>") == b"Geheimwort"
    assert "\\Seen" not in flags_of(fetch_items(c.cmd(f"UID FETCH {uid} FLAGS")[0])[1])
    # non-PEEK sets \Seen and reports it in the same response (RFC 9051 §6.4.5)
    untagged, _ = c.cmd(f"UID FETCH {uid} BODY[1]")
    assert "\\Seen" in flags_of(fetch_items(untagged)[1])


def test_rfc822_size_is_the_crlf_size_of_body(imap_server):
    lf_only = b"Subject: bare LF\nFrom: a@example.net\n\nline one\nline two\n"
    deliver(imap_server, message(1, body="x" * 70 + "\r\n" + "." * 10))
    c = imap_session(imap_server, select="INBOX")
    append(c, MIXED)
    tag = c.next_tag()
    c.send(f"{tag} APPEND INBOX {{{len(lf_only)}+}}\r\n".encode() + lf_only + b"\r\n")
    _, tagged = c.until_tagged(tag)
    untagged, _ = c.cmd("FETCH 1:* (RFC822.SIZE BODY.PEEK[] RFC822.HEADER)")
    items = fetch_items(untagged)
    assert len(items) == 3 or tagged.split(b" ")[1] != b"OK"
    for n, r in items.items():
        size = int(re.search(rb"RFC822.SIZE ([0-9]+)", r).group(1))
        body = literal_of(r, b"BODY[]")
        assert size == len(body), (n, size, len(body))
        assert b"\n" not in body.replace(b"\r\n", b""), f"bare LF in BODY[] of {n}"
        assert body.startswith(literal_of(r, b"RFC822.HEADER"))
    # the size on disk and a delivered message: BODY[] is what SMTP received, with the trace on top
    delivered = literal_of(items[1], b"BODY[]")
    assert delivered.startswith(b"Return-Path: <sender@example.net>\r\n")


def test_internaldate_of_append_with_a_date(imap_server):
    c = imap_session(imap_server, select="INBOX")
    uid = append(c, message(1), date="14-Jul-2021 08:09:10 +0200")
    uid2 = append(c, message(2))
    untagged, _ = c.cmd(f"UID FETCH {uid},{uid2} INTERNALDATE")
    items = {uid_of(r): r for r in fetch_items(untagged).values()}
    got = re.search(rb'INTERNALDATE "([^"]+)"', items[uid]).group(1).decode()
    when = datetime.strptime(got.strip(), "%d-%b-%Y %H:%M:%S %z")
    assert when == datetime(2021, 7, 14, 6, 9, 10, tzinfo=timezone.utc), got
    now = re.search(rb'INTERNALDATE "([^"]+)"', items[uid2]).group(1).decode()
    delta = abs((datetime.strptime(now.strip(), "%d-%b-%Y %H:%M:%S %z") - datetime.now(timezone.utc)).total_seconds())
    assert delta < 120, now
    assert search_numbers(c.cmd("UID SEARCH ON 14-Jul-2021")[0]) == [uid]
    assert search_numbers(c.cmd("UID SEARCH BEFORE 1-Jan-2022")[0]) == [uid]
    for bad in ("31-Feb-2021 00:00:00 +0000", "29-Feb-2023 00:00:00 +0000", "31-Apr-2021 00:00:00 +0000",
                "1-Jan-2021 24:00:00 +0000", "01-Foo-2021 00:00:00 +0000"):
        c.cmd(f'APPEND INBOX "{bad}" {{3+}}\r\nabc', expect="BAD")
    append(c, message(3), date="29-Feb-2024 00:00:00 +0000")  # a leap day is fine
    assert exists_of(c.cmd("NOOP")[0] or c.cmd("SELECT INBOX")[0]) == 3


def test_search(imap_server):
    c = imap_session(imap_server, select="INBOX")
    u_mixed = append(c, MIXED)
    u_plain = append(c, message(2, subject="plain ascii", frm="bob@example.test", date="Fri, 01 Mar 2024 12:00:00 +0000"))
    u_flagged = append(c, message(3, subject="flagged one"), flags="\\Flagged $Important")

    def uids(query: bytes | str) -> list[int]:
        return search_numbers(c.cmd(b"UID SEARCH " + (query.encode() if isinstance(query, str) else query))[0])

    assert uids("ALL") == [u_mixed, u_plain, u_flagged]
    assert uids("FLAGGED") == [u_flagged]
    assert uids("KEYWORD $Important") == [u_flagged]
    assert uids("UNKEYWORD $Important") == [u_mixed, u_plain]
    assert uids("NOT FLAGGED") == [u_mixed, u_plain]
    assert uids("OR FLAGGED FROM bob") == [u_plain, u_flagged]
    assert uids(b'CHARSET UTF-8 SUBJECT "K\xc3\xb6ln"') == [u_mixed], "encoded-word subjects are decoded"
    assert uids(b'CHARSET UTF-8 FROM "M\xc3\xbcller"') == [u_mixed]
    assert uids('SUBJECT "gr"') == [u_mixed]  # case-insensitive, inside the decoded word "Grüße"
    assert uids('HEADER Message-ID "<mixed1@example.net>"') == [u_mixed]
    assert uids('HEADER In-Reply-To ""') == [u_mixed]  # the header exists
    assert uids(b'CHARSET UTF-8 BODY "K\xc3\xa4sekuchen"') == [u_mixed], "quoted-printable body decoded"
    assert uids('BODY "lecker und"') == [u_mixed], "soft line break joined"
    assert uids("BODY zwetschgenkuchen") == [u_mixed], "base64 text part decoded"
    assert uids("TEXT Geheimwort") == [u_mixed]
    assert uids("TEXT j@example.net") == [u_mixed], "TEXT covers the header"
    assert uids("BODY j@example.net") == []
    assert uids("SENTON 2-Jan-2024") == [u_mixed]
    assert uids("SENTSINCE 1-Feb-2024") == [u_plain]
    assert uids("SENTBEFORE 1-Feb-2024 SENTSINCE 1-Jan-2024") == [u_mixed, u_flagged]
    assert uids(f"UID {u_plain}:*") == [u_plain, u_flagged]
    assert uids(f"UID {u_flagged + 5}:*") == [u_flagged], "n:* includes the last message (RFC 9051 §6.4.8)"
    assert search_numbers(c.cmd("SEARCH 2:3")[0]) == [2, 3]
    assert uids(f"LARGER {len(MIXED) - 1}") == [u_mixed]
    assert uids(f"LARGER {len(MIXED)}") == []
    assert uids("NOT (OR SEEN (FLAGGED))") == [u_mixed, u_plain]
    _, tagged = c.cmd("UID SEARCH CHARSET KOI8-R ALL", expect="NO")
    assert re.search(rb"\[BADCHARSET \([^)]*UTF-8[^)]*\)\]", tagged), tagged
    c.cmd("UID SEARCH FROBNICATE", expect="BAD")
    c.cmd('UID SEARCH BODY "unterminated', expect="BAD")
    # ESEARCH (RFC 4731) and SEARCHRES (RFC 5182)
    untagged, _ = c.cmd("UID SEARCH RETURN (MIN MAX COUNT ALL) NOT FLAGGED")
    es = untagged[0]
    assert es.startswith(b'* ESEARCH (TAG "') and b" UID " in es, es
    assert re.search(rf"MIN {u_mixed}\b".encode(), es) and re.search(rf"MAX {u_plain}\b".encode(), es)
    assert re.search(rb"COUNT 2\b", es) and re.search(rf"ALL {u_mixed}:{u_plain}\b".encode(), es), es
    untagged, _ = c.cmd("SEARCH RETURN () FLAGGED")
    assert re.search(rb"ALL 3\b", untagged[0]), untagged
    untagged, _ = c.cmd("SEARCH RETURN (COUNT) KEYWORD nothing")
    assert re.search(rb"COUNT 0", untagged[0]) and b"ALL" not in untagged[0], untagged
    untagged, _ = c.cmd("UID SEARCH RETURN (SAVE) FROM bob")
    assert untagged == [], "RETURN (SAVE) alone sends no ESEARCH (RFC 5182 §2.1)"
    untagged, _ = c.cmd("UID FETCH $ (UID)")
    assert [uid_of(r) for r in fetch_items(untagged).values()] == [u_plain]
    assert search_numbers(c.cmd("UID SEARCH NOT UID $")[0]) == [u_mixed, u_flagged]
    c.cmd("UID STORE $ +FLAGS.SILENT (\\Answered)")
    assert uids("ANSWERED") == [u_plain]


def test_sort_and_thread(imap_server):
    c = imap_session(imap_server, select="INBOX")
    msgs = [
        message(1, subject="Re: banana", date="Wed, 03 Jan 2024 00:00:00 +0000", frm="zed@example.net",
                headers="Message-ID: <b2@x>\r\nIn-Reply-To: <b1@x>\r\nReferences: <b1@x>\r\n"),
        message(2, subject="apple", date="Mon, 01 Jan 2024 00:00:00 +0000", frm="bob@example.net",
                headers="Message-ID: <a1@x>\r\n"),
        message(3, subject="banana", date="Tue, 02 Jan 2024 00:00:00 +0000", frm="amy@example.net",
                headers="Message-ID: <b1@x>\r\n"),
        message(4, subject="[list] Fwd: Apple", date="Thu, 04 Jan 2024 00:00:00 +0000", frm="carl@example.net",
                headers="Message-ID: <c1@x>\r\n", body="x" * 500),
    ]
    for m in msgs:
        m = re.sub(rb"Message-ID: <m[^>]*>\r\n", b"", m, count=1)
        append(c, m)
    assert search_numbers(c.cmd("SORT (DATE) UTF-8 ALL")[0], b"SORT") == [2, 3, 1, 4]
    assert search_numbers(c.cmd("SORT (REVERSE DATE) UTF-8 ALL")[0], b"SORT") == [4, 1, 3, 2]
    assert search_numbers(c.cmd("SORT (FROM) UTF-8 ALL")[0], b"SORT") == [3, 2, 4, 1]
    # base subjects (RFC 5256 §2.1: "[list] Fwd: Apple" → "apple"), ties by sequence number
    assert search_numbers(c.cmd("SORT (SUBJECT) UTF-8 ALL")[0], b"SORT") == [2, 4, 1, 3]
    assert search_numbers(c.cmd("SORT (SIZE) UTF-8 ALL")[0], b"SORT")[-1] == 4
    assert search_numbers(c.cmd("SORT (SUBJECT DATE) UTF-8 SUBJECT banana")[0], b"SORT") == [3, 1]
    assert search_numbers(c.cmd("UID SORT (DATE) UTF-8 ALL")[0], b"SORT") == [2, 3, 1, 4]
    c.cmd("SORT (BOGUS) UTF-8 ALL", expect="BAD")
    _, tagged = c.cmd("SORT (DATE) KOI8-R ALL", expect="NO")
    assert b"[BADCHARSET" in tagged
    untagged, _ = c.cmd("THREAD REFERENCES UTF-8 ALL")
    # RFC 5256 REFERENCES step 5: "Fwd: Apple" (no references) joins "apple" as its child
    assert untagged == [b"* THREAD (2 4)(3 1)\r\n"], untagged
    untagged, _ = c.cmd("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert untagged[0].startswith(b"* THREAD ") and b"(3 1)" in untagged[0], untagged
    c.cmd("THREAD FOO UTF-8 ALL", expect="BAD")


def test_store_flags_and_keywords(make_server):
    server = make_imap(make_server)
    for i in range(3):
        deliver(server, message(i))
    c = imap_session(server, select="INBOX")
    untagged, _ = c.cmd("STORE 1 +FLAGS (\\Seen \\Flagged)")
    assert flags_of(fetch_items(untagged)[1]) == {"\\Seen", "\\Flagged"}
    untagged, _ = c.cmd("STORE 1 -FLAGS (\\Flagged)")
    assert flags_of(fetch_items(untagged)[1]) == {"\\Seen"}
    untagged, _ = c.cmd("STORE 1:2 FLAGS (\\Draft $Label1)")
    assert {n: flags_of(r) for n, r in fetch_items(untagged).items()} == {1: {"\\Draft", "$Label1"}, 2: {"\\Draft", "$Label1"}}
    untagged, _ = c.cmd("STORE 3 +FLAGS.SILENT (\\Answered)")
    assert untagged == [], "FLAGS.SILENT answers nothing (RFC 9051 §6.4.6)"
    untagged, _ = c.cmd("SELECT INBOX")
    flags_line = next(r for r in untagged if r.startswith(b"* FLAGS"))
    assert b"$Label1" in flags_line, "a new keyword is announced in FLAGS"
    fl = {n: flags_of(r) for n, r in fetch_items(c.cmd("FETCH 1:3 FLAGS")[0]).items()}
    assert fl == {1: {"\\Draft", "$Label1"}, 2: {"\\Draft", "$Label1"}, 3: {"\\Answered"}}, fl
    c.cmd("STORE 1 +FLAGS (\\Recent)", expect="BAD")  # \Recent cannot be stored
    # an unknown system flag (RFC 9051 §9 flag-extension) is refused, as Dovecot does, and nothing changes
    before = flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1])
    _, tagged = c.cmd("STORE 1 +FLAGS (\\Seen \\Bogus)", expect="BAD")
    assert b"\\Bogus" in tagged, tagged
    assert flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1]) == before
    c.cmd("STORE 1 +FLAGS (bad]keyword)", expect="BAD")
    untagged, _ = c.cmd("UID STORE 1:* -FLAGS.SILENT (\\Draft)")
    assert untagged == []
    assert flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1]) == {"$Label1"}
    # keywords survive a restart (dovecot-keywords + Maildir letters)
    c.cmd("LOGOUT")
    server.stop()
    start_imap(server)
    c = imap_session(server, select="INBOX")
    assert flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1]) == {"$Label1"}


def test_condstore(imap_server):
    for i in range(3):
        deliver(imap_server, message(i))
    c = imap_session(imap_server)
    untagged, _ = c.cmd("SELECT INBOX (CONDSTORE)")
    highest = int(code_value(untagged, b"HIGHESTMODSEQ"))
    untagged, _ = c.cmd("FETCH 1:* (UID MODSEQ)")
    modseqs = {n: modseq_of(r) for n, r in fetch_items(untagged).items()}
    assert max(modseqs.values()) <= highest
    untagged, _ = c.cmd("STORE 1 +FLAGS (\\Seen)")
    r = fetch_items(untagged)[1]
    m1 = modseq_of(r)
    assert m1 > highest, "a change raises the MODSEQ (RFC 7162 §3.1.1)"
    # UNCHANGEDSINCE: message 1 changed after `highest`, 2 did not → 1 is MODIFIED, 2 is stored
    untagged, tagged = c.cmd(f"STORE 1:2 (UNCHANGEDSINCE {highest}) +FLAGS (\\Flagged)")
    assert re.search(rb"\[MODIFIED 1\]", tagged), tagged
    items = fetch_items(untagged)
    assert "\\Flagged" in flags_of(items[2]) and (1 not in items or "\\Flagged" not in flags_of(items[1]))
    assert "\\Flagged" not in flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1])
    # CHANGEDSINCE
    untagged, _ = c.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
    assert sorted(fetch_items(untagged)) == [1, 2], untagged
    assert all(b"MODSEQ" in r for r in untagged)
    untagged, _ = c.cmd(f"UID SEARCH MODSEQ {m1 + 1}")
    assert search_numbers(untagged) == [uid_of(fetch_items(c.cmd("FETCH 2 UID")[0])[2])], untagged
    assert b"(MODSEQ " in untagged[0], "SEARCH MODSEQ reports the highest mod-sequence (RFC 7162 §3.1.5)"
    untagged, _ = c.cmd("STATUS INBOX (HIGHESTMODSEQ)")
    assert int(re.search(rb"HIGHESTMODSEQ ([0-9]+)", untagged[0]).group(1)) > m1
    c.cmd("STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Deleted)", expect=None)
    assert "\\Deleted" not in flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1]), "UNCHANGEDSINCE 0 never stores"


def test_qresync_after_changes(imap_server):
    for i in range(5):
        deliver(imap_server, message(i))
    c = imap_session(imap_server)
    c.cmd("ENABLE QRESYNC")
    untagged, _ = c.cmd("SELECT INBOX")
    uidvalidity = int(code_value(untagged, b"UIDVALIDITY"))
    since = int(code_value(untagged, b"HIGHESTMODSEQ"))
    uids = [uid_of(r) for r in fetch_items(c.cmd("FETCH 1:* UID")[0]).values()]
    c.cmd("LOGOUT")
    # changes while the client is away: flags on the 2nd, two expunged (3rd, 5th)
    d = imap_session(imap_server, select="INBOX")
    d.cmd("STORE 2 +FLAGS (\\Flagged)")
    d.cmd("STORE 3,5 +FLAGS.SILENT (\\Deleted)")
    d.cmd("EXPUNGE")
    d.cmd("LOGOUT")
    c = imap_session(imap_server)
    untagged, _ = c.cmd("ENABLE QRESYNC")
    assert untagged == [b"* ENABLED QRESYNC\r\n"]
    untagged, tagged = c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {since} 1:{uids[-1]}))")
    vanished = [r for r in untagged if r.startswith(b"* VANISHED")]
    assert vanished == [f"* VANISHED (EARLIER) {uids[2]},{uids[4]}\r\n".encode()], untagged
    fetches = fetch_items(untagged)
    assert list(fetches) == [2], untagged
    assert "\\Flagged" in flags_of(fetches[2]) and uid_of(fetches[2]) == uids[1] and b"MODSEQ" in fetches[2]
    assert b"[READ-WRITE]" in tagged
    # a wrong UIDVALIDITY: no VANISHED, no FETCH (RFC 7162 §3.2.5.2)
    untagged, _ = c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {since}))")
    assert not [r for r in untagged if r.startswith(b"* VANISHED") or b" FETCH " in r], untagged
    # with QRESYNC on, EXPUNGE is reported as VANISHED
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    untagged, _ = c.cmd("EXPUNGE")
    # VANISHED, never `* n EXPUNGE` (RFC 7162 §3.2.10); an untagged OK [HIGHESTMODSEQ] may follow
    assert [r for r in untagged if not r.startswith(b"* OK [HIGHESTMODSEQ ")] == [f"* VANISHED {uids[0]}\r\n".encode()], untagged
    untagged, _ = c.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since} VANISHED)")
    assert untagged[0].startswith(b"* VANISHED (EARLIER) "), untagged
    c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity}))", expect="BAD")


def test_copy_and_move_with_copyuid(imap_server):
    for i in range(4):
        deliver(imap_server, message(i))
    c = imap_session(imap_server, select="INBOX")
    archive_validity = int(re.search(rb"UIDVALIDITY ([0-9]+)", c.cmd('STATUS Archive (UIDVALIDITY)')[0][0]).group(1))
    c.cmd("STORE 1 +FLAGS (\\Flagged)")
    _, tagged = c.cmd("COPY 1:2 Archive")
    m = re.search(rb"\[COPYUID ([0-9]+) ([0-9:,]+) ([0-9:,]+)\]", tagged)
    assert m and int(m.group(1)) == archive_validity, tagged
    assert m.group(2) == b"1:2" and m.group(3) == b"1:2", tagged
    _, tagged = c.cmd('COPY 1 "Does Not Exist"', expect="NO")
    assert b"[TRYCREATE]" in tagged
    untagged, tagged = c.cmd("UID MOVE 3:4 Trash")
    m = re.search(rb"\[COPYUID [0-9]+ 3:4 1:2\]", b"".join(untagged) + tagged)
    assert m, (untagged, tagged)  # RFC 6851 §4.3: in an untagged OK before the EXPUNGEs
    assert after_expunges([1, 2, 3, 4], untagged) == [1, 2], untagged
    _, tagged = c.cmd('MOVE 1 "Nope"', expect="NO")
    assert b"[TRYCREATE]" in tagged
    assert exists_of(c.cmd("SELECT INBOX")[0]) == 2
    untagged, _ = c.cmd("SELECT Archive")
    assert exists_of(untagged) == 2
    assert "\\Flagged" in flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1]), "COPY keeps the flags"
    assert exists_of(c.cmd("SELECT Trash")[0]) == 2
    c.cmd("COPY 5 INBOX", expect="BAD")  # past the end (RFC 9051 §6.4.7: invalid sequence number)


def test_expunge_and_uid_expunge(imap_server):
    for i in range(5):
        deliver(imap_server, message(i))
    c = imap_session(imap_server, select="INBOX")
    uids = [uid_of(r) for r in fetch_items(c.cmd("FETCH 1:* UID")[0]).values()]
    c.cmd("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    untagged, _ = c.cmd("EXPUNGE")
    assert after_expunges(uids, untagged) == [uids[0], uids[2], uids[4]], untagged
    c.cmd("STORE 1,2 +FLAGS.SILENT (\\Deleted)")
    untagged, _ = c.cmd(f"UID EXPUNGE {uids[2]}")  # only this one of the two \Deleted (RFC 4315 §2.1)
    assert untagged == [b"* 2 EXPUNGE\r\n"], untagged
    left = [uid_of(r) for r in fetch_items(c.cmd("FETCH 1:* UID")[0]).values()]
    assert left == [uids[0], uids[4]], left
    untagged, _ = c.cmd("CLOSE")  # CLOSE expunges silently
    assert untagged == []
    assert exists_of(c.cmd("EXAMINE INBOX")[0]) == 1
    root = imap_server.maildir_path(ALICE)
    assert len(list((root / "cur").iterdir()) + list((root / "new").iterdir())) == 1


def test_append_variants(make_server):
    server = make_imap(make_server, imap_extra={"max_literal": 1 << 20})
    c = imap_session(server)
    validity = int(re.search(rb"UIDVALIDITY ([0-9]+)", c.cmd("STATUS Drafts (UIDVALIDITY)")[0][0]).group(1))
    raw = message(1)
    # synchronising literal: the server asks with '+' before the data
    tag = c.next_tag()
    c.send(f"{tag} APPEND Drafts (\\Draft) {{{len(raw)}}}\r\n".encode())
    assert c.read_response().startswith(b"+")
    c.send(raw + b"\r\n")
    _, tagged = c.until_tagged(tag)
    assert re.match(rf"{tag} OK \[APPENDUID {validity} 1\]".encode(), tagged), tagged
    # LITERAL+, then several appends pipelined in one write
    raw2 = message(2)
    assert append(c, raw2, "Drafts") == 2
    batch = b"".join(f"p{i} APPEND Drafts {{{len(raw)}+}}\r\n".encode() + raw + b"\r\n" for i in range(5))
    c.send(batch)
    for i in range(5):
        _, tagged = c.until_tagged(f"p{i}")
        assert tagged.startswith(f"p{i} OK [APPENDUID {validity} {3 + i}]".encode()), tagged
    # over APPENDLIMIT, announced: refused before the data
    _, tagged = c.cmd(f"APPEND Drafts {{{(1 << 20) + 1}}}", expect="NO")
    assert b"[TOOBIG]" in tagged
    _, tagged = c.cmd("APPEND Nope {3+}\r\nabc", expect="NO")
    assert b"[TRYCREATE]" in tagged
    _, tagged = c.cmd("APPEND Drafts (\\Recent) {3+}\r\nabc", expect=None)  # BAD, or \Recent not stored
    assert tagged.split(b" ")[1] in (b"OK", b"BAD"), tagged
    extra = tagged.split(b" ")[1] == b"OK"
    # an empty message (RFC 5322 allows zero header fields): stored or refused, consistently counted
    _, tagged = c.cmd("APPEND Drafts {0+}\r\n", expect=None)
    assert re.match(rb"\S+ (OK|NO|BAD)", tagged)
    extra += tagged.split(b" ")[1] == b"OK"
    untagged, _ = c.cmd("SELECT Drafts")
    assert exists_of(untagged) == 7 + extra
    if extra:
        assert "\\Recent" not in flags_of(fetch_items(c.cmd("FETCH 8 FLAGS")[0])[8])
    assert flags_of(fetch_items(c.cmd("FETCH 1 FLAGS")[0])[1]) == {"\\Draft"}
    body = literal_of(fetch_items(c.cmd("FETCH 2 BODY.PEEK[]")[0])[2], b"BODY[]")
    assert body == raw2, "APPEND stores the bytes as given"
    # APPEND to the selected mailbox announces the new message (RFC 9051 §6.3.12)
    untagged, _ = c.cmd(f"APPEND Drafts {{{len(raw)}+}}\r\n".encode() + raw)
    assert f"* {8 + extra} EXISTS\r\n".encode() in untagged, untagged


def test_second_message_in_one_append_is_bad_and_nothing_is_lost(imap_server):
    """MULTIAPPEND (RFC 3502) is not offered: RFC 9051 §6.3.12 allows one message, so a second literal
    is BAD and neither message is stored (an older build answered OK and kept only the last one)."""
    c = imap_session(imap_server, select="Drafts")
    _, tagged = c.cmd("APPEND Drafts {3+}\r\nabc {3+}\r\ndef", expect=None)
    bodies = [literal_of(r, b"BODY[]") for r in fetch_items(c.cmd("FETCH 1:* BODY.PEEK[]")[0]).values()]
    assert tagged.split(b" ")[1] == b"BAD" and bodies == [], (tagged, bodies)
