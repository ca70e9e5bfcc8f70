"""MIME cross-checks against Python's `email` package (policy=default).

1. Messages built by `swallow mime build` (Chinese, Japanese, emoji, long names, attachments, HTML
   alternative, inline image) are parsed by Python to the same headers, parts, file names and bytes.
2. `swallow mime show --json --data` over a corpus of real messages (CPython's email test data, shipped
   by Debian's libpython3.11-testsuite) never crashes and agrees with Python on subjects, addresses, part
   counts, file names and attachment bytes, except for the malformed inputs listed in CORPUS_EXCEPTIONS.
   Where Python's default policy cannot read a field its compat32 parser is asked; where neither can,
   the value expected is written in CORPUS_EXPECTED, or the case fails (never compared with our own
   output, never skipped).
"""

from __future__ import annotations

import base64
import email
import email.header
import email.policy
import email.utils
import glob
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, SWALLOW_BIN, _check_binary

CORPUS_DIRS = [
    # .ci/run unpacks Debian's libpython3.11-testsuite here (installing it would upgrade the system Python).
    *([os.environ["SWALLOW_EMAIL_CORPUS"]] if os.environ.get("SWALLOW_EMAIL_CORPUS") else []),
    "/usr/lib/python3.11/test/test_email/data",
    "/usr/lib/python3/test/test_email/data",
]

# file name -> {aspect: reason}. Aspects: subject, addresses, parts, attachments.
CORPUS_EXCEPTIONS: dict[str, dict[str, str]] = {}

# file name -> {aspect: expected value}, written by hand for inputs neither of Python's parsers
# (policy=default, then compat32) can read. Aspects: "subject" (str or None), "from"/"to"/"cc" (list of
# addr-specs), "filename <part index>" (str or None). An input Python cannot parse and that has no
# entry here fails: every case is checked against an oracle independent of our own code.
CORPUS_EXPECTED: dict[str, dict[str, object]] = {}


def run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SWALLOW_BIN), *args], input=input, capture_output=True, timeout=60)


def build(tmp_path: Path, *, attach=(), inline=(), html: str | None = None, **opts) -> bytes:
    _check_binary()
    argv = ["mime", "build", "--date", "Sun, 22 Nov 2026 01:25:42 +0000", "--hostname", "mx.example.test"]
    for key, value in opts.items():
        flag = "--" + key.replace("_", "-")
        for v in value if isinstance(value, (list, tuple)) else [value]:
            argv += [flag, v]
    if html is not None:
        p = tmp_path / "body.html"
        p.write_text(html, encoding="utf-8")
        argv += ["--html-file", str(p)]
    for name, data in attach:
        p = tmp_path / "attach" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        argv += ["--attach", str(p)]
    for name, data in inline:
        p = tmp_path / "inline" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        argv += ["--inline", str(p)]
    r = run(*argv)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def check_canonical(raw: bytes) -> None:
    assert b"\r\n" in raw
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
    assert b"\r" not in raw.replace(b"\r\n", b""), "bare CR"
    assert all(b < 0x80 for b in raw), "8-bit octet in a 7-bit message"
    for line in raw.split(b"\r\n"):
        assert len(line) <= 78, f"line over 78 octets: {line!r}"


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def text_of(part) -> str:
    return part.get_content().replace("\r\n", "\n")


BINARY = bytes(range(256)) * 9 + b"\x00\r\n\r\n.\r\nFrom x\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + os.urandom(200)

BUILD_CASES = {
    "chinese": dict(
        from_="发件人名称 <alice@example.test>",
        to=["张三 <zhangsan@example.test>", "bob@example.test"],
        cc=["李四 <lisi@example.test>"],
        subject="会议纪要：第三季度的预算与计划",
        body="各位好，\n\n附件是会议纪要，请查收。\n谢谢！\n",
        attach=[("会议纪要.pdf", BINARY)],
    ),
    "japanese": dict(
        from_="山田太郎 <taro@example.test>",
        to=["佐藤花子 <hanako@example.test>"],
        subject="日本語の件名：お見積もりの件について（再送）",
        body="いつもお世話になっております。\nお見積もりを添付いたします。\n",
        attach=[("見積書_2026年11月.xlsx", b"PK\x03\x04" + os.urandom(500))],
    ),
    "emoji": dict(
        from_="Party 🎉 Bot <bot@example.test>",
        to=["Family 👨‍👩‍👧‍👦 <family@example.test>"],
        subject=" ".join(["🎉🎂 Happy birthday! 👨‍👩‍👧‍👦"] * 4),
        body="Cake 🎂 at 5!\n",
    ),
    "long_names": dict(
        from_="A Very Long Display Name That Goes On And On For Quite A While Indeed <alice@example.test>",
        to=["非常非常非常非常非常非常非常非常非常非常长的中文显示名称 <long@example.test>"],
        subject="Long subject " + "with many words " * 12 + "and 中文 at the end 末尾",
        body="x" * 200 + "\n" + "中文" * 300 + "\n",
        attach=[
            ("非常长的附件文件名称" * 8 + ".txt", "内容\n".encode("utf-8")),
            ("a-very-long-ascii-file-name-" * 5 + ".bin", BINARY),
            ("semi;colon \"quoted\" name.dat", b"abc"),
        ],
    ),
    "html_alternative": dict(
        from_="alice@example.test",
        to=["bob@example.test"],
        subject="HTML and text",
        body="Plain version\n",
        html="<html><body><p>HTML <b>version</b> — 中文</p>" + "<p>para</p>" * 50 + "</body></html>\n",
    ),
    "inline_image": dict(
        from_="alice@example.test",
        to=["bob@example.test"],
        subject="Inline image",
        body="See the logo.\n",
        html='<p>Logo: <img src="cid:logo.png"></p>\n',
        inline=[("logo.png", PNG)],
        attach=[("data.csv", b"a,b\r\n1,2\r\n")],
    ),
}


@pytest.mark.parametrize("case", sorted(BUILD_CASES))
def test_builder_output_parsed_by_python(case, tmp_path):
    spec = dict(BUILD_CASES[case])
    attach = spec.pop("attach", ())
    inline = spec.pop("inline", ())
    html = spec.pop("html", None)
    opts = {("from" if k == "from_" else k): v for k, v in spec.items()}
    opts["bcc"] = ["hidden@example.test"]
    raw = build(tmp_path, attach=attach, inline=inline, html=html, **opts)
    check_canonical(raw)
    msg = parse(raw)
    assert not [d for d in msg.defects], msg.defects

    assert str(msg["subject"]) == spec["subject"].strip()
    exp_from = email.headerregistry.Address  # noqa: F841 (documentation)
    (frm,) = msg["from"].addresses
    name, _, addr = spec and opts["from"].rpartition(" <") if "<" in opts["from"] else ("", "", opts["from"] + ">")
    assert frm.addr_spec == addr.rstrip(">")
    assert frm.display_name == name
    for header in ("to", "cc"):
        wanted = opts.get(header, [])
        got = msg[header].addresses if msg[header] is not None else ()
        assert len(got) == len(wanted)
        for a, w in zip(got, wanted):
            if "<" in w:
                n, _, ad = w.rpartition(" <")
                assert a.addr_spec == ad.rstrip(">")
                if len(n.encode()) > 40 and a.display_name != n:
                    # Known Python 3.11 bug: in a display name (an RFC 5322 phrase) it inserts a space
                    # between adjacent encoded words, which RFC 2047 §6.2 says to ignore. A long name
                    # must be split into several encoded words (75-character limit, RFC 2047 §2), so
                    # only the inserted spaces may differ; our parser must give the exact name.
                    assert a.display_name.replace(" ", "") == n.replace(" ", "")
                    shown = json.loads(run("mime", "show", "--json", "-", input=raw).stdout)
                    assert n in [x["name"] for x in shown[header]]
                else:
                    assert a.display_name == n
            else:
                assert (a.display_name, a.addr_spec) == ("", w)
    assert msg["bcc"] is None, "Bcc must not be in the header"
    assert msg["message-id"].endswith("@mx.example.test>")
    assert msg["mime-version"] == "1.0"

    body = msg.get_body(("plain",))
    assert text_of(body) == opts["body"].replace("\r\n", "\n")
    if html is not None:
        assert text_of(msg.get_body(("html",))) == html
    got_attachments = {p.get_filename(): p.get_payload(decode=True) for p in msg.walk() if p.get_filename()}
    for name, data in list(attach) + list(inline):
        assert got_attachments.get(name) == data, f"attachment {name!r}"
    for name, _ in inline:
        part = next(p for p in msg.walk() if p.get_filename() == name)
        assert part["content-id"] == f"<{name}>"
        assert part.get_content_disposition() == "inline"
        assert msg.get_body(("related",)) is not None
    if html is not None:
        assert any(p.get_content_type() == "multipart/alternative" for p in msg.walk())
    if attach:
        assert msg.get_content_type() == "multipart/mixed"
        for name, _ in attach:
            part = next(p for p in msg.walk() if p.get_filename() == name)
            assert part.get_content_disposition() == "attachment"

    # Our own parser reads what was asked for (the expected values of the case, not its own output).
    shown = json.loads(run("mime", "show", "--json", "-", input=raw).stdout)
    assert shown["subject"] == spec["subject"].strip()
    assert shown["diagnostics"] == []


def test_show_text_and_errors(tmp_path):
    raw = build(tmp_path, attach=[("报告.pdf", BINARY)], **{"from": "发件人名称 <alice@example.test>", "to": "bob@example.test",
                                                           "subject": "中文主题", "body": "hi"})
    p = tmp_path / "m.eml"
    p.write_bytes(raw)
    r = run("mime", "show", str(p))
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "中文主题" in out and "发件人名称 <alice@example.test>" in out
    assert "报告.pdf" in out and "application/pdf" in out and f"{len(BINARY)} bytes" in out
    assert "multipart/mixed" in out
    r = run("mime", "show", str(tmp_path / "missing.eml"))
    assert r.returncode != 0
    err = r.stderr.decode().strip()
    assert err.startswith("swallow: cannot read") and len(err.splitlines()) == 1
    r = run("mime", "show", str(tmp_path))
    assert r.returncode != 0 and len(r.stderr.decode().strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------------
# corpus


def corpus_files() -> list[str]:
    for d in CORPUS_DIRS:
        files = sorted(glob.glob(os.path.join(d, "*.txt")))
        if files:
            return files
    return []


CORPUS = corpus_files()


def norm_space(s: str | None) -> str | None:
    return None if s is None else re.sub(r"\s+", " ", s).strip()


class NoOracle(Exception):
    """Neither of Python's parsers can read this field (and CORPUS_EXPECTED has no value for it)."""


def py_subject(msg, compat) -> str | None:
    """The Subject as Python decodes it: policy=default, else compat32 with email.header."""
    try:
        value = msg["subject"]
        return None if value is None else str(value)
    except Exception as first:  # noqa: BLE001 - try the other parser
        try:
            raw = compat["subject"]
            if raw is None:
                return None
            return str(email.header.make_header(email.header.decode_header(raw)))
        except Exception as second:  # noqa: BLE001
            raise NoOracle(f"subject: policy=default {first!r}, compat32 {second!r}")


def py_addresses(msg, compat, header) -> list[str]:
    """Addr-specs of every `header` field (some messages repeat To/Cc) as Python reads them:
    policy=default (which writes an empty address as "<>"), else compat32 with email.utils.getaddresses
    (which turns an empty group such as `undisclosed-recipients:;` into ('', ''): dropped, unless the
    field has a literal null address `<>`)."""
    try:
        return [("" if a.addr_spec == "<>" else a.addr_spec) for h in (msg.get_all(header) or []) for a in h.addresses]
    except Exception as first:  # noqa: BLE001 - try the other parser
        try:
            out = []
            for value in compat.get_all(header, []):
                value = str(value)
                out += [addr for name, addr in email.utils.getaddresses([value]) if addr or name or "<>" in value]
            return out
        except Exception as second:  # noqa: BLE001
            raise NoOracle(f"{header}: policy=default {first!r}, compat32 {second!r}")


def py_filename(part, compat_part) -> str | None:
    """A part's file name as Python reads it: policy=default, else compat32 (RFC 2231 collapsed and
    RFC 2047 decoded)."""
    try:
        return part.get_filename() or None
    except Exception as first:  # noqa: BLE001 - try the other parser
        try:
            name = compat_part.get_filename()
            if not name:
                return None
            return str(email.header.make_header(email.header.decode_header(name)))
        except Exception as second:  # noqa: BLE001
            raise NoOracle(f"filename: policy=default {first!r}, compat32 {second!r}")


def oracle(expected: dict, key: str, compute):
    """The hand-written expectation for `key` if there is one, else Python's answer."""
    return expected[key] if key in expected else compute()


def test_corpus_present():
    if not CORPUS:
        message = "CPython email test data not found (apt-get install libpython3.11-testsuite)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize("path", CORPUS, ids=[os.path.basename(p) for p in CORPUS])
def test_corpus_agrees_with_python(path):
    _check_binary()
    name = os.path.basename(path)
    allowed = CORPUS_EXCEPTIONS.get(name, {})
    r = run("mime", "show", "--json", "--data", path)
    assert r.returncode == 0, r.stderr.decode()
    ours = json.loads(r.stdout)
    raw = Path(path).read_bytes()
    msg = parse(raw)

    compat = email.message_from_bytes(raw, policy=email.policy.compat32)
    expected = CORPUS_EXPECTED.get(name, {})

    problems = []
    if "subject" not in allowed:
        try:
            subject = oracle(expected, "subject", lambda: py_subject(msg, compat))
            if norm_space(subject) != norm_space(ours["subject"]):
                problems.append(f"subject: python {subject!r} ours {ours['subject']!r}")
        except NoOracle as exc:
            problems.append(f"no oracle for {exc} (ours {ours['subject']!r}); add the value to CORPUS_EXPECTED")
    if "addresses" not in allowed:
        for header in ("from", "to", "cc"):
            got = [a["address"] for a in ours[header]]
            try:
                py = oracle(expected, header, lambda: py_addresses(msg, compat, header))
            except NoOracle as exc:
                problems.append(f"no oracle for {exc} (ours {got!r}); add the value to CORPUS_EXPECTED")
                continue
            if py != got:
                problems.append(f"{header}: python {py!r} ours {got!r}")
    py_parts = list(msg.walk())
    compat_parts = list(compat.walk())
    assert len(compat_parts) == len(py_parts), "Python's two parsers disagree on the MIME structure"
    if "parts" not in allowed:
        if len(py_parts) != len(ours["parts"]):
            problems.append(f"part count: python {len(py_parts)} ours {len(ours['parts'])}")
        else:
            py_types = [p.get_content_type() for p in py_parts]
            our_types = [p["content_type"] for p in ours["parts"]]
            if py_types != our_types:
                problems.append(f"types: python {py_types} ours {our_types}")
    if "attachments" not in allowed:
        if len(py_parts) != len(ours["parts"]):
            problems.append(f"file names and bytes not comparable: python {len(py_parts)} parts, ours {len(ours['parts'])}")
        else:
            for index, (p, c, o) in enumerate(zip(py_parts, compat_parts, ours["parts"])):
                # Every part's file name, including "none": ours must not invent one either.
                try:
                    filename = oracle(expected, f"filename {index}", lambda: py_filename(p, c))
                except NoOracle as exc:
                    problems.append(f"part {index}: no oracle for {exc} (ours {o['filename']!r}); add it to CORPUS_EXPECTED")
                    continue
                if filename != o["filename"]:
                    problems.append(f"part {index} filename: python {filename!r} ours {o['filename']!r}")
                if not filename or p.is_multipart() or p.get_content_maintype() == "message":
                    continue
                data = p.get_payload(decode=True) or b""
                if base64.b64decode(o.get("data_base64") or "") != data:
                    problems.append(f"part {index} ({filename}) bytes differ: python {len(data)} ours {o['size']}")
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


def test_corpus_mutations_do_not_crash(tmp_path):
    """Truncations and byte flips of every corpus file: exit 0 with JSON, within the timeout."""
    _check_binary()
    import random

    rng = random.Random(2026)
    for path in CORPUS[:40]:
        raw = Path(path).read_bytes()
        for i in range(3):
            data = bytearray(raw)
            for _ in range(rng.randint(1, 20)):
                if not data:
                    break
                pos = rng.randrange(len(data))
                data[pos] = rng.choice(b"-=?\r\n:;\"<>\x00\xff")
            if i == 2:
                data = data[: rng.randrange(len(data) + 1)]
            r = run("mime", "show", "--json", "-", input=bytes(data))
            assert r.returncode == 0, (path, r.stderr.decode())
            json.loads(r.stdout)
