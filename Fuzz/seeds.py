#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into DIR/<target>/ from the repository's test fixtures.

Usage: Fuzz/seeds.py DIR

SMTP command streams come from the golden transcripts (Tests/SMTPCoreTests/Transcripts: the C: and B:
lines); replies from their S: lines; MIME messages from the benchmark corpus and the transcripts'
message bodies and Python's email test messages when installed; DNS answers are built here (MX, A, AAAA, CNAME, TXT, SOA, with and without name
compression); POP3, IMAP and address seeds are the shapes the unit tests use. Control bytes: targets that read
one or two leading control bytes (see Targets/FuzzSupport) get `\\x00\\xff` (one read, every decision yes)
and `\\x07\\x55` (7-byte reads, alternating decisions).
"""
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = (b"\x00\xff", b"\x07\x55")


def transcript_streams():
    for path in sorted((ROOT / "Tests/SMTPCoreTests/Transcripts").glob("*.txt")):
        client, server = bytearray(), bytearray()
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("C: "):
                client += line[3:].encode() + b"\r\n"
            elif line.startswith("B: "):
                client += line[3:].encode().decode("unicode_escape").encode("latin-1")
            elif line.startswith("S: "):
                server += line[3:].encode() + b"\r\n"
        yield path.stem, bytes(client), bytes(server)


def name(n: str, compress_at: dict, out: bytearray) -> None:
    labels = n.rstrip(".").split(".")
    for i in range(len(labels)):
        suffix = ".".join(labels[i:])
        if suffix in compress_at:
            out += struct.pack(">H", 0xC000 | compress_at[suffix])
            return
        compress_at[suffix] = len(out)
        out += bytes([len(labels[i])]) + labels[i].encode()
    out += b"\x00"


def dns_message(qname: str, qtype: int, answers, rcode: int = 0, compress: bool = True) -> bytes:
    out = bytearray(struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, 1, len(answers), 0, 0))
    table: dict = {} if compress else None
    def put(n):
        name(n, table if compress else {}, out)
    put(qname)
    out += struct.pack(">HH", qtype, 1)
    for owner, rtype, rdata in answers:
        put(owner)
        out += struct.pack(">HHI", rtype, 1, 300)
        length_at = len(out)
        out += b"\x00\x00"
        start = len(out)
        if rtype == 15:
            out += struct.pack(">H", rdata[0])
            put(rdata[1])
        elif rtype in (5, 2):
            put(rdata)
        elif rtype == 6:
            put(rdata[0]); put(rdata[1]); out += struct.pack(">IIIII", 1, 2, 3, 4, 5)
        else:
            out += rdata
        struct.pack_into(">H", out, length_at, len(out) - start)
    return bytes(out)


def dns_seeds():
    yield "mx", dns_message("example.test", 15, [("example.test", 15, (10, "mx1.example.test")),
                                                 ("example.test", 15, (20, "mx2.example.test"))])
    yield "mx-uncompressed", dns_message("example.test", 15, [("example.test", 15, (10, "mx1.example.test"))], compress=False)
    yield "a", dns_message("mx1.example.test", 1, [("mx1.example.test", 1, bytes([127, 0, 0, 1]))])
    yield "aaaa", dns_message("mx1.example.test", 28, [("mx1.example.test", 28, bytes(15) + b"\x01")])
    yield "cname", dns_message("www.example.test", 1, [("www.example.test", 5, "mx1.example.test"),
                                                       ("mx1.example.test", 1, bytes([127, 0, 0, 2]))])
    yield "txt", dns_message("example.test", 16, [("example.test", 16, b"\x0bv=spf1 -all")])
    yield "nxdomain-soa", dns_message("nope.example.test", 15, [("example.test", 6, ("ns.example.test", "h.example.test"))], rcode=3)
    yield "null-mx", dns_message("example.test", 15, [("example.test", 15, (0, "."))])


POP3 = [b"CAPA\r\nSTLS\r\nUSER alice@example.test\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\nTOP 2 10\r\nDELE 1\r\nRSET\r\nDELE 2\r\nNOOP\r\nQUIT\r\n",
        b"AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nLIST 99\r\nDELE 0\r\nDELE 2\r\nDELE 2\r\nQUIT\r\n",
        b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAPOP a b\r\nUIDL\r\nRETR 5\r\nQUIT\r\n",
        b"+OK ready\r\n+OK 2 messages\r\n1 100\r\n2 200\r\n.\r\n-ERR [IN-USE] locked\r\n+ \r\n"]

IMAP = [b"a1 CAPABILITY\r\na2 STARTTLS\r\na3 LOGIN {5}\r\nalice {6+}\r\nsecret\r\na4 SELECT INBOX (CONDSTORE)\r\n"
        b"a5 UID FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (FROM TO)]<0.100> BINARY[1] MODSEQ) (CHANGEDSINCE 5 VANISHED)\r\n"
        b"a6 STORE 1:3 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Seen $Junk)\r\na7 IDLE\r\nDONE\r\na8 LOGOUT\r\n",
        b"b1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nb2 APPEND INBOX (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {12}\r\n"
        b"Subject: x\r\n {3+}\r\nabc\r\nb3 SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 OR (FROM \"a\" SINCE 1-Feb-1994) NOT (UID $ MODSEQ 7)\r\n"
        b"b4 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX\" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n"
        b"b5 UID SORT (REVERSE DATE) UTF-8 ALL\r\nb6 THREAD REFERENCES US-ASCII TEXT {3+}\r\nxyz\r\nb7 ID (\"name\" NIL)\r\n",
        b"c1 APPEND Drafts ~{4+}\r\na\x00bc {2+}\r\nde\r\nc2 FETCH 1 (((\r\nc3 LOGIN {99999}\r\nc4 SEARCH ((((((((((ALL))))))))))\r\n"]

ADDRESSES = ["alice@example.test", "\"quoted local\"@example.test", "用户@例子.测试", "a.b+tag@sub.example.test",
             "postmaster", "x@[127.0.0.1]", "x@[IPv6:::1]", "Alice <alice@example.test>, bob@example.test",
             "=?UTF-8?B?5byg5LiJ?= <zhang@example.test>", "group: a@b.test, c@d.test;", "\"a\\\"b\"@example.test"]

# DKIM: signature values, key records, and signed messages whose first line is also read as a key record.
DKIM = [b"v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=s; t=1; h=from:to; bh=AAAA; b=AAAA",
        b"v=DKIM1; k=rsa; h=sha256; s=email; t=s:y; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08",
        b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\r\n"
        b"DKIM-Signature: v=1; a=ed25519-sha256; c=simple/simple;\r\n d=football.example.com; i=@football.example.com;\r\n"
        b" q=dns/txt; s=brisbane; t=1518460054; h=from : to :\r\n subject : date : message-id : from : subject : date;\r\n"
        b" bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=;\r\n b=9/dsDChY0YMTtD5Eyw3wx7x22BlSJP7M5ECbJ7GWrR45nXlTCGb8l0YB\r\n"
        b" o0wBLR++X5LqmsxXaOYLLJe46l10AQ==\r\nFrom: Joe SixPack <joe@football.example.com>\r\nTo: Suzie Q <suzie@shopping.example.net>\r\n"
        b"Subject: Is dinner ready?\r\n\r\nHi.\r\n\r\nWe lost the game.  Are you hungry yet?  \r\n\r\n\r\n"]

# SPF: records with every mechanism, modifier and macro form (RFC 7208 §5–§7).
SPF = [b"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24//64 a:mail.%{d2}/28 include:_spf.example.org -all",
       b"v=spf1 ptr:%{ir}.%{v}._spf.%{d2} exists:%{l1r+-}.%{i}._spf.example.com ~all redirect=_spf.example.net",
       b"v=spf1 ?all exp=explain._spf.%{d} moo.cow-far_out=man:dog/cat",
       b"%{c} is not one of %{d}'s designated mail servers (%{r} at %{t}) %{L}.%{S}%%%_%-",
       b"v=spf1 ip6:::ffff:1.2.3.4/128 ip4:1.2.3.4/32 a:foo:bar/baz.example.com a//0 mx:%{p}.example.com"]


def main() -> None:
    out = Path(sys.argv[1])
    targets = {t: out / t for t in ("FuzzSMTPCommand", "FuzzSMTPReply", "FuzzPOP3", "FuzzDNS", "FuzzMIME", "FuzzAddress", "FuzzIMAPCommand", "FuzzDKIM", "FuzzSPF")}
    for d in targets.values():
        d.mkdir(parents=True, exist_ok=True)
    def write(target, stem, data):
        (targets[target] / stem).write_bytes(data)
    for stem, client, server in transcript_streams():
        for i, c in enumerate(CONTROLS):
            write("FuzzSMTPCommand", f"{stem}-{i}", c + client)
            write("FuzzSMTPReply", f"{stem}-{i}", c + server)
        if b"\r\n\r\n" in client:
            write("FuzzMIME", stem, client[client.index(b"DATA\r\n") + 6:] if b"DATA\r\n" in client else client)
    for path in sorted((ROOT / "Benchmarks/Micro/corpus").glob("*.eml")):
        write("FuzzMIME", path.stem, path.read_bytes())
    # Python's own email test messages (Debian's libpython3.11-testsuite, which the MIME tests use too).
    for data_dir in ("/usr/lib/python3.11/test/test_email/data", "/usr/lib/python3/test/test_email/data"):
        for path in sorted(Path(data_dir).glob("msg_*.txt")):
            write("FuzzMIME", "python-" + path.stem, path.read_bytes())
    for stem, data in dns_seeds():
        write("FuzzDNS", stem, data)
    for i, data in enumerate(POP3):
        for j, c in enumerate(CONTROLS):
            write("FuzzPOP3", f"pop3-{i}-{j}", c + data)
    for i, data in enumerate(IMAP):
        for j, c in enumerate(CONTROLS):
            write("FuzzIMAPCommand", f"imap-{i}-{j}", c + data)
    for i, data in enumerate(DKIM):
        write("FuzzDKIM", f"dkim-{i}-simple", b"\x00" + data)
        write("FuzzDKIM", f"dkim-{i}-relaxed", b"\x0b" + data)
    for i, data in enumerate(SPF):
        write("FuzzSPF", f"spf-{i}", data)
    for i, a in enumerate(ADDRESSES):
        write("FuzzAddress", f"address-{i}-utf8", b"\x01" + a.encode())
        write("FuzzAddress", f"address-{i}-ascii", b"\x00" + a.encode())


if __name__ == "__main__":
    main()
