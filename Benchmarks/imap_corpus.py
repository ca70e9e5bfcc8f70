"""The IMAP benchmark's mailbox: `count` messages of about 10 KiB (8.5–12.5 KiB), generated from one
seed, so every run and both servers see the same bytes. Realistic headers (two Received, a DKIM
signature, From/To/Cc with some RFC 2047 names, Subject — 15 % encoded-words —, Message-ID, some
In-Reply-To/References and List-* headers); 35 % text/plain, 40 % multipart/alternative (text + a
quoted-printable HTML part), 25 % multipart/mixed (alternative + a base64 attachment of 35–60 % of the
message). 3 % of the messages hold WORD once in their text (and HTML) part, never in a header or an
attachment, so `SEARCH TEXT WORD` has one right answer. LF line ends, as Maildir stores them.

    python3 Benchmarks/imap_corpus.py DIR [COUNT]   # writes DIR/<i>.eml and DIR/manifest.json
"""

import base64
import email.utils
import json
import os
import quopri
import random
import sys
from pathlib import Path

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had by "
         "word but not what all were we when your can said there use an each which she do how their if will up other "
         "about out many then them these so some her would make like him into time has look two more write go see "
         "number no way could people my than first water been call who oil its now find long down day did get come "
         "made may part over new sound take only little work know place year live me back give most very after thing "
         "our just name good sentence man think say great where help through much before line right too mean old any "
         "same tell boy follow came want show also around form three small set put end does another well large must "
         "big even such because turn here why ask went men read need land different home us move try kind hand "
         "picture again change off play spell air away animal house point page letter mother answer found study "
         "still learn should america world budget invoice meeting quarter report review schedule project deadline "
         "release server network customer contract shipment proposal").split()
FIRST = "Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas Klara Lukas Mia Noah Olga Paul Rosa Simon Tina Udo".split()
LAST = "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Wolf Neumann".split()
DOMAINS = "example.net example.org mail.example.com lists.example.org corp.example".split()
WORD = "zanzibar"

def addr(r):
    f, l = r.choice(FIRST), r.choice(LAST)
    local = f"{f}.{l}".lower().encode("ascii", "ignore").decode() or "x"
    name = f"{f} {l}"
    if not name.isascii():
        name = "=?UTF-8?Q?" + quopri.encodestring(name.encode(), header=True).decode() + "?="
    return f'"{name}" <{local}@{r.choice(DOMAINS)}>'

def sentence(r):
    s = " ".join(r.choice(WORDS) for _ in range(r.randint(6, 16)))
    return s[0].upper() + s[1:] + "."

def paragraphs(r, n_bytes, word):
    out, total = [], 0
    while total < n_bytes:
        p = " ".join(sentence(r) for _ in range(r.randint(2, 5)))
        out.append(p)
        total += len(p) + 2
    if word:
        i = r.randrange(len(out))
        ws = out[i].split(" ")
        ws.insert(r.randrange(1, len(ws)), WORD)
        out[i] = " ".join(ws)
    # wrap at 76
    lines = []
    for p in out:
        line = ""
        for w in p.split(" "):
            if len(line) + len(w) + 1 > 76:
                lines.append(line)
                line = w
            else:
                line = f"{line} {w}" if line else w
        lines.append(line)
        lines.append("")
    return "\n".join(lines)

def b64(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))

def message(i, r):
    target = r.randint(8 * 1024 + 512, 12 * 1024 + 512)
    kind = r.random()
    word = r.random() < 0.03
    date = 1700000000 + i * 3000 + r.randint(0, 2000)
    sender = addr(r)
    subj_words = " ".join(r.choice(WORDS) for _ in range(r.randint(3, 9)))
    subject = subj_words.capitalize()
    if r.random() < 0.15:
        subject = "=?UTF-8?B?" + base64.b64encode(("Grüße: " + subject).encode()).decode() + "?="
    elif r.random() < 0.3:
        subject = "Re: " + subject
    mid = f"<{i}.{r.getrandbits(48):012x}@{r.choice(DOMAINS)}>"
    h = [f"Return-Path: <{sender.split('<')[1]}",
         "Delivered-To: bench@bench.test",
         f"Received: from mx{r.randint(1,9)}.example.net (mx.example.net [192.0.2.{r.randint(1,254)}])\n"
         f"\tby mail.bench.test with ESMTPS id {r.getrandbits(40):010x}\n\tfor <bench@bench.test>; {email.utils.formatdate(date + 5)}",
         f"Received: from [10.{r.randint(0,255)}.{r.randint(0,255)}.{r.randint(1,254)}] (helo=client)\n"
         f"\tby mx.example.net with esmtpsa (TLS1.3) id 1r{r.getrandbits(30):08x}; {email.utils.formatdate(date + 1)}"]
    sig = base64.b64encode(r.randbytes(256)).decode()
    h.append("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=sel1;\n"
             f"\tt={date}; h=from:to:subject:date:message-id:mime-version;\n"
             f"\tbh={base64.b64encode(r.randbytes(32)).decode()};\n"
             "\tb=" + "\n\t  ".join(sig[k:k + 70] for k in range(0, len(sig), 70)))
    h.append(f"From: {sender}")
    h.append("To: Bench User <bench@bench.test>")
    if r.random() < 0.4:
        h.append("Cc: " + ",\n\t".join(addr(r) for _ in range(r.randint(1, 3))))
    h.append(f"Subject: {subject}")
    h.append(f"Date: {email.utils.formatdate(date)}")
    h.append(f"Message-ID: {mid}")
    if r.random() < 0.3:
        ref = f"<{r.getrandbits(48):012x}@{r.choice(DOMAINS)}>"
        h += [f"In-Reply-To: {ref}", f"References: {ref}"]
    if r.random() < 0.3:
        h += ["List-Id: Team discussion <team.lists.example.org>",
              "List-Unsubscribe: <mailto:team-unsubscribe@lists.example.org>, <https://lists.example.org/u/team>"]
    h.append("MIME-Version: 1.0")
    head_len = sum(len(x) + 1 for x in h) + 200
    room = max(1500, target - head_len)
    if kind < 0.35:
        text = paragraphs(r, room - 100, word)
        h += ["Content-Type: text/plain; charset=UTF-8; format=flowed", "Content-Transfer-Encoding: 7bit"]
        body = text
    else:
        alt_b = f"----=_alt_{r.getrandbits(64):016x}"
        if kind < 0.75:
            share = room
        else:
            att_size = int(room * r.uniform(0.35, 0.6))
            share = room - att_size
        tsize = int(share * 0.4)
        text = paragraphs(r, tsize, word)
        html_inner = "\n".join(f"<p>{line}</p>" if line else "" for line in text.split("\n\n"))
        html = ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\"></head>\n"
                f"<body style=\"font-family: Arial, sans-serif\">\n{html_inner}\n</body></html>")
        html_qp = quopri.encodestring(html.encode()).decode().replace("\r\n", "\n")
        alt = (f"--{alt_b}\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 7bit\n\n{text}\n"
               f"--{alt_b}\nContent-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n{html_qp}\n"
               f"--{alt_b}--\n")
        if kind < 0.75:
            h += [f"Content-Type: multipart/alternative;\n\tboundary=\"{alt_b}\""]
            body = "This is a multi-part message in MIME format.\n\n" + alt
        else:
            mix_b = f"----=_mix_{r.getrandbits(64):016x}"
            name, ctype = r.choice([("report.pdf", "application/pdf"), ("photo.jpg", "image/jpeg"),
                                    ("budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")])
            data = r.randbytes(max(200, att_size * 3 // 4 - 200))
            h += [f"Content-Type: multipart/mixed;\n\tboundary=\"{mix_b}\""]
            body = (f"This is a multi-part message in MIME format.\n\n--{mix_b}\n"
                    f"Content-Type: multipart/alternative;\n\tboundary=\"{alt_b}\"\n\n{alt}\n"
                    f"--{mix_b}\nContent-Type: {ctype}; name=\"{name}\"\nContent-Disposition: attachment; filename=\"{name}\"\n"
                    f"Content-Transfer-Encoding: base64\n\n{b64(data)}\n--{mix_b}--\n")
    return ("\n".join(h) + "\n\n" + body).encode(), date, word



VERSION = 1


def generate(out: Path, count: int) -> dict:
    """Writes the corpus into `out` (unless a manifest of the same version and count is there) and
    returns the manifest: {"version", "count", "word", "matches", "messages": [[file, date, size, vsize]]}."""
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        m = json.loads(manifest_path.read_text())
        if m.get("version") == VERSION and m.get("count") == count:
            return m
    out.mkdir(parents=True, exist_ok=True)
    r = random.Random(20261203)
    messages, matches = [], 0
    for i in range(count):
        data, date, word = message(i, r)
        path = out / f"{i}.eml"
        path.write_bytes(data)
        os.utime(path, (date, date))  # the internal date both servers take from the file's mtime
        messages.append([path.name, date, len(data), len(data) + data.count(b"\n")])
        matches += word
    m = {"version": VERSION, "count": count, "word": WORD, "matches": matches, "messages": messages}
    manifest_path.write_text(json.dumps(m))
    return m


if __name__ == "__main__":
    m = generate(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10000)
    sizes = [x[2] for x in m["messages"]]
    print(f"{m['count']} messages, {sum(sizes) / len(sizes):,.0f} octets on average, {m['matches']} hold {m['word']!r}")
