"""Real IMAP clients that nobody here wrote, against the real `swallow` binary: Python's imaplib and the
PyPI clients IMAPClient, imap-tools and aioimaplib (installed by .ci/run; missing → failure in CI).
Each does what a mail program does: log in over STARTTLS or implicit TLS, list folders, fetch, search,
flag, move, append, IDLE."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import time

import pytest

from conftest import insecure_tls_context
from imap_e2e import (ALICE, GRAMMAR_STATS, PASSWORD, RawIMAP, deliver, imap_session, make_imap, message,
                          require_module)


@pytest.fixture
def imap_server(make_server):
    server = make_imap(make_server)
    for i in range(1, 4):
        deliver(server, message(i, subject=f"hello {i}", frm=f"Friend {i} <f{i}@example.net>"))
    return server


def test_imaplib_starttls_and_implicit_tls(imap_server):
    m = imaplib.IMAP4("127.0.0.1", imap_server.imap_port, timeout=15)
    assert "LOGINDISABLED" in m.capabilities
    m.starttls(insecure_tls_context())
    assert "AUTH=PLAIN" in m.capabilities
    m.login(ALICE, PASSWORD)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"]
    typ, data = m.search(None, "SUBJECT", '"hello 2"')
    assert data == [b"2"]
    typ, data = m.fetch("2", "(RFC822)")
    msg = email.message_from_bytes(data[0][1], policy=email.policy.default)
    assert msg["Subject"] == "hello 2" and msg["From"].addresses[0].addr_spec == "f2@example.net"
    typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "OK" and b"\\Flagged" in data[0]
    typ, data = m.append("Drafts", "(\\Draft)", imaplib.Time2Internaldate(time.time()), message(9))
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = m.list()
    assert any(b'"Drafts"' in d or b" Drafts" in d for d in data)
    typ, data = m.uid("MOVE", "1", "Archive")
    assert typ == "OK", data
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    m.close()
    m.logout()

    s = imaplib.IMAP4_SSL("127.0.0.1", imap_server.imaps_port, ssl_context=insecure_tls_context(), timeout=15)
    s.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{PASSWORD}".encode())
    assert s.select("Archive", readonly=True) == ("OK", [b"1"])
    typ, data = s.store("1", "+FLAGS", "(\\Seen)")  # read-only: NO (imaplib raises only for BAD)
    assert typ == "NO" and b"[CANNOT]" in data[0] or b"read-only" in data[0].lower(), (typ, data)
    s.logout()

    bad = imaplib.IMAP4_SSL("127.0.0.1", imap_server.imaps_port, ssl_context=insecure_tls_context(), timeout=15)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        bad.login(ALICE, "wrong")
    bad.logout()


def test_imapclient(imap_server):
    imapclient = require_module("imapclient")
    from imapclient.imapclient import DRAFTS, SENT, TRASH
    c = imapclient.IMAPClient("127.0.0.1", port=imap_server.imaps_port, ssl=True, ssl_context=insecure_tls_context(),
                              timeout=15)
    c.login(ALICE, PASSWORD)
    caps = c.capabilities()
    assert b"IDLE" in caps and b"CONDSTORE" in caps and b"MOVE" in caps
    folders = {name: flags for flags, _, name in c.list_folders()}
    assert SENT in folders["Sent"] and TRASH in folders["Trash"]
    assert c.find_special_folder(DRAFTS) == "Drafts"
    c.create_folder("Entwürfe")  # IMAPClient encodes modified UTF-7 itself
    assert "Entwürfe" in [name for _, _, name in c.list_folders()]
    info = c.select_folder("INBOX")
    assert info[b"EXISTS"] == 3 and b"UIDVALIDITY" in info
    uids = c.search(["FROM", "f3@example.net"])
    assert len(uids) == 1
    data = c.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "FLAGS", "BODY.PEEK[TEXT]"])
    env = data[uids[0]][b"ENVELOPE"]
    assert env.subject == b"hello 3" and env.from_[0].mailbox == b"f3"
    assert data[uids[0]][b"BODY[TEXT]"].startswith(b"body of message 3")
    c.add_flags(uids, [imapclient.FLAGGED, b"$Work"])
    assert set(c.get_flags(uids)[uids[0]]) >= {b"\\Flagged", b"$Work"}
    assert c.folder_status("INBOX", ["MESSAGES", "UNSEEN"]) == {b"MESSAGES": 3, b"UNSEEN": 3}
    c.move(uids, "Entwürfe")
    assert c.folder_status("Entwürfe", ["MESSAGES"])[b"MESSAGES"] == 1
    # IDLE: a delivery wakes the client
    c.idle()
    deliver(imap_server, message(10))
    responses = c.idle_check(timeout=5)
    c.idle_done()
    assert (3, b"EXISTS") in responses or any(r[1] == b"EXISTS" for r in responses), responses
    assert c.sort(["ARRIVAL"]) and len(c.thread()) >= 1
    c.logout()


def test_imap_tools(imap_server):
    imap_tools = require_module("imap_tools")
    with imap_tools.MailBox("127.0.0.1", port=imap_server.imaps_port, ssl_context=insecure_tls_context()).login(
            ALICE, PASSWORD, initial_folder="INBOX") as mb:
        msgs = list(mb.fetch(imap_tools.AND(subject="hello"), mark_seen=False))
        assert [m.subject for m in msgs] == ["hello 1", "hello 2", "hello 3"]
        assert msgs[0].from_ == "f1@example.net" and msgs[0].text.startswith("body of message 1")
        mb.flag([msgs[0].uid], imap_tools.MailMessageFlags.SEEN, True)
        assert [m.uid for m in mb.fetch(imap_tools.AND(seen=True), headers_only=True)] == [msgs[0].uid]
        mb.folder.create("Projects/2024")
        assert "Projects/2024" in [f.name for f in mb.folder.list()]
        mb.move([msgs[1].uid], "Projects/2024")
        mb.copy([msgs[2].uid], "Projects/2024")
        assert mb.folder.status("Projects/2024")["MESSAGES"] == 2
        mb.append(message(20), "Projects/2024", dt=None, flag_set=[imap_tools.MailMessageFlags.FLAGGED])
        mb.folder.set("Projects/2024")
        assert len(list(mb.fetch(imap_tools.AND(flagged=True)))) == 1
        mb.delete([m.uid for m in mb.fetch()])
        assert mb.folder.status("Projects/2024")["MESSAGES"] == 0
        mb.folder.set("INBOX")
        assert len(list(mb.fetch())) == 2
        response = mb.idle.wait(timeout=0.2)
        assert response == []


def test_aioimaplib_idle_push(imap_server):
    aioimaplib = require_module("aioimaplib")

    async def run():
        client = aioimaplib.IMAP4_SSL(host="127.0.0.1", port=imap_server.imaps_port, ssl_context=insecure_tls_context(),
                                      timeout=15)
        await client.wait_hello_from_server()
        response = await client.login(ALICE, PASSWORD)
        assert response.result == "OK", response
        response = await client.select("INBOX")
        assert response.result == "OK"
        idle = await client.idle_start(timeout=10)
        await asyncio.get_running_loop().run_in_executor(None, deliver, imap_server, message(30))
        pushed = await asyncio.wait_for(client.wait_server_push(), 5)
        client.idle_done()
        await asyncio.wait_for(idle, 5)
        pushed = [bytes(line) if not isinstance(line, str) else line.encode() for line in pushed]
        assert any(b"4 EXISTS" in line for line in pushed), pushed
        response = await client.uid_search("ALL")
        assert response.result == "OK" and len(response.lines[0].split()) == 4
        response = await client.fetch("4", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert response.result == "OK" and any(b"message 30" in bytes(l) for l in response.lines if not isinstance(l, str))
        await client.logout()

    asyncio.run(run())


def test_grammar_checker_is_strict_and_report(imap_server):
    """The grammar checker rejects what the server must never send (so a pass means something), and the
    run's figures: how many responses imap-codec decoded by itself and how many needed a fallback."""
    from imap_e2e import GrammarError, check_grammar

    for bad in (b"* 1 FETCH (UID)\r\n", b"a OK [APPENDUID x 1] done\r\n", b"* LIST (\\Noselect) / INBOX\r\n",
                b"* 1 FETCH (BODY[] {5}\r\nab)\r\n", b"* ESEARCH ALL 0\r\n", b"* VANISHED 1:\r\n", b"* STATUS INBOX (MESSAGES x)\r\n",
                b"a OK done\n", b"* 1 FETCH (FLAGS (\\Seen) MODSEQ (x))\r\n", b"a OK [COPYUID 1 2:x 3] d\r\n",
                b"* OK [HIGHESTMODSEQ] x\r\n", b"* 1 FETCH (BODY[] {2}\r\nab)\r\n* 2 EXISTS\r\n"):
        with pytest.raises(GrammarError):
            check_grammar(bad)
    c = imap_session(imap_server, select="INBOX")
    c.cmd("FETCH 1:* (FLAGS UID ENVELOPE BODYSTRUCTURE BODY.PEEK[])")
    print(f"\n[imap grammar] {dict(GRAMMAR_STATS)}")
    assert GRAMMAR_STATS["imap-codec"] > 0
