#!/usr/bin/python3
"""Interop: the message layer against real MIME software.

- smtpx-mime list agrees with Python's email package (walk,
  get_payload(decode=True), get_filename()) on every message of the
  corpus (tests/msg/data) and on messages Python itself writes;
- messages written by mutt (batch mode, -a) and mpack parse as those
  programs meant them: attachments byte for byte, names decoded;
- messages our builder writes (smtpx-send --subject/--attach/--html,
  delivered by smtpx-recv into a Maildir) are read by Python's email
  parser as meant (subject and file names decoded, attachments byte for
  byte) and unpacked by munpack;
- smtpx-mime extract writes only safe names inside its directory and never
  overwrites a file.

Usage: test_msg.py BUILD_DIR
"""
import email
import email.policy
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import Receiver  # noqa

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
MIME = os.path.join(BUILD, "examples", "smtpx-mime")
SEND = os.path.join(BUILD, "examples", "smtpx-send")
RECV = os.path.join(BUILD, "examples", "smtpx-recv")
HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "msg", "data")


def show(s):
    return "".join("?" if ord(c) < 0x20 or ord(c) == 0x7f else c for c in s)


def python_list(data):
    """What smtpx-mime list prints, computed with Python's email package:
    IMAP part numbers, leaves only, message/* descended into (but
    delivery-status, which Python reads as header blocks)."""
    out = []

    def entity(part, path):
        mt = part.get_content_maintype()
        if part.is_multipart() and mt == "multipart":
            for i, sub in enumerate(part.get_payload(), 1):
                entity(sub, "%s.%d" % (path, i) if path else str(i))
        elif (part.is_multipart() and mt == "message" and
              part.get_content_type() != "message/delivery-status"):
            message(part.get_payload()[0], path)
        else:
            payload = part.get_payload(decode=True) or b""
            disp = part.get_content_disposition()
            name = part.get_filename()
            out.append("\t".join([
                path, part.get_content_type(), show(disp) if disp else "-",
                show(str(name)) if name is not None else "-",
                str(len(payload)), hashlib.sha256(payload).hexdigest()]))

    def message(m, path):
        if m.is_multipart() and m.get_content_maintype() == "multipart":
            entity(m, path)
        else:
            entity(m, path + ".1" if path else "1")

    message(email.message_from_bytes(data, policy=email.policy.default), "")
    return out


def mime(*args, data=None):
    p = subprocess.run([MIME] + list(args), input=data, capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode()


class MimeInterop(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpx-msg-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assertAgrees(self, data, what):
        path = os.path.join(self.tmp, "m.eml")
        with open(path, "wb") as f:
            f.write(data)
        rc, out, err = mime("list", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), python_list(data), what)
        # Standard input too.
        rc, out2, err = mime("list", data=data)
        self.assertEqual(out2, out, what)
        return out.splitlines()

    def test_corpus(self):
        files = sorted(glob.glob(os.path.join(CORPUS, "*.eml")))
        self.assertGreater(len(files), 15)
        for name in files:
            with open(name, "rb") as f:
                self.assertAgrees(f.read(), name)

    def test_python_written(self):
        blob = bytes(range(256)) * 97
        shapes = []
        m = EmailMessage()
        m["Subject"] = "Gr\u00fc\u00dfe \u2014 plain"
        m.set_content("caf\u00e9 au lait\n" * 40)
        shapes.append(m)
        m = EmailMessage()
        m["Subject"] = "alternative, related and attachments"
        m.set_content("text\n")
        m.add_alternative("<p>html <img src=\"cid:i1\"></p>\n",
                          subtype="html")
        m.get_payload()[1].add_related(blob[:999], "image", "png",
                                       cid="<i1>", filename="i.png")
        m.add_attachment(blob, maintype="application",
                         subtype="octet-stream",
                         filename="\u65e5\u672c\u8a9e \u00e9t\u00e9.bin")
        m.add_attachment("a,b\r\n1,2\r\n", subtype="csv", filename="x.csv")
        shapes.append(m)
        inner = EmailMessage()
        inner["Subject"] = "inner"
        inner.set_content("inner body\n")
        inner.add_attachment(blob[:300], maintype="image", subtype="jpeg",
                             filename="p.jpg")
        outer = EmailMessage()
        outer.set_content("see the forwarded message\n")
        outer.add_attachment(inner)
        shapes.append(outer)
        # The older API: quoted-printable and base64 text, latin-1.
        from email.mime.multipart import MIMEMultipart
        from email.mime.text import MIMEText
        from email.mime.application import MIMEApplication
        from email import charset
        old = MIMEMultipart()
        cs = charset.Charset("iso-8859-1")
        cs.body_encoding = charset.QP
        t = MIMEText("", "plain")
        t.set_payload("r\u00e9sum\u00e9 " * 30, cs)
        old.attach(t)
        old.attach(MIMEText("\u00e9" * 100, "plain", "utf-8"))
        a = MIMEApplication(blob[:5000])
        a.add_header("Content-Disposition", "attachment",
                     filename=("iso-8859-1", "", "r\u00e9sum\u00e9.pdf"))
        old.attach(a)
        shapes.append(old)
        for i, m in enumerate(shapes):
            for policy in (email.policy.SMTP, email.policy.default):
                self.assertAgrees(m.as_bytes(policy=policy),
                                  "shape %d" % i)

    def _files(self, names_and_data):
        paths = []
        for name, data in names_and_data:
            p = os.path.join(self.tmp, name)
            with open(p, "wb") as f:
                f.write(data)
            paths.append(p)
        return paths

    def _extract(self, msgfile):
        out = os.path.join(self.tmp, "out-%d" % len(os.listdir(self.tmp)))
        os.mkdir(out)
        rc, text, err = mime("extract", msgfile, out)
        self.assertEqual(rc, 0, err)
        got = {}
        for n in os.listdir(out):
            with open(os.path.join(out, n), "rb") as f:
                got[n] = f.read()
        return got, text

    @unittest.skipUnless(shutil.which("mutt"), "mutt is not installed")
    def test_mutt(self):
        blob = os.urandom(70000)
        text = "r\u00e9sum\u00e9\n".encode("utf-8")
        data, named = self._files([("data.bin", blob),
                                   ("r\u00e9sum\u00e9 \u00e9t\u00e9.txt",
                                    text)])
        cap = os.path.join(self.tmp, "cap.sh")
        with open(cap, "w") as f:
            f.write('#!/bin/sh\ncat > "$CAPTURE_FILE"\n')
        os.chmod(cap, 0o755)
        rc = os.path.join(self.tmp, "muttrc")
        with open(rc, "w") as f:
            f.write('set sendmail="%s"\nset charset="utf-8"\n'
                    'set send_charset="utf-8"\nset from="a@example.org"\n'
                    'set use_from=yes\nset copy=no\nset record=""\n' % cap)
        out = os.path.join(self.tmp, "mutt.eml")
        env = dict(os.environ, HOME=self.tmp, CAPTURE_FILE=out)
        p = subprocess.run(["mutt", "-n", "-F", rc, "-s",
                            "Sujet \u00e9t\u00e9", "-a", data, named, "--",
                            "b@example.net"], input="Body \u00fc\n".encode(),
                           env=env, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            lines = self.assertAgrees(f.read(), "mutt")
        self.assertEqual(len(lines), 3)
        got, _ = self._extract(out)
        self.assertEqual(got["data.bin"], blob)
        self.assertEqual(got["r\u00e9sum\u00e9 \u00e9t\u00e9.txt"], text)
        rc_, hdrs, _ = mime("headers", out)
        self.assertIn("Subject: Sujet \u00e9t\u00e9\n", hdrs)

    @unittest.skipUnless(shutil.which("mpack"), "mpack is not installed")
    def test_mpack(self):
        blob = os.urandom(123457)
        (data,) = self._files([("photo.jpg", blob)])
        out = os.path.join(self.tmp, "mpack.eml")
        p = subprocess.run(["mpack", "-s", "a photo", "-o", out, data],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertAgrees(f.read(), "mpack")
        got, _ = self._extract(out)
        self.assertEqual(got, {"photo.jpg": blob})

    def _send_built(self, args, text, recv):
        p = subprocess.run([SEND, "--host", "127.0.0.1", "--port",
                            str(recv.port), "-f", "alice@example.org", "-i"] +
                           args + ["bob@example.net"], input=text,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        (msg,) = recv.messages()
        return msg

    def test_built_read_by_python_and_munpack(self):
        blob = os.urandom(300001)
        csv = b"time,value\n10:00,12.5\n"
        names = ["photo \u00e9t\u00e9.jpg", "readings.csv",
                 "\u65e5\u672c\u8a9e\u306e\u9577\u3044\u30d5\u30a1\u30a4"
                 "\u30eb\u540d\u3067\u3059\u3001\u3068\u3066\u3082\u9577"
                 "\u3044\u540d\u524d.bin"]
        paths = self._files([(names[0], blob), (names[1], csv),
                             (names[2], blob[:1000])])
        html = self._files([("page.html", b"<p>caf\xc3\xa9</p>\n")])[0]
        subject = ("Mesures du 22 novembre \u2014 \u00e9t\u00e9, a subject "
                   "long enough to be folded over more than one line")
        text = "Bonjour,\nles mesures.\n.\nfin\n".encode("utf-8")
        recv = Receiver(RECV, "mx.test")
        try:
            raw = self._send_built(
                ["--subject", subject, "--html", html,
                 "--attach", paths[0], "--attach", paths[1] + ":text/csv",
                 "--attach", paths[2]], text, recv)
        finally:
            recv.stop()
            recv.cleanup()
        m = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(m["subject"], subject)
        self.assertEqual(m["from"], "alice@example.org")
        self.assertEqual(m["to"], "bob@example.net")
        self.assertEqual(m.defects, [])
        atts = {a.get_filename(): a.get_payload(decode=True)
                for a in m.iter_attachments()}
        self.assertEqual(atts, {names[0]: blob, names[1]: csv,
                                names[2]: blob[:1000]})
        body = m.get_body(("plain",))
        self.assertEqual(body.get_content().replace("\r\n", "\n"),
                         text.decode("utf-8"))
        self.assertEqual(m.get_body(("html",)).get_content().strip(),
                         "<p>caf\u00e9</p>")
        for part in m.walk():
            self.assertEqual(part.defects, [], part.get_content_type())
        self.assertAgrees(raw, "built")
        # munpack (mpack) unpacks what we wrote.
        if shutil.which("munpack"):
            mfile = os.path.join(self.tmp, "built.eml")
            with open(mfile, "wb") as f:
                f.write(raw)
            d = os.path.join(self.tmp, "munpack")
            os.mkdir(d)
            p = subprocess.run(["munpack", "-q", "-C", d, mfile],
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(d, "readings.csv"), "rb") as f:
                self.assertEqual(f.read(), csv)
            found = [n for n in os.listdir(d)
                     if os.path.getsize(os.path.join(d, n)) == len(blob)]
            self.assertEqual(len(found), 1)
            with open(os.path.join(d, found[0]), "rb") as f:
                self.assertEqual(f.read(), blob)

    def test_extract_safe_names(self):
        m = EmailMessage()
        m.set_content("hostile names\n")
        for name in ["../../etc/passwd", "/abs/path.txt", ".hidden",
                     "a\x01b\x1bc.txt", "dup.txt", "dup.txt", "dup",
                     "dir\\win.txt", "..", "x" * 300 + ".txt"]:
            m.add_attachment(name.encode(), maintype="application",
                             subtype="octet-stream", filename=name)
        mfile = os.path.join(self.tmp, "hostile.eml")
        with open(mfile, "wb") as f:
            f.write(m.as_bytes(policy=email.policy.SMTP))
        out = os.path.join(self.tmp, "out")
        os.mkdir(out)
        # A file there already is never overwritten.
        with open(os.path.join(out, "dup.txt"), "wb") as f:
            f.write(b"mine")
        rc, text, err = mime("extract", mfile, out)
        self.assertEqual(rc, 0, err)
        names = sorted(os.listdir(out))
        self.assertEqual(len(names), 11)
        for n in names:
            self.assertNotIn("/", n)
            self.assertFalse(n.startswith("."), n)
            self.assertFalse(any(ord(c) < 0x20 for c in n), n)
            self.assertLessEqual(len(n.encode()), 200)
        with open(os.path.join(out, "dup.txt"), "rb") as f:
            self.assertEqual(f.read(), b"mine")
        self.assertIn("passwd", names)
        self.assertIn("dup-1.txt", names)
        self.assertIn("dup-2.txt", names)
        self.assertEqual(os.listdir(self.tmp).count("etc"), 0)
        self.assertEqual(len(text.splitlines()), 10)

    def test_list_errors(self):
        rc, _, err = mime("list", os.path.join(self.tmp, "missing"))
        self.assertEqual(rc, 1)
        rc, _, _ = mime("frobnicate")
        self.assertEqual(rc, 2)
        deep = b"".join(b"Content-Type: message/rfc822\r\n\r\n"
                        for _ in range(100)) + b"x\r\n"
        rc, _, err = mime("list", data=deep)
        self.assertEqual(rc, 1)
        self.assertIn("nesting depth", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
