"""attacks.py - hostile clients for a server on loopback, and a
well-behaved one that measures how the server treats it meanwhile.

Each attack runs for a bounded time with a bounded number of connections
(asyncio, one thread), and stops by itself:
  slowloris   connections that send a command one octet every second and
              never end the line
  idle        connections that say EHLO and then nothing
  noread      connections that pipeline NOOPs without end and never read
              a reply (the server's output fills; it must stop reading
              rather than buffer without bound), reconnecting when the
              server hangs up
  rcpts       sessions with 10,000 RCPT commands pipelined in one
              transaction, one after another
  authguess   sessions that try AUTH PLAIN with wrong passwords until the
              server hangs up, then come back

The good client (probe) runs whole sessions with smtplib in a process -
EHLO, MAIL, RCPT, DATA, QUIT - and records how long each took.

Used by tests/interop/test_attacks.py (small, in make check) and
bench/attacks.py (large, against Postfix too).
"""
import asyncio
import base64
import resource
import smtplib
import multiprocessing
import time

ATTACKS = ("slowloris", "idle", "noread", "rcpts", "authguess")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kb(pid):
    """Resident memory of pid and its children, in KiB."""
    total, pids = 0, [pid]
    for p in pids:
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                pids += [int(x) for x in f.read().split()]
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def _open(host, port):
    return await asyncio.wait_for(asyncio.open_connection(host, port), 10)


async def _reply(reader):
    """One whole reply (its last line), or b"" at the end."""
    while True:
        line = await reader.readline()
        if not line or line[3:4] != b"-":
            return line


class Stats:
    def __init__(self):
        self.opened = 0
        self.failed = 0
        self.rounds = 0


async def _slowloris(host, port, stop, st):
    try:
        r, w = await _open(host, port)
    except (OSError, asyncio.TimeoutError):
        st.failed += 1
        return
    st.opened += 1
    try:
        await _reply(r)
        for c in b"EHLO slow.example.test" * 100:
            if time.monotonic() > stop:
                break
            w.write(bytes([c]))
            await w.drain()
            await asyncio.sleep(1)
    except (OSError, ConnectionError):
        pass
    w.close()


async def _idle(host, port, stop, st):
    try:
        r, w = await _open(host, port)
        await _reply(r)
        w.write(b"EHLO idle.example.test\r\n")
        await _reply(r)
    except (OSError, asyncio.TimeoutError, ConnectionError):
        st.failed += 1
        return
    st.opened += 1
    await asyncio.sleep(max(0, stop - time.monotonic()))
    w.close()


async def _noread(host, port, stop, st):
    chunk = b"NOOP\r\n" * 10000
    while time.monotonic() < stop:
        try:
            r, w = await _open(host, port)
        except (OSError, asyncio.TimeoutError):
            st.failed += 1
            await asyncio.sleep(0.1)
            continue
        st.opened += 1
        try:
            while time.monotonic() < stop:
                w.write(chunk)
                # The server stops reading once its replies back up: drain
                # then waits, until the attack ends or the server hangs up
                # (and the attacker comes back).
                await asyncio.wait_for(w.drain(),
                                       max(0.1, stop - time.monotonic()))
                st.rounds += 1
        except (OSError, ConnectionError, asyncio.TimeoutError):
            pass
        w.transport.abort()


async def _rcpts(host, port, stop, st):
    cmds = (b"EHLO rcpts.example.test\r\nMAIL FROM:<a@example.org>\r\n" +
            b"".join(b"RCPT TO:<r%d@example.net>\r\n" % i
                     for i in range(10000)) +
            b"DATA\r\n")
    while time.monotonic() < stop:
        try:
            r, w = await _open(host, port)
            st.opened += 1
            await _reply(r)
            w.write(cmds)
            await w.drain()
            n = 0
            while n < 10003:
                line = await asyncio.wait_for(_reply(r), 30)
                if not line:
                    break
                n += 1
                if line.startswith(b"354"):
                    w.write(b"Subject: many\r\n\r\nx\r\n.\r\n")
                elif line[:1] == b"4" and line.startswith(b"421"):
                    break
            w.write(b"QUIT\r\n")
            await w.drain()
            w.close()
            st.rounds += 1
        except (OSError, ConnectionError, asyncio.TimeoutError):
            st.failed += 1
            await asyncio.sleep(0.1)


async def _authguess(host, port, stop, st):
    while time.monotonic() < stop:
        try:
            r, w = await _open(host, port)
            st.opened += 1
            await _reply(r)
            w.write(b"EHLO guess.example.test\r\n")
            await _reply(r)
            for i in range(100):
                cred = base64.b64encode(b"\0tim\0guess%d" % i)
                w.write(b"AUTH PLAIN " + cred + b"\r\n")
                line = await asyncio.wait_for(_reply(r), 30)
                st.rounds += 1
                if not line or line.startswith(b"421"):
                    break
            w.close()
        except (OSError, ConnectionError, asyncio.TimeoutError):
            st.failed += 1
            await asyncio.sleep(0.1)


_KIND = {"slowloris": _slowloris, "idle": _idle, "noread": _noread,
         "rcpts": _rcpts, "authguess": _authguess}


def attack(kind, host, port, conns, seconds):
    """Run one attack with conns connections (or concurrent sessions) for
    seconds; returns its Stats."""
    st = Stats()

    async def main():
        stop = time.monotonic() + seconds
        tasks = []
        for i in range(conns):
            tasks.append(asyncio.ensure_future(_KIND[kind](host, port, stop,
                                                           st)))
            if i % 100 == 99:
                await asyncio.sleep(0.01)  # do not overrun the backlog
        await asyncio.wait(tasks, timeout=seconds + 40)
        for t in tasks:
            t.cancel()
        # The probe is measured over the whole window, however soon the
        # server got rid of the attackers.
        await asyncio.sleep(max(0, stop - time.monotonic()))

    asyncio.run(main())
    return st


def _probe_run(host, port, rcpt, timeout, halt, out):
    times, errors = [], []
    while not halt.is_set():
        t0 = time.monotonic()
        try:
            with smtplib.SMTP(host, port, "probe.example.test",
                              timeout=timeout) as s:
                refused = s.sendmail("probe@example.org", [rcpt],
                                     b"Subject: probe\r\n\r\nhello\r\n")
            if refused:
                raise smtplib.SMTPException("refused: %r" % refused)
            times.append(time.monotonic() - t0)
        except (OSError, smtplib.SMTPException) as e:
            errors.append("%s after %.1f s" % (e, time.monotonic() - t0))
        halt.wait(0.2)
    out.put((times, errors))


class Probe:
    """A well-behaved client: whole sessions back to back until stopped,
    each timed; a session that fails (refused, timed out) is counted.  It
    runs in a process of its own, so that the attack's busy event loop
    cannot hold it back."""

    def __init__(self, host, port, rcpt="bob@example.net", timeout=60):
        self.timeout = timeout
        self.times, self.errors = [], []
        self.halt = multiprocessing.Event()
        self.out = multiprocessing.Queue()
        self.proc = multiprocessing.Process(
            target=_probe_run, daemon=True,
            args=(host, port, rcpt, timeout, self.halt, self.out))

    def start(self):
        self.proc.start()

    def stop(self):
        self.halt.set()
        self.times, self.errors = self.out.get(timeout=self.timeout + 10)
        self.proc.join(10)


def quantile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]
