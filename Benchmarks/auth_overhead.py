#!/usr/bin/env python3
"""What the port-25 authentication checks cost: one release `swallow` with `[smtp] check_authentication`
on and one with it off, side by side, fed by Postfix's smtp-source (10 KiB messages, one per session,
sender@bench.test) in alternating runs; a loopback dnslib server answers the SPF (`ip4:127.0.0.1`) and
DMARC (`p=none`) lookups, so every message gets spf=pass dmarc=pass (no DKIM signature: smtp-source
cannot sign). Prints the median msg/s of 4 runs of 2,000 messages per setting.

    SWALLOW_BIN=.build-release/release/swallow python3 Benchmarks/auth_overhead.py

Not part of Benchmarks/run (the comparison against Postfix with OpenDKIM/OpenDMARC milters is still
to come, issue 18); needs smtp-source (postfix) and dnslib.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Tests" / "integration"))
from conftest import ZoneDNS, free_port  # noqa: E402

BIN = os.environ.get("SWALLOW_BIN", str(Path(__file__).resolve().parent.parent / ".build-release/release/swallow"))
WORK = Path(tempfile.mkdtemp(prefix="swallow-auth-overhead-"))


def server(zone: ZoneDNS, check: bool):
    d = WORK / ("on" if check else "off")
    d.mkdir()
    port = free_port()
    off = "".join(f"[{s}]\nlisten = []\n" for s in ("submission", "submissions", "pop3", "pop3s", "imap", "imaps"))
    (d / "swallow.toml").write_text(
        f'hostname = "mx.example.test"\ndomains = ["example.test"]\ndata_dir = "{d}/data"\n'
        f'[smtp]\nlisten = ["127.0.0.1:{port}"]\nmax_connections_per_ip = 1000\n'
        f'check_authentication = {"true" if check else "false"}\n{off}[dns]\nnameservers = ["{zone.nameserver}"]\n')
    subprocess.run([BIN, "user", "add", "bench@example.test", "--password-stdin", "--config", str(d / "swallow.toml")],
                   input=b"a long benchmark password\n", check=True, capture_output=True)
    p = subprocess.Popen([BIN, "serve", "--config", str(d / "swallow.toml")], stdout=open(d / "log", "wb"),
                         stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, port, d / "data/mail/example.test/bench/new"


def source(port: int, n: int, sessions: int) -> float:
    t = time.monotonic()
    subprocess.run(["smtp-source", "-4", "-s", str(sessions), "-m", str(n), "-l", "10240", "-M", "client.bench.test",
                    "-f", "sender@bench.test", "-t", "bench@example.test", f"127.0.0.1:{port}"], check=True)
    return time.monotonic() - t


def main():
    zone = ZoneDNS({"bench.test": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
                    "_dmarc.bench.test": [("TXT", "v=DMARC1; p=none")]})
    servers = {c: server(zone, c) for c in (False, True)}
    try:
        for _, port, _ in servers.values():
            source(port, 300, 10)  # warm-up
        for sessions in (10, 100):
            rates = {False: [], True: []}
            for rep in range(4):
                for c in ((False, True) if rep % 2 == 0 else (True, False)):
                    _, port, new = servers[c]
                    before = len(os.listdir(new))
                    dt = source(port, 2000, sessions)
                    assert len(os.listdir(new)) - before == 2000, "not every message was stored"
                    rates[c].append(2000 / dt)
            for c in (False, True):
                r = sorted(rates[c])
                print(f"{sessions} sessions, checks {'on ' if c else 'off'}: median {(r[1] + r[2]) / 2:,.0f} msg/s "
                      f"[{r[0]:,.0f}–{r[-1]:,.0f}]", flush=True)
    finally:
        for p, _, _ in servers.values():
            p.terminate()
            p.wait()
        zone.stop()
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
