"""Python's smtplib (a client nobody here wrote) against `swallow serve`."""

from __future__ import annotations

import re
import smtplib
import ssl

import pytest

from conftest import insecure_tls_context


def simple_message(subject: str, body: str = "Hello from the test.\n", sender="sender@remote.test", to="alice@example.test") -> str:
    return (
        f"From: {sender}\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@remote.test>\r\n"
        f"\r\n"
        f"{body}"
    )


def received_headers(msg) -> list[str]:
    return [str(v) for v in msg.get_all("Received", [])]


def test_plain_send_to_one_user(server):
    body = "Line one.\r\n.leading dot survives unstuffing\r\nLast line.\r\n"
    with server.smtp() as client:
        code, _ = client.ehlo()
        assert code == 250
        refused = client.sendmail("sender@remote.test", ["alice@example.test"], simple_message("plain one", body))
        assert refused == {}
    msgs = server.wait_messages("alice@example.test", 1)
    assert len(msgs) == 1
    assert server.maildir_messages("bob@example.test") == []
    msg = msgs[0]
    assert msg["Subject"] == "plain one"

    raw = server.raw_messages("alice@example.test")[0]
    assert b"\r" not in raw, "stored message must use LF line endings"
    first, second = raw.split(b"\n", 2)[:2]
    assert first == b"Return-Path: <sender@remote.test>", raw[:200]
    assert second.startswith(b"Received:"), raw[:300]
    assert len(msg.get_all("Return-Path")) == 1
    received = received_headers(msg)
    assert received and "mx.example.test" in received[0]
    assert not re.search(r"ESMTPS|TLSv", received[0]), f"plain session claims TLS: {received[0]}"
    # dot-stuffing transparency (RFC 5321 §4.5.2): smtplib sends "..leading", we must store ".leading"
    assert b"\n.leading dot survives unstuffing\n" in raw
    assert b"\n..leading" not in raw


def test_ehlo_advertises_extensions(server):
    with server.smtp() as client:
        code, _ = client.ehlo()
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8", "chunking", "starttls"):
            assert client.has_extn(ext), f"EHLO does not advertise {ext.upper()}: {client.esmtp_features}"
        assert client.esmtp_features["size"].strip() == "26214400"


def test_starttls_then_send_several_recipients(server):
    recipients = ["alice@example.test", "bob@example.test"]
    with server.smtp() as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.starttls(context=insecure_tls_context())
        assert code == 220
        client.ehlo()
        assert not client.has_extn("starttls"), "STARTTLS must not be offered again inside TLS"
        assert isinstance(client.sock, ssl.SSLSocket)
        refused = client.sendmail(
            "sender@remote.test", recipients, simple_message("tls multi", to="alice@example.test, bob@example.test")
        )
        assert refused == {}
    for rcpt in recipients:
        msgs = server.wait_messages(rcpt, 1)
        assert len(msgs) == 1, f"{rcpt} has {len(msgs)} copies"
        assert msgs[0]["Subject"] == "tls multi"
        received = received_headers(msgs[0])
        assert received, f"no Received header for {rcpt}"
        assert re.search(r"TLS|ESMTPS", received[0]), f"Received header does not mention TLS: {received[0]}"


def test_several_recipients_plain_each_gets_one_copy(server):
    server.add_user("carol@example.test")
    recipients = ["alice@example.test", "bob@example.test", "carol@example.test"]
    with server.smtp() as client:
        refused = client.sendmail("sender@remote.test", recipients, simple_message("plain multi"))
        assert refused == {}
    for rcpt in recipients:
        msgs = server.wait_messages(rcpt, 1)
        assert [m["Subject"] for m in msgs] == ["plain multi"], rcpt


def test_partial_recipient_rejection(server):
    """One good and one unknown recipient: smtplib reports the refused one, the good one gets the mail."""
    with server.smtp() as client:
        refused = client.sendmail(
            "sender@remote.test", ["alice@example.test", "nobody@example.test"], simple_message("partial")
        )
    assert set(refused) == {"nobody@example.test"}
    code, text = refused["nobody@example.test"]
    assert code == 550 and text.startswith(b"5.1.1"), refused
    assert len(server.wait_messages("alice@example.test", 1)) == 1


def test_smtputf8_address_and_utf8_body(server):
    server.add_user("用户@example.test")
    subject = "Grüße – 你好"
    body = "Ünïcödé body: 中文 ✉\r\n"
    raw_msg = (
        "From: 发件人@remote.test\r\n"
        "To: 用户@example.test\r\n"
        f"Subject: {subject}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body}"
    ).encode("utf-8")
    with server.smtp() as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        refused = client.sendmail(
            "发件人@remote.test", ["用户@example.test"], raw_msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
        assert refused == {}
    path = server.maildir_path("用户@example.test")
    assert path.is_dir(), f"no Maildir at {path}; mail/example.test has {sorted(p.name for p in path.parent.iterdir())}"
    raws = server.raw_messages("用户@example.test")
    assert len(raws) == 1
    stored = raws[0]
    assert stored.startswith("Return-Path: <发件人@remote.test>\n".encode("utf-8")), stored[:200]
    assert f"Subject: {subject}\n".encode("utf-8") in stored
    assert stored.endswith(body.replace("\r\n", "\n").encode("utf-8"))
    received = received_headers(server.maildir_messages("用户@example.test")[0])
    # RFC 6531 §3.7.3: "UTF8SMTP" / "UTF8SMTPS" with keywords
    assert "UTF8SMTP" in received[0], f"Received should record SMTPUTF8: {received[0]}"


def test_non_ascii_address_without_smtputf8_rejected(server):
    with server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<发件人@remote.test>", 553, "5.6.7")
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        s.cmd("RCPT TO:<用户@example.test>", 553, "5.6.7")
        s.cmd("QUIT", 221)


@pytest.fixture
def small_server(make_server):
    return make_server(limits={"max_message_size": 10000, "max_recipients": 3})


def test_message_over_size_limit_declared(small_server):
    """smtplib declares SIZE=n at MAIL when the server offers SIZE → refused at MAIL with 552 5.3.4."""
    big = simple_message("too big", "x" * 70 + "\r\n") + ("y" * 70 + "\r\n") * 200
    with small_server.smtp() as client:
        client.ehlo()
        assert client.esmtp_features.get("size", "").strip() == "10000"
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail("sender@remote.test", ["alice@example.test"], big)
        assert info.value.smtp_code == 552
        assert info.value.smtp_error.startswith(b"5.3.4"), info.value.smtp_error
    assert small_server.maildir_messages("alice@example.test") == []


def test_message_over_size_limit_undeclared(small_server):
    """Without SIZE= the server must count and answer 552 5.3.4 at the end of data."""
    big = simple_message("too big 2") + ("y" * 70 + "\r\n") * 200
    with small_server.smtp() as client:
        client.ehlo()
        client.esmtp_features.pop("size", None)  # stop smtplib from declaring SIZE=
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("sender@remote.test", ["alice@example.test"], big)
        assert info.value.smtp_code == 552
        assert info.value.smtp_error.startswith(b"5.3.4"), info.value.smtp_error
        # the session goes on
        assert client.noop()[0] == 250
        assert client.sendmail("sender@remote.test", ["alice@example.test"], simple_message("small ok")) == {}
    assert [m["Subject"] for m in small_server.wait_messages("alice@example.test", 1)] == ["small ok"]


def test_too_many_recipients(small_server):
    for name in ("c1", "c2", "c3", "c4"):
        small_server.add_user(f"{name}@example.test")
    with small_server.raw() as s:
        s.greet()
        s.cmd("MAIL FROM:<sender@remote.test>", 250)
        for name in ("c1", "c2", "c3"):
            s.cmd(f"RCPT TO:<{name}@example.test>", 250)
        s.cmd("RCPT TO:<c4@example.test>", 452, "4.5.3")
        s.cmd("DATA", 354)
        s.send("Subject: three\r\n\r\nbody\r\n.\r\n")
        s.expect(250, "2.0.0")
        s.cmd("QUIT", 221)
    for name in ("c1", "c2", "c3"):
        assert len(small_server.wait_messages(f"{name}@example.test", 1)) == 1
    assert small_server.maildir_messages("c4@example.test") == []


def test_unknown_user_550(server):
    with server.smtp() as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("sender@remote.test", ["nobody@example.test"], simple_message("nobody"))
    code, text = info.value.recipients["nobody@example.test"]
    assert code == 550
    assert text.startswith(b"5.1.1"), text


def test_foreign_domain_relay_denied(server):
    with server.smtp() as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("sender@remote.test", ["someone@elsewhere.test"], simple_message("relay"))
    code, text = info.value.recipients["someone@elsewhere.test"]
    assert code == 554
    assert text.startswith(b"5.7.1"), text


def test_case_insensitive_local_part_and_subaddress(server):
    with server.smtp() as client:
        assert client.sendmail("sender@remote.test", ["Alice+News@EXAMPLE.test"], simple_message("tagged")) == {}
        assert client.sendmail("sender@remote.test", ["BOB@example.test"], simple_message("upper")) == {}
    assert [m["Subject"] for m in server.wait_messages("alice@example.test", 1)] == ["tagged"]
    assert [m["Subject"] for m in server.wait_messages("bob@example.test", 1)] == ["upper"]
    # no mailbox named after the tag or the upper-case spelling
    names = sorted(p.name for p in (server.data_dir / "mail" / "example.test").iterdir())
    assert names == ["alice", "bob"], names


def test_postmaster_always_accepted(server):
    with server.smtp() as client:
        assert client.sendmail("sender@remote.test", ["postmaster@example.test"], simple_message("pm")) == {}
        assert client.sendmail("sender@remote.test", ["PostMaster@Example.Test"], simple_message("pm2")) == {}
    subjects = sorted(m["Subject"] for m in server.wait_messages("alice@example.test", 2))
    assert subjects == ["pm", "pm2"], "postmaster mail should reach the configured postmaster (alice)"


def test_postmaster_accepted_without_configured_target(make_server):
    srv = make_server(postmaster=None)
    with srv.smtp() as client:
        assert client.sendmail("sender@remote.test", ["postmaster@example.test"], simple_message("pm")) == {}


def test_null_reverse_path_accepted(server):
    """Bounces use MAIL FROM:<> (RFC 5321 §4.5.5)."""
    with server.smtp() as client:
        assert client.sendmail("<>", ["alice@example.test"], simple_message("bounce", sender="MAILER-DAEMON@remote.test")) == {}
    raw = server.raw_messages("alice@example.test")[0]
    assert raw.startswith(b"Return-Path: <>\n"), raw[:100]


def test_alias_fans_out_and_user_changes_seen_without_restart(server):
    server.cli("alias", "add", "team@example.test", "alice@example.test", "bob@example.test")
    listing = server.cli("alias", "list").stdout
    assert "team@example.test" in listing
    server.add_user("dave@example.test")
    assert "dave@example.test" in server.cli("user", "list").stdout
    with server.smtp() as client:
        assert client.sendmail("sender@remote.test", ["team@example.test"], simple_message("to team")) == {}
        assert client.sendmail("sender@remote.test", ["dave@example.test"], simple_message("to dave")) == {}
    assert [m["Subject"] for m in server.wait_messages("alice@example.test", 1)] == ["to team"]
    assert [m["Subject"] for m in server.wait_messages("bob@example.test", 1)] == ["to team"]
    assert [m["Subject"] for m in server.wait_messages("dave@example.test", 1)] == ["to dave"]

    server.cli("user", "remove", "dave@example.test")
    server.cli("alias", "remove", "team@example.test")
    assert "dave@example.test" not in server.cli("user", "list").stdout
    with server.smtp() as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("sender@remote.test", ["dave@example.test", "team@example.test"], simple_message("gone"))
        for rcpt in ("dave@example.test", "team@example.test"):
            assert info.value.recipients[rcpt][0] == 550, info.value.recipients


def test_user_add_rejects_duplicates_and_foreign_domain(server):
    # A password the CLI accepts, so that each refusal is for the reason under test.
    dup = server.cli("user", "add", "alice@example.test", "--password-stdin", input="a long passphrase\n", check=False)
    assert dup.returncode != 0
    assert "already exists" in dup.stderr, dup.stderr
    foreign = server.cli("user", "add", "x@elsewhere.test", "--password-stdin", input="a long passphrase\n", check=False)
    assert foreign.returncode != 0
    assert "not in the configured domains" in foreign.stderr, foreign.stderr


def test_password_not_stored_in_plaintext(server):
    server.add_user("eve@example.test", password="Sup3rSecretPassw0rd")
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            assert b"Sup3rSecretPassw0rd" not in path.read_bytes(), f"plaintext password in {path}"


def test_maildir_layout_and_sizes(server):
    """A standard Maildir++ (tmp/ new/ cur/); ",S=" in a file name is the size on disk and ",W=" the
    size with CRLF line ends, as Dovecot reads them; files are private to the owner."""
    body = "".join(f"line {i}\r\n" for i in range(50))
    with server.smtp() as client:
        assert client.sendmail("sender@remote.test", ["alice@example.test"], simple_message("sizes", body)) == {}
        assert client.sendmail("sender@remote.test", ["alice@example.test"], simple_message("sizes 2")) == {}
    path = server.maildir_path("alice@example.test")
    for sub in ("tmp", "new", "cur"):
        assert (path / sub).is_dir(), f"{path / sub} missing"
    files = server.maildir_files("alice@example.test")
    assert len(files) == 2 and len({f.name for f in files}) == 2
    for f in files:
        data = f.read_bytes()
        assert ":" not in f.name and "/" not in f.name, f.name
        fields = dict(part.split("=", 1) for part in f.name.split(",")[1:] if "=" in part)
        if "S" in fields:
            assert int(fields["S"]) == len(data), f"{f.name}: S= says {fields['S']}, file has {len(data)} bytes"
        if "W" in fields:
            assert int(fields["W"]) == len(data) + data.count(b"\n"), f"{f.name}: W= wrong"
        assert f.stat().st_mode & 0o077 == 0, f"{f.name} is readable by others: {oct(f.stat().st_mode)}"
