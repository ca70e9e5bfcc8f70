#!/usr/bin/env python3
"""MIME parsing on one corpus: Python's `email` package and the Rust-backed `fast-mail-parser` (PyPI).

The same files are parsed by Swallow's MIME library in the micro benchmark "MIME: parse corpus"
(Benchmarks/Micro). Each parser does the same work: parse the structure, decode the Subject and From
headers, and decode every leaf part (quoted-printable text, base64 attachments).

    python3 Benchmarks/mime_compare.py [--write-corpus] [--json]
"""
from __future__ import annotations

import argparse
import email.policy
import json
import sys
import time
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "Micro" / "corpus"


def build_corpus() -> dict[str, bytes]:
    """Deterministic messages: a typical multipart one and a plain text one."""
    m = EmailMessage()
    m["From"] = "发件人名称 <alice@example.test>"
    m["To"] = "Bob Müller <bob@example.test>, carol@example.test"
    m["Subject"] = "你好，世界 — quarterly report, Grüße"
    m["Date"] = "Sat, 22 Nov 2025 10:00:00 +0000"
    m["Message-ID"] = "<corpus-1@example.test>"
    text = "".join(f"Line {i}: Grüße aus der Benchmark-Suite, naïve café, 東京.\n" for i in range(120))
    m.set_content(text)
    m.add_alternative("<html><body>" + "".join(f"<p>Line {i}: Grüße, naïve café, 東京.</p>\n" for i in range(120))
                      + "</body></html>", subtype="html")
    pdf = bytes((i * 7) & 0xFF for i in range(32768))
    m.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
    png = bytes((i * 13) & 0xFF for i in range(4096))
    m.add_attachment(png, maintype="image", subtype="png", filename="chart.png")
    plain = EmailMessage()
    plain["From"] = "alice@example.test"
    plain["To"] = "bob@example.test"
    plain["Subject"] = "plain text"
    plain["Date"] = "Sat, 22 Nov 2025 10:00:00 +0000"
    plain.set_content("".join(f"An ordinary line of text number {i}.\n" for i in range(200)))
    policy = email.policy.SMTP
    return {"multipart.eml": m.as_bytes(policy=policy), "plain.eml": plain.as_bytes(policy=policy)}


def python_email(data: bytes):
    msg = BytesParser(policy=email.policy.default).parsebytes(data)
    _ = (str(msg["Subject"]), str(msg["From"]))
    for part in msg.walk():
        if not part.is_multipart():
            part.get_content()


def fast_mail_parser(data: bytes):
    import fast_mail_parser as fmp
    e = fmp.parse_email(data)
    _ = (e.subject, e.headers, e.text_plain, e.text_html, [a.content for a in e.attachments])


def timed(fn, data: bytes, seconds: float = 2.0) -> float:
    """Microseconds per parse (median of 5 rounds)."""
    fn(data)
    rounds = []
    for _ in range(5):
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds / 5:
            fn(data)
            n += 1
        rounds.append((time.perf_counter() - t0) / n * 1e6)
    rounds.sort()
    return rounds[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-corpus", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.write_corpus:
        CORPUS.mkdir(parents=True, exist_ok=True)
        for name, data in build_corpus().items():
            (CORPUS / name).write_bytes(data)
    results = {}
    for path in sorted(CORPUS.glob("*.eml")):
        data = path.read_bytes()
        row = {"size": len(data), "python_email_us": timed(python_email, data)}
        try:
            row["fast_mail_parser_us"] = timed(fast_mail_parser, data)
        except ImportError:
            row["fast_mail_parser_us"] = None
        results[path.name] = row
    if args.json:
        print(json.dumps(results))
    else:
        for name, row in results.items():
            print(f"{name} ({row['size']:,} B): email {row['python_email_us']:.1f} µs, "
                  f"fast-mail-parser {row['fast_mail_parser_us'] or float('nan'):.1f} µs")


if __name__ == "__main__":
    sys.exit(main())
