#!/usr/bin/python3
"""Interop: smtpx-gallery with Python's smtplib and smtpx-send as clients.

Pictures (JPEG, PNG, GIF, WebP, known by their first octets) are kept byte
for byte, whatever their name says; nothing else of a message is stored; a
message without a picture is refused at the end of DATA with a reply that
names the formats taken, so no bounce is sent.

Usage: test_gallery.py BUILD_DIR
"""
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import unittest
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import free_port, stop_process, wait_port  # noqa

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
GALLERY = os.path.join(BUILD, "examples", "smtpx-gallery")
SEND = os.path.join(BUILD, "examples", "smtpx-send")

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(40000)
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
GIF = b"GIF89a" + os.urandom(4)
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + os.urandom(777)


class Gallery(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpx-gallery-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "..log-%d" % self.port), "w+")
        self.proc = subprocess.Popen(
            [GALLERY, "--listen", "127.0.0.1:%d" % self.port, "--dir",
             os.path.join(self.dir, "g")], stdout=self.log,
            stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)

    def tearDown(self):
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def pictures(self):
        g = os.path.join(self.dir, "g")
        out = {}
        for n in os.listdir(g):
            if n == ".tmp":
                self.assertEqual(os.listdir(os.path.join(g, n)), [])
                continue
            with open(os.path.join(g, n), "rb") as f:
                out[n] = f.read()
        return out

    def send(self, msg):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            return c.sendmail("a@example.org", ["g@example.net"],
                              msg.as_bytes())

    def test_pictures_kept_rest_dropped(self):
        m = EmailMessage()
        m["Subject"] = "holiday"
        m.set_content("some words that must not be stored\n")
        m.add_attachment(JPEG, maintype="image", subtype="jpeg",
                         filename="a.jpg")
        # Named and typed wrongly, but a PNG by its content.
        m.add_attachment(PNG, maintype="application",
                         subtype="octet-stream", filename="notes.txt")
        m.add_attachment(GIF, maintype="image", subtype="gif",
                         filename="../../evil.gif")
        m.add_attachment(WEBP, maintype="image", subtype="webp",
                         filename="w.webp")
        # Says it is a JPEG, is not one.
        m.add_attachment(b"MZ\x90\x00 not a picture", maintype="image",
                         subtype="jpeg", filename="fake.jpg")
        m.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                         filename="doc.pdf")
        self.send(m)
        got = self.pictures()
        self.assertEqual(sorted(got.values()), sorted([JPEG, PNG, GIF, WEBP]))
        exts = sorted(n.rsplit(".", 1)[1] for n in got)
        self.assertEqual(exts, ["gif", "jpg", "png", "webp"])
        for data in got.values():
            self.assertNotIn(b"must not be stored", data)

    def test_no_picture_refused_in_dialogue(self):
        m = EmailMessage()
        m["Subject"] = "no pictures"
        m.set_content("just text\n")
        m.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                         filename="doc.pdf")
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.send(m)
        self.assertEqual(cm.exception.smtp_code, 550)
        text = cm.exception.smtp_error.decode()
        for fmt in ("JPEG", "PNG", "GIF", "WebP"):
            self.assertIn(fmt, text)
        self.assertEqual(self.pictures(), {})
        # The session goes on: the next message is taken.
        m2 = EmailMessage()
        m2.set_content("x\n")
        m2.add_attachment(PNG, maintype="image", subtype="png",
                          filename="p.png")
        self.send(m2)
        self.assertEqual(list(self.pictures().values()), [PNG])

    def test_not_mime_refused(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                c.sendmail("a@example.org", ["g@example.net"],
                           b"Subject: plain\r\n\r\nno attachments\r\n")
            self.assertEqual(cm.exception.smtp_code, 550)
        self.assertEqual(self.pictures(), {})

    def test_built_by_smtpx_send(self):
        path = os.path.join(self.dir, "photo \u00e9t\u00e9.jpg")
        with open(path, "wb") as f:
            f.write(JPEG)
        p = subprocess.run([SEND, "--host", "127.0.0.1", "--port",
                            str(self.port), "-f", "a@example.org",
                            "--subject", "une photo", "--attach", path,
                            "g@example.net"], input=b"hello\n",
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(list(self.pictures().values()), [JPEG])


if __name__ == "__main__":
    unittest.main(verbosity=2)
