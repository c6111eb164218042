#!/usr/bin/python3
"""msgdata.py - the messages bench/msg.sh parses, written with Python's
email package from a fixed seed:

  big.eml      about 50 MiB: a text, an HTML alternative and five base64
               attachments of random octets (photos, archives)
  small/*.eml  a corpus of small messages of the shapes mail has: plain
               text, quoted-printable latin-1, alternatives, attachments of
               1 to 40 KiB, forwarded messages, encoded file names

Usage: msgdata.py DIR [SMALL_COUNT]
"""
import os
import random
import sys
from email.message import EmailMessage
from email import policy

d = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
rnd = random.Random(20261203)
os.makedirs(os.path.join(d, "small"), exist_ok=True)

WORDS = ("the readings of line three are within range today and the oven "
         "reached its set point at ten past two caf\u00e9 \u00e9t\u00e9 "
         "Gr\u00fc\u00dfe").split()


def text(n):
    lines, line = [], []
    for _ in range(n):
        line.append(rnd.choice(WORDS))
        if len(line) > 11:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


def blob(n):
    return rnd.randbytes(n)


def message(i):
    m = EmailMessage()
    m["From"] = "Sensor %d <s%d@sensors.example>" % (i, i)
    m["To"] = "ops@example.org"
    m["Subject"] = "Report %d \u2014 %s" % (i, rnd.choice(WORDS))
    shape = i % 6
    if shape == 1:
        m.set_content(text(300), charset="iso-8859-1", cte="quoted-printable")
    else:
        m.set_content(text(rnd.randint(20, 400)))
    if shape in (2, 4):
        m.add_alternative("<html><body><p>%s</p></body></html>\n" %
                          text(200), subtype="html")
    if shape in (3, 4):
        for k in range(rnd.randint(1, 3)):
            m.add_attachment(blob(rnd.randint(1024, 40960)),
                             maintype="application", subtype="octet-stream",
                             filename="donn\u00e9es-%d-%d.bin" % (i, k))
    if shape == 5:
        inner = EmailMessage()
        inner["Subject"] = "forwarded %d" % i
        inner.set_content(text(100))
        inner.add_attachment(blob(2048), maintype="image", subtype="png",
                             filename="p.png")
        m.add_attachment(inner)
    return m.as_bytes(policy=policy.SMTP)


for i in range(count):
    with open(os.path.join(d, "small", "%05d.eml" % i), "wb") as f:
        f.write(message(i))

big = EmailMessage()
big["From"] = "camera@example.org"
big["To"] = "archive@example.org"
big["Subject"] = "the week's pictures"
big.set_content(text(2000))
big.add_alternative("<p>%s</p>\n" % text(2000), subtype="html")
for k in range(5):
    big.add_attachment(blob(7 * 1024 * 1024 + k * 12345), maintype="image",
                       subtype="jpeg", filename="photo-%d.jpg" % k)
with open(os.path.join(d, "big.eml"), "wb") as f:
    f.write(big.as_bytes(policy=policy.SMTP))
