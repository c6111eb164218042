#!/usr/bin/python3
"""attacks.py BUILD_DIR - how a well-behaved client fares while the server
is under attack: smtpx-recv (--discard, AUTH offered) against a private
Postfix smtpd (discard transport), same attacks, same run.

For each attack of tests/interop/attacks.py (slowloris, idle floods,
clients that never read, 10,000 recipients a session, AUTH guessing) the
attack runs for SECONDS while a probe (smtplib: EHLO, MAIL, RCPT, DATA,
QUIT, back to back) times its sessions.  Printed per server: the probe's
session time (median, 99th percentile, max, in ms), its failed sessions,
and the server's resident memory at the end of the attack (with its
children, for Postfix).  Postfix gets no AUTH here (it needs Cyrus SASL
set up), so the AUTH guessing rows are smtpx-recv's alone: without a
limit, and with --limit-auth-rate 60 (the limiter's AUTH rate per
address).

Env: SECONDS (10), SCALE (1.0: multiplies the connection counts).
Needs root for Postfix (otherwise smtpx-recv only).  Everything runs on
127.0.0.1 and stops by itself.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import attacks  # noqa: E402
import peers  # noqa: E402

SECONDS = float(os.environ.get("SECONDS", "10"))
SCALE = float(os.environ.get("SCALE", "1.0"))
CONNS = {"none": 0, "slowloris": 2000, "idle": 5000, "noread": 100,
         "rcpts": 8, "authguess": 100}


def run(name, port, pid, kind):
    probe = attacks.Probe("127.0.0.1", port, timeout=30)
    probe.start()
    n = int(CONNS[kind] * SCALE)
    if kind == "none":
        import time
        time.sleep(SECONDS)
        st = None
    else:
        st = attacks.attack(kind, "127.0.0.1", port, n, SECONDS)
    rss = attacks.rss_kb(pid)
    probe.stop()
    t = [x * 1000 for x in probe.times]
    return ("%6.1f %7.1f %7.1f %4d  %7d KiB" %
            (attacks.quantile(t, 0.5), attacks.quantile(t, 0.99),
             max(t) if t else float("nan"), len(probe.errors), rss),
            st)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    recv = os.path.join(build, "examples", "smtpx-recv")
    attacks.raise_nofile()
    d = tempfile.mkdtemp(prefix="smtpx-attacks-")
    os.chmod(d, 0o755)
    entry = subprocess.run([recv, "--make-password", "tim"],
                           input=b"correct horse\n", capture_output=True,
                           check=True).stdout.decode()
    with open(os.path.join(d, "users"), "w") as f:
        f.write(entry)
    r = peers.Receiver(recv, "mx.attack.test", "--local-domain",
                       "example.net", "-q", "--auth-file",
                       os.path.join(d, "users"), "--auth-cleartext",
                       maildir=False)
    # The same with AUTH attempts limited per address: guesses over the
    # rate are refused before any password check.
    r2 = peers.Receiver(recv, "mx.attack.test", "--local-domain",
                        "example.net", "-q", "--auth-file",
                        os.path.join(d, "users"), "--auth-cleartext",
                        "--limit-auth-rate", "60", maildir=False)
    pf = None
    if os.getuid() == 0:
        pport = peers.free_port()
        pf = peers.PrivatePostfix(d, pport,
                                  "mynetworks = 127.0.0.0/8\n"
                                  "smtpd_relay_restrictions = "
                                  "permit_mynetworks, reject\n")
        with open(os.path.join(pf.queue, "spool", "pid", "master.pid")) as f:
            ppid = int(f.read().split()[0])
    print("== A good client under attack: smtplib sessions one after another "
          "for %g s per attack" % SECONDS)
    print("   (session time in ms: median, p99, max; failed sessions; "
          "server RSS at the end)")
    print("  %-10s %6s   %-37s %-37s" % ("attack", "conns", "smtpx-recv",
                                         "postfix smtpd"))
    try:
        for kind in ("none",) + attacks.ATTACKS:
            a, st = run("smtpx-recv", r.port, r.proc.pid, kind)
            if pf is not None and kind != "authguess":
                b, _ = run("postfix", pport, ppid, kind)
            else:
                b = "n/a (no AUTH)" if pf is not None else "n/a (needs root)"
            n = int(CONNS[kind] * SCALE)
            print("  %-10s %6s   %-37s %-37s" % (kind, n or "-", a, b),
                  flush=True)
            if kind == "authguess":
                a, _ = run("smtpx-recv", r2.port, r2.proc.pid, kind)
                print("  %-10s %6s   %-37s %-37s" %
                      ("  limited", n, a, "(--limit-auth-rate 60)"),
                      flush=True)
    finally:
        if pf is not None:
            pf.stop()
        r.stop()
        r.cleanup()
        r2.stop()
        r2.cleanup()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
