#!/usr/bin/python3
"""Closing the loop under faults: two systems exchange a bounded load of
messages exactly once while both are killed with SIGKILL and
acknowledgements are lost on purpose.

    load (smtplib) -> smtpx-relay --await-ack (the sending system: outbox)
                   -> smtpx-recv --dedupe --ack (the receiving system:
                      Maildir, duplicate suppression, MDNs)
                   -> the ack path (a real SMTP server in this test that
                      drops a share of the MDNs after answering 250, and
                      forwards the rest) -> smtpx-relay's listener

The receiver is killed at random moments and right after it stored a
message (after the 250, before or while its acknowledgement goes out);
the relay is killed at random moments and right after an acknowledgement
reached it.  Everything is restarted.  At the end:

- every message the load got a 250 for is in the Maildir, byte-exact;
- none twice, except where smtpx-recv logged a redelivery: stored, then
  killed before it recorded the message as processed (the documented
  window of smtpx_inbox_new(3); an application that keeps its own records
  under the Message-ID closes it, the Maildir writer does not);
- every such message acknowledged on the sending side (the relay's log
  says "acknowledged" for it) and its outbox empty.

It runs twice: smtpx-recv sending MDNs and "delivered" DSNs (--dsn), then
MDNs alone (the relay's engine then reports "relayed" to its own outbox,
which must not take it for an acknowledgement).  Each round prints N,
the kills of each kind, the acknowledgements dropped, the
resends and the duplicates suppressed.

Usage: test_ack_faults.py BUILD_DIR [MESSAGES [KILLS]]
"""
import asyncio
import os
import random
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from relay_peer import Relay  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
# Under valgrind (make check-valgrind) both programs are some twenty times
# slower: a smaller load, fewer kills.
MESSAGES = int(sys.argv[2]) if len(sys.argv) > 2 else 200 if peers.SLOW \
    else 1000
KILLS = int(sys.argv[3]) if len(sys.argv) > 3 else 3 if peers.SLOW else 8
DROP = 0.2  # the share of acknowledgements lost on the way
RNG = random.Random(int(os.environ.get("ACK_SEED", "0")) or None)


def body(seq):
    return ("From: orders@orders.test\r\nTo: warehouse@example.net\r\n"
            "Message-ID: <order-%d@orders.test>\r\nSubject: order %d\r\n"
            "X-Seq: %d\r\n\r\n%s.end %d\r\n"
            % (seq, seq, seq,
               "".join("%04d item %s\r\n" % (i, "y" * 50) for i in range(20)),
               seq)).encode()


class Recv:
    """smtpx-recv on a port of its own, restarted on the same port, the
    same Maildir, dedupe store and acknowledgement queue."""

    def __init__(self, d, ack_port, dsn):
        self.d = d
        self.port = peers.free_port()
        self.maildir = os.path.join(d, "Maildir")
        self.logf = open(os.path.join(d, "recv.log"), "a")
        self.argv = [os.path.join(BUILD, "examples", "smtpx-recv"),
                     "--listen", "127.0.0.1:%d" % self.port,
                     "--hostname", "warehouse.test",
                     "--maildir", self.maildir,
                     "--dedupe", os.path.join(d, "dedupe"),
                     "--ack", "--ack-from", "warehouse@example.net",
                     "--ack-via", "127.0.0.1:%d" % ack_port,
                     "--ack-queue", os.path.join(d, "acks")]
        if dsn:
            self.argv.append("--dsn")
        self.proc = None

    def start(self, wait=True):
        self.proc = subprocess.Popen(self.argv, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if wait:
            peers.wait_port(self.port, self.proc, t=peers.WAIT)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        return peers.stop_process(self.proc)

    def logtext(self):
        self.logf.flush()
        with open(self.logf.name, errors="replace") as f:
            return f.read()

    def stored(self):
        out = []
        for sub in ("new", "cur"):
            p = os.path.join(self.maildir, sub)
            for n in sorted(os.listdir(p)) if os.path.isdir(p) else ():
                with open(os.path.join(p, n), "rb") as f:
                    out.append(f.read())
        return out


class AckPath:
    """The way back: a real SMTP server (aiosmtpd) that answers every
    acknowledgement 250, loses DROP of them, and hands the rest on to the
    relay's listener (one it cannot hand on, the relay being down, is
    lost as well)."""

    def __init__(self, relay_port):
        self.relay_port = relay_port
        self.port = peers.free_port()
        self.lock = threading.Lock()
        self.received = self.dropped = self.forwarded = 0
        self.forwarded_event = threading.Event()
        self.ctl = Controller(self, hostname="127.0.0.1", port=self.port)

    def forward(self, env):
        with smtplib.SMTP("127.0.0.1", self.relay_port, timeout=10) as s:
            s.sendmail(env.mail_from, env.rcpt_tos, env.original_content)

    async def handle_DATA(self, server, session, env):
        with self.lock:
            self.received += 1
            drop = RNG.random() < DROP
        if not drop:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, self.forward, env)
            except (OSError, smtplib.SMTPException):
                drop = True
        with self.lock:
            if drop:
                self.dropped += 1
            else:
                self.forwarded += 1
                self.forwarded_event.set()
        return "250 2.0.0 OK"


class Load(threading.Thread):
    """Submits each message once to the relay; one whose session broke
    before the 250 is not sent again (it is not the relay's)."""

    def __init__(self, port, messages):
        super().__init__(daemon=True)
        self.port = port
        self.messages = messages
        self.acked = set()
        self.unacked = set()

    def connect(self):
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                s = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                s.ehlo("orders.test")
                return s
            except (OSError, smtplib.SMTPException):
                time.sleep(0.02)
        raise RuntimeError("the relay never came back")

    def run(self):
        s = None
        for seq in range(self.messages):
            if s is None:
                s = self.connect()
            try:
                s.sendmail("orders@orders.test", ["warehouse@example.net"],
                           body(seq))
                self.acked.add(seq)
            except (OSError, smtplib.SMTPException):
                self.unacked.add(seq)
                try:
                    s.close()
                except OSError:
                    pass
                s = None
            time.sleep(0.005)
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass


def count_log(text, pattern):
    return len(re.findall(pattern, text, re.M))


def wait_for(pred, t):
    end = time.monotonic() + t
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def run(messages, dsn):
    """One round; dsn: smtpx-recv also offers DSN and sends "delivered"
    reports (two acknowledgements per message), else MDNs alone and the
    relay's engine reports "relayed" to its own outbox."""
    d = tempfile.mkdtemp(prefix="smtpx-ackfault-")
    relay_port = peers.free_port()
    path = AckPath(relay_port)
    path.ctl.start()
    recv = Recv(d, path.port, dsn)
    recv.start()
    relay = Relay(BUILD, d, "--smarthost", "127.0.0.1:%d" % recv.port,
                  "--smarthost-tls", "none", "--mynetworks", "127.0.0.0/8",
                  "--retry-min", "1s", "--retry-max", "2s",
                  "--await-ack", "2s", "--await-ack-max", "8s",
                  "--max-resend", "30",
                  "--ack-address", "acks@relay.test", port=relay_port)
    relay.start()
    load = Load(relay.port, messages)
    t0 = time.monotonic()
    load.start()

    kills = {"recv-random": 0, "recv-after-store": 0, "relay-random": 0,
             "relay-after-ack": 0}
    kinds = list(kills)
    while load.is_alive() and sum(kills.values()) < KILLS * len(kinds):
        kind = kinds[sum(kills.values()) % len(kinds)]
        if kind == "recv-random":
            time.sleep(RNG.uniform(0.05, 0.4))
            recv.kill()
            recv.start(wait=False)
        elif kind == "recv-after-store":
            # Right after a message was stored and answered: its
            # acknowledgement is queued, or on its way, or not yet.
            n = count_log(recv.logtext(), r" verdict=new ")
            if not wait_for(lambda: count_log(recv.logtext(),
                                              r" verdict=new ") > n, 5):
                kills[kind] -= 1
            recv.kill()
            recv.start(wait=False)
        elif kind == "relay-random":
            time.sleep(RNG.uniform(0.05, 0.4))
            relay.kill()
            relay.start(wait=False)
        else:
            # Right after an acknowledgement was handed to the relay.
            path.forwarded_event.clear()
            if not path.forwarded_event.wait(5):
                kills[kind] -= 1
            relay.kill()
            relay.start(wait=False)
        kills[kind] += 1
        time.sleep(RNG.uniform(0.0, 0.1))
    load.join(300)
    assert not load.is_alive(), "the load did not finish"
    for p, start in ((recv, recv.start), (relay, relay.start)):
        if p.proc.poll() is not None:
            start()
    peers.wait_port(relay.port, relay.proc, t=peers.WAIT)
    peers.wait_port(recv.port, recv.proc, t=peers.WAIT)

    def acknowledged():
        log = relay.logtext()
        got = set(int(m) for m in re.findall(
            r"^.*ack: <?order-(\d+)@orders\.test>? \S+ acknowledged", log,
            re.M))
        return load.acked <= got

    outbox_msg = os.path.join(relay.queue, "outbox", "msg")

    def outbox():
        return sorted(os.listdir(outbox_msg)) \
            if os.path.isdir(outbox_msg) else []

    # The relay may also hold a message whose 250 never reached the load
    # (killed between its commit and the reply): the relay owns it, sends
    # it and waits for its acknowledgement too, so the end is an empty
    # outbox as well.
    wait_for(lambda: acknowledged() and not outbox(),
             240 if peers.SLOW else 120 * peers.FACTOR)
    elapsed = time.monotonic() - t0
    relay_code = relay.stop()
    recv_code = recv.stop()
    path.ctl.stop()

    rlog, slog = relay.logtext(), recv.logtext()
    seen, altered = {}, []
    for raw in recv.stored():
        i = raw.find(b"X-Seq: ")
        if i < 0:
            altered.append(raw[:200])
            continue
        seq = int(raw[i + 7:raw.index(b"\n", i)])
        if not raw.endswith(body(seq).split(b"\r\n\r\n", 1)[1]
                            .replace(b"\r\n", b"\n")):
            altered.append(raw[:200])
        seen[seq] = seen.get(seq, 0) + 1
    lost = sorted(s for s in load.acked if s not in seen)
    twice = sum(n - 1 for n in seen.values() if n > 1)
    redeliveries = count_log(slog, r" verdict=redelivery ")
    suppressed = count_log(slog, r" verdict=duplicate ")
    # A "waiting" event with sends=1 is the first send; more is a resend.
    resends = count_log(rlog, r"ack: \S+ \S+ waiting sends=([2-9]|\d\d)")
    gave_up = count_log(rlog, r"ack: \S+ \S+ (unacknowledged|failed) ")
    outbox_left = outbox()
    print("ack faults (%s): %d messages (%d got a 250 from the relay), %.1f s; "
          "kills %s; acknowledgements %d sent, %d dropped; resends %d; "
          "duplicates suppressed %d; redeliveries %d; stored twice %d; "
          "lost %d; altered %d; given up or failed %d; outbox left %d"
          % ("MDN and DSN" if dsn else "MDN", messages, len(load.acked),
             elapsed,
             ", ".join("%s %d" % kv for kv in kills.items()), path.received,
             path.dropped, resends, suppressed, redeliveries, twice,
             len(lost), len(altered), gave_up, len(outbox_left)))
    why_failed = []

    def fail(why):
        print("FAIL: " + why)
        why_failed.append(why)

    unacknowledged = sorted(load.acked - set(int(m) for m in re.findall(
        r"ack: <?order-(\d+)@orders\.test>? \S+ acknowledged", rlog)))
    if unacknowledged:
        fail("not every message acknowledged on the sending side: %s"
             % unacknowledged[:20])
    if lost:
        fail("given a 250 and never stored: %s" % lost[:20])
    if altered:
        fail("altered messages: %r" % altered[:3])
    if twice > redeliveries:
        fail("stored twice %d times, but only %d redeliveries explain it"
             % (twice, redeliveries))
    if gave_up:
        fail("%d given up or failed" % gave_up)
    if outbox_left:
        fail("the outbox still holds %s" % outbox_left[:5])
    if relay_code != 0 or recv_code != 0:
        fail("exit status relay %s, recv %s" % (relay_code, recv_code))
    if path.dropped == 0 or suppressed == 0 or resends == 0:
        fail("the faults did not happen: nothing was tested")
    if len(load.acked) < messages // 2:
        fail("too few messages got through to mean anything")
    if why_failed:
        # The logs' ends, then the reasons again (a CI log may keep only
        # its head and tail); the directory is kept for a closer look.
        print("relay log:\n" + rlog[-4000:])
        print("recv log:\n" + slog[-4000:])
        for why in why_failed:
            print("FAIL: " + why)
        print("ack faults: FAILED (logs, queues and Maildir kept in %s)" % d)
        return False
    shutil.rmtree(d, ignore_errors=True)
    print("ack faults: ok")
    return True


def main():
    ok = run(MESSAGES, True)
    return 0 if run(MESSAGES * 2 // 5, False) and ok else 1


if __name__ == "__main__":
    sys.exit(main())
