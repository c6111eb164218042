#!/usr/bin/python3
"""Interop: smtpx-send (the client engine) against real SMTP servers from
Debian over loopback sockets - Postfix's smtp-sink (whose EHLO reply ends in
an empty "250 " line), aiosmtpd, a private Postfix smtpd, our smtpx-recv -
and scripted servers that misbehave.  Message content is compared byte for
byte where the server keeps it.

Usage: test_send.py BUILD_DIR
"""
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import (PrivatePostfix, WAIT, free_port, stop_process,  # noqa
                   wait_port)

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
SEND = os.path.join(BUILD, "examples", "smtpx-send")
RECV = os.path.join(BUILD, "examples", "smtpx-recv")
HERE = os.path.dirname(os.path.abspath(__file__))

# Dot-leading lines (a lone "." among them), an 8-bit body, LF line ends
# as a script would write them.
MESSAGE = (
    "From: Alice <alice@example.org>\n"
    "To: Bob <bob@example.net>\n"
    "Subject: client interop\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    ".leading dot\n"
    "..two dots\n"
    ".\n"
    "Gr\u00fc\u00dfe \u2014 \u65e5\u672c\u8a9e\n"
    "last line\n").encode("utf-8")
WIRE = MESSAGE.replace(b"\n", b"\r\n")
# The same without its 8-bit line, for servers that do not offer 8BITMIME.
ASCII = b"".join(l for l in MESSAGE.splitlines(keepends=True)
                 if max(l) < 0x80)


def send(port, *args, data=MESSAGE, oi=True):
    # -oi, as scripts pass it: MESSAGE holds a line of just ".".
    p = subprocess.run([SEND, "--host", "127.0.0.1", "--port", str(port),
                        "--helo", "send.test", "-f", "alice@example.org"] +
                       (["-oi"] if oi else []) + list(args), input=data,
                       capture_output=True, timeout=60)
    return p.returncode, p.stderr.decode(errors="replace")


class Server:
    def __init__(self, args, port):
        self.port = port
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(port, self.proc)

    def stop(self):
        stop_process(self.proc)


class Scripted(threading.Thread):
    """A server that follows a script per connection: a list of
    (expect-prefix, reply) steps; reply None closes the connection."""

    def __init__(self, scripts):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.scripts = scripts
        self.seen = []
        self.start()

    def run(self):
        for script in self.scripts:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(10)
            f = c.makefile("rb")
            c.sendall(b"220 scripted.test ESMTP\r\n")
            try:
                for expect, reply in script:
                    if expect == "DATA-CONTENT":
                        body = b""
                        while not body.endswith(b"\r\n.\r\n"):
                            chunk = f.readline()
                            if not chunk:
                                break
                            body += chunk
                        self.seen.append(body)
                    else:
                        line = f.readline()
                        self.seen.append(line)
                        if not line.upper().startswith(expect.upper().encode()):
                            break
                    if reply is None:
                        break
                    c.sendall(reply.encode())
            except OSError:
                pass
            # shutdown: close() alone leaves the socket open while the
            # makefile() reader holds it.
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            f.close()
            c.close()


class SendInterop(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpx-send-interop-")
        # Servers that drop privileges (smtp-sink, Postfix) work inside.
        os.chmod(self.dir, 0o755)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_smtp_sink(self):
        """Postfix smtp-sink: its EHLO reply ends with an empty "250 " line;
        the dumped message must be ours, byte for byte."""
        port = free_port()
        dump = os.path.join(self.dir, "dump")
        args = ["/usr/sbin/smtp-sink", "-d", dump + "/%M.",
                "127.0.0.1:%d" % port, "10"]
        if os.getuid() == 0:
            # smtp-sink drops to nobody, who must reach the dump folder.
            args[1:1] = ["-u", "nobody"]
            os.chmod(self.dir, 0o755)
            os.makedirs(dump)
            shutil.chown(dump, "nobody")
        self.servers.append(Server(args, port))
        code, err = send(port, "bob@example.net", "carol@example.net")
        self.assertEqual(code, 0, err)
        files = [f for f in glob.glob(dump + "/*") if os.path.isfile(f)]
        for _ in range(50):
            if files:
                break
            time.sleep(0.1)
            files = [f for f in glob.glob(dump + "/*") if os.path.isfile(f)]
        self.assertEqual(len(files), 1)
        with open(files[0], "rb") as f:
            dumped = f.read()
        # smtp-sink writes its own X- headers first, then the message.
        self.assertIn(b"X-Rcpt-Args: <bob@example.net>", dumped)
        self.assertIn(b"X-Rcpt-Args: <carol@example.net>", dumped)
        # ... and an empty line after it (smtp-sink(1) DUMP FILE FORMAT).
        self.assertTrue(dumped.endswith(MESSAGE + b"\n"), dumped[-300:])

    def start_aio(self):
        port = free_port()
        store = os.path.join(self.dir, "aio")
        os.makedirs(store)
        self.servers.append(Server(["/usr/bin/python3",
                                    os.path.join(HERE, "aio_server.py"),
                                    str(port), store], port))
        return port, store

    def test_aiosmtpd_content(self):
        port, store = self.start_aio()
        code, err = send(port, "bob@example.net", "-v")
        self.assertEqual(code, 0, err)
        self.assertIn(">>> MAIL FROM:<alice@example.org>", err)
        self.assertIn("<bob@example.net>: accepted", err)
        with open(os.path.join(store, "1.eml"), "rb") as f:
            self.assertEqual(f.read(), WIRE)

    def test_aiosmtpd_refused_and_deferred(self):
        port, store = self.start_aio()
        # One refused for good: 69, the others still get the message.
        code, err = send(port, "bob@example.net", "reject@example.net")
        self.assertEqual(code, 69, err)
        self.assertIn("<reject@example.net>: failed (550", err)
        self.assertIn("<bob@example.net>: accepted", err)
        with open(os.path.join(store, "1.env")) as f:
            self.assertEqual(f.read().count("to="), 1)
        # Only deferred: try later, 75.
        code, err = send(port, "later@example.net")
        self.assertEqual(code, 75, err)
        self.assertIn("<later@example.net>: deferred (451", err)

    def test_private_postfix(self):
        """A private Postfix instance (real smtpd, cleanup, qmgr) with a
        discard transport: the message is accepted."""
        if os.getuid() != 0:
            self.skipTest("a private Postfix needs root")
        port = free_port()
        pf = PrivatePostfix(self.dir, port,
                            "mynetworks = 127.0.0.0/8\n"
                            "smtpd_relay_restrictions = permit_mynetworks, "
                            "reject\n")
        try:
            code, err = send(port, "bob@example.net", "-v")
            self.assertEqual(code, 0, err)
            # Postfix offers CHUNKING: the content went in one BDAT chunk,
            # pipelined with MAIL and RCPT (RFC 3030).
            self.assertIn("<bob@example.net>: accepted (250 2.0.0 Ok: "
                          "224 bytes queued", err)
            self.assertIn("<<< 250-PIPELINING", err)
            self.assertIn(">>> BDAT 224 LAST", err)
        finally:
            pf.stop()

    def test_private_postfix_relays_byte_exact(self):
        """Through a private Postfix: smtpx-send gives it the content in
        BDAT, Postfix relays it on to smtpx-recv, where it arrives byte for
        byte after Postfix's own header lines."""
        if os.getuid() != 0:
            self.skipTest("a private Postfix needs root")
        rport, md = self.start_recv("--crlf")
        port = free_port()
        pf = PrivatePostfix(self.dir, port,
                            "mynetworks = 127.0.0.0/8\n"
                            "smtpd_relay_restrictions = permit_mynetworks, "
                            "reject\n"
                            "default_transport = smtp\n"
                            "relay_transport = smtp\n"
                            "relayhost = [127.0.0.1]:%d\n" % rport)
        try:
            code, err = send(port, "-v", "bob@example.net")
            self.assertEqual(code, 0, err)
            self.assertIn(">>> BDAT %d LAST" % len(WIRE), err)
            (got,) = self.stored(md, wait=30)
            # Postfix adds Message-Id and Date to the header.
            head, body = WIRE.split(b"\r\n\r\n", 1)
            self.assertTrue(got.endswith(b"\r\n\r\n" + body), got[-300:])
            for line in head.split(b"\r\n"):
                self.assertIn(line + b"\r\n", got)
        finally:
            pf.stop()

    def test_smtpx_recv(self):
        port = free_port()
        md = os.path.join(self.dir, "Maildir")
        self.servers.append(Server([RECV, "--listen", "127.0.0.1:%d" % port,
                                    "--maildir", md, "--crlf", "-q"], port))
        code, err = send(port, "bob@example.net")
        self.assertEqual(code, 0, err)
        (name,) = os.listdir(os.path.join(md, "new"))
        with open(os.path.join(md, "new", name), "rb") as f:
            stored = f.read()
        self.assertTrue(stored.endswith(WIRE), stored[-200:])

    def start_recv(self, *args):
        port = free_port()
        md = os.path.join(self.dir, "Maildir")
        self.servers.append(Server([RECV, "--listen", "127.0.0.1:%d" % port,
                                    "--maildir", md, "--hostname",
                                    "recv.test", "-q"] + list(args), port))
        return port, md

    def stored(self, md, count=1, wait=0):
        """The messages in md/new, waiting up to wait seconds for them."""
        d = os.path.join(md, "new")
        end = time.time() + wait
        while True:
            names = sorted(os.listdir(d)) if os.path.isdir(d) else []
            if len(names) >= count or time.time() >= end:
                break
            time.sleep(0.1)
        self.assertEqual(len(names), count, names)
        out = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def test_bdat_into_smtpx_recv(self):
        """The content in one BDAT chunk, pipelined; stored byte for byte
        (dot-leading lines, a lone ".", 8-bit)."""
        port, md = self.start_recv("--crlf")
        code, err = send(port, "-v", "bob@example.net")
        self.assertEqual(code, 0, err)
        self.assertIn("<<< 250 CHUNKING", err)
        self.assertIn(">>> MAIL FROM:<alice@example.org> SIZE=%d "
                      "BODY=8BITMIME" % len(WIRE), err)
        self.assertIn(">>> BDAT %d LAST" % len(WIRE), err)
        (got,) = self.stored(md)
        self.assertTrue(got.endswith(WIRE), got[-200:])

    def test_binarymime_into_smtpx_recv(self):
        """--binary: NULs, bare CR and LF, a line of 20000 octets and an
        end-of-data look-alike, sent with BODY=BINARYMIME in BDAT chunks
        and stored as they were (RFC 3030)."""
        port, md = self.start_recv("--binarymime")
        body = (b"Content-Type: application/octet-stream\r\n"
                b"Content-Transfer-Encoding: binary\r\n\r\n" +
                bytes(range(256)) * 64 + b"\r\n.\r\n\r.\n\x00" +
                b"x" * 20000 + b"\n.\nend")
        code, err = send(port, "--binary", "-v", "bob@example.net",
                         data=body, oi=False)
        self.assertEqual(code, 0, err)
        self.assertIn(" BODY=BINARYMIME", err)
        self.assertRegex(err, r">>> BDAT \d+ LAST")
        (got,) = self.stored(md)
        self.assertTrue(got.endswith(b"\r\n" + body), got[-100:])

    def test_binarymime_refused_without_offer(self):
        """Binary content to a server without BINARYMIME and CHUNKING
        (aiosmtpd) is not sent: 554 5.6.3 for each recipient, exit 69."""
        port, store = self.start_aio()
        code, err = send(port, "--binary", "bob@example.net",
                         data=b"a\x00b\r\n")
        self.assertEqual(code, 69, err)
        self.assertIn("<bob@example.net>: failed (554 5.6.3", err)
        self.assertEqual(os.listdir(store), [])

    def test_lmtp_smtpx_recv(self):
        """smtpx-send --lmtp to smtpx-recv --lmtp: LHLO, the content in
        BDAT (CHUNKING is offered), then one reply per recipient."""
        port, md = self.start_recv("--lmtp", "--crlf")
        code, err = send(port, "--lmtp", "-v", "bob@example.net",
                         "carol@example.net")
        self.assertEqual(code, 0, err)
        self.assertIn(">>> LHLO send.test", err)
        self.assertIn(">>> BDAT %d LAST" % len(WIRE), err)
        for r in ("bob", "carol"):
            self.assertIn("<%s@example.net>: accepted (250 2.0.0" % r, err)
        self.assertEqual(err.count("<<< 250 2.0.0 Ok: queued as"), 2, err)
        (got,) = self.stored(md)
        self.assertTrue(got.endswith(WIRE), got[-200:])
        # DATA forced: the same outcome, each recipient's reply to the dot.
        code, err = send(port, "--lmtp", "--data", "-v", "bob@example.net",
                         "carol@example.net")
        self.assertEqual(code, 0, err)
        self.assertIn(">>> DATA", err)
        self.assertEqual(err.count("<<< 250 2.0.0 Ok: queued as"), 2, err)
        self.assertEqual(len(self.stored(md, 2)), 2)

    def test_lmtp_aiosmtpd_unix_socket(self):
        """smtpx-send --lmtp --host PATH to aiosmtpd's LMTP server on a
        Unix socket: each recipient gets the outcome of its own reply to
        the end of the data (RFC 2033 4.2); one deferred means exit 75."""
        path = os.path.join(self.dir, "lmtp.sock")
        store = os.path.join(self.dir, "aio")
        os.makedirs(store)
        proc = subprocess.Popen(["/usr/bin/python3",
                                 os.path.join(HERE, "aio_server.py"),
                                 "--lmtp", path, store],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            end = time.time() + 20
            while not os.path.exists(path) and time.time() < end:
                time.sleep(0.05)
            p = subprocess.run([SEND, "--host", path, "--lmtp", "-oi", "-v",
                                "--helo", "send.test", "-f",
                                "alice@example.org", "bob@example.net",
                                "full@example.net", "reject@example.net"],
                               input=MESSAGE, capture_output=True,
                               timeout=60)
            err = p.stderr.decode(errors="replace")
            self.assertEqual(p.returncode, 69, err)
            self.assertIn(">>> LHLO send.test", err)
            self.assertIn(">>> DATA", err)  # aiosmtpd has no CHUNKING
            self.assertIn("<bob@example.net>: accepted (250 2.0.0 "
                          "<bob@example.net> stored 1)", err)
            self.assertIn("<full@example.net>: deferred (452 4.2.2 "
                          "<full@example.net> mailbox full)", err)
            self.assertIn("<reject@example.net>: failed (550 5.1.1", err)
            with open(os.path.join(store, "1.eml"), "rb") as f:
                self.assertEqual(f.read(), WIRE)
            # Only the deferred one again: exit 75.
            p = subprocess.run([SEND, "--host", path, "--lmtp", "-oi",
                                "-f", "alice@example.org",
                                "full@example.net"], input=MESSAGE,
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 75, p.stderr)
        finally:
            stop_process(proc)

    def test_extract_headers_and_dots(self):
        """-t takes To/Cc/Bcc (the Bcc line goes), and without -i a lone
        "." line ends the input; with -i it is content."""
        port, store = self.start_aio()
        msg = (b"From: a@example.org\nTo: Bob <bob@example.net>\n"
               b"Cc: \"Doe, J\" <j@example.net>, (team) k@example.net\n"
               b"Bcc: hidden@example.net\nSubject: t\n\nbody\n.\nafter\n")
        code, err = send(port, "-t", data=msg, oi=False)
        self.assertEqual(code, 0, err)
        with open(os.path.join(store, "1.env")) as f:
            env = f.read()
        for r in ("bob@example.net", "j@example.net", "k@example.net",
                  "hidden@example.net"):
            self.assertIn("to=" + r, env)
        with open(os.path.join(store, "1.eml"), "rb") as f:
            got = f.read()
        self.assertNotIn(b"Bcc", got)
        self.assertTrue(got.endswith(b"\r\nbody\r\n"), got)
        code, err = send(port, "-t", data=msg)
        self.assertEqual(code, 0, err)
        with open(os.path.join(store, "2.eml"), "rb") as f:
            self.assertTrue(f.read().endswith(b"body\r\n.\r\nafter\r\n"))

    def test_ehlo_dropped_then_helo(self):
        """An old server that hangs up on EHLO: smtpx-send tries again on a
        new connection with HELO and delivers."""
        s = Scripted([
            [("EHLO", None)],
            [("HELO", "250 scripted.test\r\n"),
             ("MAIL FROM:<alice@example.org>", "250 ok\r\n"),
             ("RCPT TO:<bob@example.net>", "250 ok\r\n"),
             ("DATA", "354 go\r\n"),
             ("DATA-CONTENT", "250 queued\r\n"),
             ("QUIT", "221 bye\r\n")]])
        code, err = send(s.port, "bob@example.net", data=ASCII)
        self.assertEqual(code, 0, err + repr(s.seen))
        # What crosses the wire is dot-stuffed (RFC 5321 4.5.2).
        stuffed = b"".join(b"." + l if l.startswith(b".") else l
                           for l in ASCII.replace(b"\n", b"\r\n")
                           .splitlines(keepends=True))
        self.assertIn(stuffed + b".\r\n", s.seen)
        self.assertIn(b"HELO send.test\r\n", s.seen)

    def test_8bit_to_a_7bit_server(self):
        """RFC 6152 3: 8-bit content does not go to a server that does not
        offer 8BITMIME (here an old HELO-only one): it is refused locally,
        clearly, and nothing of it is sent."""
        s = Scripted([
            [("EHLO", "502 what\r\n"),
             ("HELO", "250 scripted.test\r\n"),
             ("QUIT", "221 bye\r\n")]])
        code, err = send(s.port, "bob@example.net")
        self.assertEqual(code, 69, err + repr(s.seen))
        self.assertIn("<bob@example.net>: failed (554 5.6.3 The message has "
                      "8-bit content and the server does not offer 8BITMIME)",
                      err)
        self.assertFalse(any(l.startswith(b"MAIL") for l in s.seen), s.seen)

    def test_server_421(self):
        s = Scripted([[("EHLO", "250 scripted.test\r\n"),
                       ("MAIL", "421 4.3.2 going down\r\n"), ("", None)]])
        code, err = send(s.port, "bob@example.net", data=ASCII)
        s.sock.close()
        self.assertEqual(code, 75, err)
        self.assertIn("<bob@example.net>: deferred (421 4.3.2 going down)",
                      err)

    def test_connection_failures(self):
        port = free_port()
        code, err = send(port, "bob@example.net")
        self.assertEqual(code, 75, err)
        self.assertIn("connection could not be established", err)
        # What happened, in the recipient's reply.
        self.assertIn("deferred (451 4.4.1 Connection refused by "
                      "127.0.0.1:%d)" % port, err)
        # Ports are checked, not wrapped (99999 would be 34463).
        for bad in ("99999", "0", "25x"):
            code, err = send(bad, "bob@example.net")
            self.assertEqual(code, 64, err)
            self.assertIn("bad port %s" % bad, err)
        p = subprocess.run([SEND, "--host", "no-such-host.invalid",
                            "bob@example.net"], input=b"x\n",
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 68, p.stderr)
        p = subprocess.run([SEND, "--host", "127.0.0.1"], input=b"x\n",
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 64, p.stderr)
        p = subprocess.run([SEND, "--host", "127.0.0.1", "bad address"],
                           input=b"x\n", capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 65, p.stderr)


    def test_timeout_is_the_whole_delivery(self):
        """--timeout bounds the whole delivery (curl's --max-time): a
        server that accepts and never speaks is given up after it, not
        after RFC 5321's five-minute greeting timeout."""
        with socket.socket() as ls:
            ls.bind(("127.0.0.1", 0))
            ls.listen(4)
            t0 = time.monotonic()
            code, err = send(ls.getsockname()[1], "--timeout", "2",
                             "bob@example.net")
            took = time.monotonic() - t0
        self.assertEqual(code, 75, err)
        self.assertGreater(took, 1.9)
        # Not RFC 5321's five minutes (more room under valgrind).
        self.assertLess(took, max(10, WAIT))
        self.assertIn("Timed out waiting for 127.0.0.1", err)

    def test_recv_usage_errors(self):
        """smtpx-recv says what is wrong, with the usage exit status."""
        cases = [
            (["--listen", "127.0.0.1:99999", "--discard"],
             "bad listen address 127.0.0.1:99999"),
            (["--listen", "127.0.0.1:2525"], "give --maildir DIR or --discard"),
            (["--listen", "127.0.0.1:2525", "--discard", "--maildir", "/tmp/x"],
             "--maildir and --discard exclude each other"),
            (["--discard"], "nothing to listen on"),
        ]
        for args, said in cases:
            p = subprocess.run([RECV] + args, capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 64, (args, p.stderr))
            self.assertIn(said.encode(), p.stderr)


if __name__ == "__main__":
    for prog in (SEND, RECV):
        if not os.access(prog, os.X_OK):
            sys.exit("no %s: build first" % prog)
    unittest.main(verbosity=2)
