"""The README's five-minute tour, run as written.

Every ```sh and ```python block of the "Five-minute tour" section runs in order, in an empty
directory that holds `.build/debug/swallow` (a link to the binary under test), with HOME in that
directory. The tour uses the embedded default's fixed ports on 127.0.0.1 and mail to a remote domain
(example.org), so it runs in a network namespace of its own (`unshare --net`, only a loopback
device): the fixed ports cannot collide with anything, and the queue's DNS look-up for example.org
fails at once instead of leaving the machine. Two lines are not run as written: `swift build` (the
binary under test is already built) and `.build/debug/swallow serve &`, which is started the same way
but followed by a wait until every port listens, as a person waits for the banner.
"""

import os
import re
import signal
import subprocess
from pathlib import Path

from conftest import REPO_ROOT, require_root, require_tool

README = REPO_ROOT / "README.md"
PORTS = (2525, 2587, 2465, 2110, 2995)


def tour_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index("## Five-minute tour")
    end = text.index("\n## ", start + 1)
    section = text[start:end]
    blocks = re.findall(r"```(sh|python)\n(.*?)```", section, flags=re.S)
    assert blocks, "no code blocks in the README's tour"
    return blocks


def sh_commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        commands.append(line)
    return commands


WAIT_FOR_PORTS = """python3 - <<'EOF'
import socket, sys, time
deadline = time.monotonic() + 30
for port in %r:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("the server does not listen on %%d" %% port)
            time.sleep(0.05)
EOF
""" % (PORTS,)


def driver_script(blocks: list[tuple[str, str]], workdir: Path) -> str:
    lines = [
        "set -euo pipefail",
        "ip link set lo up",
        f"cd {workdir}",
        "stop() { if [ -s serve.pid ]; then kill -TERM \"$(cat serve.pid)\" 2>/dev/null || true; "
        "for _ in $(seq 100); do kill -0 \"$(cat serve.pid)\" 2>/dev/null || return 0; sleep 0.1; done; "
        "kill -KILL \"$(cat serve.pid)\" 2>/dev/null || true; fi; }",
        "trap stop EXIT",
    ]
    served = False
    for n, (language, body) in enumerate(blocks):
        if language == "python":
            script = workdir / f"block{n}.py"
            script.write_text(body)
            lines += [f"echo '## python block {n}'", f"python3 {script.name}"]
            continue
        for command in sh_commands(body):
            lines.append(f"echo '## ' {shlex_quote(command)}")
            bare = command.split("#", 1)[0].strip()
            if bare == "swift build":
                continue
            if bare.endswith("serve &"):
                lines += [f"{bare[:-1].strip()} > serve.log 2>&1 &", "echo $! > serve.pid", WAIT_FOR_PORTS]
                served = True
                continue
            lines.append(command)
    assert served, "the tour does not start the server"
    lines += ["stop", "echo '## tour done'"]
    return "\n".join(lines) + "\n"


def shlex_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_readme_tour_runs_as_written(swallow_bin, tmp_path):
    require_root("unshare --net")
    for tool in ("unshare", "ip", "swaks"):
        require_tool(tool)
    workdir = tmp_path / "tour"
    (workdir / ".build" / "debug").mkdir(parents=True)
    os.symlink(swallow_bin, workdir / ".build" / "debug" / "swallow")
    script = workdir / "tour.sh"
    script.write_text(driver_script(tour_blocks(), workdir))
    env = dict(os.environ, HOME=str(workdir))
    proc = subprocess.Popen(["unshare", "--net", "bash", str(script)], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f"the tour did not finish in 180 s:\n{output[-4000:]}")
    serve_log = (workdir / "serve.log").read_text() if (workdir / "serve.log").exists() else "(no serve.log)"
    assert proc.returncode == 0, f"the tour failed (exit {proc.returncode}):\n{output[-6000:]}\n--- serve.log:\n{serve_log[-3000:]}"
    assert output.rstrip().endswith("## tour done"), output[-2000:]

    # What each step is said to do.
    assert "added alice@localhost" in output
    assert "['hello', 'hi']" in output or "['hi', 'hello']" in output, output  # swaks and smtplib both stored
    assert re.search(r"^\(2, \d+\)$", output, flags=re.M), "POP3 STAT should show the two messages"
    fetched = list((workdir / "Mail" / "alice" / "new").iterdir())
    assert len(fetched) == 2, fetched
    queued = subprocess.run([str(swallow_bin), "queue", "list"], cwd=workdir, capture_output=True, text=True, timeout=60)
    assert queued.returncode == 0, queued.stderr
    assert "to bob@example.org" in queued.stdout, queued.stdout  # the remote message waits in the queue
    assert "password changed for alice@localhost" in output
    assert "info@localhost\talice@localhost" in output
    assert "removed alice@localhost and its entries in the aliases info@localhost" in output
    # The banner's hint uses the binary as it was started, with a passphrase the CLI accepts.
    assert "Add a first user:  echo 'a long passphrase' | .build/debug/swallow user add" in serve_log, serve_log
    # IMAP: the default folders were created at login, UID 1 moved to Archive (COPYUID), the quota and
    # the folder commands did what they say.
    assert r'(\\HasNoChildren \\Archive) "/" Archive' in output, output  # printed as bytes: backslashes doubled
    assert re.search(r"^\('COPYUID', \[b'\d+ 1 1'\]\)$", output, flags=re.M), output
    assert "quota of alice@localhost: 2G" in output, output
    assert re.search(r"^Archive\t1 messages\t\\Archive$", output, flags=re.M), output
    assert "created Archive/2026" in output, output
    # alice's mail is still on disk; the 465 message from swaks arrived too (three in all): two in INBOX,
    # the one moved over IMAP in .Archive.
    alice = workdir / "swallow-data" / "mail" / "localhost" / "alice"
    assert sum(len(list((alice / d).iterdir())) for d in ("new", "cur")) == 2
    assert len(list((alice / ".Archive" / "cur").iterdir())) == 1
    assert (alice / ".Archive.2026" / "maildirfolder").exists()
