#!/usr/bin/python3
"""Crash test: a bounded load of messages goes into smtpx-relay (queue
synced) while it is killed with SIGKILL at random moments and restarted;
it relays to smtpx-recv.  Every message that got a 250 must be delivered,
none partially; a message may arrive twice only when a crash fell between
smtpx-recv's 250 and the relay's state write (RFC 5321 6.1 prefers a
duplicate to a loss): those are counted and reported, never resent by the
client (an unacknowledged message is not sent again, so no other cause of
duplicates exists).

Usage: test_relay_crash.py BUILD_DIR [MESSAGES [KILLS]]
"""
import os
import random
import shutil
import smtplib
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from relay_peer import Relay  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
# Under valgrind (SMTPX_INTEROP_SLOW=1) a fourth of the load and fewer
# kills: each restart is slow there, and the full load runs in make
# check and under the sanitizers.
MESSAGES = int(sys.argv[2]) if len(sys.argv) > 2 else \
    (1000 if peers.SLOW else 4000)
KILLS = int(sys.argv[3]) if len(sys.argv) > 3 else (10 if peers.SLOW else 25)


def body(seq):
    # Large enough that a kill can fall in the middle of writing it.
    filler = "".join("%05d line %s\r\n" % (i, "x" * 60) for i in range(60))
    return ("From: load@example.org\r\nTo: sink@example.net\r\n"
            "Subject: crash %d\r\nX-Seq: %d\r\n\r\n%s.end %d\r\n"
            % (seq, seq, filler, seq)).encode()


class Sender(threading.Thread):
    """Sends each message once; a message whose connection broke before
    the 250 is not sent again."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.acked = set()
        self.unacked = set()

    def connect(self):
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                s = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                s.ehlo("load.test")
                return s
            except (OSError, smtplib.SMTPException):
                time.sleep(0.02)
        raise RuntimeError("the relay never came back")

    def run(self):
        s = None
        for seq in range(MESSAGES):
            if s is None:
                s = self.connect()
            try:
                s.sendmail("load@example.org", ["sink@example.net"], body(seq))
                self.acked.add(seq)
            except (OSError, smtplib.SMTPException):
                self.unacked.add(seq)
                try:
                    s.close()
                except OSError:
                    pass
                s = None
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass


def main():
    d = tempfile.mkdtemp(prefix="smtpx-crash-")
    recv = peers.Receiver(os.path.join(BUILD, "examples", "smtpx-recv"),
                          "sink.test", "-q")
    relay = Relay(BUILD, d, "--smarthost", "127.0.0.1:%d" % recv.port,
                  "--smarthost-tls", "none", "--mynetworks", "127.0.0.0/8",
                  "--retry-min", "1s", "--retry-max", "2s", "-q")
    relay.start()
    sender = Sender(relay.port)
    t0 = time.monotonic()
    sender.start()
    rnd = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    kills = 0
    while sender.is_alive() and kills < KILLS:
        time.sleep(rnd.uniform(0.03, 0.25))
        relay.kill()
        kills += 1
        relay.start(wait=False)
        time.sleep(rnd.uniform(0.0, 0.05))
    sender.join(300)
    assert not sender.is_alive(), "the sender did not finish"
    if relay.proc.poll() is not None:
        relay.start()
    peers.wait_port(relay.port, relay.proc)
    drained = relay.wait_empty(120)
    code = relay.stop()
    elapsed = time.monotonic() - t0
    seen = {}
    partial = []
    for raw in recv.messages():
        i = raw.find(b"X-Seq: ")
        if i < 0:
            partial.append(raw[:200])
            continue
        seq = int(raw[i + 7:raw.index(b"\n", i)])
        # The stored file is LF; after the trace headers the message must
        # be exactly what was sent.
        want = body(seq).replace(b"\r\n", b"\n")
        if not raw.endswith(want):
            partial.append(raw[:200])
        seen[seq] = seen.get(seq, 0) + 1
    recv.stop()
    lost = sorted(s for s in sender.acked if s not in seen)
    dups = sum(n - 1 for n in seen.values() if n > 1)
    unacked_delivered = sum(1 for s in sender.unacked if s in seen)
    tmp_left = os.listdir(os.path.join(relay.queue, "tmp"))
    print("crash test: %d messages, %d acknowledged, %d kills, %.1f s; "
          "lost %d, partial %d, duplicates %d (crash between the remote 250 "
          "and the state write), unacknowledged but delivered %d of %d"
          % (MESSAGES, len(sender.acked), kills, elapsed, len(lost),
             len(partial), dups, unacked_delivered, len(sender.unacked)))
    ok = True
    if not drained:
        print("FAIL: the queue did not drain:\n" + relay.listing())
        ok = False
    if code != 0:
        print("FAIL: smtpx-relay exit status %s" % code)
        ok = False
    if lost:
        print("FAIL: acknowledged and lost: %s" % lost[:20])
        ok = False
    if partial:
        print("FAIL: partial or altered messages: %r" % partial[:3])
        ok = False
    if tmp_left:
        print("FAIL: files left in tmp/: %s" % tmp_left[:5])
        ok = False
    # Each kill can repeat at most what was in flight: 20 connections of
    # 4 pipelined transactions.
    if dups > kills * 80:
        print("FAIL: more duplicates than crashes can explain")
        ok = False
    if len(sender.acked) < MESSAGES // 2:
        print("FAIL: too few messages got through to mean anything")
        ok = False
    if not ok:
        print(relay.logtext()[-4000:])
    shutil.rmtree(d, ignore_errors=True)
    recv.cleanup()
    print("crash test: %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
