"""Outside judges of message authentication (issue 18): what Swallow signs verifies in OpenDKIM (`opendkim-testmsg`, Debian's
opendkim-tools) and go-msgauth (`dkim-verify`, built here from Debian's golang-github-emersion-go-msgauth-dev
source), each signature on its own, and tampered copies fail in both; what Perl's Mail::DKIM signs
(RSA-SHA256, relaxed and simple) verifies in Swallow's port-25 check (`dkim=pass` in Authentication-Results),
and a tampered copy does not; the records `swallow dns records` prints pass `checkdmarc`.

OpenDKIM and go-msgauth look keys up through /etc/resolv.conf, so they run in a network and mount
namespace of their own (`unshare --net --mount`): only a loopback interface, a DNS server on 127.0.0.1:53
serving the keys, and /etc/resolv.conf bind-mounted to point at it. Nothing leaves the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import IN_CI, IO_TIMEOUT, ZoneDNS, require_root, require_tool, wait_for
from test_submission import ALICE, BOB, message, submission  # noqa: F401
from test_submission import make_submission_server  # noqa: F401  (fixture)

GO_MSGAUTH = "/usr/share/gocode/src/github.com/emersion/go-msgauth"

NAMESPACE_DNS = textwrap.dedent('''
    import json, sys, time
    from dnslib import A, MX, QTYPE, RCODE, RR, SOA, TXT
    from dnslib.server import BaseResolver, DNSServer
    zone = json.load(open(sys.argv[1]))  # name -> {"TXT": [...], "MX": [[pref, host]], "A": [...]}
    class R(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            reply.header.aa = 1
            name = str(request.q.qname).rstrip(".").lower()
            qtype = QTYPE[request.q.qtype]
            soa = RR("test.", QTYPE.SOA, ttl=60, rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, 60)))
            if name not in zone and not any(n.endswith("." + name) for n in zone):
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(soa)
                return reply
            for v in zone.get(name, {}).get(qtype, []):
                if qtype == "TXT":
                    raw = v.encode()
                    rdata = TXT([raw[i:i + 255] for i in range(0, len(raw), 255)])
                elif qtype == "MX":
                    rdata = MX(v[1].rstrip(".") + ".", v[0])
                else:
                    rdata = A(v)
                reply.add_answer(RR(name + ".", getattr(QTYPE, qtype), rdata=rdata, ttl=60))
            if not reply.rr:
                reply.add_auth(soa)
            return reply
    class Quiet:
        def __getattr__(self, name):
            return lambda *a, **k: None
    for tcp in (False, True):
        DNSServer(R(), address="127.0.0.1", port=53, tcp=tcp, logger=Quiet()).start_thread()
    open(sys.argv[2], "w").write("ready")
    while True:
        time.sleep(60)
''')

NAMESPACE_RUN = textwrap.dedent('''
    set -u
    dir="$1"
    ip link set lo up
    echo "nameserver 127.0.0.1" > "$dir/resolv.conf"
    mount --bind "$dir/resolv.conf" /etc/resolv.conf
    python3 "$dir/zoneserver.py" "$dir/zone.json" "$dir/dns.ready" &
    dns=$!
    for i in $(seq 100); do [ -e "$dir/dns.ready" ] && break; sleep 0.05; done
    bash "$dir/judges.sh" "$dir"
    kill $dns
''')

DKIM_JUDGES = textwrap.dedent('''
    for f in "$1"/in/*.eml; do
        opendkim-testmsg < "$f" > "$f.opendkim" 2>&1; echo $? > "$f.opendkim.rc"
        "$1/dkim-verify" < "$f" > "$f.go" 2>&1
    done
''')

CHECKDMARC = textwrap.dedent('''
    cd /
    python3 -c '
    import json, sys, checkdmarc
    r = checkdmarc.check_domains([sys.argv[1]], nameservers=["127.0.0.1"], skip_tls=True, timeout=2.0)
    print(json.dumps(r, default=str))
    ' "$(cat "$1/domain")" > "$1/checkdmarc.json" 2> "$1/checkdmarc.err"
''')


def in_namespace(work: Path, zone: dict, judges: str) -> None:
    """Runs the `judges` script (given the work directory) in a network and mount namespace of its own,
    with `zone` ({name: {type: [values]}}) served on 127.0.0.1:53 and /etc/resolv.conf pointing there."""
    require_root("unshare --net --mount")
    for tool in ("unshare", "ip"):
        require_tool(tool)
    (work / "zone.json").write_text(json.dumps(zone))
    (work / "zoneserver.py").write_text(NAMESPACE_DNS)
    (work / "run.sh").write_text(NAMESPACE_RUN)
    (work / "judges.sh").write_text(judges)
    subprocess.run(["unshare", "--net", "--mount", "bash", str(work / "run.sh"), str(work)],
                   check=True, timeout=120, capture_output=True)


def go_dkim_verify(tmp_path: Path) -> Path:
    """go-msgauth's dkim-verify, built offline from the Debian source package."""
    require_tool("go")
    if not Path(GO_MSGAUTH).is_dir():
        message = "go-msgauth source missing (apt-get install golang-github-emersion-go-msgauth-dev)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path / "dkim-verify"
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOCACHE=str(tmp_path / "gocache"),
               GOFLAGS="", CGO_ENABLED="0")
    subprocess.run(["go", "build", "-o", str(out), "github.com/emersion/go-msgauth/cmd/dkim-verify"],
                   check=True, env=env, capture_output=True, timeout=300)
    return out


def judge_in_namespace(tmp_path: Path, zone: dict[str, str], messages: dict[str, bytes]) -> dict[str, tuple[int, str, str]]:
    """name → (opendkim-testmsg exit status, its output, dkim-verify's output) for each message; `zone`
    maps key record names to their TXT text."""
    require_tool("opendkim-testmsg")
    verify = go_dkim_verify(tmp_path)
    work = tmp_path / "judges"
    (work / "in").mkdir(parents=True)
    shutil.copy(verify, work / "dkim-verify")
    for name, data in messages.items():
        (work / "in" / f"{name}.eml").write_bytes(data)
    in_namespace(work, {name: {"TXT": [record]} for name, record in zone.items()}, DKIM_JUDGES)
    out = {}
    for name in messages:
        f = work / "in" / f"{name}.eml"
        out[name] = (int(Path(f"{f}.opendkim.rc").read_text()), Path(f"{f}.opendkim").read_text(), Path(f"{f}.go").read_text())
    return out


def only_signature(raw: bytes, keep: int) -> bytes:
    """The message (CRLF) with only its `keep`-th DKIM-Signature field (the others removed)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    fields, current = [], b""
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            current += b"\r\n" + line
        else:
            if current:
                fields.append(current)
            current = line
    fields.append(current)
    signatures = [i for i, f in enumerate(fields) if f.lower().startswith(b"dkim-signature:")]
    fields = [f for i, f in enumerate(fields) if i not in signatures or i == signatures[keep]]
    return b"\r\n".join(fields) + b"\r\n\r\n" + body


def test_what_we_sign_verifies_in_opendkim_and_go_msgauth(make_submission_server, tmp_path):
    s = make_submission_server()
    keys = json.loads(s.cli("dkim", "list", "--json").stdout)
    for k in keys:
        s.cli("dkim", "activate", "example.test", k["selector"])
    extra = "List-Unsubscribe: <https://example.test/u/1>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    with submission(s) as c:
        c.sendmail(ALICE, [BOB], message(subject="judged", extra=extra))
    wait_for(lambda: len(s.raw_messages(BOB)) == 1, timeout=10, what="the signed message")
    raw = s.raw_messages(BOB)[0].replace(b"\n", b"\r\n")
    messages = {}
    for i, k in enumerate(keys):
        algorithm = k["algorithm"].split("-")[0]
        one = only_signature(raw, i)
        assert f"a={k['algorithm']}".encode() in one, one[:1200]
        messages[f"{algorithm}-signed"] = one
        messages[f"{algorithm}-tampered"] = one.replace(b"Body line.", b"Body line!")
    got = judge_in_namespace(tmp_path, {k["name"]: k["record"] for k in keys}, messages)
    for algorithm in ("ed25519", "rsa"):
        rc, text, go = got[f"{algorithm}-signed"]
        assert rc == 0 and text.strip() == "", (algorithm, rc, text)
        assert "Valid signature for example.test" in go and "Invalid" not in go, (algorithm, go)
        rc, text, go = got[f"{algorithm}-tampered"]
        assert rc != 0, (algorithm, "opendkim accepted a tampered body", text)
        assert "Invalid signature for example.test" in go, (algorithm, go)


PERL_SIGN = textwrap.dedent('''
    use strict; use warnings;
    use Mail::DKIM::Signer; use Mail::DKIM::TextWrap;
    my ($key, $method) = @ARGV;
    my $signer = Mail::DKIM::Signer->new(Algorithm => "rsa-sha256", Method => $method, Domain => "perl.example",
        Selector => "p1", KeyFile => $key, Headers => "from:to:subject:date:message-id");
    local $/; my $msg = <STDIN>;
    $signer->PRINT($msg); $signer->CLOSE;
    print $signer->signature->as_string, "\\r\\n", $msg;
''')


@pytest.mark.parametrize("method", ["relaxed", "simple"])
def test_what_mail_dkim_signs_verifies_on_our_port_25(make_server, tmp_path, method):
    require_tool("perl")
    if subprocess.run(["perl", "-MMail::DKIM::Signer", "-e", "1"], capture_output=True).returncode != 0:
        if IN_CI:
            pytest.fail("Perl Mail::DKIM is missing (apt-get install libmail-dkim-perl)")
        pytest.skip("Perl Mail::DKIM is missing")
    key = tmp_path / "p1.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True).stdout
    import base64
    zone = ZoneDNS({"p1._domainkey.perl.example": [("TXT", "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())]})
    try:
        server = make_server(dns={"nameservers": [zone.nameserver]})
        (tmp_path / "sign.pl").write_text(PERL_SIGN)
        original = ("From: Perl <perl@perl.example>\r\nTo: alice@example.test\r\nSubject: signed  in\tPerl\r\n"
                    "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <perl-1@perl.example>\r\n\r\n"
                    "Hello  from Mail::DKIM. \r\n\r\n\r\n").encode()
        signed = subprocess.run(["perl", str(tmp_path / "sign.pl"), str(key), method], input=original, check=True,
                                capture_output=True).stdout
        assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=" + method.encode()), signed[:200]
        for label, data in (("signed", signed), ("tampered", signed.replace(b"Hello  from", b"Hello from"))):
            with smtplib.SMTP(server.host, server.port, timeout=IO_TIMEOUT) as c:
                c.sendmail("perl@perl.example", ["alice@example.test"], data)
        wait_for(lambda: len(server.raw_messages("alice@example.test")) == 2, timeout=10, what="both messages")
        verdicts = {}
        for raw in server.raw_messages("alice@example.test"):
            label = "tampered" if b"Hello from" in raw else "signed"
            ar = raw.split(b"Authentication-Results:", 1)[1].split(b"\n", 1)[1]
            verdicts[label] = ar.split(b"dkim=", 1)[1].split(b" ", 1)[0]
        assert verdicts == {"signed": b"pass", "tampered": b"fail"}, verdicts
    finally:
        zone.stop()


def test_the_records_swallow_dns_records_prints_pass_checkdmarc(make_server, tmp_path):
    try:
        import checkdmarc  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("checkdmarc is missing (pip install 'checkdmarc<6'; .ci/run does)")
        pytest.skip("checkdmarc is missing")
    s = make_server()
    records = json.loads(s.cli("dns", "records", "example.test", "--json").stdout)
    zone: dict[str, dict[str, list]] = {"mx.example.test": {"A": ["127.0.0.1"]}}
    for r in records:
        entry = zone.setdefault(r["name"], {})
        if r["type"] == "MX":
            preference, host = r["value"].split()
            entry.setdefault("MX", []).append([int(preference), host])
        else:
            entry.setdefault(r["type"], []).append(r["value"])
    work = tmp_path / "checkdmarc"
    work.mkdir()
    (work / "domain").write_text("example.test")
    in_namespace(work, zone, CHECKDMARC)
    report = json.loads((work / "checkdmarc.json").read_text() or "null")
    assert report, (work / "checkdmarc.err").read_text()
    assert report["spf"]["valid"] and report["spf"]["warnings"] == [], report["spf"]
    assert report["spf"]["record"] == "v=spf1 mx -all"
    assert report["dmarc"]["valid"] and report["dmarc"]["warnings"] == [], report["dmarc"]
    assert report["dmarc"]["tags"]["p"]["value"] == "reject"
    assert [h["hostname"] for h in report["mx"]["hosts"]] == ["mx.example.test"], report["mx"]
