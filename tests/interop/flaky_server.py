#!/usr/bin/python3
"""flaky_server.py PORT DIR - an aiosmtpd server (Debian python3-aiosmtpd)
whose answers the test steers with files in DIR: while DIR/defer exists
every RCPT gets 451 4.3.0, while DIR/reject exists 550 5.1.1, while
DIR/no8bit exists EHLO does not offer 8BITMIME (a 7-bit server); otherwise
each message is stored as DIR/<n>.eml with its envelope in DIR/<n>.env.
Every RCPT is counted in DIR/rcpts.  Stops on SIGTERM."""
import asyncio
import os
import signal
import sys

from aiosmtpd.smtp import SMTP


class Flaky:
    def __init__(self, d):
        self.dir = d
        self.n = 0

    def count(self):
        p = os.path.join(self.dir, "rcpts")
        n = int(open(p).read()) if os.path.exists(p) else 0
        # Whole or not at all for a reader (os.replace is atomic).
        with open(p + ".tmp", "w") as f:
            f.write("%d" % (n + 1))
        os.replace(p + ".tmp", p)

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        if os.path.exists(os.path.join(self.dir, "no8bit")):
            responses = [r for r in responses if r != "250-8BITMIME"]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, options):
        self.count()
        if os.path.exists(os.path.join(self.dir, "defer")):
            return "451 4.3.0 Try again later"
        if os.path.exists(os.path.join(self.dir, "reject")):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        # Each file appears whole (os.replace), the .env last.
        base = os.path.join(self.dir, "%d" % self.n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.replace(base + ".eml.tmp", base + ".eml")
        with open(base + ".env.tmp", "w") as f:
            f.write("from=%s\n" % envelope.mail_from)
            for r in envelope.rcpt_tos:
                f.write("to=%s\n" % r)
        os.replace(base + ".env.tmp", base + ".env")
        return "250 2.0.0 stored %d" % self.n


def main():
    port, d = int(sys.argv[1]), sys.argv[2]
    loop = asyncio.new_event_loop()
    handler = Flaky(d)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, hostname="flaky.test", decode_data=False),
        host="127.0.0.1", port=port))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    server.close()


if __name__ == "__main__":
    main()
