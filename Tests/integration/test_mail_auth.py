"""Message authentication on port 25 end to end (RFC 7208 SPF, RFC 6376 DKIM, RFC 9989 DMARC, RFC 8601
Authentication-Results), two real servers and a loopback DNS server:

- alice submits on server A (example.test, DKIM keys active) → A relays to server B (example.net) →
  B records `dkim=pass` (both signatures) `spf=pass dmarc=pass` in one Authentication-Results field that
  Python's `authres` parses;
- a forged `From: ceo@example.test` sent straight to B (p=reject) → `550 5.7.1` naming DMARC, nothing stored;
- a forged From of a `p=quarantine` domain → stored in the recipient's Junk folder;
- Authentication-Results fields claiming B's authserv-id arriving from outside are removed; others stay;
- `[dmarc] enforce = false` and `[spf] reject_fail = true` change the decisions as documented.
"""

from __future__ import annotations

import json
import smtplib
import time

import pytest

from conftest import IN_CI, IO_TIMEOUT, wait_for
from test_submission import ALICE, PASSWORD, message, submission  # noqa: F401
from test_submission import make_submission_server  # noqa: F401  (fixture)

authres = pytest.importorskip("authres") if not IN_CI else __import__("authres")

BOB_NET = "bob@example.net"


def receiver(make_server, zone, **config):
    """Server B: the MX for example.net (and the quarantine tests' recipient), asking `zone`."""
    return make_server(name="b", hostname="mx.example.net", domains=["example.net"], users=[BOB_NET],
                       postmaster=BOB_NET, dns={"nameservers": [zone.nameserver]}, **config)


def sent_to(server, frm: str, mail_from: str, subject: str, extra: str = "") -> tuple[int, bytes]:
    """One message from "outside" (a plain SMTP client on loopback) to bob@example.net: (code, reply)."""
    with smtplib.SMTP(server.host, server.port, timeout=IO_TIMEOUT) as s:
        s.ehlo("outside.example.com")
        s.mail(mail_from)
        s.rcpt(BOB_NET)
        return s.data(message(frm=frm, to=BOB_NET, subject=subject, extra=extra))


def results(raw: bytes):
    """The Authentication-Results fields of a stored message, parsed by `authres`."""
    head = raw.split(b"\n\n", 1)[0].decode()
    fields, current = [], None
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and current is not None:
            current += " " + line.strip()
            continue
        if current is not None:
            fields.append(current)
        current = line
    if current is not None:
        fields.append(current)
    return [authres.AuthenticationResultsHeader.parse(f) for f in fields
            if f.lower().startswith("authentication-results:")]


def test_submitted_mail_arrives_authenticated_and_forgeries_are_refused(make_server, make_submission_server, zone):
    b = receiver(make_server, zone)
    a = make_submission_server(name="a", routes=[{"domain": "example.net", "via": f"127.0.0.1:{b.port}"}],
                               dns={"nameservers": [zone.nameserver]})
    for k in json.loads(a.cli("dkim", "list", "--json").stdout):
        a.cli("dkim", "activate", "example.test", k["selector"])
        zone.add(k["name"], "TXT", k["record"])
    zone.add("example.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    zone.add("_dmarc.example.test", "TXT", "v=DMARC1; p=reject; adkim=s")

    with submission(a) as s:
        s.sendmail(ALICE, [BOB_NET], message(to=BOB_NET, subject="signed and sealed"))
    stored = None

    def arrived():
        nonlocal stored
        raw = b.raw_messages(BOB_NET)
        stored = raw[0] if raw else None
        return stored is not None

    wait_for(arrived, timeout=20, what="the relayed message at B")
    [ar] = results(stored)
    assert ar.authserv_id == "mx.example.net"
    by_method = {}
    for r in ar.results:
        by_method.setdefault(r.method, []).append(r)
    assert [r.result for r in by_method["dkim"]] == ["pass", "pass"], stored[:3000]
    assert sorted(p.value for r in by_method["dkim"] for p in r.properties if p.name == "a") == ["ed25519-sha256", "rsa-sha256"]
    assert all(any(p.name == "d" and p.value == "example.test" for p in r.properties) for r in by_method["dkim"])
    [spf] = by_method["spf"]
    assert spf.result == "pass" and any(p.type == "smtp" and p.name == "mailfrom" and p.value == ALICE for p in spf.properties)
    [dmarc] = by_method["dmarc"]
    assert dmarc.result == "pass" and any(p.type == "header" and p.name == "from" and p.value == "example.test" for p in dmarc.properties)
    # The field comes after the trace fields and before the message's own header.
    assert stored.index(b"Authentication-Results:") < stored.index(b"\nFrom: ")
    assert "auth=spf=pass dkim=pass,pass dmarc=pass(example.test)" in b.log_tail(400)

    # A forged From: of the p=reject domain, straight from "outside": refused at end of data.
    code, reply = sent_to(b, "ceo@example.test", "someone@elsewhere.example", "pay this invoice")
    assert code == 550, (code, reply)
    assert reply.startswith(b"5.7.1 ") and b"DMARC" in reply and b"example.test" in reply, reply
    assert len(b.raw_messages(BOB_NET)) == 1


def test_quarantine_goes_to_junk_and_our_results_cannot_be_forged(make_server, zone):
    zone.add("_dmarc.quarantine.example", "TXT", "v=DMARC1; p=quarantine")
    zone.add("_dmarc.relaxed.example", "TXT", "v=DMARC1; p=none")
    b = receiver(make_server, zone)
    forged = ("Authentication-Results: mx.example.net; dkim=pass header.d=quarantine.example; dmarc=pass\r\n"
              "Authentication-Results: (comment) MX.Example.Net 1; spf=pass\r\n"
              "Authentication-Results: other.example.org; spf=pass smtp.mailfrom=x@other.example.org\r\n")
    code, _ = sent_to(b, "boss@quarantine.example", "boss@quarantine.example", "urgent", extra=forged)
    assert code == 250
    junk = b.data_dir / "mail" / "example.net" / "bob" / ".Junk" / "new"
    wait_for(lambda: junk.is_dir() and len(list(junk.iterdir())) == 1, timeout=10, what="the message in Junk")
    assert b.raw_messages(BOB_NET) == [], "a p=quarantine failure must not reach the INBOX"
    raw = next(junk.iterdir()).read_bytes()
    ars = results(raw)
    assert [r.authserv_id.lower() for r in ars] == ["mx.example.net", "other.example.org"], raw[:2000]
    ours = {r.method: r.result for r in ars[0].results}
    assert ours == {"dkim": "none", "spf": "none", "dmarc": "fail"}, raw[:2000]
    assert b"dkim=pass header.d=quarantine.example" not in raw
    assert "removed Authentication-Results claiming our authserv-id" in b.log_tail(400)

    # p=none: the header says fail, the message is delivered normally.
    assert sent_to(b, "x@relaxed.example", "x@relaxed.example", "newsletter")[0] == 250
    [inbox] = b.raw_messages(BOB_NET)
    assert {r.method: r.result for r in results(inbox)[0].results}["dmarc"] == "fail"


def test_policies_can_be_switched(make_server, zone):
    zone.add("_dmarc.strict.example", "TXT", "v=DMARC1; p=reject")
    zone.add("spf-fail.example", "TXT", "v=spf1 -all")
    # enforce = false: p=reject is only recorded.
    b = receiver(make_server, zone, dmarc={"enforce": False}, spf={"reject_fail": True})
    assert sent_to(b, "ceo@strict.example", "x@elsewhere.example", "recorded only")[0] == 250
    [stored] = b.raw_messages(BOB_NET)
    assert {r.method: r.result for r in results(stored)[0].results}["dmarc"] == "fail"
    # reject_fail = true: an SPF fail is refused with 5.7.23 (RFC 7372) and the record's reason.
    code, reply = sent_to(b, "x@spf-fail.example", "x@spf-fail.example", "spf fail")
    assert code == 550 and reply.startswith(b"5.7.23 "), (code, reply)
    # The sender's exp= text is quoted in the reply, cut so the line stays short (RFC 5321: 512 octets).
    zone.add("spf-exp.example", "TXT", "v=spf1 -all exp=why.spf-exp.example")
    zone.add("why.spf-exp.example", "TXT", "Not allowed: " + "x" * 1500)
    code, reply = sent_to(b, "x@spf-exp.example", "x@spf-exp.example", "spf fail with a long explanation")
    assert code == 550 and reply.startswith(b"5.7.23 SPF check failed for spf-exp.example: Not allowed: xxx"), (code, reply)
    assert len(reply) < 300, len(reply)
    # Mail from relay_networks is not checked at all.
    c = make_server(name="c", hostname="mx.example.net", domains=["example.net"], users=[BOB_NET], postmaster=BOB_NET,
                    dns={"nameservers": [zone.nameserver]}, smtp_extra={"relay_networks": ["127.0.0.0/8"]})
    assert sent_to(c, "ceo@strict.example", "x@elsewhere.example", "trusted network")[0] == 250
    wait_for(lambda: len(c.raw_messages(BOB_NET)) == 1, timeout=10, what="the trusted message")
    assert b"Authentication-Results:" not in c.raw_messages(BOB_NET)[0]


def test_dns_records_check_and_keys_activated_by_their_published_records(make_server, zone):
    s = make_server(dns={"nameservers": [zone.nameserver]})
    records = json.loads(s.cli("dns", "records", "example.test", "--json").stdout)
    assert all(set(r) == {"name", "type", "value"} for r in records), records
    assert [(r["type"], r["name"]) for r in records if not r["name"].endswith("._domainkey.example.test")] == [
        ("MX", "example.test"), ("TXT", "example.test"), ("TXT", "_dmarc.example.test")]
    dkim = [r for r in records if r["name"].endswith("._domainkey.example.test")]
    assert len(dkim) == 2 and all(r["value"].startswith("v=DKIM1; k=") for r in dkim), dkim
    assert records[0]["value"] == "10 mx.example.test." and records[1]["value"] == "v=spf1 mx -all"
    text = s.cli("dns", "records", "example.test").stdout
    assert "; DMARC\n_dmarc.example.test. IN TXT \"v=DMARC1; p=reject; rua=mailto:postmaster@example.test\"" in text, text

    r = s.cli("dns", "check", "example.test", check=False)
    assert r.returncode == 1 and r.stdout.count("missing") == 5, r.stdout
    for rec in records:
        if rec["type"] == "MX":
            zone.add(rec["name"], "MX", (10, "mx.example.test"))
        elif rec["name"].startswith("_dmarc."):
            zone.add(rec["name"], "TXT", "v=DMARC1; p=none")
        else:
            zone.add(rec["name"], "TXT", rec["value"])
    r = s.cli("dns", "check", "example.test", check=False)
    assert r.returncode == 1, r.stdout
    assert r.stdout.count("\nok ") + r.stdout.startswith("ok ") == 4, r.stdout
    assert "different DMARC: _dmarc.example.test TXT has \"v=DMARC1; p=none\"" in r.stdout, r.stdout
    zone.records["_dmarc.example.test"] = [("TXT", "v=DMARC1; p=reject; rua=mailto:postmaster@example.test")]
    assert s.cli("dns", "check", "example.test").returncode == 0

    # At its next start the server sees the records and activates the pending keys by itself.
    s.stop()
    s.start()
    wait_for(lambda: {k["state"] for k in json.loads(s.cli("dkim", "list", "--json").stdout)} == {"active"},
             timeout=10, what="both keys active")
    assert {k["published"] for k in json.loads(s.cli("dkim", "list", "--json").stdout)} == {True}
    assert "DKIM key activated: its record is visible in DNS" in s.log_tail(200)
    assert "in DNS" in s.cli("dkim", "list").stdout

    bad = s.cli("dns", "records", "elsewhere.example", check=False)
    assert bad.returncode == 1 and "not one of the configured domains" in bad.stderr, bad


def test_a_trusted_forwarders_arc_chain_overrides_dmarc(make_server, zone, tmp_path):
    """A list at lists.example rewrites a p=reject domain's message (its DKIM breaks) and seals it with
    ARC (dkimpy's arc_sign). With lists.example in [dmarc] trusted_arc_sealers the message is delivered
    with arc=pass; without, it is refused like any DMARC failure; a tampered chain is arc=fail."""
    dkim = pytest.importorskip("dkim") if not IN_CI else __import__("dkim")
    import subprocess
    key = tmp_path / "list.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    import base64
    zone.add("arc._domainkey.lists.example", "TXT", "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())
    zone.add("_dmarc.origin.example", "TXT", "v=DMARC1; p=reject")
    zone.add("lists.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    received = ("Authentication-Results: lists.example; dkim=pass header.d=origin.example; "
                "spf=pass smtp.mailfrom=ceo@origin.example; dmarc=pass header.from=origin.example\r\n").encode()
    rewritten = message(frm="ceo@origin.example", to=BOB_NET, subject="[list] quarterly numbers")
    sealed = b"".join(dkim.arc_sign(received + rewritten, b"arc", b"lists.example", key.read_bytes(), b"lists.example")) \
        + received + rewritten

    def send(server, data: bytes) -> tuple[int, bytes]:
        with smtplib.SMTP(server.host, server.port, timeout=IO_TIMEOUT) as s:
            s.ehlo("lists.example")
            s.mail("list-bounces@lists.example")
            s.rcpt(BOB_NET)
            return s.data(data)

    trusting = receiver(make_server, zone, dmarc={"trusted_arc_sealers": ["lists.example"]})
    assert send(trusting, sealed)[0] == 250
    [stored] = trusting.raw_messages(BOB_NET)
    ours = {r.method: r.result for r in results(stored)[0].results}
    assert ours["arc"] == "pass" and ours["dmarc"] == "fail", stored[:2500]
    assert "dmarc-override=arc" in trusting.log_tail(100)
    tampered = sealed.replace(b"Body line.", b"Body line, edited.")
    code, reply = send(trusting, tampered)
    assert code == 550 and b"DMARC" in reply, (code, reply)
    assert "arc=fail" in trusting.log_tail(100)

    other = make_server(name="c", hostname="mx.example.net", domains=["example.net"], users=[BOB_NET],
                        postmaster=BOB_NET, dns={"nameservers": [zone.nameserver]})
    code, reply = send(other, sealed)
    assert code == 550 and b"DMARC" in reply, (code, reply)
