#!/usr/bin/env python3
"""Feeds the IMAPCore message fixtures to Dovecot and prints what it answers, as Swift values.

Usage: scripts/imap-dovecot-golden.py [FIXTURE...] [--sections]

Needs Debian's dovecot-imapd (apt-get install dovecot-imapd). Dovecot is not started as a daemon: its
`imap` binary runs pre-authenticated over a pipe, one run per fixture, on a Maildir in a temporary
directory owned by `nobody` (Dovecot refuses to give root mail access). The fixtures are read from
Tests/IMAPCoreTests/Message/MessageFixtures.swift and converted to CRLF, as the store hands them over.
The printed values are pasted into Tests/IMAPCoreTests/Message/DovecotGoldenTests.swift.
"""
import os, re, shutil, subprocess, sys, tempfile, textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests/IMAPCoreTests/Message/MessageFixtures.swift")
IMAP = "/usr/lib/dovecot/imap"


def fixtures():
    text = open(FIXTURES, encoding="utf-8").read()
    out = {}
    for m in re.finditer(r'static let (\w+) = #"""\n(.*?)\n( *)"""#', text, re.S):
        name, body, indent = m.group(1), m.group(2), m.group(3)
        lines = [l[len(indent):] if l.startswith(indent) else l.lstrip(" ") for l in body.split("\n")]
        out[name] = ("\r\n".join(lines)).encode("utf-8")
    return out


def run_dovecot(message, commands):
    d = tempfile.mkdtemp(prefix="swallow-dovecot-")
    try:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(d, "mail", sub))
        with open(os.path.join(d, "mail", "cur", "1.fixture:2,"), "wb") as f:
            f.write(message)
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(f"protocols = imap\nmail_location = maildir:{d}/mail\nbase_dir = {d}/run\n"
                    f"log_path = {d}/log\nssl = no\nmail_uid = nobody\nmail_gid = nogroup\n")
        subprocess.run(["chown", "-R", "nobody:nogroup", d], check=True)
        script = "a0 SELECT INBOX\r\n" + "".join(f"a{i + 1} {c}\r\n" for i, c in enumerate(commands)) + "z LOGOUT\r\n"
        env = {"USER": "nobody", "HOME": d, "PATH": "/usr/bin:/bin"}
        r = subprocess.run([IMAP, "-c", os.path.join(d, "dovecot.conf")], input=script.encode(), env=env,
                           capture_output=True, timeout=30)
        return r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Reader:
    """Reads IMAP response data: atoms, NIL, quoted strings, literals, lists."""

    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def skip(self):
        while self.pos < len(self.data) and self.data[self.pos:self.pos + 1] == b" ":
            self.pos += 1

    def value(self):
        self.skip()
        c = self.data[self.pos:self.pos + 1]
        if c == b"(":
            self.pos += 1
            items = []
            while True:
                self.skip()
                if self.data[self.pos:self.pos + 1] == b")":
                    self.pos += 1
                    return items
                items.append(self.value())
        if c == b'"':
            self.pos += 1
            out = bytearray()
            while self.data[self.pos:self.pos + 1] != b'"':
                if self.data[self.pos:self.pos + 1] == b"\\":
                    self.pos += 1
                out += self.data[self.pos:self.pos + 1]
                self.pos += 1
            self.pos += 1
            return bytes(out).decode("utf-8", "replace")
        if c == b"{":
            end = self.data.index(b"}", self.pos)
            n = int(self.data[self.pos + 1:end])
            start = end + 3
            self.pos = start + n
            return ("literal", self.data[start:start + n])
        m = re.compile(rb"[^ ()\r\n]+").match(self.data, self.pos)
        self.pos = m.end()
        atom = m.group(0).decode()
        if atom == "NIL":
            return None
        # BODY[...]<n> keys: keep the section with its brackets.
        if "[" in atom and "]" not in atom:
            end = self.data.index(b"]", self.pos)
            atom += self.data[self.pos:end + 1].decode()
            self.pos = end + 1
            m = re.compile(rb"<\d+>").match(self.data, self.pos)
            if m:
                atom += m.group(0).decode()
                self.pos = m.end()
        return atom


def fetch_items(response):
    i = response.index(b"* 1 FETCH (")
    r = Reader(response, i + len(b"* 1 FETCH "))
    items = r.value()
    return dict(zip(items[0::2], items[1::2]))


def swift_string(s):
    if s is None:
        return "nil"
    if isinstance(s, tuple):
        s = s[1].decode("utf-8", "replace")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n") + '"'


def swift_params(p):
    if p is None:
        return "[]"
    return "[" + ", ".join(f".init(name: {swift_string(p[i])}, value: {swift_string(p[i + 1])})" for i in range(0, len(p), 2)) + "]"


def swift_disposition(d):
    if d is None:
        return "nil"
    return f".init(kind: {swift_string(d[0])}, parameters: {swift_params(d[1])})"


def swift_language(l):
    if l is None:
        return "nil"
    if isinstance(l, list):
        return "[" + ", ".join(swift_string(x) for x in l) + "]"
    return f"[{swift_string(l)}]"


def swift_addresses(a):
    if a is None:
        return "[]"
    return "[" + ", ".join(f".init(name: {swift_string(x[0])}, adl: {swift_string(x[1])}, mailbox: {swift_string(x[2])}, host: {swift_string(x[3])})" for x in a) + "]"


def swift_envelope(e, indent):
    pad = " " * indent
    names = ["date", "subject", "from", "sender", "replyTo", "to", "cc", "bcc", "inReplyTo", "messageID"]
    parts = []
    for n, v in zip(names, e):
        parts.append(f"{n}: {swift_addresses(v) if n in ('from', 'sender', 'replyTo', 'to', 'cc', 'bcc') else swift_string(v)}")
    return "Envelope(\n" + ",\n".join(pad + "    " + p for p in parts) + ")"


def swift_body(b, extensible, indent=0):
    pad = " " * indent
    if isinstance(b[0], list):
        i = 0
        parts = []
        while isinstance(b[i], list):
            parts.append(swift_body(b[i], extensible, indent + 8))
            i += 1
        subtype = b[i]
        ext = b[i + 1:] if extensible else []
        args = [f"parts: [\n{pad}        " + f",\n{pad}        ".join(parts) + "]", f"subtype: {swift_string(subtype)}"]
        if ext:
            args.append(f"parameters: {swift_params(ext[0])}")
            if len(ext) > 1:
                args.append(f"disposition: {swift_disposition(ext[1])}")
            if len(ext) > 2:
                args.append(f"language: {swift_language(ext[2])}")
            if len(ext) > 3:
                args.append(f"location: {swift_string(ext[3])}")
        return ".multipart(.init(" + f",\n{pad}    ".join(args) + "))"
    t, st, params, id_, desc, enc, size = b[:7]
    rest = b[7:]
    args = [f"type: {swift_string(t)}", f"subtype: {swift_string(st)}", f"parameters: {swift_params(params)}"]
    if id_ is not None:
        args.append(f"id: {swift_string(id_)}")
    if desc is not None:
        args.append(f"description: {swift_string(desc)}")
    args.append(f"encoding: {swift_string(enc)}")
    args.append(f"size: {size}")
    if t.lower() == "message" and st.lower() in ("rfc822", "global") and len(rest) >= 3:
        env, body, lines = rest[:3]
        rest = rest[3:]
        args.append(f"lines: {lines}")
        args.append(f"message: .init(envelope: {swift_envelope(env, indent + 4)},\n{pad}        body: {swift_body(body, extensible, indent + 8)})")
    elif t.lower() == "text":
        args.append(f"lines: {rest[0]}")
        rest = rest[1:]
    if extensible and rest:
        if rest[0] is not None:
            args.append(f"md5: {swift_string(rest[0])}")
        if len(rest) > 1 and rest[1] is not None:
            args.append(f"disposition: {swift_disposition(rest[1])}")
        if len(rest) > 2 and rest[2] is not None:
            args.append(f"language: {swift_language(rest[2])}")
        if len(rest) > 3 and rest[3] is not None:
            args.append(f"location: {swift_string(rest[3])}")
    return ".singlepart(.init(" + ", ".join(args) + "))"


SECTIONS = ["BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "BODY.PEEK[1.MIME]", "BODY.PEEK[2]",
            "BODY.PEEK[2.MIME]", "BODY.PEEK[2.HEADER]", "BODY.PEEK[2.TEXT]", "BODY.PEEK[2.1]", "BODY.PEEK[2.1.MIME]",
            "BODY.PEEK[1.1]", "BODY.PEEK[1.2]", "BODY.PEEK[3]", "BINARY.PEEK[1]", "BINARY.SIZE[1]", "BINARY.PEEK[2]"]


def main():
    want = [a for a in sys.argv[1:] if not a.startswith("--")]
    show_sections = "--sections" in sys.argv
    fx = fixtures()
    for name, message in fx.items():
        if want and name not in want:
            continue
        out = run_dovecot(message, ["FETCH 1 (BODYSTRUCTURE BODY ENVELOPE RFC822.SIZE)"])
        items = fetch_items(out)
        print(f"// {name}: RFC822.SIZE {items['RFC822.SIZE']}")
        print(f'"{name}": {swift_body(items["BODYSTRUCTURE"], True, 4)},')
        print(f'// BODY: {swift_body(items["BODY"], False, 4)}')
        print(f'"{name}": {swift_envelope(items["ENVELOPE"], 4)},')
        if show_sections:
            for s in SECTIONS:
                o = run_dovecot(message, [f"FETCH 1 ({s})"])
                try:
                    it = fetch_items(o)
                    v = list(it.values())[0]
                    print(f"//   {s}: {swift_string(v) if not isinstance(v, str) or not v.isdigit() else v}")
                except Exception:
                    tagged = [l for l in o.split(b"\r\n") if l.startswith(b"a1 ")]
                    print(f"//   {s}: {tagged[0].decode() if tagged else o[-200:]}")
        print()


if __name__ == "__main__":
    main()
