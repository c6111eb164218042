#!/usr/bin/python3
"""MX routing against a real DNS server: dnsmasq (Debian's dnsmasq-base)
answers for a private .test zone in a network namespace made by netns.sh,
where every 127.0.0.0/8 address is ours; smtpx-recv listens on port 25 of
the MX hosts' addresses and smtpx-relay delivers by MX, with the system
resolver.  MX preferences and the fallback to the next host, random order
among equal preferences, the implicit MX, a null MX, a domain that does
not exist and an MX that is this host.

Usage: netns.sh test_mx.py BUILD_DIR
"""
import email
import email.policy
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from relay_peer import Relay  # noqa: E402

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
RECV = os.path.join(BUILD, "examples", "smtpx-recv")

ZONE = """port=53
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
local=/test/
mx-host=pref.test,mx1.test,10
mx-host=pref.test,mx2.test,20
mx-host=eq.test,mxa.test,10
mx-host=eq.test,mxb.test,10
mx-host=loop.test,relay.test,10
host-record=mx1.test,127.0.0.2
host-record=mx2.test,127.0.0.3
host-record=mxa.test,127.0.0.4
host-record=mxb.test,127.0.0.5
host-record=noemx.test,127.0.0.6
host-record=relay.test,127.0.0.1
dns-rr=null.test,15,000000
mx-host=tlsok.test,mx.test,10
mx-host=tlsbad.test,mxt.test,10
host-record=mx.test,127.0.0.8
host-record=mxt.test,127.0.0.7
"""
HOSTS = {"mx1": "127.0.0.2", "mx2": "127.0.0.3", "mxa": "127.0.0.4",
         "mxb": "127.0.0.5", "noemx": "127.0.0.6", "mx": "127.0.0.8",
         "mxt": "127.0.0.7"}
# The test certificate names mx.test: good for mx.test, wrong for mxt.test.
TLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                   "tls")
TLS_HOSTS = ("mx", "mxt")


def wait_for(cond, t=None):
    end = time.monotonic() + (max(15, peers.WAIT) if t is None else t)
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def count(maildir):
    new = os.path.join(maildir, "new")
    return len(os.listdir(new)) if os.path.isdir(new) else 0


class MxRouting(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="smtpx-mx-")
        conf = os.path.join(cls.dir, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(ZONE)
        cls.dns = subprocess.Popen(["dnsmasq", "-k", "-u", "root", "-C", conf,
                                    "--pid-file=" + os.path.join(cls.dir, "pid")],
                                   stderr=subprocess.DEVNULL)
        cls.recv = {}
        for name, addr in HOSTS.items():
            md = os.path.join(cls.dir, name)
            tls = []
            if name in TLS_HOSTS:
                tls = ["--tls-cert", os.path.join(TLS, "server.pem"),
                       "--tls-key", os.path.join(TLS, "server.key")]
            p = subprocess.Popen([RECV, "--listen", addr + ":25", "--maildir",
                                  md, "--hostname", name + ".test", "-q"] +
                                 tls)
            cls.recv[name] = (p, md)
        for name, addr in HOSTS.items():
            wait_for(lambda: subprocess.run(
                ["python3", "-c", "import socket;socket.create_connection"
                 "(('%s',25),1)" % addr], capture_output=True).returncode == 0)
        cls.mail = os.path.join(cls.dir, "mail")
        cls.relay = Relay(BUILD, cls.dir, "--local-domain", "example.org",
                          "--maildir", cls.mail, "--mynetworks", "127.0.0.0/8",
                          "--retry-min", "1s", "--retry-max", "1s",
                          "--tls-ca", os.path.join(TLS, "ca.pem"),
                          "--tls-policy", "tlsok.test=verify",
                          "--tls-policy", "tlsbad.test=verify").start()

    @classmethod
    def tearDownClass(cls):
        code = cls.relay.stop()
        for p, _ in cls.recv.values():
            peers.stop_process(p)
        cls.dns.terminate()
        cls.dns.wait(10)
        log = cls.relay.logtext()
        cls.relay.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert code == 0, log

    def send(self, to):
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
            s.sendmail("alice@example.org", [to],
                       b"Subject: mx\r\n\r\nto %s\r\n" % to.encode())

    def bounce_status(self, n):
        box = os.path.join(self.mail, "alice", "new")
        self.assertTrue(wait_for(lambda: os.path.isdir(box) and
                                 len(os.listdir(box)) >= n),
                        self.relay.logtext())
        name = sorted(os.listdir(box), key=lambda x: os.stat(
            os.path.join(box, x)).st_mtime)[n - 1]
        with open(os.path.join(box, name), "rb") as f:
            msg = email.message_from_bytes(f.read(),
                                           policy=email.policy.default)
        for part in msg.iter_parts():
            if part.get_content_type() == "message/delivery-status":
                return part.get_payload()[1]
        self.fail("no delivery-status part")

    def test_1_preference_and_fallback(self):
        self.send("u@pref.test")
        self.assertTrue(wait_for(lambda: count(self.recv["mx1"][1]) == 1))
        self.assertEqual(count(self.recv["mx2"][1]), 0)
        # The best host goes down: the next one takes the mail.
        peers.stop_process(self.recv["mx1"][0])
        self.send("v@pref.test")
        self.assertTrue(wait_for(lambda: count(self.recv["mx2"][1]) == 1),
                        self.relay.logtext())
        self.assertTrue(self.relay.wait_empty(10))

    def test_2_equal_preferences_random(self):
        for i in range(16):
            self.send("u%d@eq.test" % i)
            self.assertTrue(self.relay.wait_empty(10))
        a, b = count(self.recv["mxa"][1]), count(self.recv["mxb"][1])
        self.assertEqual(a + b, 16)
        self.assertGreater(a, 0, "mxb always first")
        self.assertGreater(b, 0, "mxa always first")

    def test_3_no_mx(self):
        self.send("u@noemx.test")
        self.assertTrue(wait_for(lambda: count(self.recv["noemx"][1]) == 1),
                        self.relay.logtext())

    def test_4_null_mx_nxdomain_loop(self):
        base = 0
        box = os.path.join(self.mail, "alice", "new")
        if os.path.isdir(box):
            base = len(os.listdir(box))
        self.send("u@null.test")
        r = self.bounce_status(base + 1)
        self.assertEqual(r["Status"], "5.1.10")
        self.assertEqual(r["Action"], "failed")
        self.send("u@nosuch.test")
        r = self.bounce_status(base + 2)
        self.assertEqual(r["Status"], "5.1.2")
        self.send("u@loop.test")
        r = self.bounce_status(base + 3)
        self.assertEqual(r["Status"], "5.4.6")
        self.assertIn("loops back", r["Diagnostic-Code"])
        # Each failed at the first attempt: no retry was needed.
        self.assertTrue(self.relay.wait_empty(5))

    def test_5_tls_policy(self):
        """Per-destination TLS: verify for two domains.  The MX whose
        certificate names it takes the mail over verified TLS; the one
        whose certificate names another host gets nothing, and the mail
        waits (deferred), as Postfix's "verify" level does."""
        self.send("u@tlsok.test")
        self.assertTrue(wait_for(lambda: count(self.recv["mx"][1]) == 1),
                        self.relay.logtext())
        new = os.path.join(self.recv["mx"][1], "new")
        with open(os.path.join(new, os.listdir(new)[0]), "rb") as f:
            self.assertIn(b"with ESMTPS", f.read())
        self.send("u@tlsbad.test")
        self.assertTrue(wait_for(lambda: "u@tlsbad.test" in
                                 self.relay.listing()),
                        self.relay.logtext())
        self.assertTrue(wait_for(lambda: "status=deferred" in
                                 self.relay.logtext()), self.relay.logtext())
        # The reason is in the queue once the attempt's state is written
        # (just after the log line).
        self.assertTrue(wait_for(lambda: "could not be verified" in
                                 self.relay.listing()), self.relay.listing())
        self.assertEqual(count(self.recv["mxt"][1]), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
