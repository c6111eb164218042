#!/usr/bin/python3
"""mta.py - smtpx-relay against Postfix, in the same run, on the same disk,
as ratios.

  1. Durable intake: Postfix's smtp-source, 20 sessions, 1 KiB messages,
     into smtpx-relay (queue synced: every 250 follows fsync of the file
     and of its directory) and into a private Postfix (smtpd, cleanup,
     its real queue), both relaying to smtp-sink meanwhile.
  2. End to end: a queue prefilled with deferred messages is flushed, and
     the time until it is empty gives messages/second: smtpx-relay into
     smtpx-recv --discard and into smtp-sink, Postfix into smtp-sink.

Usage: bench/mta.py BUILD_DIR     Env: RUNS (3), MTA_MSGS (5000)
Needs root (Postfix).  Everything is on 127.0.0.1 and stops by itself.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import peers  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
RUNS = int(os.environ.get("RUNS", "3"))
MSGS = int(os.environ.get("MTA_MSGS", "5000"))
RELAY = os.path.join(BUILD, "examples", "smtpx-relay")
RECV = os.path.join(BUILD, "examples", "smtpx-recv")


def source(port, n, sessions=20):
    t0 = time.monotonic()
    r = subprocess.run(["/usr/sbin/smtp-source", "-d", "-s", str(sessions),
                        "-m", str(n), "-l", "1024", "-f", "bench@example.test",
                        "-t", "sink@example.net", "-M", "source.example.test",
                        "127.0.0.1:%d" % port], capture_output=True,
                       timeout=600)
    if r.returncode != 0:
        raise RuntimeError("smtp-source: %s" % r.stderr[-500:])
    return n / (time.monotonic() - t0)


def files(*dirs):
    n = 0
    for d in dirs:
        for _, _, fs in os.walk(d):
            n += len(fs)
    return n


def wait(cond, t=600, step=0.02):
    end = time.monotonic() + t
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    raise RuntimeError("timed out")


class Sink:
    def __init__(self, kind):
        self.port = peers.free_port()
        if kind == "smtp-sink":
            argv = ["/usr/sbin/smtp-sink", "-u", "nobody", "-m", "5000",
                    "127.0.0.1:%d" % self.port, "4096"]
        else:
            argv = [RECV, "--listen", "127.0.0.1:%d" % self.port, "--discard",
                    "-q", "--max-msgs", "0", "--max-sessions", "5000"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        peers.wait_port(self.port, self.proc)

    def stop(self):
        peers.stop_process(self.proc)


class Relay:
    def __init__(self, dir, smarthost_port, *extra):
        self.queue = os.path.join(dir, "queue")
        self.port = peers.free_port()
        self.log = open(os.path.join(dir, "relay.log"), "a")
        self.proc = subprocess.Popen(
            [RELAY, "--listen", "127.0.0.1:%d" % self.port, "--queue",
             self.queue, "--hostname", "relay.bench", "--mynetworks",
             "127.0.0.0/8", "--smarthost", "127.0.0.1:%d" % smarthost_port,
             "--smarthost-tls", "none", "--max-msgs", "0", "-q"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        peers.wait_port(self.port, self.proc)

    def queued(self):
        return len(os.listdir(os.path.join(self.queue, "msg")))

    def stop(self):
        peers.stop_process(self.proc)
        self.log.close()


def postfix(dir, sink_port, extra=""):
    port = peers.free_port()
    os.chmod(dir, 0o755)  # Postfix's own user reaches its data directory
    pf = peers.PrivatePostfix(
        dir, port,
        main_cf="default_transport = smtp\nrelay_transport = smtp\n"
        "relayhost = [127.0.0.1]:%d\nmynetworks = 127.0.0.0/8\n"
        "smtp_tls_security_level = none\n%s" % (sink_port, extra))
    return pf, port


def pf_queued(pf):
    s = os.path.join(pf.queue, "spool")
    return files(*[os.path.join(s, q) for q in
                   ("maildrop", "incoming", "active", "deferred", "hold")])


def pf_cmd(pf, *argv):
    subprocess.run(list(argv[:1]) + ["-c", pf.conf] + list(argv[1:]),
                   capture_output=True, timeout=120, check=True)


def intake():
    print("== Durable intake: smtp-source -d -s 20 -m %d -l 1024 "
          "(messages/second)" % MSGS)
    rr, pp = [], []
    for i in range(RUNS):
        d = tempfile.mkdtemp(prefix="smtpx-mta-bench-", dir="/var/tmp")
        sink = Sink("smtp-sink")
        try:
            relay = Relay(d, sink.port)
            r = source(relay.port, MSGS)
            wait(lambda: relay.queued() == 0)
            relay.stop()
            pf, port = postfix(d, sink.port)
            try:
                p = source(port, MSGS)
                wait(lambda: pf_queued(pf) == 0)
            finally:
                pf.stop()
        finally:
            sink.stop()
            shutil.rmtree(d, ignore_errors=True)
        rr.append(r)
        pp.append(p)
        print("  run %d: smtpx-relay %6.0f msg/s   Postfix %6.0f msg/s" %
              (i + 1, r, p))
    mr, mp = statistics.median(rr), statistics.median(pp)
    print("  median: smtpx-relay %.0f msg/s, Postfix %.0f msg/s, ratio "
          "smtpx-relay/Postfix = %.2f" % (mr, mp, mr / mp))


def relay_e2e(sink_kind):
    d = tempfile.mkdtemp(prefix="smtpx-mta-bench-", dir="/var/tmp")
    closed = peers.free_port()  # nothing listens: every message defers
    try:
        relay = Relay(d, closed, "--retry-min", "1h")
        source(relay.port, MSGS)
        st = os.path.join(relay.queue, "state")
        wait(lambda: len(os.listdir(st)) == MSGS)
        relay.stop()
        sink = Sink(sink_kind)
        try:
            relay = Relay(d, sink.port, "--retry-min", "1h")
            t0 = time.monotonic()
            relay.proc.send_signal(signal.SIGUSR1)  # --flush
            wait(lambda: relay.queued() == 0, step=0.005)
            rate = MSGS / (time.monotonic() - t0)
            relay.stop()
        finally:
            sink.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return rate


def postfix_e2e():
    d = tempfile.mkdtemp(prefix="smtpx-mta-bench-", dir="/var/tmp")
    sink = Sink("smtp-sink")
    try:
        pf, port = postfix(d, sink.port, "defer_transports = smtp\n")
        try:
            source(port, MSGS)
            dq = os.path.join(pf.queue, "spool", "deferred")
            wait(lambda: files(dq) == MSGS)
            pf_cmd(pf, "/usr/sbin/postconf", "-e", "defer_transports =")
            pf_cmd(pf, "/usr/sbin/postfix", "reload")
            time.sleep(1)
            t0 = time.monotonic()
            pf_cmd(pf, "/usr/sbin/postqueue", "-f")
            wait(lambda: pf_queued(pf) == 0, step=0.005)
            rate = MSGS / (time.monotonic() - t0)
        finally:
            pf.stop()
    finally:
        sink.stop()
        shutil.rmtree(d, ignore_errors=True)
    return rate


def e2e():
    print("== End to end: %d queued messages of 1 KiB flushed to a sink "
          "(messages/second)" % MSGS)
    a, b, c = [], [], []
    for i in range(RUNS):
        a.append(relay_e2e("smtpx-recv"))
        b.append(relay_e2e("smtp-sink"))
        c.append(postfix_e2e())
        print("  run %d: smtpx-relay -> smtpx-recv %6.0f, smtpx-relay -> "
              "smtp-sink %6.0f, Postfix -> smtp-sink %6.0f" %
              (i + 1, a[-1], b[-1], c[-1]))
    ma, mb, mc = (statistics.median(x) for x in (a, b, c))
    print("  median: smtpx-relay -> smtpx-recv %.0f msg/s, -> smtp-sink %.0f "
          "msg/s; Postfix -> smtp-sink %.0f msg/s; ratio smtpx-relay/Postfix "
          "(smtp-sink) = %.2f" % (ma, mb, mc, mb / mc))


if __name__ == "__main__":
    print("== smtpx-relay against Postfix %s, %d cores, queues on %s" %
          (subprocess.run(["/usr/sbin/postconf", "-d", "-h", "mail_version"],
                          capture_output=True, text=True).stdout.strip(),
           os.cpu_count(), "/var/tmp"))
    intake()
    e2e()
