"""DKIM signing of submitted mail (RFC 6376, RFC 8463) against the real binary: keys from
`swallow dkim generate`, pending until `swallow dkim activate`, then every message alice submits is
signed with Ed25519-SHA256 and RSA-SHA256 — and dkimpy (an outside verifier, its DNS answered from
`swallow dkim list --json`) verifies both signatures on the stored copy; a tampered copy fails.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from conftest import IN_CI
from test_submission import ALICE, BOB, message, submission  # noqa: F401
from test_submission import make_submission_server, sub_server  # noqa: F401  (fixtures)

dkim = pytest.importorskip("dkim") if not IN_CI else __import__("dkim")


def keys(server) -> list[dict]:
    return json.loads(server.cli("dkim", "list", "--json").stdout)


def dnsfunc(records: list[dict]):
    table = {(k["name"] + ".").encode(): k["record"].encode() for k in records}

    def lookup(name, timeout=5):
        return table.get(name)

    return lookup


def dkimpy_verifies(message: bytes, idx: int, records: list[dict]) -> bool:
    """dkimpy's verdict on signature `idx` (a body hash mismatch is raised, not returned)."""
    try:
        return bool(dkim.DKIM(message.replace(b"\n", b"\r\n")).verify(idx=idx, dnsfunc=dnsfunc(records)))
    except dkim.ValidationError:
        return False


def test_serve_generates_a_pending_pair_that_signs_once_activated_with_both_algorithms(sub_server):
    # `serve` made the first Ed25519 + RSA pair of example.test at start and logged what to publish.
    listed = keys(sub_server)
    assert sorted(k["algorithm"] for k in listed) == ["ed25519-sha256", "rsa-sha256"]
    assert {k["state"] for k in listed} == {"pending"}
    assert {k["published"] for k in listed} == {False}  # the test DNS has no such records
    log = sub_server.log_tail(200)
    assert "generated DKIM keys" in log, log
    for k in listed:
        assert f"publish: {k['name']}. IN TXT" in log, log
    assert "publish: _dmarc.example.test. IN TXT \"v=DMARC1; p=reject" in log, log
    out = sub_server.cli("dkim", "generate", "example.test", "--algorithm", "rsa", "--selector", "spare").stdout
    assert "(pending" in out and "spare._domainkey.example.test. IN TXT \"v=DKIM1; k=rsa; p=MIIBIjAN" in out, out
    sub_server.cli("dkim", "retire", "example.test", "spare")
    # The private keys are readable by the server's user only.
    for k in listed:
        mode = os.stat(sub_server.data_dir / "dkim" / "example.test" / f"{k['selector']}.key").st_mode
        assert stat.S_IMODE(mode) == 0o600, oct(mode)

    # Pending keys never sign.
    with submission(sub_server) as s:
        s.sendmail(ALICE, [BOB], message(subject="before activation"))
    first = sub_server.wait_messages(BOB, 1)
    assert first[0].get_all("DKIM-Signature") is None

    for k in listed:
        assert sub_server.cli("dkim", "activate", "example.test", k["selector"]).stdout.strip().endswith("active")
    body = "List-Unsubscribe: <https://example.test/u/1>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    with submission(sub_server) as s:
        s.sendmail(ALICE, [BOB], message(subject="signed", extra=body))
    raw = sub_server.raw_messages(BOB)
    assert len(raw) == 2
    signed = next(r for r in raw if b"Subject: signed" in r)
    fields = [l for l in signed.split(b"\n\n", 1)[0].replace(b"\n\t", b" ").replace(b"\n ", b" ").split(b"\n")
              if l.lower().startswith(b"dkim-signature:")]
    assert len(fields) == 2, signed[:2000]
    assert b"a=ed25519-sha256" in fields[0] and b"a=rsa-sha256" in fields[1], fields
    for f in fields:
        assert b"c=relaxed/relaxed" in f and b"d=example.test" in f and b" l=" not in f, f
        h = f.split(b"h=", 1)[1].split(b";", 1)[0].replace(b" ", b"").split(b":")
        assert h.count(b"from") == 2, h  # From over-signed
        assert b"list-unsubscribe" in h and b"list-unsubscribe-post" in h and b"subject" in h, h
        assert b"received" not in h, h

    records = [k for k in keys(sub_server) if k["state"] == "active"]
    # dkimpy verifies each signature (idx selects the field), the Ed25519 one with PyNaCl.
    assert dkimpy_verifies(signed, 0, records), "Ed25519 signature did not verify in dkimpy"
    assert dkimpy_verifies(signed, 1, records), "RSA signature did not verify in dkimpy"
    for tampered in (signed.replace(b"Body line.", b"Body line!"), signed.replace(b"Subject: signed", b"Subject: signed!")):
        assert not dkimpy_verifies(tampered, 0, records)
        assert not dkimpy_verifies(tampered, 1, records)

    # A retired key signs no more; mail from a domain without keys is not signed.
    ed = next(k for k in records if k["algorithm"] == "ed25519-sha256")
    sub_server.cli("dkim", "retire", "example.test", ed["selector"])
    with submission(sub_server) as s:
        s.sendmail(ALICE, [BOB], message(subject="after retiring"))
    later = next(r for r in sub_server.raw_messages(BOB) if b"Subject: after retiring" in r)
    assert later.count(b"DKIM-Signature:") == 1 and b"a=rsa-sha256" in later


def test_dkim_commands_refuse_bad_input(sub_server):
    r = sub_server.cli("dkim", "generate", "example.test", "--algorithm", "dsa", check=False)
    assert r.returncode == 64 and "unknown algorithm" in r.stderr, r
    r = sub_server.cli("dkim", "generate", "example.test", "--selector", "s1", check=False)
    assert r.returncode == 64 and "--selector needs --algorithm" in r.stderr, r
    r = sub_server.cli("dkim", "generate", "example.test", "--algorithm", "rsa", "--selector", "bad_selector", check=False)
    assert r.returncode == 1 and "invalid selector" in r.stderr, r
    sub_server.cli("dkim", "generate", "example.test", "--algorithm", "ed25519", "--selector", "s1")
    r = sub_server.cli("dkim", "generate", "example.test", "--algorithm", "ed25519", "--selector", "s1", check=False)
    assert r.returncode == 1 and "already exists" in r.stderr, r
    r = sub_server.cli("dkim", "activate", "example.test", "nope", check=False)
    assert r.returncode == 1 and "no DKIM key nope" in r.stderr, r
    assert "no DKIM keys" not in sub_server.cli("dkim", "list").stdout


def test_bounces_swallow_writes_are_signed_for_the_host_names_domain(make_submission_server):
    """A DSN's From: is MAILER-DAEMON@mx.example.test: it is signed with example.test's keys (d= in the
    same organizational domain, so it aligns for DMARC), and dkimpy verifies both signatures."""
    from conftest import free_port, wait_for
    s = make_submission_server(routes=[{"domain": "nowhere.example", "via": f"127.0.0.1:{free_port()}"}],
                               delivery={"retry_initial": 3600, "retry_maximum": 3600})
    for k in keys(s):
        s.cli("dkim", "activate", "example.test", k["selector"])
    with submission(s) as c:
        c.sendmail(ALICE, ["x@nowhere.example"], message(to="x@nowhere.example", subject="will bounce"))
    deferred = s.data_dir / "queue" / "deferred"
    wait_for(lambda: deferred.is_dir() and len(list(deferred.iterdir())) == 1, timeout=15, what="a deferred message")
    [queued] = list(deferred.iterdir())
    assert b"Return-Path:" not in (queued / "message").read_bytes(), "a relayed copy carries no Return-Path"
    assert "bounced to <alice@example.test>" in s.cli("queue", "bounce", queued.name).stdout
    wait_for(lambda: any(b"MAILER-DAEMON@" in r for r in s.raw_messages(ALICE)), timeout=15, what="the DSN")
    dsn = next(r for r in s.raw_messages(ALICE) if b"MAILER-DAEMON@" in r)
    header = dsn.split(b"\n\n", 1)[0]  # (the original message's signatures are in the DSN's body)
    assert header.count(b"DKIM-Signature:") == 2 and b"d=example.test" in header, dsn[:1500]
    records = keys(s)
    assert dkimpy_verifies(dsn, 0, records) and dkimpy_verifies(dsn, 1, records)
