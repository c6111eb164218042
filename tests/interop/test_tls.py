#!/usr/bin/python3
"""Interop for TLS and AUTH over real sockets on loopback.

Clients against smtpx-recv: swaks (STARTTLS, implicit TLS, AUTH PLAIN and
LOGIN), curl (--ssl-reqd and smtps://, AUTH), openssl s_client
(-starttls smtp, certificate verification), Python's ssl module (the
STARTTLS command injection, driven by hand).  smtpx-send against
smtpx-recv (STARTTLS and implicit TLS, AUTH, certificate and name
verification failures), against aiosmtpd with STARTTLS and AUTH, and
against a private Postfix smtpd with TLS and Cyrus SASL.

The certificates are the committed test ones of tests/data/tls (a test CA
and mx.test with the names localhost and 127.0.0.1).

Usage: test_tls.py BUILD_DIR
"""
import base64
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
RECV = os.path.join(BUILD, "examples", "smtpx-recv")
SEND = os.path.join(BUILD, "examples", "smtpx-send")
HERE = os.path.dirname(os.path.abspath(__file__))
CERTS = os.path.join(HERE, "..", "data", "tls")
CA = os.path.join(CERTS, "ca.pem")
CERT = os.path.join(CERTS, "server.pem")
KEY = os.path.join(CERTS, "server.key")
UNTRUSTED_CA = os.path.join(CERTS, "untrusted-ca.pem")

USER = "tim"
PASSWORD = "tanstaaf tanstaaf"  # a space, as passphrases have
FROM = "alice@example.org"
MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
           b"Subject: tls interop\r\n\r\n.leading dot\r\nbody\r\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc=None, t=10, banner=True):
    end = time.monotonic() + t
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as c:
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


def make_entry(user, password):
    p = subprocess.run([RECV, "--make-password", user],
                       input=(password + "\n").encode(), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    line = p.stdout.decode().strip()
    assert line.startswith(user + ":SCRAM-SHA-256$4096:"), line
    return line


class Receiver:
    """smtpx-recv with STARTTLS on one port, implicit TLS on another and
    AUTH from a password file."""

    def __init__(self, *extra, auth=True):
        self.dir = tempfile.mkdtemp(prefix="smtpx-tls-")
        self.maildir = os.path.join(self.dir, "Maildir")
        self.port = free_port()
        self.tls_port = free_port()
        args = [RECV, "--listen", "127.0.0.1:%d" % self.port,
                "--tls-listen", "127.0.0.1:%d" % self.tls_port,
                "--tls-cert", CERT, "--tls-key", KEY,
                "--hostname", "mx.test", "--maildir", self.maildir,
                "--local-domain", "example.net", "-v"]
        if auth:
            users = os.path.join(self.dir, "users")
            with open(users, "w") as f:
                f.write("# test users\n" + make_entry(USER, PASSWORD) + "\n")
            args += ["--auth-file", users]
        args += list(extra)
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, self.proc)
            wait_port(self.tls_port, self.proc, banner=False)
        except RuntimeError:
            raise RuntimeError("smtpx-recv did not start:\n" + self.logtext())

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
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


class TLSInterop(unittest.TestCase):
    def setUp(self):
        self.r = None
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="smtpx-tls-test-")
        os.chmod(self.dir, 0o755)

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if self.r is not None:
            code = self.r.stop()
            log = self.r.logtext()
            shutil.rmtree(self.r.dir, ignore_errors=True)
            self.assertEqual(code, 0, "smtpx-recv exit status; log:\n" + log)
            # Nothing secret ever reaches the log, whatever was tried.
            self.assertNotIn(PASSWORD, log)
            self.assertNotIn(base64.b64encode(
                b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode(),
                log)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *extra, **kw):
        self.r = Receiver(*extra, **kw)
        return self.r

    def write_msg(self):
        path = os.path.join(self.dir, "msg.eml")
        with open(path, "wb") as f:
            f.write(MESSAGE)
        return path

    def stored_received(self):
        msgs = self.r.messages()
        self.assertEqual(len(msgs), 1)
        head = msgs[0].split(b"\nFrom: ")[0]
        return head, msgs[0]

    # ---- clients against smtpx-recv -----------------------------------

    def swaks(self, port, *args):
        return subprocess.run(
            ["swaks", "--server", "127.0.0.1:%d" % port, "--from", FROM,
             "--to", "bob@example.net", "--helo", "swaks.test",
             "--data", "@" + self.write_msg()] + list(args),
            capture_output=True, timeout=60)

    def test_swaks_starttls_auth(self):
        r = self.start()
        for mech in ("PLAIN", "LOGIN"):
            p = self.swaks(r.port, "--tls", "--auth", mech, "--auth-user",
                           USER, "--auth-password", PASSWORD,
                           "--to", "carol@elsewhere.example")
            out = (p.stdout + p.stderr).decode(errors="replace")
            self.assertEqual(p.returncode, 0, out)
            self.assertIn("235 2.7.0", out)
            self.assertRegex(out, r"TLS started with cipher TLSv1\.[23]")
        msgs = r.messages()
        self.assertEqual(len(msgs), 2)
        for m in msgs:
            self.assertIn(b"with ESMTPSA", m)
            self.assertIn(b"version=TLSv1.2", m)
        self.assertIn("auth=tim", r.logtext())

    def test_swaks_wrong_password_and_relay(self):
        r = self.start()
        p = self.swaks(r.port, "--tls", "--auth", "PLAIN", "--auth-user",
                       USER, "--auth-password", "wrong")
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("535 5.7.8", out)
        # Without AUTH: a local domain takes mail, another is relaying.
        p = self.swaks(r.port, "--tls")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.swaks(r.port, "--tls", "--to", "eve@elsewhere.example")
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("554 5.7.1 Relay access denied", out)
        self.assertEqual(len(r.messages()), 1)

    def test_swaks_implicit_tls(self):
        r = self.start()
        p = self.swaks(r.tls_port, "--tlsc", "--auth", "PLAIN", "--auth-user",
                       USER, "--auth-password", PASSWORD)
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        head, _ = self.stored_received()
        self.assertIn(b"with ESMTPSA", head)

    def test_auth_not_offered_in_clear(self):
        r = self.start()
        with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
            code, caps = s.ehlo("clear.test")
            self.assertEqual(code, 250)
            self.assertIn(b"STARTTLS", caps)
            self.assertNotIn(b"AUTH", caps)
            code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(
                b"\0tim\0" + PASSWORD.encode()).decode())
            self.assertEqual(code, 538, msg)
            ctx = ssl.create_default_context(cafile=CA)
            s.starttls(context=ctx)
            code, caps = s.ehlo("tls.test")
            self.assertIn(b"AUTH SCRAM-SHA-256 PLAIN LOGIN", caps)
            s.login(USER, PASSWORD)
            self.assertEqual(s.sendmail(FROM, ["x@elsewhere.example"],
                                        MESSAGE), {})
        self.assertEqual(len(r.messages()), 1)

    def test_require_tls(self):
        r = self.start("--require-tls")
        with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
            s.ehlo("clear.test")
            code, msg = s.docmd("MAIL FROM:<%s>" % FROM)
            self.assertEqual(code, 530, msg)
            self.assertIn(b"5.7.0", msg)

    def test_curl_ssl_reqd(self):
        r = self.start()
        base = ["curl", "--silent", "--show-error", "--max-time", "60",
                "--cacert", CA, "--mail-from", FROM,
                "--mail-rcpt", "bob@elsewhere.example",
                "--upload-file", self.write_msg(),
                "--user", "%s:%s" % (USER, PASSWORD)]
        p = subprocess.run(base + ["--ssl-reqd", "smtp://127.0.0.1:%d/curl.test"
                                   % r.port], capture_output=True, timeout=90)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run(base + ["smtps://127.0.0.1:%d/curl.test"
                                   % r.tls_port], capture_output=True,
                           timeout=90)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        msgs = r.messages()
        self.assertEqual(len(msgs), 2)
        for m in msgs:
            self.assertIn(b"with ESMTPSA", m)
            self.assertTrue(m.endswith(MESSAGE.replace(b"\r\n", b"\n")))
        # curl checks the certificate: against a CA it does not know it
        # refuses to go on (exit 60).
        p = subprocess.run(["curl", "--silent", "--max-time", "30",
                            "--cacert", UNTRUSTED_CA, "--ssl-reqd",
                            "smtp://127.0.0.1:%d/curl.test" % r.port,
                            "--mail-from", FROM, "--mail-rcpt",
                            "bob@example.net", "--upload-file",
                            self.write_msg()], capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 60, p.stdout + p.stderr)

    def test_openssl_s_client(self):
        r = self.start()
        p = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-connect",
             "127.0.0.1:%d" % r.port, "-CAfile", CA, "-verify_hostname",
             "mx.test", "-verify_return_error", "-servername", "mx.test",
             "-crlf", "-quiet"],
            # -crlf turns each LF into CRLF.
            input=b"EHLO s-client.test\nQUIT\n", capture_output=True,
            timeout=60)
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("verify return:1", out)
        # Under TLS the client greets again and AUTH is offered.
        self.assertIn("250-AUTH SCRAM-SHA-256 PLAIN LOGIN", out)
        self.assertIn("221 2.0.0", out)
        # The wrong name is caught by openssl's own check.
        p = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-connect",
             "127.0.0.1:%d" % r.port, "-CAfile", CA, "-verify_hostname",
             "wrong.test", "-verify_return_error", "-quiet"],
            input=b"QUIT\n", capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)

    def test_starttls_command_injection(self):
        """Commands sent in clear text in the same packet as STARTTLS are
        dropped (RFC 3207 4.2): after the handshake the server answers
        only what is sent under TLS."""
        r = self.start()
        c = socket.create_connection(("127.0.0.1", r.port), 10)
        f = c.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220 "))
        c.sendall(b"EHLO inject.test\r\n")
        while True:
            line = f.readline()
            if line.startswith(b"250 "):
                break
        c.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n"
                  b"RCPT TO:<bob@example.net>\r\n")
        self.assertTrue(f.readline().startswith(b"220 "))
        ctx = ssl.create_default_context(cafile=CA)
        t = ctx.wrap_socket(c, server_hostname="mx.test")
        tf = t.makefile("rb")
        t.sendall(b"RSET\r\n")
        # The injected MAIL and RCPT got no reply: the first reply under
        # TLS is the one to RSET.
        self.assertEqual(tf.readline(), b"250 2.0.0 Ok\r\n")
        t.sendall(b"MAIL FROM:<a@example.org>\r\n")
        # HELO state was forgotten (RFC 3207 4.2).
        self.assertTrue(tf.readline().startswith(b"503 5.5.1"))
        t.sendall(b"QUIT\r\n")
        self.assertTrue(tf.readline().startswith(b"221 "))
        t.close()
        self.assertIn("discarded", r.logtext())

    # ---- smtpx-send ----------------------------------------------------

    def send(self, port, *args, env_pw=None):
        env = dict(os.environ)
        env.pop("SMTPX_PASSWORD", None)
        if env_pw is not None:
            env["SMTPX_PASSWORD"] = env_pw
        p = subprocess.run([SEND, "--host", "127.0.0.1", "--port", str(port),
                            "--helo", "send.test", "-f", FROM, "-oi"] +
                           list(args), input=MESSAGE, capture_output=True,
                           timeout=60, env=env)
        return p.returncode, p.stderr.decode(errors="replace")

    def test_smtpx_send_starttls_auth(self):
        r = self.start()
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        # The name to verify is mx.test; the address is 127.0.0.1.
        code, err = self.send(r.port, "--starttls", "--ca", CA, "--tls-name",
                              "mx.test", "--user", USER, "--password-file",
                              pwfile, "-v", "x@elsewhere.example")
        self.assertEqual(code, 0, err)
        self.assertIn(">>> STARTTLS", err)
        self.assertIn(">>> AUTH SCRAM-SHA-256", err)
        self.assertNotIn(PASSWORD, err)
        # The password from the environment, PLAIN by request, implicit TLS.
        # (mbedTLS 2.28 matches names only, not IP addresses: the name to
        # verify is given.)
        code, err = self.send(r.tls_port, "--tls", "--ca", CA, "--tls-name",
                              "mx.test", "--user", USER, "--auth-mech",
                              "PLAIN", "-v", "y@elsewhere.example",
                              env_pw=PASSWORD)
        self.assertEqual(code, 0, err)
        self.assertIn(">>> AUTH PLAIN [redacted]", err)
        msgs = r.messages()
        self.assertEqual(len(msgs), 2)
        for m in msgs:
            self.assertIn(b"with ESMTPSA", m)

    def test_smtpx_send_verification_failures(self):
        r = self.start()
        # A CA that did not sign the certificate.
        code, err = self.send(r.port, "--starttls", "--ca", UNTRUSTED_CA,
                              "--tls-name", "mx.test", "bob@example.net")
        self.assertEqual(code, 75, err)
        self.assertIn("could not be verified", err)
        # The right CA, the wrong name.
        code, err = self.send(r.port, "--starttls", "--ca", CA, "--tls-name",
                              "wrong.test", "bob@example.net")
        self.assertEqual(code, 75, err)
        self.assertIn("could not be verified", err)
        # Encrypt without checking: delivered.
        code, err = self.send(r.port, "--starttls", "--tls-level", "encrypt",
                              "bob@example.net")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(r.messages()), 1)

    def test_smtpx_send_wrong_password(self):
        r = self.start()
        code, err = self.send(r.port, "--starttls", "--ca", CA, "--tls-name",
                              "mx.test", "--user", USER, "bob@example.net",
                              env_pw="wrong")
        self.assertEqual(code, 77, err)
        self.assertIn("deferred (454 4.7.0 Authentication refused: 535", err)
        self.assertEqual(r.messages(), [])

    def test_smtpx_send_tls_required_not_offered(self):
        """A server without STARTTLS: encrypt and verify send nothing."""
        r = self.start(auth=False)
        plain = free_port()
        proc = subprocess.Popen([RECV, "--listen", "127.0.0.1:%d" % plain,
                                 "--discard", "-q"])
        self.procs.append(proc)
        wait_port(plain, proc)
        code, err = self.send(plain, "--starttls", "--ca", CA, "-v",
                              "bob@example.net")
        self.assertEqual(code, 75, err)
        self.assertIn("TLS required but not available", err)
        self.assertNotIn(">>> MAIL", err)
        # Opportunistic TLS goes on in clear text.
        code, err = self.send(plain, "--tls-level", "may", "bob@example.net")
        self.assertEqual(code, 0, err)

    # ---- smtpx-send against other servers -------------------------------

    def test_smtpx_send_aiosmtpd_starttls_auth(self):
        port = free_port()
        store = os.path.join(self.dir, "aio")
        os.makedirs(store)
        proc = subprocess.Popen(["/usr/bin/python3",
                                 os.path.join(HERE, "aio_server.py"),
                                 str(port), store, CERT, KEY, USER, PASSWORD],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_port(port, proc)
        code, err = self.send(port, "--starttls", "--ca", CA, "--tls-name",
                              "mx.test", "--user", USER, "-v",
                              "bob@example.net", env_pw=PASSWORD)
        self.assertEqual(code, 0, err)
        self.assertIn("<<< 220 Ready to start TLS", err)
        with open(os.path.join(store, "1.eml"), "rb") as f:
            self.assertEqual(f.read(), MESSAGE)
        with open(os.path.join(store, "1.env")) as f:
            env = f.read()
        self.assertIn("login=tim", env)
        self.assertIn("tls=1", env)
        code, err = self.send(port, "--starttls", "--ca", CA, "--tls-name",
                              "mx.test", "--user", USER, "bob@example.net",
                              env_pw="wrong")
        self.assertEqual(code, 77, err)

    def test_smtpx_send_postfix_tls_sasl(self):
        """A private Postfix smtpd with TLS (our test certificate) and Cyrus
        SASL (a sasldb made with saslpasswd2): AUTH is offered only after
        STARTTLS (smtpd_tls_auth_only), and relaying needs it."""
        if os.getuid() != 0:
            self.skipTest("a private Postfix needs root")
        port = free_port()
        conf = os.path.join(self.dir, "pf")
        queue = os.path.join(self.dir, "pfq")
        # Debian's Postfix reads $config_directory/sasl/smtpd.conf.
        sasl = os.path.join(conf, "sasl")
        for d in (conf, os.path.join(queue, "spool"),
                  os.path.join(queue, "data"), sasl):
            os.makedirs(d)
        shutil.chown(os.path.join(queue, "data"), "postfix")
        os.chmod(sasl, 0o755)
        db = os.path.join(sasl, "sasldb2")
        p = subprocess.run(["saslpasswd2", "-f", db, "-c", "-p", "-u",
                            "postfix.test", USER],
                           input=PASSWORD.encode(), capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        shutil.chown(db, "postfix")
        os.chmod(db, 0o600)
        with open(os.path.join(sasl, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "mech_list: PLAIN LOGIN\nsasldb_path: %s\n" % db)
        shutil.copy(CERT, os.path.join(conf, "cert.pem"))
        shutil.copy(KEY, os.path.join(conf, "key.pem"))
        with open(os.path.join(conf, "main.cf"), "w") as f:
            f.write("compatibility_level = 3.6\n"
                    "queue_directory = %s/spool\n"
                    "data_directory = %s/data\n"
                    "mail_owner = postfix\nsetgid_group = postdrop\n"
                    "myhostname = postfix.test\ninet_interfaces = 127.0.0.1\n"
                    "inet_protocols = ipv4\nmydestination =\nmynetworks =\n"
                    "smtpd_relay_restrictions = "
                    "permit_sasl_authenticated, reject\n"
                    "smtpd_tls_cert_file = %s/cert.pem\n"
                    "smtpd_tls_key_file = %s/key.pem\n"
                    "smtpd_tls_security_level = may\n"
                    "smtpd_tls_auth_only = yes\n"
                    "smtpd_sasl_auth_enable = yes\n"
                    "smtpd_sasl_type = cyrus\nsmtpd_sasl_path = smtpd\n"
                    "smtpd_sasl_local_domain = postfix.test\n"
                    "default_transport = discard\nrelay_transport = discard\n"
                    "local_transport = discard\nsmtpd_peername_lookup = no\n"
                    "maillog_file = %s/data/maillog\n"
                    "maillog_file_prefixes = %s\n" % (queue, queue, conf, conf,
                                                       queue, queue))
        with open("/etc/postfix/master.cf") as src, \
                open(os.path.join(conf, "master.cf"), "w") as dst:
            for line in src:
                w = line.split()
                if line.startswith("#") or line[:1].isspace() or len(w) < 8:
                    continue
                if w[0] == "maildrop":
                    break
                if w[0] == "smtp" and w[1] == "inet":
                    w[0] = "127.0.0.1:%d" % port
                w[4] = "n"  # no chroot
                dst.write(" ".join(w) + "\n")
        r = subprocess.run(["/usr/sbin/postfix", "-c", conf, "start"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            wait_port(port, t=20)
            code, err = self.send(port, "--starttls", "--ca", CA,
                                  "--tls-name", "mx.test", "--user", USER,
                                  "-v", "bob@relay.example", env_pw=PASSWORD)
            log = ""
            if code != 0:
                try:
                    with open(os.path.join(queue, "data", "maillog")) as f:
                        log = f.read()
                except OSError:
                    pass
            self.assertEqual(code, 0, err + log)
            self.assertIn("<<< 250-AUTH PLAIN LOGIN", err)
            self.assertIn(">>> AUTH PLAIN [redacted]", err)
            self.assertIn("<bob@relay.example>: accepted (250 2.0.0 Ok: "
                          "queued", err)
            # Without AUTH Postfix refuses to relay.
            code, err = self.send(port, "--starttls", "--ca", CA,
                                  "--tls-name", "mx.test",
                                  "bob@relay.example")
            self.assertEqual(code, 69, err)
            self.assertIn("failed (554 5.7.1", err)
        finally:
            subprocess.run(["/usr/sbin/postfix", "-c", conf, "stop"],
                           capture_output=True, timeout=60)


if __name__ == "__main__":
    unittest.main(verbosity=2)
