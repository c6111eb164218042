#!/usr/bin/python3
"""Interop: smtpx-relay --await-ack, the sending side of closing the loop.

Python's smtplib submits to the relay, which relays to a peer: an aiosmtpd
server in this process that stores what comes and - as the test steers it
- answers with an MDN (RFC 8098) or a failure DSN (RFC 3464) built with
Python's email package and sent to the relay's own listener, or never
answers.  The relay must match the reports to what it sent, consume them,
resend what is not acknowledged with the same Message-ID, give up with a
report, and resume after a restart.  With root, a private Postfix sits
between the relay and Postfix's smtp-sink: its bounce (a failure DSN) and
its "relayed" success report come back to the relay's listener.

Usage: test_relay_ack.py BUILD_DIR
"""
import email
import email.policy
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from aiosmtpd.controller import Controller

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from relay_peer import Relay  # noqa: E402

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
RELAY = os.path.join(BUILD, "examples", "smtpx-relay")
ACK = "relay-ack@relay.test"  # the default: relay-ack@ --hostname

# No Message-ID: the relay's outbox gives it one.
MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
           b"Subject: order 42\r\n\r\nthree crates\r\n.leading dot\r\n")


# The deadline of the tests that expect the report before it, and a wait
# past it: longer under valgrind (make check-valgrind), where the relay
# and the peer's answer take some twenty times longer, and under the
# sanitizers and coverage (peers.FACTOR).
_AWAIT_S = 4 if peers.SLOW else max(1, round(peers.FACTOR))
AWAIT, PAST = "%ds" % _AWAIT_S, _AWAIT_S + 1.5


def wait_for(cond, t=None, step=0.05):
    end = time.monotonic() + (max(20, peers.WAIT) if t is None else t)
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def msgid_of(raw):
    return parse(raw)["Message-ID"].strip().strip("<>")


def build_mdn(orig, rcpt):
    """An RFC 8098 MDN "processed" about the message orig (bytes) for
    rcpt, to its Disposition-Notification-To, as a receiving system
    writes it."""
    o = parse(orig)
    mdn = MIMEMultipart("report", report_type="disposition-notification")
    mdn["From"] = "<%s>" % rcpt
    mdn["To"] = o["Disposition-Notification-To"]
    mdn["Subject"] = "Processed: " + str(o["Subject"])
    mdn["Auto-Submitted"] = "auto-replied"
    mdn.attach(MIMEText("The message to %s was processed.\r\n" % rcpt))
    status = MIMEBase("message", "disposition-notification")
    status.set_payload(
        "Reporting-UA: peer.test; Python email\r\n"
        "Original-Recipient: rfc822;%s\r\n"
        "Final-Recipient: rfc822;%s\r\n"
        "Original-Message-ID: %s\r\n"
        "Disposition: automatic-action/MDN-sent-automatically; processed\r\n"
        % (rcpt, rcpt, o["Message-ID"]))
    mdn.attach(status)
    return mdn.as_bytes(policy=email.policy.SMTP)


def build_failure_dsn(orig, rcpt, envid=None):
    """An RFC 3464 failure DSN for rcpt that returns the header of orig
    (its Message-ID is what names the message) - as an MTA that took the
    message and then could not deliver it writes it."""
    dsn = MIMEMultipart("report", report_type="delivery-status")
    dsn["From"] = "Mail Delivery System <MAILER-DAEMON@peer.test>"
    dsn["Subject"] = "Undelivered Mail Returned to Sender"
    dsn["Auto-Submitted"] = "auto-replied"
    dsn.attach(MIMEText("Your message could not be delivered.\r\n"))
    per_msg = Message()
    per_msg["Reporting-MTA"] = "dns; peer.test"
    if envid is not None:
        per_msg["Original-Envelope-Id"] = envid
    per_rcpt = Message()
    per_rcpt["Final-Recipient"] = "rfc822; " + rcpt
    per_rcpt["Action"] = "failed"
    per_rcpt["Status"] = "5.1.1"
    per_rcpt["Diagnostic-Code"] = ("smtp; 550 5.1.1 <%s>: mailbox unknown"
                                   % rcpt)
    status = MIMEBase("message", "delivery-status")
    status.set_payload([per_msg, per_rcpt])
    dsn.attach(status)
    head = orig.split(b"\r\n\r\n", 1)[0].decode("ascii") + "\r\n"
    dsn.attach(MIMEText(head, "rfc822-headers"))
    return dsn.as_bytes(policy=email.policy.SMTP)


class Peer:
    """The next hop: stores every message; mode "ack" answers each
    message that asks for it with an MDN to its Disposition-Notification-
    To, "fail" with a failure DSN to its envelope sender, "never" not at
    all.  Answers go to the relay's listener from a thread of their own,
    after the 250."""

    def __init__(self, mode):
        self.mode = mode
        self.relay_port = None
        self.got = []  # (mail_from, rcpts, rcpt_options, content)
        self.sent = []  # (to, code) of the answers sent
        self.lock = threading.Lock()
        self.port = peers.free_port()
        self.ctl = Controller(self, hostname="127.0.0.1", port=self.port)
        self.ctl.start()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        with self.lock:
            self.got.append((envelope.mail_from, list(envelope.rcpt_tos),
                             list(envelope.rcpt_options), raw))
        if envelope.mail_from not in ("", "<>"):
            for rcpt in envelope.rcpt_tos:
                if self.mode == "ack" and \
                        b"Disposition-Notification-To:" in raw:
                    to = parse(raw)["Disposition-Notification-To"]
                    to = to.strip().strip("<>")
                    self.answer(to, build_mdn(raw, rcpt))
                elif self.mode == "fail":
                    self.answer(envelope.mail_from,
                                build_failure_dsn(raw, rcpt))
        return "250 2.0.0 stored"

    def answer(self, to, report):
        def run():
            # The answer to the report is recorded before the QUIT, whose
            # reply may come late (under valgrind) or be a 421 from a
            # relay the test is stopping.
            try:
                with smtplib.SMTP("127.0.0.1", self.relay_port,
                                  timeout=10) as s:
                    try:
                        s.sendmail("", [to], report)
                        code = 250
                    except smtplib.SMTPException as e:
                        code = getattr(e, "smtp_code", -1)
                    with self.lock:
                        self.sent.append((to, code))
            except (OSError, smtplib.SMTPException):
                pass
        threading.Thread(target=run, daemon=True).start()

    def messages(self):
        """What came from a sender that is not null (not reports)."""
        with self.lock:
            return [g for g in self.got if g[0] not in ("", "<>")]

    def reports(self):
        with self.lock:
            return [g for g in self.got if g[0] in ("", "<>")]

    def stop(self):
        self.ctl.stop()


def maildir(path):
    new = os.path.join(path, "new")
    if not os.path.isdir(new):
        return []
    out = []
    for n in sorted(os.listdir(new)):
        with open(os.path.join(new, n), "rb") as f:
            out.append(f.read())
    return out


class Rig(unittest.TestCase):
    """The relay, its peers, and what the tests ask of them."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpx-relay-ack-")
        os.chmod(self.dir, 0o755)  # smtp-sink and Postfix drop privileges
        self.mail = os.path.join(self.dir, "mail")
        self.relay = None
        self.peer = None
        self.others = []

    def tearDown(self):
        code = None
        if self.relay is not None and self.relay.proc is not None and \
                self.relay.proc.poll() is None:
            code = self.relay.stop()
        log = self.relay.logtext() if self.relay else ""
        if self.peer is not None:
            self.peer.stop()
        for stop in self.others:
            stop()
        if self.relay is not None:
            self.relay.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if code is not None:
            self.assertEqual(code, 0, "smtpx-relay exit status; log:\n" + log)

    def start_relay(self, next_hop, *extra):
        self.relay = Relay(
            BUILD, self.dir, "--smarthost", "127.0.0.1:%d" % next_hop,
            "--smarthost-tls", "none", "--mynetworks", "127.0.0.0/8",
            "--local-domain", "example.org", "--maildir", self.mail,
            "--no-fsync", *extra)
        if self.peer is not None:
            self.peer.relay_port = self.relay.port
        return self.relay.start()

    def outbox(self):
        """The messages waiting for an acknowledgement (files)."""
        d = os.path.join(self.relay.queue, "outbox", "msg")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def send(self, msg=MESSAGE, to="bob@example.net",
             sender="alice@example.org"):
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail(sender)
            code, text = s.rcpt(to)
            self.assertEqual(code, 250, text)
            code, text = s.data(msg)
            self.assertEqual(code, 250, text)
            return text.decode()

    def ack_lines(self, state=None):
        lines = re.findall(r"ack: (\S+) (\S+) (\S+) sends=(\d+) ?(.*)",
                           self.relay.logtext())
        return [l for l in lines if state is None or l[2] == state]


class RelayAck(Rig):
    def test_acknowledged(self):
        """The peer answers with an MDN: the relay matches it (the
        Message-ID it gave), consumes it (nothing relays or delivers it),
        and never resends."""
        self.peer = Peer("ack")
        self.start_relay(self.peer.port, "--await-ack", AWAIT)
        text = self.send()
        self.assertTrue(wait_for(lambda: self.ack_lines("acknowledged")),
                        self.relay.logtext())
        (got,) = self.peer.messages()
        mail_from, rcpts, _, raw = got
        self.assertEqual((mail_from, rcpts), ("alice@example.org",
                                              ["bob@example.net"]))
        m = parse(raw)
        mid = msgid_of(raw)
        self.assertTrue(mid.endswith("@relay.test"), mid)
        self.assertIn("<%s>" % mid, text)  # the 250 names it
        self.assertEqual(m["Disposition-Notification-To"], "<%s>" % ACK)
        self.assertTrue(raw.endswith(MESSAGE.split(b"\r\n\r\n", 1)[1]))
        self.assertEqual(self.ack_lines("acknowledged"),
                         [(mid, "bob@example.net", "acknowledged", "1",
                           "processed")])
        self.assertEqual(self.ack_lines("waiting"),
                         [(mid, "bob@example.net", "waiting", "1", "")])
        # The line about the report follows the event's.
        want = ("MDN from <> about <%s> taken: 1 recipient changed "
                "(bob@example.net processed)" % mid)
        self.assertTrue(wait_for(lambda: want in self.relay.logtext()),
                        self.relay.logtext())
        self.assertTrue(wait_for(lambda: self.outbox() == []),
                        self.outbox())
        self.assertTrue(wait_for(lambda: self.peer.sent == [(ACK, 250)]),
                        self.peer.sent)
        time.sleep(PAST)  # past the deadline: no resend
        self.assertEqual(len(self.peer.messages()), 1)
        self.assertEqual(self.peer.reports(), [])  # the MDN went nowhere
        self.assertTrue(self.relay.wait_empty(5))
        self.assertEqual(maildir(os.path.join(self.mail, "relay-ack")), [])

    def test_resend_then_give_up(self):
        """No acknowledgement: resent after 1s, then 2s - the same octets,
        the same Message-ID - then given up after --max-resend 2, with a
        report to --ack-report."""
        self.peer = Peer("never")
        self.start_relay(self.peer.port, "--await-ack", "1s",
                         "--max-resend", "2", "--ack-report",
                         "ops@example.org")
        t0 = time.monotonic()
        self.send()
        self.assertTrue(wait_for(lambda: self.ack_lines("unacknowledged"),
                                 t=30), self.relay.logtext())
        took = time.monotonic() - t0
        sent = self.peer.messages()
        self.assertEqual(len(sent), 3, self.relay.logtext())
        self.assertEqual({g[3] for g in sent}, {sent[0][3]})  # byte for byte
        mid = msgid_of(sent[0][3])
        self.assertEqual([l[3] for l in self.ack_lines("waiting")],
                         ["1", "2", "3"])
        self.assertEqual(self.ack_lines("unacknowledged"),
                         [(mid, "bob@example.net", "unacknowledged", "3",
                           "")])
        # 1 + 2 + 4 seconds of waiting (doubling), each at least as long
        # as asked (deadlines are whole seconds, rounded up).
        self.assertGreaterEqual(took, 7, took)
        box = os.path.join(self.mail, "ops")
        self.assertTrue(wait_for(lambda: len(maildir(box)) == 1),
                        self.relay.logtext())
        report = parse(maildir(box)[0])
        self.assertEqual(report["Subject"], "Not acknowledged: <%s>" % mid)
        self.assertIn("MAILER-DAEMON@relay.test", report["From"])
        self.assertIn("<bob@example.net>", report.get_content())
        self.assertIn("sent 3 times", report.get_content())
        # Its event comes first; the copy is removed after it.
        self.assertTrue(wait_for(lambda: self.outbox() == []),
                        self.relay.logtext())
        time.sleep(1.5)
        self.assertEqual(len(self.peer.messages()), 3)

    def test_resend_capped(self):
        """--await-ack-max caps the doubling: after 1s, 1s, 1s and 1s (4s
        each under valgrind) the message is given up, where doubling alone
        would wait 1 + 2 + 4 + 8 = 15 times that."""
        base = 4 if peers.SLOW else 1
        self.peer = Peer("never")
        self.start_relay(self.peer.port, "--await-ack", "%ds" % base,
                         "--await-ack-max", "%ds" % base, "--max-resend", "3")
        t0 = time.monotonic()
        self.send()
        self.assertTrue(wait_for(lambda: self.ack_lines("unacknowledged"),
                                 t=30 * base), self.relay.logtext())
        took = time.monotonic() - t0
        self.assertEqual([l[3] for l in self.ack_lines("waiting")],
                         ["1", "2", "3", "4"])
        self.assertEqual(len(self.peer.messages()), 4, self.relay.logtext())
        self.assertGreaterEqual(took, 4 * base, took)
        self.assertLess(took, 15 * base, took)
        # Its event comes first; the copy is removed after it.
        self.assertTrue(wait_for(lambda: self.outbox() == []),
                        self.relay.logtext())

    def test_list(self):
        """--list, while the relay runs, shows after the queue what awaits
        acknowledgement: the outbox's copy, its sender and recipients and
        how often it was sent."""
        self.peer = Peer("never")
        self.start_relay(self.peer.port, "--await-ack", "1m")
        out = self.relay.listing()
        self.assertIn("Mail queue is empty", out)
        self.assertIn("Nothing awaits acknowledgement", out)
        self.send()
        self.assertTrue(wait_for(lambda: len(self.peer.messages()) == 1))
        self.assertEqual(len(self.outbox()), 1)
        out = self.relay.listing()
        self.assertIn("Mail queue is empty", out)
        self.assertIn("Awaiting acknowledgement", out)
        entry = out.split("Awaiting acknowledgement", 1)[1]
        self.assertIn(self.outbox()[0], entry)
        self.assertRegex(entry, r"alice@example\.org\n")
        # Sent once: no deadline written yet; --await-ack given with
        # --list says when.
        self.assertIn("(sent 1 time; next after --await-ack)", entry)
        self.assertRegex(entry, r"\n +bob@example\.net\n")
        self.assertIn("in 1 Request awaiting acknowledgement.", entry)
        r = subprocess.run([RELAY, "--queue", self.relay.queue, "--list",
                            "--await-ack", "1m"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\(sent 1 time; next \w{3} \w{3} "
                                   r"\d\d \d\d:\d\d:\d\d\)")

    def test_restart_resumes(self):
        """A message waits; the relay stops (SIGTERM, exit 0) and starts
        again: it still waits, is resent with the same Message-ID at its
        deadline, and the acknowledgement of the resend finishes it."""
        self.peer = Peer("never")
        self.start_relay(self.peer.port, "--await-ack",
                         "20s" if peers.SLOW else "%ds" % (5 * peers.FACTOR))
        self.send()
        self.assertTrue(wait_for(lambda: len(self.peer.messages()) == 1))
        mid = msgid_of(self.peer.messages()[0][3])
        self.assertEqual(self.relay.stop(), 0, self.relay.logtext())
        self.assertEqual(len(self.outbox()), 1)
        self.assertIn("0 in the queue, 1 awaiting acknowledgement",
                      self.relay.logtext())
        self.peer.mode = "ack"
        self.relay.start()
        self.assertIn("1 awaiting acknowledgement", self.relay.logtext())
        self.assertTrue(wait_for(lambda: self.ack_lines("acknowledged")),
                        self.relay.logtext())
        sent = self.peer.messages()
        self.assertEqual(len(sent), 2)
        self.assertEqual(msgid_of(sent[1][3]), mid)
        self.assertEqual(sent[0][3], sent[1][3])
        self.assertEqual(self.ack_lines("acknowledged"),
                         [(mid, "bob@example.net", "acknowledged", "2",
                           "processed")])
        self.assertTrue(wait_for(lambda: self.outbox() == []))

    def test_failure_dsn(self):
        """A failure DSN (matched by the Message-ID of the header it
        returns) makes the recipient "failed": no resend, and the DSN is
        consumed, not delivered to the sender."""
        self.peer = Peer("fail")
        self.start_relay(self.peer.port, "--await-ack", AWAIT)
        self.send()
        self.assertTrue(wait_for(lambda: self.ack_lines("failed")),
                        self.relay.logtext())
        mid = msgid_of(self.peer.messages()[0][3])
        ((i, rcpt, state, sends, detail),) = self.ack_lines("failed")
        self.assertEqual((i, rcpt, sends), (mid, "bob@example.net", "1"))
        self.assertTrue(detail.startswith("failed 5.1.1 smtp; 550 5.1.1"),
                        detail)
        self.assertTrue(wait_for(lambda: self.peer.sent ==
                                 [("alice@example.org", 250)]),
                        self.peer.sent)
        self.assertTrue(wait_for(lambda: self.outbox() == []))
        time.sleep(PAST)
        self.assertEqual(len(self.peer.messages()), 1)
        self.assertEqual(self.ack_lines("unacknowledged"), [])
        for raw in maildir(os.path.join(self.mail, "alice")):
            self.assertNotIn(b"Action: failed", raw)

    def test_strays_and_other_mail(self):
        """A report to the ack address about nothing the outbox knows is
        consumed (a stray); a message for the ack address that is not a
        report (or is over a limit of the report parser) is refused; a
        report about another message to a local
        user is delivered as always; the ack address takes mail from
        clients outside --mynetworks (reports come from anywhere)."""
        self.peer = Peer("never")
        self.start_relay(self.peer.port, "--await-ack", "1m")
        other = (b"From: x@example.com\r\nTo: y@example.net\r\n"
                 b"Message-ID: <unknown.1@example.com>\r\n"
                 b"Subject: hi\r\n\r\nhi\r\n")
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
            s.sendmail("", [ACK], build_failure_dsn(other, "y@example.net",
                                                    envid="nothing-here"))
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                s.sendmail("someone@example.com", [ACK], other)
            self.assertEqual(cm.exception.smtp_code, 550)
            s.sendmail("", ["carol@example.org"],
                       build_failure_dsn(other, "y@example.net"))
            # A status part past the parser's 64 KiB is no report.
            pad = (b"X-Pad: " + b"p" * 900 + b"\r\n") * 80
            big = build_failure_dsn(other, "y@example.net").replace(
                b"Action: failed\r\n", b"Action: failed\r\n" + pad)
            self.assertIn(pad, big)
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                s.sendmail("", [ACK], big)
            self.assertEqual(cm.exception.smtp_code, 550)
            s.noop()  # the session goes on
        self.assertIn("DSN from <> about <unknown.1@example.com> taken: 0 "
                      "recipients changed", self.relay.logtext())
        self.assertIn("refused: not a report\n", self.relay.logtext())
        self.assertIn("refused: not a report (over a limit of the parser)",
                      self.relay.logtext())
        box = os.path.join(self.mail, "carol")
        self.assertTrue(wait_for(lambda: len(maildir(box)) == 1),
                        self.relay.logtext())
        self.assertIn(b"unknown.1@example.com", maildir(box)[0])
        self.assertTrue(self.relay.wait_empty(10))
        self.assertEqual(self.peer.got, [])
        self.assertEqual(maildir(os.path.join(self.mail, "relay-ack")), [])

    def test_options(self):
        """Durations as the other options take them (1s, 2m, 3h, 4d, a
        plain number of seconds); nonsense and the ack options without
        --await-ack are refused with exit status 2."""
        q = os.path.join(self.dir, "q")
        bad = [["--await-ack", "0"], ["--await-ack", "1x"],
               ["--await-ack", "-1s"], ["--await-ack", ""],
               ["--await-ack", "1s", "--max-resend", "-1"],
               ["--await-ack", "1s", "--max-resend", "x"],
               ["--await-ack", "1s", "--ack-address", "no-at-sign"],
               ["--await-ack", "1s", "--ack-report", "nobody"],
               ["--await-ack", "10s", "--await-ack-max", "5s"],
               ["--await-ack", "1s", "--await-ack-max", "1x"],
               ["--await-ack-max", "1h"],
               ["--max-resend", "3"], ["--ack-address", "a@b.test"],
               ["--ack-report", "a@b.test"]]
        for args in bad:
            r = subprocess.run([RELAY, "--listen", "127.0.0.1:0", "--queue",
                                q] + args, capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
        for d in ("1s", "2m", "3h", "4d", "30"):
            port = peers.free_port()
            p = subprocess.Popen([RELAY, "--listen", "127.0.0.1:%d" % port,
                                  "--queue", q, "--await-ack", d,
                                  "--max-resend", "0", "--ack-address",
                                  "acks@relay.test"],
                                 stderr=subprocess.PIPE)
            peers.wait_port(port, p)
            self.assertEqual(peers.stop_process(p), 0)
            err = p.stderr.read().decode()
            p.stderr.close()
            self.assertIn("0 awaiting acknowledgement to <acks@relay.test>",
                          err)


class RelayAckPostfix(Rig):
    """A private Postfix between the relay and smtp-sink: what Postfix
    reports comes back to the relay's listener (transport_maps routes
    example.org there) with the ENVID the relay gave."""

    def postfix(self, sink_args):
        """Postfix relaying to smtp-sink run with sink_args, or (None)
        delivering itself with its discard(8) transport."""
        if os.getuid() != 0:
            self.skipTest("a private Postfix needs root")
        port, relay_port = peers.free_port(), peers.free_port()
        main_cf = ("mynetworks = 127.0.0.0/8\n"
                   "smtpd_relay_restrictions = permit_mynetworks, reject\n"
                   "transport_maps = inline:{ "
                   "example.org=smtp:[127.0.0.1]:%d }\n"
                   "smtp_connect_timeout = 5s\n" % relay_port)
        if sink_args is not None:
            sink = peers.free_port()
            p = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody"] +
                                 sink_args + ["127.0.0.1:%d" % sink, "10"])
            self.others.append(lambda: peers.stop_process(p))
            peers.wait_port(sink, p)
            main_cf += ("default_transport = smtp\nrelay_transport = smtp\n"
                        "relayhost = [127.0.0.1]:%d\n" % sink)
        pf = peers.PrivatePostfix(self.dir, port, main_cf)
        self.pf = pf
        self.others.append(pf.stop)
        return port, relay_port

    def start_via_postfix(self, sink_args, *extra):
        port, relay_port = self.postfix(sink_args)
        self.relay = Relay(
            BUILD, self.dir, "--smarthost", "127.0.0.1:%d" % port,
            "--smarthost-tls", "none", "--mynetworks", "127.0.0.0/8",
            "--local-domain", "example.org", "--maildir", self.mail,
            "--no-fsync", *extra, port=relay_port).start()

    def test_postfix_bounce(self):
        """smtp-sink refuses RCPT with 550: Postfix's bounce (a
        multipart/report delivery-status naming the relay's ENVID) comes
        to the relay, which marks the recipient failed and keeps the
        bounce from the sender."""
        self.start_via_postfix(["-f", "RCPT", "-B", "550 5.1.1 No such user"],
                               "--await-ack", "1m")
        self.send()
        self.assertTrue(wait_for(lambda: self.ack_lines("failed"), t=60),
                        self.relay.logtext() + self.pf.maillog())
        ((mid, rcpt, _, sends, detail),) = self.ack_lines("failed")
        self.assertEqual((rcpt, sends), ("bob@example.net", "1"))
        self.assertIn("5.1.1", detail)
        self.assertIn("No such user", detail)
        want = ("DSN from <> about <%s> taken: 1 recipient changed "
                "(bob@example.net failed)" % mid)
        self.assertTrue(wait_for(lambda: want in self.relay.logtext()),
                        self.relay.logtext())
        self.assertIn("status=bounced", self.pf.maillog())
        self.assertTrue(wait_for(lambda: self.outbox() == []))
        self.assertEqual(maildir(os.path.join(self.mail, "alice")), [])

    def test_postfix_relayed(self):
        """smtp-sink -N offers no DSN: Postfix relays and sends a
        "relayed" success report (RFC 3464 2.3.3: the report stops there).
        The relay takes it - it is about its message - but it is no
        acknowledgement: the recipient still waits and is resent."""
        self.start_via_postfix(["-N"], "--await-ack", "5s",
                               "--max-resend", "1")
        self.send()
        self.assertTrue(wait_for(lambda: self.ack_lines("waiting")))
        mid = self.ack_lines("waiting")[0][0]
        want = ("DSN from <> about <%s> taken: 0 recipients changed "
                "(bob@example.net relayed)" % mid)
        self.assertTrue(wait_for(lambda: want in self.relay.logtext(),
                                 t=60),
                        self.relay.logtext() + self.pf.maillog())
        self.assertIn("status=sent", self.pf.maillog())
        self.assertEqual(self.ack_lines("acknowledged"), [])
        self.assertEqual(len(self.outbox()), 1)  # the report came in 5s
        self.assertEqual(maildir(os.path.join(self.mail, "alice")), [])
        # Its deadline comes: resent, and "relayed" again; then given up.
        self.assertTrue(wait_for(lambda: self.ack_lines("unacknowledged"),
                                 t=60), self.relay.logtext())
        self.assertEqual([l[3] for l in self.ack_lines("waiting")],
                         ["1", "2"])
        self.assertEqual(self.ack_lines("acknowledged"), [])
        self.assertTrue(wait_for(
            lambda: self.relay.logtext().count(want) == 2, t=30),
            self.relay.logtext())

    def test_postfix_delivered(self):
        """Postfix delivers (its discard(8) transport is final delivery)
        and sends a "delivered" success report: that is the
        acknowledgement."""
        self.start_via_postfix(None, "--await-ack", "1m")
        self.send()
        self.assertTrue(wait_for(lambda: self.ack_lines("acknowledged"),
                                 t=60),
                        self.relay.logtext() + self.pf.maillog())
        ((mid, rcpt, _, sends, detail),) = self.ack_lines("acknowledged")
        self.assertEqual((rcpt, sends), ("bob@example.net", "1"))
        self.assertTrue(detail.startswith("delivered 2."), detail)
        want = "taken: 1 recipient changed (bob@example.net delivered)"
        self.assertTrue(wait_for(lambda: want in self.relay.logtext()),
                        self.relay.logtext())
        self.assertTrue(wait_for(lambda: self.outbox() == []))
        self.assertEqual(maildir(os.path.join(self.mail, "alice")), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
