"""DMARC aggregate reports (RFC 9990) end to end on loopback with a test DNS server:

- server R (`[dmarc] reports = true`, a 2-second period instead of a day) receives a DKIM-signed message
  and a forgery (refused, `p=reject`) claiming origin.example, whose record asks for reports at its own
  address, at reports.example (which authorises it with `origin.example._report._dmarc.reports.example`)
  and at victim.example (which does not);
- the reports arrive at server O for the first two only; parsedmarc reads them (the counts, the
  dispositions, the DKIM and SPF results) and the XML validates against RFC 9990's schema;
- without `[dmarc] reports` nothing is counted or sent.
"""

from __future__ import annotations

import base64
import email
import gzip
import json
import os
import smtplib
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, IO_TIMEOUT, assert_stays, wait_for

dkim = pytest.importorskip("dkim") if not IN_CI else __import__("dkim")

SCHEMA = Path(__file__).parent / "data" / "dmarc-2.0.xsd"
PARSEDMARC = os.environ.get("SWALLOW_PARSEDMARC_PYTHON", "/var/tmp/swallow-ci/parsedmarc/bin/python")
ORIGIN = "ceo@origin.example"
BOB = "bob@example.test"


def parsedmarc(raw: bytes, tmp_path: Path) -> dict:
    """parsedmarc's reading of one report message, and lxml's verdict on its XML against the schema."""
    if not (Path(PARSEDMARC).exists() and subprocess.run([PARSEDMARC, "-c", "import parsedmarc, lxml"],
                                                          capture_output=True).returncode == 0):
        if IN_CI:
            pytest.fail(f"parsedmarc is missing at {PARSEDMARC} (.ci/run makes its venv)")
        pytest.skip("parsedmarc is not installed (.ci/run makes /var/tmp/swallow-ci/parsedmarc)")
    path = tmp_path / "report.eml"
    path.write_bytes(raw)
    script = """
import json, sys, gzip, email
import parsedmarc
from lxml import etree
raw = open(sys.argv[1], 'rb').read()
parsed = parsedmarc.parse_report_email(raw, offline=True)
msg = email.message_from_bytes(raw)
xml = [gzip.decompress(p.get_payload(decode=True)) for p in msg.walk() if p.get_content_type() == 'application/gzip'][0]
schema = etree.XMLSchema(etree.parse(sys.argv[2]))
doc = etree.fromstring(xml)
valid = schema.validate(doc)
print(json.dumps({"parsed": parsed, "valid": valid, "errors": [str(e) for e in schema.error_log]}, default=str))
"""
    out = subprocess.run([PARSEDMARC, "-c", script, str(path), str(SCHEMA)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_aggregate_reports_reach_authorised_destinations_and_parse(make_server, zone, tmp_path):
    keyfile = tmp_path / "origin.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(keyfile), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(keyfile), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    zone.add("s1._domainkey.origin.example", "TXT", "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())
    zone.add("origin.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    zone.add("_dmarc.origin.example", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@origin.example,"
             "mailto:reports@reports.example!10m,mailto:victim@victim.example")
    zone.add("origin.example._report._dmarc.reports.example", "TXT", "v=DMARC1")
    zone.add("example.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns = {"nameservers": [zone.nameserver]}

    sinks = ["dmarc@origin.example", "reports@reports.example", "victim@victim.example"]
    o = make_server(name="o", hostname="mx.origin.example", domains=["origin.example", "reports.example", "victim.example"],
                    users=sinks, postmaster=sinks[0], dns=dns, smtp_extra={"check_authentication": False})
    via = f"127.0.0.1:{o.port}"
    r = make_server(name="r", users=[BOB], dns=dns, dmarc={"reports": True, "report_interval": 2},
                    routes=[{"domain": d, "via": via} for d in ("origin.example", "reports.example", "victim.example")])
    for k in json.loads(r.cli("dkim", "list", "--json").stdout):
        r.cli("dkim", "activate", "example.test", k["selector"])
        zone.add(k["name"], "TXT", k["record"])

    msg = (f"From: The CEO <{ORIGIN}>\r\nTo: {BOB}\r\nSubject: numbers\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
           "Message-ID: <r-1@origin.example>\r\n\r\nThe numbers are in.\r\n").encode()
    signed = dkim.sign(msg, b"s1", b"origin.example", keyfile.read_bytes(),
                       include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + msg
    with smtplib.SMTP(r.host, r.port, timeout=IO_TIMEOUT) as s:
        s.ehlo("mx.origin.example")
        s.sendmail(ORIGIN, [BOB], signed)
        s.mail("someone@elsewhere.example")
        s.rcpt(BOB)
        code, reply = s.data(msg.replace(b"numbers are in", b"please pay"))
        assert code == 550 and b"DMARC" in reply, (code, reply)

    reports = {}
    for sink in sinks[:2]:
        reports[sink] = wait_for(lambda: o.raw_messages(sink), timeout=30, what=f"the DMARC report at {sink}")[0]
    assert "has not authorised it" in r.log_tail(200)
    assert_stays(lambda: not o.raw_messages("victim@victim.example"), 1.0, what="no report for the unauthorised destination")

    raw = reports["dmarc@origin.example"]
    m = email.message_from_bytes(raw)
    assert m["Subject"].split() == ["Report", "Domain:", "origin.example", "Submitter:", "mx.example.test", "Report-ID:",
                                    m["Subject"].split()[-1]], m["Subject"]
    assert m["From"] == "dmarc-reports@example.test" and "DKIM-Signature:" in raw.decode()
    [attachment] = [p for p in m.walk() if p.get_content_type() == "application/gzip"]
    name = attachment.get_filename()
    assert name.startswith("mx.example.test!origin.example!") and name.endswith(".xml.gz"), name
    begin, end = (int(x) for x in name.removesuffix(".xml.gz").split("!")[2:4])
    assert end - begin == 1, name  # a 2-second period: begin … end inclusive
    assert b"<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">" in gzip.decompress(attachment.get_payload(decode=True))

    result = parsedmarc(raw, tmp_path)
    assert result["valid"], result["errors"]
    parsed = result["parsed"]
    assert parsed["report_type"] == "aggregate", parsed
    report = parsed["report"]
    # parsedmarc names the organisation by its base domain.
    assert report["report_metadata"]["org_name"] == "example.test", report["report_metadata"]
    assert report["policy_published"]["domain"] == "origin.example" and report["policy_published"]["p"] == "reject"
    records = report["records"]
    assert sum(rec["count"] for rec in records) == 2, records
    by_disposition = {rec["policy_evaluated"]["disposition"]: rec for rec in records}
    good, forged = by_disposition["pass"], by_disposition["reject"]
    assert good["policy_evaluated"]["dkim"] == "pass" and good["policy_evaluated"]["spf"] == "pass"
    assert good["identifiers"]["header_from"] == "origin.example"
    assert [(d["domain"], d["selector"], d["result"]) for d in good["auth_results"]["dkim"]] == [("origin.example", "s1", "pass")]
    assert good["source"]["ip_address"] == "127.0.0.1"
    assert forged["policy_evaluated"]["dkim"] == "fail" and forged["policy_evaluated"]["spf"] == "fail"
    assert [(s["domain"], s["result"]) for s in forged["auth_results"]["spf"]] == [("elsewhere.example", "none")]
    # The second destination got the same report.
    assert parsedmarc(reports["reports@reports.example"], tmp_path)["parsed"]["report"]["report_metadata"]["report_id"] \
        == report["report_metadata"]["report_id"]


def test_no_reports_unless_asked(make_server, zone):
    zone.add("_dmarc.origin.example", "TXT", "v=DMARC1; p=none; rua=mailto:dmarc@origin.example")
    o = make_server(name="o", hostname="mx.origin.example", domains=["origin.example"], users=["dmarc@origin.example"],
                    postmaster="dmarc@origin.example", dns={"nameservers": [zone.nameserver]},
                    smtp_extra={"check_authentication": False})
    r = make_server(name="r", users=[BOB], dns={"nameservers": [zone.nameserver]}, dmarc={"report_interval": 1},
                    routes=[{"domain": "origin.example", "via": f"127.0.0.1:{o.port}"}])
    with smtplib.SMTP(r.host, r.port, timeout=IO_TIMEOUT) as s:
        s.sendmail(ORIGIN, [BOB], f"From: {ORIGIN}\r\nTo: {BOB}\r\nSubject: hi\r\n\r\nhi\r\n".encode())
    assert_stays(lambda: not o.raw_messages("dmarc@origin.example"), 4.0, what="no report without [dmarc] reports")
    assert not (r.data_dir / "dmarc").exists()
