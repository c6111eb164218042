#!/usr/bin/python3
"""ack.py - what closing the loop costs end to end, against the same path
without it and against Postfix on it, in the same run, as ratios.

Postfix's smtp-source (20 sessions, 1 KiB messages) hands N messages to
the first hop; the figure is N over the time until the last one is stored
by smtpx-recv (and, for the loop, until its acknowledgement is back):

  plain    smtpx-relay -> smtpx-recv --maildir
  loop     smtpx-relay --await-ack -> smtpx-recv --maildir --dedupe --ack
           --ack-via the relay: every message kept in the relay's outbox
           until smtpx-recv's MDN for it reached the relay's listener
  postfix  a private Postfix (its queue synced) -> smtpx-recv --maildir

Then the durable writes per message on each side: fsync and fdatasync
calls counted by strace -f -c attached to each process, over a run of
SYNC_MSGS messages, for plain and loop.

Usage: bench/ack.py BUILD_DIR     Env: RUNS (3), ACK_MSGS (2000),
SYNC_MSGS (500).  Needs root (Postfix).  Everything is on 127.0.0.1, in a
directory under /var/tmp (a disk: a tmpfs makes a sync free), and stops
by itself.
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import peers  # noqa: E402
import mta  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
RUNS = int(os.environ.get("RUNS", "3"))
MSGS = int(os.environ.get("ACK_MSGS", "2000"))
SYNC_MSGS = int(os.environ.get("SYNC_MSGS", "500"))
RELAY = os.path.join(BUILD, "examples", "smtpx-relay")
RECV = os.path.join(BUILD, "examples", "smtpx-recv")


def start(argv, log):
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


class Pair:
    """smtpx-relay into smtpx-recv, with the loop closed or not."""

    def __init__(self, d, loop):
        self.d = d
        self.loop = loop
        self.relay_port = peers.free_port()
        self.recv_port = peers.free_port()
        self.maildir = os.path.join(d, "Maildir")
        self.queue = os.path.join(d, "queue")
        self.log = open(os.path.join(d, "log"), "a")
        recv = [RECV, "--listen", "127.0.0.1:%d" % self.recv_port,
                "--hostname", "warehouse.bench", "--maildir", self.maildir,
                "-q", "--max-msgs", "0", "--max-sessions", "1000"]
        relay = [RELAY, "--listen", "127.0.0.1:%d" % self.relay_port,
                 "--queue", self.queue, "--hostname", "relay.bench",
                 "--mynetworks", "127.0.0.0/8", "--smarthost",
                 "127.0.0.1:%d" % self.recv_port, "--smarthost-tls", "none",
                 "--max-msgs", "0", "-q"]
        if loop:
            recv += ["--dedupe", os.path.join(d, "seen"), "--ack",
                     "--ack-via", "127.0.0.1:%d" % self.relay_port]
            relay += ["--await-ack", "1h"]
        self.recv = start(recv, self.log)
        peers.wait_port(self.recv_port, self.recv)
        self.relay = start(relay, self.log)
        peers.wait_port(self.relay_port, self.relay)

    def stored(self):
        return mta.files(os.path.join(self.maildir, "new"))

    def done(self, n):
        if self.stored() < n:
            return False
        if not self.loop:
            return True
        return mta.files(os.path.join(self.queue, "outbox", "msg")) == 0

    def stop(self):
        a = peers.stop_process(self.relay)
        b = peers.stop_process(self.recv)
        self.log.close()
        if a != 0 or b != 0:
            with open(self.log.name) as f:
                raise RuntimeError("exit status %s %s:\n%s" %
                                   (a, b, f.read()[-3000:]))


def timed(pair, n):
    t0 = time.monotonic()
    mta.source(pair.relay_port, n)
    mta.wait(lambda: pair.done(n), step=0.005)
    return n / (time.monotonic() - t0)


def pair_rate(loop):
    d = tempfile.mkdtemp(prefix="smtpx-ack-bench-", dir="/var/tmp")
    try:
        p = Pair(d, loop)
        try:
            rate = timed(p, MSGS)
        finally:
            p.stop()
        if p.stored() != MSGS:
            raise RuntimeError("%d stored of %d" % (p.stored(), MSGS))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return rate


def postfix_rate():
    d = tempfile.mkdtemp(prefix="smtpx-ack-bench-", dir="/var/tmp")
    os.chmod(d, 0o755)
    port = peers.free_port()
    maildir = os.path.join(d, "Maildir")
    log = open(os.path.join(d, "recv.log"), "a")
    recv = start([RECV, "--listen", "127.0.0.1:%d" % port, "--hostname",
                  "warehouse.bench", "--maildir", maildir, "-q",
                  "--max-msgs", "0", "--max-sessions", "1000"], log)
    try:
        peers.wait_port(port, recv)
        pf, pf_port = mta.postfix(d, port)
        try:
            t0 = time.monotonic()
            mta.source(pf_port, MSGS)
            mta.wait(lambda: mta.files(os.path.join(maildir, "new")) == MSGS,
                     step=0.005)
            rate = MSGS / (time.monotonic() - t0)
        finally:
            pf.stop()
    finally:
        peers.stop_process(recv)
        log.close()
        shutil.rmtree(d, ignore_errors=True)
    return rate


def strace(pid, out):
    p = subprocess.Popen(["strace", "-f", "-c", "-e",
                          "trace=fsync,fdatasync", "-o", out, "-p",
                          str(pid)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached to every thread
    return p


def calls(path):
    n = 0
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)(\s+\d+)?\s+"
                         r"(fsync|fdatasync)\s*$", line)
            if m:
                n += int(m.group(1))
    return n


def syncs(loop):
    """fsync + fdatasync per message: (relay, recv)."""
    d = tempfile.mkdtemp(prefix="smtpx-ack-bench-", dir="/var/tmp")
    try:
        p = Pair(d, loop)
        try:
            tr = [strace(p.relay.pid, os.path.join(d, "relay.strace")),
                  strace(p.recv.pid, os.path.join(d, "recv.strace"))]
            timed(p, SYNC_MSGS)
            # The removals and the acknowledgements' queue settle.
            time.sleep(1.5)
            for t in tr:
                t.send_signal(signal.SIGINT)
                t.wait(30)
        finally:
            p.stop()
        return (calls(os.path.join(d, "relay.strace")) / SYNC_MSGS,
                calls(os.path.join(d, "recv.strace")) / SYNC_MSGS)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    print("== Closing the loop end to end: smtp-source -d -s 20 -m %d "
          "-l 1024 into the first hop, %d cores, on /var/tmp"
          % (MSGS, os.cpu_count()))
    rows = {"plain": [], "loop": [], "postfix": []}
    for i in range(RUNS):
        rows["plain"].append(pair_rate(False))
        rows["loop"].append(pair_rate(True))
        rows["postfix"].append(postfix_rate())
        print("  run %d: smtpx-relay -> smtpx-recv %6.0f msg/s, with the "
              "loop closed %6.0f msg/s, Postfix -> smtpx-recv %6.0f msg/s"
              % (i + 1, rows["plain"][-1], rows["loop"][-1],
                 rows["postfix"][-1]))
    m = {k: statistics.median(v) for k, v in rows.items()}
    print("  median: plain %.0f, loop %.0f, Postfix %.0f msg/s; "
          "loop/plain = %.2f, loop/Postfix = %.2f, plain/Postfix = %.2f"
          % (m["plain"], m["loop"], m["postfix"], m["loop"] / m["plain"],
             m["loop"] / m["postfix"], m["plain"] / m["postfix"]))
    print("== Durable writes per message (fsync + fdatasync, strace -f -c, "
          "%d messages)" % SYNC_MSGS)
    for loop in (False, True):
        a, b = syncs(loop)
        print("  %-6s smtpx-relay %.2f, smtpx-recv %.2f" %
              ("loop" if loop else "plain", a, b))


if __name__ == "__main__":
    main()
