#!/usr/bin/python3
"""aio_server.py PORT DIR - an aiosmtpd server (Debian python3-aiosmtpd) for
the interop tests: it offers PIPELINING, stores each message in DIR as
<n>.eml with its envelope in <n>.env, refuses recipients whose local part
starts with "reject" (550) and defers those starting with "later" (451).
Stops on SIGTERM."""
import asyncio
import os
import signal
import sys

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, d):
        self.dir = d
        self.n = 0

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
        base = os.path.join(self.dir, "%d" % self.n)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".env", "w") as f:
            f.write("from=%s\n" % envelope.mail_from)
            for r in envelope.rcpt_tos:
                f.write("to=%s\n" % r)
            f.write("mail_options=%s\n" % " ".join(envelope.mail_options))
        return "250 2.0.0 stored %d" % self.n


def main():
    port, d = int(sys.argv[1]), sys.argv[2]
    loop = asyncio.new_event_loop()
    store = Store(d)

    def factory():
        return SMTP(store, hostname="aio.test", decode_data=False,
                    enable_SMTPUTF8=True)

    server = loop.run_until_complete(
        loop.create_server(factory, host="127.0.0.1", port=port))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    server.close()


if __name__ == "__main__":
    main()
