"""Aliases that forward to other domains, end to end on loopback with a test DNS server:

- an outside sender (origin.example, mail from 127.0.0.2, DKIM-signed by dkimpy, p=reject) writes to
  info@example.test, an alias of server F for bob@example.net on server B;
- F forwards with the envelope sender rewritten by SRS (its hash and stamp as Debian's python3-srs
  computes them from F's secret) and, with `[arc] seal = true`, an ARC set; B finds spf=pass (for F's
  SRS address), dkim=pass (origin's signature survived), dmarc=pass, arc=pass, and dkimpy's arc_verify
  agrees;
- a bounce to the SRS address is led back to the original sender (server O); a forged or altered SRS
  address is refused with 550 5.1.1; local-to-local aliases keep the sender as it is.
"""

from __future__ import annotations

import base64
import json
import smtplib
import subprocess

import pytest

from conftest import IN_CI, IO_TIMEOUT, ZoneDNS, wait_for
from test_mail_auth import results

dkim = pytest.importorskip("dkim") if not IN_CI else __import__("dkim")

ORIGIN = "ceo@origin.example"
BOB_NET = "bob@example.net"


def python_srs(script: str, *args: str) -> str:
    """Runs Debian's python3 (where python3-srs lives) with `script`."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import SRS"], capture_output=True)
    if probe.returncode != 0:
        if IN_CI:
            pytest.fail("Debian's python3-srs is missing (apt-get install python3-srs; .ci/run does)")
        pytest.skip("python3-srs is not installed")
    return subprocess.run(["/usr/bin/python3", "-c", script, *args], check=True, capture_output=True, text=True).stdout.strip()


def origin_message(key: bytes, subject: str) -> bytes:
    msg = (f"From: The CEO <{ORIGIN}>\r\nTo: info@example.test\r\nSubject: {subject}\r\n"
           "Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <fwd-1@origin.example>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nThe numbers are in.\r\n").encode()
    return dkim.sign(msg, b"s1", b"origin.example", key, include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + msg


def test_alias_forwards_with_srs_and_arc_and_bounces_come_back(make_server, zone, tmp_path):
    keyfile = tmp_path / "origin.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(keyfile), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(keyfile), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    zone.add("s1._domainkey.origin.example", "TXT", "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())
    zone.add("origin.example", "TXT", "v=spf1 ip4:127.0.0.2 -all")
    zone.add("_dmarc.origin.example", "TXT", "v=DMARC1; p=reject")
    zone.add("example.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns = {"nameservers": [zone.nameserver]}

    b = make_server(name="b", hostname="mx.example.net", domains=["example.net"], users=[BOB_NET], postmaster=BOB_NET, dns=dns)
    o = make_server(name="o", hostname="mx.origin.example", domains=["origin.example"], users=[ORIGIN], postmaster=ORIGIN,
                    dns=dns, smtp_extra={"check_authentication": False})
    f = make_server(name="f", hostname="mx.example.test", dns=dns, arc={"seal": True},
                    routes=[{"domain": "example.net", "via": f"127.0.0.1:{b.port}"},
                            {"domain": "origin.example", "via": f"127.0.0.1:{o.port}"}])
    for k in json.loads(f.cli("dkim", "list", "--json").stdout):
        f.cli("dkim", "activate", "example.test", k["selector"])
        zone.add(k["name"], "TXT", k["record"])
    added = f.cli("alias", "add", "info@example.test", "bob@example.net", "alice@example.test")
    assert "info@example.test -> bob@example.net, alice@example.test" in added.stdout, added.stdout
    f.cli("alias", "add", "team@example.test", "bob@example.test")
    assert "info@example.test\talice@example.test, bob@example.net" in f.cli("alias", "list").stdout
    secret = (f.data_dir / "srs.secret").read_text().strip()
    assert len(secret) >= 32 and (f.data_dir / "srs.secret").stat().st_mode & 0o077 == 0

    with smtplib.SMTP(f.host, f.port, timeout=IO_TIMEOUT, source_address=("127.0.0.2", 0)) as s:
        s.ehlo("mx.origin.example")
        s.mail(ORIGIN)
        s.rcpt("info@example.test")
        s.rcpt("team@example.test")
        code, reply = s.data(origin_message(keyfile.read_bytes(), "forward me"))
    assert code == 250, (code, reply)

    # The local copies keep the original sender: local-to-local aliases are never rewritten.
    for local in ("alice@example.test", "bob@example.test"):
        [raw] = f.raw_messages(local)
        assert raw.startswith(f"Return-Path: <{ORIGIN}>\n".encode()), raw[:200]

    stored = wait_for(lambda: b.raw_messages(BOB_NET), timeout=20, what="the forwarded copy at B")[0]
    head = stored.split(b"\n\n", 1)[0].decode()
    srs_sender = head.split("\n", 1)[0].removeprefix("Return-Path: <").removesuffix(">")
    assert srs_sender.startswith("SRS0=") and srs_sender.endswith("=origin.example=ceo@example.test"), head[:300]
    # Debian's python3-srs leads it back with F's secret: the same hash and day stamp.
    back = python_srs("import sys, SRS; print(SRS.new(sys.argv[1]).reverse(sys.argv[2]))", secret, srs_sender)
    assert back == ORIGIN
    # And `swallow srs` makes the same address as python3-srs for a fixed time.
    at = "1796472000"
    ours = f.cli("srs", "forward", ORIGIN, "--domain", "example.test", "--at", at).stdout.strip()
    theirs = python_srs("import sys, time, SRS\ntime.time = lambda: float(sys.argv[3])\n"
                        "print(SRS.new(sys.argv[1]).forward(sys.argv[2], 'example.test'))", secret, ORIGIN, at)
    assert ours == theirs and ours.startswith("SRS0="), (ours, theirs)
    assert f.cli("srs", "reverse", ours, "--at", at).stdout.strip() == ORIGIN

    # B's verdict: SPF passes for F's SRS address, origin's DKIM survives, DMARC passes, ARC passes.
    [ar] = [r for r in results(stored) if r.authserv_id == "mx.example.net"]
    by_method = {r.method: r for r in ar.results}
    assert by_method["spf"].result == "pass", head
    assert any(p.name == "mailfrom" and p.value == srs_sender for p in by_method["spf"].properties)
    assert by_method["dkim"].result == "pass" and by_method["dmarc"].result == "pass", head
    assert by_method["arc"].result == "pass", head
    assert head.startswith(f"Return-Path: <{srs_sender}>\n")
    # F's ARC set records what F found (its own Authentication-Results field travels on too).
    assert "\nARC-Seal: i=1; a=rsa-sha256;" in head and "cv=none; d=example.test;" in head.replace("\n\t", " "), head[:1500]
    assert "ARC-Authentication-Results: i=1; mx.example.test;" in head
    cv = subprocess.run(
        ["python3", "-c", "import sys, dkim, json\nrecs = json.loads(sys.argv[2])\n"
         "m = open(sys.argv[1], 'rb').read().replace(b'\\n', b'\\r\\n')\n"
         "cv, _, why = dkim.arc_verify(m, dnsfunc=lambda n, timeout=5: recs.get(n.decode().rstrip('.'), '').encode() or None)\n"
         "print(cv.decode(), why)",
         str(_write(tmp_path / "at-b.eml", stored)), json.dumps(zone_txt(zone))],
        check=True, capture_output=True, text=True).stdout
    assert cv.startswith("pass"), cv
    assert "forwarded" in f.log_tail(200) and "arc=sealed" in f.log_tail(200)

    # A sender of our own domain is not rewritten (we may send for it ourselves).
    with smtplib.SMTP(f.host, f.port, timeout=IO_TIMEOUT) as s:
        s.ehlo("mx.example.test")
        s.sendmail("alice@example.test", ["info@example.test"],
                   b"From: alice@example.test\r\nTo: info@example.test\r\nSubject: own domain\r\n\r\nhi\r\n")
    mine = wait_for(lambda: [m for m in b.raw_messages(BOB_NET) if b"Subject: own domain" in m], timeout=20,
                    what="the own-domain copy at B")
    assert mine[0].startswith(b"Return-Path: <alice@example.test>\n"), mine[0][:300]

    # A bounce to the SRS address goes back to the original sender (at O), with the null sender.
    with smtplib.SMTP(f.host, f.port, timeout=IO_TIMEOUT) as s:
        s.ehlo("mx.example.net")
        s.mail("<>")
        s.rcpt(srs_sender)
        code, _ = s.data(b"From: MAILER-DAEMON@mx.example.net\r\nTo: " + srs_sender.encode()
                         + b"\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nbounce body\r\n")
        assert code == 250
        # Forged, altered and foreign SRS addresses are refused at RCPT.
        for forged in (srs_sender.replace("=ceo@", "=cfo@"), "SRS0=AAAA=JY=origin.example=ceo@example.test",
                       srs_sender.replace("SRS0=", "SRS0=x", 1)):
            s.mail("<>")
            code, msg = s.rcpt(forged)
            assert code == 550 and msg.startswith(b"5.1.1 ") and b"SRS" in msg, (forged, code, msg)
            s.rset()
    [bounce] = o.wait_messages(ORIGIN, 1, timeout=20)
    assert bounce["Subject"] == "Undelivered Mail Returned to Sender"
    assert o.raw_messages(ORIGIN)[0].startswith(b"Return-Path: <>\n")


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def zone_txt(zone: ZoneDNS) -> dict:
    """The zone's TXT records as name → value (for dkimpy's dnsfunc)."""
    return {name: value for name, entries in zone.records.items() for rtype, value in entries if rtype == "TXT"}
