#!/usr/bin/python3
"""The receiver under faults, with real processes on loopback.

- smtpx-recv --maildir is killed with SIGKILL at random moments while 8
  clients send to it at once, and started again on the same Maildir, a few
  rounds: every message that got a 250 must be in new/ whole, and nothing
  in new/ may be partial.  The figures are printed.
- tmp/ leftovers are removed at start only once older than 36 hours.
- The Maildir sits on a small tmpfs that fills up: the receiver answers
  452 4.3.1 (552 5.3.4 for a message that could never fit), keeps serving,
  loses nothing it acknowledged, and takes mail again by itself once there
  is room.  Mounting needs root; without it that test is skipped.

Every wait and every loop is bounded.

Usage: test_faults.py BUILD_DIR
"""
import hashlib
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
RECV = os.path.join(BUILD, "examples", "smtpx-recv")

SESSIONS = 8
ROUNDS = 3


def lf(data):
    return data.replace(b"\r\n", b"\n")


def body_of(stored):
    """A stored message without the Return-Path and Received headers."""
    lines = stored.split(b"\n")
    i = 2
    while i < len(lines) and lines[i].startswith(b"\t"):
        i += 1
    return b"\n".join(lines[i:])


def make_message(tag, size):
    """A message whose Message-ID names it and whose body carries its own
    digest at the end, so that a cut copy is recognised."""
    lines = []
    n = 0
    while n < size:
        line = ("%s %d the quick brown fox jumps over the lazy dog" %
                (tag, n)).encode()
        lines.append(line)
        n += len(line) + 2
    text = b"\r\n".join(lines) + b"\r\n"
    head = ("From: load@test\r\nTo: sink@test\r\nSubject: %s\r\n"
            "Message-ID: <%s@faults.test>\r\n\r\n" % (tag, tag)).encode()
    digest = hashlib.sha256(lf(head + text)).hexdigest().encode()
    return head + text + b"digest " + digest + b"\r\n"


def check_whole(stored):
    """(tag, whole?) of a stored message."""
    body = body_of(stored)
    m = re.search(rb"Message-ID: <([^@>]+)@faults.test>", body)
    tag = m.group(1).decode() if m else None
    if not body.endswith(b"\n") or b"\ndigest " not in body:
        return tag, False
    content, _, tail = body.rpartition(b"digest ")
    return tag, hashlib.sha256(content).hexdigest().encode() == tail.strip()


class Load:
    """SESSIONS clients sending messages of 1 to 200 KB in a loop until
    told to stop or a bounded count; acked holds the tags that got a 250
    for their final dot."""

    def __init__(self, port, per_session=400):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked, self.sent = set(), set()
        self.threads = [threading.Thread(target=self.run, args=(i, per_session))
                        for i in range(SESSIONS)]

    def start(self, round_):
        self.round = round_
        for t in self.threads:
            t.start()

    def run(self, i, count):
        rnd = random.Random(i * 7919 + self.round)
        for k in range(count):
            if self.stop.is_set():
                return
            tag = "r%ds%dm%d" % (self.round, i, k)
            msg = make_message(tag, rnd.choice((1000, 20000, 200000)))
            with self.lock:
                self.sent.add(tag)
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as s:
                    s.sendmail("load@test", ["sink@test"], msg)
            except (OSError, smtplib.SMTPException):
                return  # the receiver is gone: its fate is unknown
            with self.lock:
                self.acked.add(tag)

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
            if t.is_alive():
                raise RuntimeError("a load thread does not stop")


class Faults(unittest.TestCase):
    def test_sigkill_under_load(self):
        base = tempfile.mkdtemp(prefix="smtpx-faults-")
        maildir = os.path.join(base, "Maildir")
        acked, sent = set(), set()
        rnd = random.Random(int(os.environ.get("SMTPX_FAULT_SEED", "13")))
        try:
            for round_ in range(ROUNDS):
                r = peers.Receiver(RECV, "mx.faults.test", "--quiet",
                                   maildir_path=maildir)
                load = Load(r.port)
                load.start(round_)
                # A random moment: before, during or between messages.
                time.sleep(rnd.uniform(0.2, 1.5))
                r.proc.send_signal(signal.SIGKILL)
                r.proc.wait(10)
                load.join()
                r.log.close()
                r.cleanup()
                acked |= load.acked
                sent |= load.sent
            # Started once more, as after a crash: it serves, and the
            # leftovers in tmp/ (younger than 36 hours) stay.
            left = sorted(os.listdir(os.path.join(maildir, "tmp")))
            r = peers.Receiver(RECV, "mx.faults.test", maildir_path=maildir)
            with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
                s.sendmail("load@test", ["sink@test"], make_message("after", 500))
            self.assertEqual(r.stop(), 0, r.logtext())
            r.cleanup()
            self.assertEqual(sorted(os.listdir(os.path.join(maildir, "tmp"))),
                             left)

            stored, partial = {}, []
            new = os.path.join(maildir, "new")
            for n in os.listdir(new):
                with open(os.path.join(new, n), "rb") as f:
                    tag, whole = check_whole(f.read())
                if not whole:
                    partial.append(n)
                stored[tag] = stored.get(tag, 0) + 1
            lost = sorted(acked - set(stored))
            unacked = sorted(set(stored) - acked - {"after"})
            dups = sorted(t for t, k in stored.items() if k > 1)
            print("\nfaults: %d SIGKILLs under %d sessions: %d messages "
                  "started, %d acknowledged, %d in new/ (%d delivered "
                  "without a 250 reaching the client), lost %d, partial %d, "
                  "duplicates %d, tmp/ leftovers %d"
                  % (ROUNDS, SESSIONS, len(sent), len(acked), len(stored) - 1,
                     len(unacked), len(lost), len(partial), len(dups),
                     len(left)), file=sys.stderr)
            self.assertGreater(len(acked), 0, "the load never got through")
            self.assertEqual(lost, [], "acknowledged but not in new/")
            self.assertEqual(partial, [], "partial messages in new/")
            self.assertEqual(dups, [])
            self.assertIn("after", stored)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def test_tmp_cleaned_at_start_when_old(self):
        base = tempfile.mkdtemp(prefix="smtpx-faults-")
        maildir = os.path.join(base, "Maildir")
        try:
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(maildir, sub))
            now = time.time()
            for name, age in (("1.M1P1Q1.dead", 37 * 3600),
                              ("2.M2P2Q2.busy", 35 * 3600)):
                path = os.path.join(maildir, "tmp", name)
                with open(path, "wb") as f:
                    f.write(b"Subject: partial\n")
                os.utime(path, (now - age, now - age))
            r = peers.Receiver(RECV, "mx.faults.test", maildir_path=maildir)
            self.assertEqual(r.stop(), 0)
            log = r.logtext()
            r.cleanup()
            self.assertEqual(os.listdir(os.path.join(maildir, "tmp")),
                             ["2.M2P2Q2.busy"])
            self.assertIn("removed 1 stale files from", log)
        finally:
            shutil.rmtree(base, ignore_errors=True)


def can_mount():
    return os.geteuid() == 0 and shutil.which("mount") is not None


class FullDisk(unittest.TestCase):
    SIZE = 2 * 1024 * 1024  # the tmpfs

    def setUp(self):
        if not can_mount():
            self.skipTest("mounting a tmpfs needs root")
        self.base = tempfile.mkdtemp(prefix="smtpx-full-")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=%d,mode=0700" % self.SIZE, "tmpfs",
                            self.base], capture_output=True, timeout=30)
        if p.returncode != 0:
            shutil.rmtree(self.base, ignore_errors=True)
            self.skipTest("cannot mount a tmpfs: %s" % p.stderr.decode())
        self.r = None

    def tearDown(self):
        if self.r is not None:
            code = self.r.stop()
            log = self.r.logtext()
            self.r.cleanup()
            self.assertEqual(code, 0, log)
        subprocess.run(["umount", self.base], timeout=30)
        shutil.rmtree(self.base, ignore_errors=True)

    def fill(self, leave):
        """Fill the file system up to `leave` bytes of room."""
        st = os.statvfs(self.base)
        room = st.f_bavail * st.f_frsize
        path = os.path.join(self.base, "filler")
        with open(path, "ab") as f:
            f.write(b"\0" * max(0, room - leave))
        return path

    def send(self, s, tag, size, declare=True):
        """(code, text) of the final reply for one message; smtplib
        declares its size with SIZE= unless declare is False."""
        s.ehlo_or_helo_if_needed()
        if not declare:
            s.esmtp_features.pop("size", None)
        try:
            s.sendmail("full@test", ["sink@test"], make_message(tag, size))
            return 250, b""
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error
        except smtplib.SMTPSenderRefused as e:
            return e.smtp_code, e.smtp_error

    def stored(self):
        out = {}
        new = os.path.join(self.base, "Maildir", "new")
        for n in os.listdir(new):
            with open(os.path.join(new, n), "rb") as f:
                tag, whole = check_whole(f.read())
            self.assertTrue(whole, n)
            out[tag] = True
        return out

    def test_full_disk(self):
        maildir = os.path.join(self.base, "Maildir")
        self.r = peers.Receiver(RECV, "mx.full.test", maildir_path=maildir)
        acked = []
        with smtplib.SMTP("127.0.0.1", self.r.port, timeout=30) as s:
            self.assertEqual(self.send(s, "before", 20000)[0], 250)
            acked.append("before")
            filler = self.fill(64 * 1024)
            # Too big for the room left, small enough for the disk: 452
            # after the data.
            code, text = self.send(s, "toolarge-now", 300000, declare=False)
            self.assertEqual((code, text[:5]), (452, b"4.3.1"), text)
            # The same, declared with SIZE: refused before the data.
            code, text = self.send(s, "declared-now", 300000)
            self.assertEqual((code, text[:5]), (452, b"4.3.1"), text)
            s.rset()
            # Bigger than the whole file system: it can never fit.
            code, text = self.send(s, "never", self.SIZE + 100000,
                                   declare=False)
            self.assertEqual((code, text[:5]), (552, b"5.3.4"), text)
            code, text = self.send(s, "never-declared", self.SIZE + 100000)
            self.assertEqual((code, text[:5]), (552, b"5.3.4"), text)
            s.rset()
            # It keeps serving: small messages still fit.
            self.assertEqual(self.send(s, "small", 2000)[0], 250)
            acked.append("small")
            # Completely full: 452, and no file is left behind in tmp/.
            self.fill(0)
            code, text = self.send(s, "full", 20000, declare=False)
            self.assertEqual((code, text[:5]), (452, b"4.3.1"))
            self.assertEqual(os.listdir(os.path.join(maildir, "tmp")), [])
            self.assertEqual(s.noop()[0], 250)
            # Room again: taken by itself, on the same connection.
            os.unlink(filler)
            self.assertEqual(self.send(s, "after", 300000)[0], 250)
            acked.append("after")
        # And from a new connection too.
        with smtplib.SMTP("127.0.0.1", self.r.port, timeout=30) as s:
            self.assertEqual(self.send(s, "again", 20000)[0], 250)
            acked.append("again")
        stored = self.stored()
        self.assertEqual(sorted(stored), sorted(acked))
        self.assertEqual(os.listdir(os.path.join(maildir, "tmp")), [])
        log = self.r.logtext()
        self.assertRegex(log, r"status=452")
        self.assertRegex(log, r"status=552")


if __name__ == "__main__":
    if not os.access(RECV, os.X_OK):
        sys.exit("no %s: build first" % RECV)
    unittest.main(verbosity=2)
