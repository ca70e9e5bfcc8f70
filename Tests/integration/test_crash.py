"""kill -9 in the middle of a stream of messages: nothing acknowledged is lost, nothing is stored twice,
nothing visible is half-written."""

from __future__ import annotations

import email
import email.policy
import smtplib
import threading
import time

from conftest import free_port

THREADS = 4
RECIPIENTS = ["alice@example.test", "bob@example.test"]
FILLER = ("The quick brown fox jumps over the lazy dog. 0123456789\r\n" * 40)


def build_message(seq: str) -> str:
    return (
        "From: streamer@remote.test\r\n"
        "To: alice@example.test, bob@example.test\r\n"
        f"Subject: crash test {seq}\r\n"
        f"X-Seq: {seq}\r\n"
        "\r\n"
        f"{FILLER}"
        f"END {seq}\r\n"
    )


class Streamer:
    def __init__(self, server, round_no: int):
        self.server = server
        self.round_no = round_no
        self.acked: set[str] = set()
        self.errors: list[str] = []
        self.lock = threading.Condition()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True) for t in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, tid: int):
        n = 0
        try:
            client = self.server.smtp()
            client.ehlo()
            while not self.stop.is_set():
                seq = f"r{self.round_no}-t{tid}-{n}"
                n += 1
                refused = client.sendmail("streamer@remote.test", RECIPIENTS, build_message(seq))
                if refused:
                    self.errors.append(f"{seq}: refused {refused}")
                    return
                with self.lock:
                    self.acked.add(seq)
                    self.lock.notify_all()
                if n % 25 == 0:  # mix new connections into the stream
                    client.quit()
                    client = self.server.smtp()
                    client.ehlo()
        except (smtplib.SMTPException, OSError):
            return  # the server died under us: this send is unacknowledged

    def wait_acked(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.acked) < count and time.monotonic() < deadline:
                if not any(t.is_alive() for t in self.threads):
                    break
                self.lock.wait(0.1)
            return len(self.acked)

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a client thread hung after the server was killed"


def stored_sequences(server, address: str) -> list[str]:
    """X-Seq of every visible message (new/ and cur/); each file must be a complete message."""
    seqs = []
    for sub in ("new", "cur"):
        for path in server.maildir_files(address, sub):
            raw = path.read_bytes()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            seq = msg["X-Seq"]
            assert seq is not None, f"{path} has no X-Seq (truncated or foreign?): {raw[:300]!r}"
            expected_tail = f"END {seq}\n".encode()
            assert raw.endswith(expected_tail), f"{path} is truncated: ends with {raw[-80:]!r}"
            assert FILLER.replace("\r\n", "\n").encode() in raw, f"{path} body is damaged"
            assert raw.startswith(b"Return-Path: <streamer@remote.test>\n"), raw[:120]
            seqs.append(str(seq))
    return seqs


def wait_queue_drained(server, timeout: float = 15.0):
    """If the server spools before delivery, let it finish what it recovered before we count."""
    queue = server.data_dir / "queue"
    deadline = time.monotonic() + timeout
    while queue.is_dir():
        pending = [p for d in ("incoming", "active", "deferred") if (queue / d).is_dir() for p in (queue / d).iterdir()]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.05)
    return []


def restart(server):
    server.port = free_port()  # the old port may linger in TIME_WAIT; a restart on it is not what we test
    server.write_config()
    server.start()


def test_kill9_mid_stream_loses_nothing_acknowledged(make_server):
    server = make_server()
    all_acked: set[str] = set()
    for round_no in range(2):
        streamer = Streamer(server, round_no)
        streamer.start()
        started = time.monotonic()
        streamer.wait_acked(40, timeout=30)
        # stream for about 1.5 s in all (a fast server has acknowledged hundreds by then), then kill
        streamer.wait_acked(10**9, timeout=max(0.0, 1.5 - (time.monotonic() - started)))
        server.kill9()
        streamer.join()
        assert not streamer.errors, streamer.errors
        assert len(streamer.acked) >= 40, f"only {len(streamer.acked)} messages acknowledged before the kill"
        all_acked |= streamer.acked
        print(f"round {round_no}: {len(streamer.acked)} acknowledged before kill -9")

        restart(server)
        pending = wait_queue_drained(server)
        assert not pending, f"queue not drained after restart: {pending[:5]}"
        for rcpt in RECIPIENTS:
            seqs = stored_sequences(server, rcpt)
            dups = sorted({s for s in seqs if seqs.count(s) > 1})
            assert not dups, f"{rcpt}: stored more than once: {dups[:10]}"
            print(f"  {rcpt}: {len(seqs)} stored, {len(set(seqs) - all_acked)} of them unacknowledged, "
                  f"{len(server.maildir_files(rcpt, 'tmp'))} files in tmp/")
            missing = sorted(all_acked - set(seqs))
            assert not missing, f"{rcpt}: {len(missing)} acknowledged messages lost, e.g. {missing[:10]}"

    # the restarted server still works
    with server.smtp() as client:
        assert client.sendmail("streamer@remote.test", RECIPIENTS, build_message("after-restart")) == {}
    for rcpt in RECIPIENTS:
        assert "after-restart" in stored_sequences(server, rcpt)
