#!/usr/bin/python3
"""aio_maildir.py PORT DIR - aiosmtpd (Debian python3-aiosmtpd) storing each
message in the Maildir DIR as smtpx-recv --maildir does, for bench/scale.sh:
written into tmp/, fsync'ed, renamed into new/, new/ fsync'ed, then 250.
The file work runs in the event loop's thread pool, so that sessions wait
for their own message only.  Stops on SIGTERM."""
import asyncio
import os
import signal
import socket
import sys
import time

from aiosmtpd.smtp import SMTP

HOST = socket.gethostname()


class Maildir:
    def __init__(self, d):
        self.d = d
        self.n = 0
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)

    def store(self, data):
        self.n += 1
        name = "%d.M%dP%dQ%d.%s" % (time.time(), time.time_ns() // 1000 % 10**6,
                                   os.getpid(), self.n, HOST)
        tmp = os.path.join(self.d, "tmp", name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data.replace(b"\r\n", b"\n"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.d, "new", name))
        dfd = os.open(os.path.join(self.d, "new"), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:]

    async def handle_DATA(self, server, session, envelope):
        await asyncio.get_running_loop().run_in_executor(
            None, self.store, envelope.original_content)
        return "250 2.0.0 Ok"


def main():
    port, d = int(sys.argv[1]), sys.argv[2]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Maildir(d)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, hostname="aio.bench.test",
                     data_size_limit=64 << 20),
        "127.0.0.1", port, backlog=4096))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    server.close()


if __name__ == "__main__":
    main()
