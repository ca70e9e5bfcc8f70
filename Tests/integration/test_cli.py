"""The administration commands as a new user meets them: what they create, what they refuse, and that
no command leaves mail with nowhere to go."""

from __future__ import annotations

import smtplib
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import CLI_TIMEOUT, free_port, render_config
from test_submission import make_submission_server  # noqa: F401  (fixture)


def run(swallow_bin, *args, cwd=None, input=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(swallow_bin), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT,
                          cwd=cwd, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, f"expected a failure: {result.stdout!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swallow: "), result.stderr
    return lines[0]


# --- mail silently lost -------------------------------------------------------------------------


def test_alias_left_without_its_user_is_refused_at_rcpt(server):
    """Removing a user that an alias points at must not leave an alias that answers 250 and stores
    the message nowhere. Here the database is changed by hand (as another tool or an older version
    could leave it): the alias row stays, its user is gone."""
    server.cli("alias", "add", "info@example.test", "bob@example.test")
    with server.smtp() as client:
        assert client.sendmail("s@remote.test", ["info@example.test"], "Subject: before\r\n\r\nx\r\n") == {}
    assert [m["Subject"] for m in server.wait_messages("bob@example.test", 1)] == ["before"]
    import sqlite3

    db = sqlite3.connect(server.data_dir / "swallow.sqlite")
    db.execute("DELETE FROM users WHERE address = 'bob@example.test'")
    db.commit()
    db.close()
    with server.smtp() as client:
        client.ehlo("client.example.net")
        client.mail("s@remote.test")
        code, text = client.rcpt("info@example.test")
        assert (code, text[:5]) == (550, b"5.1.1"), (code, text)
    assert "mailboxes=0" not in server.log_text()


def test_user_remove_names_the_aliases_and_removes_them_only_with_the_flag(server):
    server.cli("alias", "add", "info@example.test", "bob@example.test")
    server.cli("alias", "add", "sales@example.test", "info@example.test")   # through another alias
    server.cli("alias", "add", "team@example.test", "alice@example.test", "bob@example.test")
    refused = server.cli("user", "remove", "bob@example.test", check=False)
    line = one_line_error(refused)
    assert "info@example.test" in line and "team@example.test" in line and "--remove-aliases" in line, line
    assert "bob@example.test" in server.cli("user", "list").stdout  # nothing was removed

    removed = server.cli("user", "remove", "bob@example.test", "--remove-aliases")
    assert "removed bob@example.test" in removed.stdout and "info@example.test" in removed.stdout, removed.stdout
    aliases = server.cli("alias", "list").stdout
    assert "team@example.test\talice@example.test\n" in aliases, aliases  # alice stays in team
    assert "info@" not in aliases and "sales@" not in aliases, aliases  # emptied, directly and through info
    with server.smtp() as client:
        client.ehlo("client.example.net")
        client.mail("s@remote.test")
        for rcpt in ("bob@example.test", "info@example.test", "sales@example.test"):
            code, text = client.rcpt(rcpt)
            assert (code, text[:5]) == (550, b"5.1.1"), (rcpt, code, text)
        assert client.rcpt("team@example.test")[0] == 250


# --- commands that create data by accident ------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("user", "list"), ("user", "remove", "a@localhost"), ("user", "passwd", "a@localhost", "--password-stdin"),
    ("alias", "list"), ("alias", "remove", "a@localhost"),
    ("queue", "list"), ("queue", "retry"), ("queue", "show", "0123456789ABCDEF"), ("queue", "hold", "0123456789ABCDEF"),
])
def test_commands_other_than_serve_and_add_create_nothing(swallow_bin, tmp_path, args):
    result = run(swallow_bin, *args, cwd=tmp_path, input="a long passphrase\n")
    line = one_line_error(result)
    assert f"no data directory at {tmp_path}/swallow-data" in line, line
    assert "--config" in line, line
    assert list(tmp_path.iterdir()) == [], "the command created files"


def test_queue_list_before_anything_was_queued(swallow_bin, tmp_path):
    assert run(swallow_bin, "user", "add", "you@localhost", "--password-stdin", cwd=tmp_path,
               input="a long passphrase\n").returncode == 0
    listing = run(swallow_bin, "queue", "list", cwd=tmp_path)
    assert (listing.returncode, listing.stdout) == (0, "the queue is empty\n"), listing
    assert not (tmp_path / "swallow-data" / "queue").exists()


def test_missing_data_dir_of_a_config_file_is_named(swallow_bin, tmp_path):
    config = tmp_path / "swallow.toml"
    config.write_text(render_config(data_dir=tmp_path / "nowhere", port=free_port()))
    line = one_line_error(run(swallow_bin, "user", "list", "--config", str(config)))
    assert f"no data directory at {tmp_path}/nowhere" in line and str(config) in line, line
    assert not (tmp_path / "nowhere").exists()


# --- small ones ---------------------------------------------------------------------------------


def test_version(swallow_bin):
    result = run(swallow_bin, "--version")
    assert result.returncode == 0 and result.stdout.strip() == "0.2.0-dev", result


@pytest.mark.parametrize("password,accepted", [("", False), ("12345", False), ("1234567", False), ("12345678", True)])
def test_password_minimum_length(swallow_bin, tmp_path, password, accepted):
    result = run(swallow_bin, "user", "add", "you@localhost", "--password-stdin", cwd=tmp_path, input=password + "\n")
    if accepted:
        assert result.returncode == 0, result.stderr
    else:
        line = one_line_error(result)
        assert ("at least 8 characters" in line) or (password == "" and "empty" in line), line


def test_password_change_has_the_same_minimum(server):
    line = one_line_error(server.cli("user", "passwd", "alice@example.test", "--password-stdin", input="short\n", check=False))
    assert "at least 8 characters (5 given)" in line, line


def test_queue_states_read_as_english(make_server):
    """`queue hold` of a held message and `queue release` of one that is not held say what the
    message is in words ("is held", not "is hold")."""
    server = make_server(smtp_extra={"relay_networks": ["127.0.0.0/8"]},
                         routes=[{"domain": "unreachable.test", "via": f"127.0.0.1:{free_port()}"}])
    with server.smtp() as client:
        client.sendmail("s@example.test", ["r@unreachable.test"], "Subject: q\r\n\r\nx\r\n")
    qid = None
    for _ in range(300):
        listing = server.cli("queue", "list").stdout
        if " deferred " in listing:
            qid = listing.split()[0]
            break
    assert qid, f"the message was never deferred:\n{listing}"
    assert f"{qid} held" in server.cli("queue", "hold", qid).stdout
    again = one_line_error(server.cli("queue", "hold", qid, check=False))
    assert f"{qid} is held; only messages waiting for delivery" in again, again
    server.cli("queue", "release", qid)
    line = one_line_error(server.cli("queue", "release", qid, check=False))
    assert line.endswith(", not held") and " is hold" not in line, line


def test_listen_error_names_the_system_error_once(swallow_bin, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    config = tmp_path / "swallow.toml"
    config.write_text(render_config(data_dir=tmp_path / "data", port=port))
    try:
        result = run(swallow_bin, "serve", "--config", str(config))
    finally:
        busy.close()
    assert result.returncode == 78, result
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use (errno 98)" in result.stderr, result.stderr
    assert ") (errno" not in result.stderr


def test_mime_show_lists_delivery_status_fields(swallow_bin, tmp_path):
    dsn = (
        "From: MAILER-DAEMON@x.test\r\nTo: a@x.test\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.x.test\r\n\r\n"
        "Final-Recipient: rfc822; bob@y.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "Final-Recipient: rfc822; carol@y.test\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
        "--b--\r\n"
    )
    path = tmp_path / "dsn.eml"
    path.write_bytes(dsn.encode())
    out = run(swallow_bin, "mime", "show", str(path)).stdout
    assert "message/delivery-status" in out and "(per-message fields, 2 recipients)" in out, out
    assert "message: Reporting-MTA: dns; mx.x.test\n" in out, out
    assert "recipient: Final-Recipient: rfc822; bob@y.test | Action: failed | Status: 5.1.1\n" in out, out
    assert "recipient: Final-Recipient: rfc822; carol@y.test | Action: delayed | Status: 4.4.1\n" in out, out
    assert "0 bytes" not in out, out


def test_config_show_prints_the_configuration_in_force(swallow_bin, tmp_path):
    """`config show` prints every key with defaults filled in; what it prints is itself a valid
    configuration with the same values (`config check` accepts it, `config show` of it is the same)."""
    config = tmp_path / "swallow.toml"
    config.write_text(render_config(data_dir=tmp_path / "data", port=2525, limits={"max_recipients": 7}))
    shown = run(swallow_bin, "config", "show", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert "max_recipients = 7" in shown.stdout and "max_hops = 50" in shown.stdout, shown.stdout
    assert f'data_dir = "{tmp_path}/data"' in shown.stdout
    again = tmp_path / "shown.toml"
    again.write_text(shown.stdout)
    assert run(swallow_bin, "config", "check", "--config", str(again)).returncode == 0
    body = lambda text: text.split("\n", 1)[1]  # the first line names the file
    assert body(run(swallow_bin, "config", "show", "--config", str(again)).stdout) == body(shown.stdout)
    assert not (tmp_path / "data").exists()  # showing a configuration creates nothing


def test_config_reference_is_the_readme_block(swallow_bin):
    from conftest import REPO_ROOT
    import re

    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"## Configuration\n.*?```toml\n(.*?)```", readme, flags=re.S).group(1)
    assert run(swallow_bin, "config", "reference").stdout == block


def test_login_passwords_of_send_and_fetch_have_no_minimum(swallow_bin):
    """The minimum applies to new passwords only: `send`/`fetch` pass what they are given to the server
    (here nothing listens, so they fail on the connection, not on the password's length)."""
    for args in (["send", "--server", "127.0.0.1:1", "--user", "u@x.test", "--password-stdin", "--from", "u@x.test",
                  "--to", "v@x.test", "--subject", "s", "--body", "b"],
                 ["fetch", "--server", "127.0.0.1:1", "--user", "u@x.test", "--password-stdin", "--maildir", "/nonexistent/m"]):
        result = run(swallow_bin, *args, input="short\n")
        assert result.returncode != 0
        assert "too short" not in result.stderr, result.stderr


# --- the daily tools ----------------------------------------------------------------------------


def test_queue_tools_take_many_ids_stdin_and_all(make_server):
    """`queue list` filters, totals and `--json`; `hold --all`, `release -` (IDs on standard input),
    `delete ID ID`; a bad ID among good ones is reported and the others still done (exit 1)."""
    import json as jsonlib
    import time
    server = make_server(smtp_extra={"relay_networks": ["127.0.0.0/8"]},
                         routes=[{"domain": "unreachable.test", "via": f"127.0.0.1:{free_port()}"},
                                 {"domain": "other.test", "via": f"127.0.0.1:{free_port()}"}])
    with server.smtp() as client:
        for n in range(3):
            client.sendmail(f"s{n}@example.test", [f"r{n}@unreachable.test"], f"Subject: q{n}\r\n\r\n{'x' * 100}\r\n")
        client.sendmail("other@example.test", ["r@other.test"], "Subject: o\r\n\r\nx\r\n")
    deadline = time.monotonic() + 60
    while True:
        items = jsonlib.loads(server.cli("queue", "list", "--json").stdout)
        if len(items) == 4 and all(i["state"] == "deferred" for i in items):
            break
        assert time.monotonic() < deadline, items
        time.sleep(0.2)
    assert all(i["size"] > 100 and i["attempts"] == 1 and i["last_error"] for i in items), items
    listing = server.cli("queue", "list").stdout.splitlines()
    assert listing[-1].startswith("-- 4 messages, ") and listing[-1].endswith("octets (deferred 4)"), listing
    assert "  size " in listing[0]
    only = server.cli("queue", "list", "--to", "OTHER.test").stdout.splitlines()
    assert len(only) == 2 and "to r@other.test" in only[0] and only[1].startswith("-- 1 message, "), only
    assert server.cli("queue", "list", "--from", "nobody").stdout == "no message matches\n"
    assert server.cli("queue", "list", "--state", "hold", "--json").stdout.strip() == "[]"
    bad = server.cli("queue", "list", "--state", "frozen", check=False)
    assert bad.returncode != 0 and "--state must be one of" in bad.stderr

    held = server.cli("queue", "hold", "--all").stdout.splitlines()
    assert sorted(held) == sorted(f"{i['id']} held" for i in items)
    ids = [i["id"] for i in items]
    released = server.cli("queue", "release", "-", input="\n".join(ids[:2]) + "\n").stdout.splitlines()
    assert released == [f"{ids[0]} released", f"{ids[1]} released"]
    mixed = server.cli("queue", "delete", ids[2], "0123456789ABCDEF", ids[3], check=False)
    assert mixed.returncode == 1 and mixed.stdout.splitlines() == [f"{ids[2]} deleted", f"{ids[3]} deleted"], mixed
    assert mixed.stderr.strip() == "swallow: no message 0123456789ABCDEF in the queue", mixed.stderr
    assert {i["id"] for i in jsonlib.loads(server.cli("queue", "list", "--json").stdout)} == set(ids[:2])
    neither = server.cli("queue", "hold", check=False)
    assert neither.returncode != 0 and "give at least one queue ID" in neither.stderr


def test_configuration_is_found_without_config(swallow_bin, tmp_path):
    """Without --config: $SWALLOW_CONFIG, then ./swallow.toml (then /etc/swallow/swallow.toml, then the
    embedded default)."""
    import os
    here = tmp_path / "here"
    here.mkdir()
    (here / "swallow.toml").write_text(render_config(data_dir=here / "data", port=free_port(), domains=("found.test",)))
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(render_config(data_dir=tmp_path / "data2", port=free_port(), domains=("env.test",)))
    checked = run(swallow_bin, "config", "check", cwd=here)
    assert checked.returncode == 0 and checked.stdout.startswith("swallow.toml: OK (domains: found.test;"), checked
    env = dict(os.environ, SWALLOW_CONFIG=str(elsewhere))
    by_env = subprocess.run([str(swallow_bin), "config", "check"], cwd=here, env=env, capture_output=True, text=True,
                            timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
    assert by_env.returncode == 0 and f"{elsewhere}: OK (domains: env.test;" in by_env.stdout, by_env
    explicit = run(swallow_bin, "config", "check", "--config", str(here / "swallow.toml"), cwd=tmp_path)
    assert "found.test" in explicit.stdout
    missing = subprocess.run([str(swallow_bin), "config", "check"], cwd=here, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                             env=dict(os.environ, SWALLOW_CONFIG=str(tmp_path / "nope.toml")), stdin=subprocess.DEVNULL)
    assert missing.returncode != 0 and "nope.toml" in missing.stderr, missing
    # The user added here lands in the data directory of ./swallow.toml.
    assert run(swallow_bin, "user", "add", "a@found.test", "--password-stdin", cwd=here, input="a long passphrase\n").returncode == 0
    assert (here / "data" / "swallow.sqlite").exists()


def test_catch_all_receives_but_does_not_own(make_submission_server):
    """`alias add @example.test bob@example.test`: unknown addresses of the domain go to bob, known ones
    keep their place; bob may not send as an address he only receives for."""
    from test_submission import BOB, message, submission
    server = make_submission_server()
    server.cli("alias", "add", "@example.test", BOB)
    assert "@example.test\tbob@example.test" in server.cli("alias", "list").stdout
    with server.smtp() as client:
        assert client.sendmail("s@remote.test", ["anything@example.test", "alice@example.test"], "Subject: c\r\n\r\nx\r\n") == {}
    assert [m["Subject"] for m in server.wait_messages(BOB, 1)] == ["c"]
    assert [m["Subject"] for m in server.wait_messages("alice@example.test", 1)] == ["c"]
    with submission(server, user=BOB) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            s.sendmail("anything@example.test", ["alice@example.test"], message(frm="anything@example.test"))
        assert refused.value.smtp_code == 553, refused.value
    bad = server.cli("alias", "add", "@elsewhere.test", BOB, check=False)
    assert bad.returncode != 0 and "not in the configured domains" in bad.stderr
    server.cli("alias", "remove", "@example.test")
    with server.smtp() as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("s@remote.test", ["anything@example.test"], "Subject: c\r\n\r\nx\r\n")
