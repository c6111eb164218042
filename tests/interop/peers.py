"""peers.py - what the interop tests share: free ports, waiting for a
server, smtpx-recv as a child process with its own Maildir, and a private
Postfix instance (real smtpd, cleanup, qmgr) with a discard transport."""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time


_given = set()

# SMTPX_INTEROP_SLOW=1: our programs run under valgrind (make
# check-valgrind points the tests at wrapper scripts); allow for the slower
# start.  SMTPX_INTEROP_FACTOR: how many times slower than a plain build
# they run otherwise (make check-san and make coverage say 3); the waits
# and the deadlines that must not pass by slowness alone scale with it.
SLOW = os.environ.get("SMTPX_INTEROP_SLOW") == "1"
FACTOR = max(1.0, float(os.environ.get("SMTPX_INTEROP_FACTOR") or 1))
WAIT = 60 if SLOW else 10 * FACTOR


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A loopback port nothing listens on, never the same one twice in a
    run, and below the ephemeral range: a server restarted on its port
    (after a kill) would otherwise find it taken as the source port of an
    outgoing connection, or of a client reconnecting to itself."""
    top = min(_ephemeral_low(), 65536)
    while True:
        port = random.randrange(20000 if top > 21000 else 1024, top)
        if port in _given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _given.add(port)
        return port


def wait_port(port, proc=None, t=None, banner=True, host="127.0.0.1"):
    """Wait until something answers on port (with a 220 greeting unless
    banner is False: a TLS port says nothing first); t: WAIT."""
    end = time.monotonic() + (WAIT if t is None else t)
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), 1) as c:
                if not banner:
                    return
                c.settimeout(5)
                if c.recv(512).startswith(b"220"):
                    return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("nothing answers on port %d" % port)


def stop_process(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class Receiver:
    """smtpx-recv on a loopback port of the system's choice (":0": its log
    says which) with its own Maildir.  prepare, if given, is called with
    the receiver's directory and returns more arguments (files it wrote
    there); tls_port adds an implicit-TLS listener (its arguments must come
    from extra or prepare)."""

    def __init__(self, recv, hostname, *extra, maildir=True, tls_port=False,
                 prepare=None, maildir_path=None):
        self.dir = tempfile.mkdtemp(prefix="smtpx-interop-")
        self.maildir = maildir_path or os.path.join(self.dir, "Maildir")
        self.port = None
        self.tls_port = None
        self.proxy_port = None
        self.log = open(os.path.join(self.dir, "log"), "w+")
        args = [recv, "--listen", "127.0.0.1:0", "--hostname", hostname]
        if tls_port:
            args += ["--tls-listen", "127.0.0.1:0"]
        args += ["--maildir", self.maildir] if maildir else ["--discard"]
        if prepare is not None:
            args += prepare(self.dir)
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        try:
            self.port, self.tls_port = self._bound(
                tls_port, t=WAIT, proxy="--proxy-listen" in extra)
            wait_port(self.port, self.proc, t=WAIT)
            if tls_port:
                wait_port(self.tls_port, self.proc, t=WAIT, banner=False)
        except RuntimeError:
            raise RuntimeError("smtpx-recv did not start:\n" + self.logtext())

    def _bound(self, tls, t=10, proxy=False):
        """The ports the listeners got, from the "listening on" lines."""
        want = re.compile(r"listening on 127\.0\.0\.1:(\d+)( with TLS)?"
                          r"[^\n]*?( behind a PROXY)?")
        end = time.monotonic() + t
        while time.monotonic() < end:
            plain = implicit = None
            for m in want.finditer(self.logtext()):
                if m.group(3):
                    self.proxy_port = int(m.group(1))
                elif m.group(2):
                    implicit = int(m.group(1))
                else:
                    plain = int(m.group(1))
            # Each listener's line, the PROXY one too when asked for (it
            # comes last, and late under valgrind).
            if plain is not None and (implicit is not None or not tls) and \
                    (self.proxy_port is not None or not proxy):
                return plain, implicit
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("smtpx-recv announced no port")

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def messages(self):
        new = os.path.join(self.maildir, "new")
        out = []
        for n in sorted(os.listdir(new)):
            with open(os.path.join(new, n), "rb") as f:
                out.append(f.read())
        return out

    def stop(self):
        code = stop_process(self.proc)
        self.log.close()
        return code

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostfix:
    """A Postfix instance of its own (configuration and queue under dir)
    whose smtpd listens on 127.0.0.1:port and discards what it accepts.
    main_cf: more main.cf lines; files: {name: path} copied into the
    configuration directory (Debian's Postfix reads SASL settings from
    $config_directory/sasl/).  Needs root."""

    def __init__(self, dir, port, main_cf="", files=None, addr="127.0.0.1"):
        self.conf = os.path.join(dir, "pf")
        self.queue = os.path.join(dir, "pfq")
        os.makedirs(os.path.join(self.queue, "spool"))
        os.makedirs(os.path.join(self.queue, "data"))
        os.makedirs(self.conf, exist_ok=True)
        shutil.chown(os.path.join(self.queue, "data"), "postfix")
        for name, src in (files or {}).items():
            dst = os.path.join(self.conf, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(src, dst)
        q = self.queue
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(main_cf_text(
                "compatibility_level = 3.6\n"
                "queue_directory = %s/spool\n"
                "data_directory = %s/data\n"
                "mail_owner = postfix\nsetgid_group = postdrop\n"
                "myhostname = postfix.test\ninet_interfaces = %s\n"
                "inet_protocols = ipv4\nmydestination =\n"
                "default_transport = discard\nrelay_transport = discard\n"
                "local_transport = discard\nsmtpd_peername_lookup = no\n"
                "alias_maps =\nalias_database =\n"
                "maillog_file = %s/data/maillog\n"
                "maillog_file_prefixes = %s\n" % (q, q, addr, q, q) +
                main_cf))
        with open("/etc/postfix/master.cf") as src, \
                open(os.path.join(self.conf, "master.cf"), "w") as dst:
            for line in src:
                w = line.split()
                if line.startswith("#") or line[:1].isspace() or len(w) < 8:
                    continue
                if w[0] == "maildrop":
                    break
                if w[0] == "smtp" and w[1] == "inet":
                    w[0] = "%s:%d" % (addr, port)
                w[4] = "n"  # no chroot
                dst.write(" ".join(w) + "\n")
        r = subprocess.run(["/usr/sbin/postfix", "-c", self.conf, "start"],
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postfix start: %s%s\n%s" %
                               (r.stdout, r.stderr, self.maillog()))
        try:
            wait_port(port, t=20, host=addr)
        except RuntimeError as e:
            log = self.maillog()
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                pass
            raise RuntimeError("%s; postfix log:\n%s" % (e, log))

    def maillog(self):
        try:
            with open(os.path.join(self.queue, "data", "maillog")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """postfix stop; when that fails or hangs, its processes are
        killed, so that none outlives the test."""
        try:
            r = subprocess.run(["/usr/sbin/postfix", "-c", self.conf, "stop"],
                               capture_output=True, timeout=60)
            if r.returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        try:
            queue = getattr(self, "queue", os.path.join(
                os.path.dirname(self.conf), "pfq"))
            with open(os.path.join(queue, "spool", "pid",
                                   "master.pid")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        subprocess.run(["pkill", "-KILL", "-P", str(pid)],
                       capture_output=True)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def main_cf_text(lines):
    """main.cf with each parameter once, the last setting winning (a
    continuation line belongs to the parameter before it).  Postfix warns
    of a parameter set twice in every process that reads the file, and
    postlogd warns to its own socket: with more warnings queued at start
    than a datagram socket holds (net.unix.max_dgram_qlen, 10), postlogd
    blocks on itself and so does every process that logs - smtpd before
    its greeting."""
    params = {}
    key = None
    for line in lines.splitlines():
        if line[:1].isspace() and key is not None:
            params[key] += "\n" + line
        elif line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            key = key.strip()
            params.pop(key, None)  # the last setting's place
            params[key] = "%s = %s" % (key, value.strip())
    return "".join(v + "\n" for v in params.values())
