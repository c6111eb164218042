#!/usr/bin/python3
"""mkseeds.py - write the fuzz targets' seed corpora from the transcripts
(tests/transcripts/) and a few hand-made inputs, into tests/fuzz/seeds/.

Run it after adding transcripts; the seeds it writes are kept in the tree
(each small: transcripts over 4 KiB are left out).  The octets a target
reads before its payload (options, piece sizes) are given fixed values
here; the fuzzer varies them.

Usage: tests/fuzz/mkseeds.py
"""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
TRANSCRIPTS = os.path.join(HERE, "..", "transcripts")
SEEDS = os.path.join(HERE, "seeds")
MAX = 4096


def unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}.get(
                n, n.encode())
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def read(path):
    client, server = b"", b""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("C: "):
                client += line[3:].encode("utf-8") + b"\r\n"
            elif line.startswith("C+ "):
                client += unescape(line[3:])
            elif line.startswith("S: "):
                server += line[3:].encode("utf-8") + b"\r\n"
    return client, server


_seen = {}


def write(target, name, data):
    """One seed; the same octets twice for one target are kept once."""
    if len(data) > MAX or data in _seen.setdefault(target, set()):
        return
    _seen[target].add(data)
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rec(*parts):
    """Records of one length octet and that many octets."""
    out = b""
    for p in parts:
        out += bytes([len(p)]) + p
    return out


def main():
    for side in ("server", "client"):
        folder = os.path.join(TRANSCRIPTS, side)
        for n in sorted(os.listdir(folder)):
            if not n.endswith(".t"):
                continue
            name = n[:-2]
            client, server = read(os.path.join(folder, n))
            if side == "server" and client:
                # fuzz_server: config, TLS, piece size, drain; the client.
                write("fuzz_server", name, b"\x00\x01\x10\x01" + client)
                # fuzz_transport, server side: clear text; after STARTTLS
                # the handshake octet and the rest XORed.
                if b"STARTTLS\r\n" in client:
                    head, tail = client.split(b"STARTTLS\r\n", 1)
                    xored = bytes(b ^ 0x80 for b in tail)
                    write("fuzz_transport", "s-" + name,
                          b"\x00\x20" + head + b"STARTTLS\r\nH" + xored)
                else:
                    write("fuzz_transport", "s-" + name, b"\x00\x20" + client)
                # fuzz_cmd: the parameters of MAIL and RCPT lines.
                for m in re.finditer(rb"(?:MAIL FROM|RCPT TO):<[^>]*> ?([^\r\n]*)",
                                     client):
                    if m.group(1):
                        write("fuzz_cmd", name + "-%d" % m.start(),
                              b"\x21" + m.group(1))
                # fuzz_addr: the paths.
                for m in re.finditer(rb"(?:MAIL FROM|RCPT TO):(<[^>\r\n]*>)",
                                     client):
                    write("fuzz_addr", name + "-%d" % m.start(),
                          b"\x07\xff" + m.group(1)[1:])
            if side == "client" and server:
                write("fuzz_client", name, b"\x00\x10\x01" + server)
                if b"CHUNKING" in server:
                    # The same replies with a binary body and DSN, and with
                    # DATA preferred.
                    write("fuzz_client", name + "-binary",
                          b"\x00\x10\x31" + server)
                    write("fuzz_client", name + "-data",
                          b"\x00\x10\x41" + server)
                write("fuzz_reply", name, b"\x00\x00\x02\x00\x00\x40" + server)
                # fuzz_ext: the EHLO replies, as the parser sees them.
                lines, ehlo = server.split(b"\r\n"), []
                for l in lines:
                    if l.startswith(b"250-") or (ehlo and l.startswith(b"250 ")):
                        ehlo.append(l[4:])
                        if l.startswith(b"250 "):
                            break
                    elif ehlo:
                        ehlo = []
                if len(ehlo) > 1:
                    write("fuzz_ext", name, b"\n".join(ehlo))
                if b"220 2.0.0 go ahead" in server or b"STARTTLS" in server:
                    head, _, tail = server.partition(b"go ahead\r\n")
                    xored = bytes(b ^ 0x80 for b in tail)
                    write("fuzz_transport", "c-" + name,
                          b"\x01\x20" + head + b"go ahead\r\nS" + xored)

    # Hand-made inputs for the parsers the transcripts do not show whole.
    write("fuzz_ext", "all", b"mx.test greets you\nPIPELINING\nSIZE 10240000\n"
          b"8BITMIME\nENHANCEDSTATUSCODES\nSMTPUTF8\nCHUNKING\nBINARYMIME\n"
          b"DSN\nSTARTTLS\nAUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 XOAUTH2 "
          b"OAUTHBEARER\nauth=login plain\n250 \nX-EXPS GSSAPI NTLM\n")
    write("fuzz_addr", "route", b"\x07\xff@a.example,@b.example:user@c.example>")
    write("fuzz_addr", "quoted", b"\x07\xff\"a b\\\"c\"@[192.0.2.1]>")
    write("fuzz_addr", "ipv6", b"\x07\xffx@[IPv6:2001:db8::1]>")
    write("fuzz_addr", "utf8", "\x07\xff\u00fc@b\u00fccher.example>".encode())
    write("fuzz_addr", "postmaster", b"\x07\xffPostmaster>")
    write("fuzz_addr", "null", b"\x07\xff>")
    write("fuzz_cmd", "dsn", b"\x21SIZE=100 BODY=8BITMIME RET=HDRS "
          b"ENVID=QQ314159+2B+3D NOTIFY=SUCCESS,FAILURE "
          b"ORCPT=rfc822;a+2Bb@example.org AUTH=<> SMTPUTF8")
    write("fuzz_cmd", "utf8", "\x21X-K=v\u00e4lue".encode())
    write("fuzz_reply", "multi", b"\x00\x00\x02\x01\x01\x20"
          b"250-2.1.0 first\r\n250-second\r\n250 2.1.0 third\r\n"
          b"Sender ok\nsecond line\n\n")
    write("fuzz_reply", "bad", b"\x01\x03\x05\x00\x00\x00"
          b"250-a\r\n251 b\r\n2500\r\n354\r\n599-x\r\n" + b"5" * 40)
    # fuzz_stuff: a body with the hard cases.
    write("fuzz_stuff", "dots", b"\x00.\r\n..\r\n.x\r\n\r\n.\n.\r.")
    write("fuzz_stuff", "long", b"\x04" + b"x" * 30 + b"\r\n." + b"y" * 9)
    write("fuzz_stuff", "bare", b"\x38a\rb\nc\r\r\nd\n\r.")
    # fuzz_maildir: options, fault, errno; pieces.
    body = rec(b"Subject: x\r", b"\n\r\nbody\r\n", b"\r", b"bare cr\r")
    write("fuzz_maildir", "lf", b"\x00\x00\x00" + body)
    write("fuzz_maildir", "crlf", b"\x01\x00\x00" + body)
    write("fuzz_maildir", "enospc", b"\x00\x09\x00" + body)
    write("fuzz_maildir", "large", b"\x0a\x00\x00" + rec(b"line\r\n" * 30))
    write("fuzz_maildir", "host", b"\x20\x00\x00" + body)
    # fuzz_sasl_server: mechanism, answers, seed; responses.
    write("fuzz_sasl_server", "plain", b"\x00\x01\x00" + rec(b"\0tim\0pencil"))
    write("fuzz_sasl_server", "login", b"\x01\x00\x00" + rec(b"tim", b"pencil"))
    write("fuzz_sasl_server", "cram", b"\x02\x02\x00" +
          rec(b"tim b913a602c7eda7a495b4e6e7334d3890"))
    write("fuzz_sasl_server", "scram", b"\x03\x03\x00" +
          rec(b"n,,n=tim,r=rOprNGfwEbeRWgbNEkqO",
              b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
              b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", b""))
    write("fuzz_sasl_server", "xoauth2", b"\x04\x05\x00" +
          rec(b"user=tim\x01auth=Bearer tok\x01\x01", b""))
    write("fuzz_sasl_server", "oauthbearer", b"\x05\x05\x00" +
          rec(b"n,a=tim,\x01host=mx\x01auth=Bearer tok\x01\x01", b""))
    # fuzz_sasl_client: challenges mode, then exchange mode.
    write("fuzz_sasl_client", "scram", b"\x03\x00\x00" +
          rec(b"r=abc,s=QSXCR+Q6sek8bf92,i=4096", b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
    write("fuzz_sasl_client", "cram", b"\x02\x00\x00" +
          rec(b"<1896.697170952@postoffice.example.net>"))
    write("fuzz_sasl_client", "login", b"\x01\x00\x00" + rec(b"Username:", b"Password:"))
    write("fuzz_sasl_client", "oauth-error", b"\x05\x00\x00" +
          rec(b'{"status":"invalid_token"}', b""))
    for i in range(6):
        write("fuzz_sasl_client", "exchange-%d" % i, bytes([i, 3, 7]))
        write("fuzz_sasl_client", "tamper-%d" % i,
              bytes([i, 1, 7]) + bytes([1, 5, 1]))


if __name__ == "__main__":
    main()
