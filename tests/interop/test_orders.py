#!/usr/bin/python3
"""Interop: smtpx-orders and smtpx-warehouse, two systems exchanging orders
as MIME attachments over loopback, with acknowledgements.

Every order sent is acknowledged and in the warehouse's ledger exactly
once, its octets as they were attached - also when the warehouse is killed
(SIGKILL) and restarted while orders flow, which makes the order system
resend.  The warehouse also takes orders from Python's smtplib: a message
sent twice is stored once and acknowledged twice (an MDN that Python's
email package reads, to an aiosmtpd server); a message without an order is
refused in the dialogue, and the order system gives it up.

Usage: test_orders.py BUILD_DIR
"""
import email
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from email.message import EmailMessage
from email.utils import make_msgid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import FACTOR, SLOW, WAIT, free_port, stop_process, wait_port  # noqa

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
ORDERS = os.path.join(BUILD, "examples", "smtpx-orders")
WAREHOUSE = os.path.join(BUILD, "examples", "smtpx-warehouse")
AIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aio_server.py")
SHOP = "orders@shop.example"
DEPOT = "stock@depot.example"


def ledger(path):
    """The warehouse's ledger as a list of (key, order octets)."""
    with open(path, "rb") as f:
        data = f.read()
    out, i = [], 0
    while i < len(data):
        nl = data.index(b"\n", i)
        m = re.fullmatch(rb"order (\S+) (\d+)", data[i:nl])
        assert m, data[i:nl]
        n = int(m.group(2))
        out.append((m.group(1).decode(), data[nl + 1:nl + 1 + n]))
        assert data[nl + 1 + n:nl + 2 + n] == b"\n"
        i = nl + 2 + n
    return out


def order_files(d, n):
    """n orders of many shapes: CRLF and LF, no final line end, UTF-8, a
    line too long for SMTP, 8-bit octets and NUL in a "CSV", JSON, one of
    200 KB."""
    files = {}
    for i in range(n):
        k = i % 6
        if k == 0:
            name, body = "o%d.csv" % i, b"sku,qty\r\nA-%d,3\r\n" % i
        elif k == 1:
            name, body = "o%d.csv" % i, b"sku,qty\nB-%d,1" % i
        elif k == 2:
            name = "o%d.json" % i
            body = ('{"order": %d, "item": "caf\u00e9 cr\u00e8me"}\n' % i
                    ).encode()
        elif k == 3:
            name, body = "o%d.csv" % i, b"note\n" + b"x" * 3000 + b"%d\n" % i
        elif k == 4:
            name = "o%d.csv" % i
            body = bytes(range(256)) + b"\0\r\r\n %d\n" % i
        else:
            name = "o%d.csv" % i
            body = b"".join(b"line %d of order %d\r\n" % (j, i)
                            for j in range(10000))
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(body)
        files[path] = body
    return files


class Orders(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpx-orders-")
        self.shop_port = free_port()
        self.depot_port = free_port()
        self.wh = None
        self.wh_out = open(os.path.join(self.dir, "warehouse.out"), "ab+")
        self.ledger = os.path.join(self.dir, "depot", "orders")

    def tearDown(self):
        try:
            # The warehouse ends cleanly on SIGTERM (under the sanitizers:
            # no error, no leak).
            if self.wh is not None:
                self.assertEqual(stop_process(self.wh), 0,
                                 self.warehouse_log()[-2000:])
        finally:
            self.wh_out.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_warehouse(self, ack_port=None):
        self.wh = subprocess.Popen(
            [WAREHOUSE, "--listen", "127.0.0.1:%d" % self.depot_port,
             "--dir", os.path.join(self.dir, "depot"), "--address", DEPOT,
             "--ack-via", "127.0.0.1:%d" % (ack_port or self.shop_port)],
            stdout=self.wh_out, stderr=subprocess.STDOUT)
        wait_port(self.depot_port, self.wh)

    def orders(self, *args, stdin=None, timeout=None):
        # Acknowledgements come back in time, under valgrind too, unless
        # a test asks for a short wait to make resends happen.
        if timeout is None:
            timeout = "60" if SLOW else str(int(5 * FACTOR))
        return subprocess.Popen(
            [ORDERS, "--listen", "127.0.0.1:%d" % self.shop_port, "--spool",
             os.path.join(self.dir, "shop"), "--from", SHOP, "--to", DEPOT,
             "--via", "127.0.0.1:%d" % self.depot_port, "--ack-timeout",
             timeout, "--max-resend", "10"] + list(args),
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def warehouse_log(self):
        self.wh_out.flush()
        with open(self.wh_out.name, "rb") as f:
            return f.read().decode(errors="replace")

    def check_exactly_once(self, out, files):
        """Every order sent was acknowledged, and is in the ledger once,
        octet for octet."""
        sent = dict(re.findall(r"^sent: (\S+) (.+)$", out, re.M))
        acked = re.findall(r"^ack: (\S+) %s acknowledged " % DEPOT, out,
                           re.M)
        self.assertEqual(sorted(sent.values()), sorted(files))
        self.assertEqual(sorted(acked), sorted(sent))
        records = ledger(self.ledger)
        keys = [k for k, _ in records]
        self.assertEqual(sorted(keys), sorted(sent), "exactly once")
        for key, body in records:
            self.assertEqual(body, files[sent[key]], sent[key])
        self.assertRegex(out, r"done: %d acknowledged, 0 not, 0 errors, "
                              r"0 waiting" % len(files))

    def test_orders_acknowledged(self):
        """30 orders given as arguments: each acknowledged, each stored
        once, byte for byte; the program ends by itself with status 0."""
        files = order_files(self.dir, 30)
        self.start_warehouse()
        p = self.orders(*sorted(files))
        out, err = p.communicate(timeout=8 * WAIT)
        out = out.decode()
        self.assertEqual(p.returncode, 0, out + err.decode())
        self.check_exactly_once(out, files)
        # Nothing was resent: the acknowledgements came in time.
        self.assertNotRegex(out, r" waiting sends=2")
        self.assertEqual(self.warehouse_log().count("verdict=new stored"),
                         30)

    def test_warehouse_killed(self):
        """60 orders streamed on the standard input, one every 25 ms; the
        warehouse is killed with SIGKILL twice while they flow and started
        again.  The order system retries and resends what was not
        acknowledged (1 s timeout), and still every order is acknowledged
        and stored once, byte for byte."""
        files = order_files(self.dir, 60)
        self.start_warehouse()
        p = self.orders("-", stdin=subprocess.PIPE, timeout="1")

        def feed():
            for path in sorted(files):
                p.stdin.write(path.encode() + b"\n")
                p.stdin.flush()
                time.sleep(0.025)

        feeder = threading.Thread(target=feed)
        feeder.start()
        for _ in range(2):
            time.sleep(0.4)
            self.wh.send_signal(signal.SIGKILL)
            self.wh.wait(WAIT)
            time.sleep(0.3)
            self.start_warehouse()
        feeder.join(WAIT)
        self.assertFalse(feeder.is_alive())
        out, err = p.communicate(timeout=8 * WAIT)  # closes the input
        out = out.decode()
        self.assertEqual(p.returncode, 0, out + err.decode())
        self.check_exactly_once(out, files)
        log = self.warehouse_log()
        resent = len(re.findall(r" waiting sends=[2-9]", out))
        deferred = err.decode().count("status=deferred")
        # Orders that came while the warehouse was down were deferred by
        # the delivery engine, or resent by the outbox (or both).
        self.assertGreater(resent + deferred, 0)
        print("test_warehouse_killed: %d deferred, %d resent; warehouse "
              "verdicts: %d new, %d redelivery, %d duplicate"
              % (deferred, resent, log.count("verdict=new"),
                 log.count("verdict=redelivery"),
                 log.count("verdict=duplicate")), file=sys.stderr)

    def test_duplicate_from_smtplib(self):
        """An order sent twice by Python's smtplib, same Message-ID: stored
        once, and an MDN (read by Python's email package) for each copy,
        to the Disposition-Notification-To address, through aiosmtpd."""
        acks = os.path.join(self.dir, "acks")
        os.mkdir(acks)
        ack_port = free_port()
        aio = subprocess.Popen(["/usr/bin/python3", AIO, str(ack_port), acks],
                               stderr=subprocess.DEVNULL)
        try:
            wait_port(ack_port, aio)
            self.start_warehouse(ack_port)
            msg = EmailMessage()
            msg["From"] = SHOP
            msg["To"] = DEPOT
            msg["Subject"] = "Order 7"
            msg["Message-ID"] = mid = make_msgid(domain="shop.example")
            msg["Disposition-Notification-To"] = "acks@shop.example"
            msg.set_content("Order attached.\n")
            order = b"sku,qty\r\nZ-7,2\r\n"
            msg.add_attachment(order, maintype="text", subtype="csv",
                               filename="o7.csv")
            bare = msg.as_bytes()
            for _ in range(2):
                with smtplib.SMTP("127.0.0.1", self.depot_port) as c:
                    c.sendmail(SHOP, [DEPOT], bare)
            self.assertEqual(ledger(self.ledger), [(mid.strip("<>"), order)])
            end = time.monotonic() + WAIT
            while len([n for n in os.listdir(acks)
                       if not n.endswith(".tmp")]) < 4 and \
                    time.monotonic() < end:
                time.sleep(0.05)
            mdns = sorted(n for n in os.listdir(acks) if n.endswith(".eml"))
            self.assertEqual(len(mdns), 2, (os.listdir(acks),
                                            self.warehouse_log()))
            for n in mdns:
                with open(os.path.join(acks, n), "rb") as f:
                    m = email.message_from_binary_file(f)
                with open(os.path.join(acks, n[:-4] + ".env")) as f:
                    self.assertIn("acks@shop.example", f.read())
                self.assertEqual(m.get_content_type(), "multipart/report")
                self.assertEqual(m.get_param("report-type"),
                                 "disposition-notification")
                status = [p for p in m.walk() if p.get_content_type() ==
                          "message/disposition-notification"]
                self.assertEqual(len(status), 1)
                text = status[0].as_string()
                self.assertIn(mid, text)
                self.assertRegex(text, r"Disposition: .*processed")
            log = self.warehouse_log()
            self.assertIn("verdict=new stored", log)
            self.assertIn("verdict=duplicate skipped", log)
            # Refused in the dialogue: no order, no Message-ID.
            with smtplib.SMTP("127.0.0.1", self.depot_port) as c:
                no_order = EmailMessage()
                no_order["Message-ID"] = make_msgid(domain="shop.example")
                no_order.set_content("no order here\n")
                with self.assertRaises(smtplib.SMTPDataError) as cm:
                    c.sendmail(SHOP, [DEPOT], no_order.as_bytes())
                self.assertEqual(cm.exception.smtp_code, 550)
                del msg["Message-ID"]
                with self.assertRaises(smtplib.SMTPDataError) as cm:
                    c.sendmail(SHOP, [DEPOT], msg.as_bytes())
                self.assertEqual(cm.exception.smtp_code, 550)
            self.assertEqual(len(ledger(self.ledger)), 1)
        finally:
            stop_process(aio)

    def test_refused_order_given_up(self):
        """A file the warehouse does not take (text/plain): refused with a
        550 each time, so never acknowledged; the order system gives it
        up after its resends and ends with status 1."""
        path = os.path.join(self.dir, "notes.txt")
        with open(path, "w") as f:
            f.write("not an order\n")
        self.start_warehouse()
        p = subprocess.Popen(
            [ORDERS, "--listen", "127.0.0.1:%d" % self.shop_port, "--spool",
             os.path.join(self.dir, "shop"), "--from", SHOP, "--to", DEPOT,
             "--via", "127.0.0.1:%d" % self.depot_port, "--ack-timeout", "1",
             "--max-resend", "1", path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=8 * WAIT)
        out = out.decode()
        self.assertEqual(p.returncode, 1, out + err.decode())
        self.assertRegex(out, r"ack: \S+ %s unacknowledged sends=2" % DEPOT)
        self.assertIn("done: 0 acknowledged, 1 not", out)
        self.assertEqual(ledger(self.ledger), [])
        self.assertEqual(self.warehouse_log().count("status=550"), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
