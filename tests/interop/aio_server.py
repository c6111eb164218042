#!/usr/bin/python3
"""aio_server.py [--lmtp] PORT|PATH DIR [CERT KEY [USER PASSWORD]] - an
aiosmtpd server (Debian python3-aiosmtpd) for the interop tests and the
benchmarks: it offers PIPELINING, stores each message in DIR as <n>.eml
with its envelope in <n>.env (DIR "-": stores nothing), refuses recipients
whose local part starts with "reject" (550) and defers those starting with
"later" (451).  With a certificate it requires STARTTLS, and with a user
AUTH (PLAIN, LOGIN) as USER with PASSWORD.  With --lmtp it speaks LMTP
(aiosmtpd.lmtp) and answers the end of the data once per recipient, as
RFC 2033 4.2 asks, deferring those whose local part starts with "full"
(452 4.2.2); a PATH (starting with "/") is a Unix socket to listen on.
Stops on SIGTERM, and then says on standard error how many messages came
over TLS and how many of those in a resumed TLS session (the benchmarks
check that resumption happened)."""
import asyncio
import os
import signal
import ssl
import sys

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    def __init__(self, d):
        self.dir = d
        self.n = 0
        self.tls = 0
        self.resumed = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 No such user"
        if local.startswith("later"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        if session.ssl is not None:
            self.tls += 1
            obj = session.ssl.get("ssl_object")
            if obj is not None and obj.session_reused:
                self.resumed += 1
        if isinstance(server, LMTP):
            # One reply per recipient accepted at RCPT (RFC 2033 4.2); the
            # lines go out as separate replies.
            self.save(session, envelope)
            return "\r\n".join(
                "452 4.2.2 <%s> mailbox full" % r
                if r.startswith("full") else
                "250 2.0.0 <%s> stored %d" % (r, self.n)
                for r in envelope.rcpt_tos)
        if self.dir == "-":
            return "250 2.0.0 discarded %d" % self.n
        self.save(session, envelope)
        return "250 2.0.0 stored %d" % self.n

    def save(self, session, envelope):
        # Each file appears whole (os.replace), the .env last: a test that
        # sees it reads both complete.
        base = os.path.join(self.dir, "%d" % self.n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.replace(base + ".eml.tmp", base + ".eml")
        with open(base + ".env.tmp", "w") as f:
            f.write("from=%s\n" % envelope.mail_from)
            for r in envelope.rcpt_tos:
                f.write("to=%s\n" % r)
            f.write("mail_options=%s\n" % " ".join(envelope.mail_options))
            if session.authenticated:
                f.write("login=%s\n" % session.auth_data)
            f.write("tls=%d\n" % (session.ssl is not None))
        os.replace(base + ".env.tmp", base + ".env")


def main():
    lmtp = sys.argv[1] == "--lmtp"
    if lmtp:
        del sys.argv[1]
    where, d = sys.argv[1], sys.argv[2]
    loop = asyncio.new_event_loop()
    store = Store(d)
    extra = {}
    if len(sys.argv) > 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        extra = dict(tls_context=ctx, require_starttls=True)
    if len(sys.argv) > 6:
        user, password = sys.argv[5:7]

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and
                  auth_data.login == user.encode() and
                  auth_data.password == password.encode())
            # handled=False: aiosmtpd itself answers a failure with 535.
            return AuthResult(success=ok, handled=False,
                              auth_data=user if ok else None)

        extra.update(auth_required=True, auth_require_tls=True,
                     authenticator=authenticator)

    def factory():
        return (LMTP if lmtp else SMTP)(store, hostname="aio.test",
                                        decode_data=False,
                                        enable_SMTPUTF8=True, **extra)

    if where.startswith("/"):
        listening = loop.create_unix_server(factory, path=where)
    else:
        listening = loop.create_server(factory, host="127.0.0.1",
                                       port=int(where), backlog=4096)
    server = loop.run_until_complete(listening)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    server.close()
    sys.stderr.write("aio_server: %d messages, %d over TLS, %d of them resumed\n"
                     % (store.n, store.tls, store.resumed))


if __name__ == "__main__":
    main()
