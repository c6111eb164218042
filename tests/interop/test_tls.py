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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from peers import free_port, stop_process, wait_port  # noqa: E402

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


def make_entry(user, password):
    p = subprocess.run([RECV, "--make-password", user],
                       input=(password + "\n").encode(), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    line = p.stdout.decode().strip()
    assert line.startswith(user + ":SCRAM-SHA-256$4096:"), line
    return line


def start_receiver(*extra, auth=True):
    """smtpx-recv with STARTTLS on one port, implicit TLS on another and
    AUTH from a password file."""
    def prepare(d):
        args = ["--tls-cert", CERT, "--tls-key", KEY, "--local-domain",
                "example.net", "-v"]
        if auth:
            users = os.path.join(d, "users")
            with open(users, "w") as f:
                f.write("# test users\n" + make_entry(USER, PASSWORD) + "\n")
            args += ["--auth-file", users]
        return args
    return peers.Receiver(RECV, "mx.test", *extra, tls_port=True,
                          prepare=prepare)


class TLSInterop(unittest.TestCase):
    def setUp(self):
        self.r = None
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="smtpx-tls-test-")
        os.chmod(self.dir, 0o755)

    def tearDown(self):
        for p in self.procs:
            stop_process(p)
        if self.r is not None:
            code = self.r.stop()
            log = self.r.logtext()
            self.r.cleanup()
            self.assertEqual(code, 0, "smtpx-recv exit status; log:\n" + log)
            # Nothing secret ever reaches the log, whatever was tried.
            self.assertNotIn(PASSWORD, log)
            self.assertNotIn(base64.b64encode(
                b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode(),
                log)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *extra, **kw):
        self.r = start_receiver(*extra, **kw)
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

    def test_openssl_resumes_ticket(self):
        """OpenSSL keeps the session ticket smtpx-recv gives it and resumes
        with it, over STARTTLS and over implicit TLS; the server counts the
        resumed handshakes (SIGUSR1)."""
        r = self.start()
        sess = os.path.join(self.dir, "session.pem")

        def s_client(port, starttls, args):
            cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                   "-CAfile", CA, "-servername", "mx.test", "-tls1_2"]
            if starttls:
                cmd += ["-starttls", "smtp"]
            p = subprocess.run(cmd + args, input=b"QUIT\r\n",
                               capture_output=True, timeout=60)
            return p.stdout.decode(errors="replace")

        for port, starttls in ((r.port, True), (r.tls_port, False)):
            out = s_client(port, starttls, ["-sess_out", sess])
            self.assertIn("New, TLSv1.2", out)
            self.assertIn("TLS session ticket lifetime hint: 3600", out)
            out = s_client(port, starttls, ["-sess_in", sess])
            self.assertIn("Reused, TLSv1.2", out)
        # The server may still be reading the last client's Finished:
        # ask until the counters show all four (or 5 s have passed).
        end = time.monotonic() + peers.WAIT
        line = ""
        while time.monotonic() < end and " tls=4 " not in line:
            r.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.1)
            lines = [x for x in r.logtext().splitlines() if "counters:" in x]
            line = lines[-1] if lines else ""
        self.assertIn(" tls=4 ", line)
        self.assertIn(" tls-resumed=2", line)

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

    def test_smtpx_send_response_injection(self):
        """A server (or a man in the middle) that puts clear-text replies
        after its 220 to STARTTLS: the client refuses them (RFC 3207 4.2)
        and sends nothing more, not even the handshake."""
        import threading
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(20)
        seen = []

        def serve():
            c, _ = ls.accept()
            c.settimeout(10)
            f = c.makefile("rb")
            c.sendall(b"220 inject.test ESMTP\r\n")
            seen.append(f.readline())
            c.sendall(b"250-inject.test\r\n250 STARTTLS\r\n")
            seen.append(f.readline())
            c.sendall(b"220 go ahead\r\n250-inject.test\r\n250 AUTH PLAIN\r\n")
            try:
                while True:
                    data = c.recv(4096)
                    if not data:
                        break
                    seen.append(data)
            except OSError:
                pass
            c.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        code, err = self.send(ls.getsockname()[1], "--starttls", "--ca", CA,
                              "--tls-name", "mx.test", "--user", USER, "-v",
                              "bob@example.net", env_pw=PASSWORD)
        t.join(20)
        ls.close()
        self.assertEqual(code, 76, err)
        self.assertEqual(seen[:2], [b"EHLO send.test\r\n", b"STARTTLS\r\n"])
        # Nothing after STARTTLS: no handshake, no AUTH, no MAIL.
        self.assertEqual(seen[2:], [], err)

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
        sasl = os.path.join(self.dir, "sasl")
        os.makedirs(sasl)
        db = os.path.join(sasl, "sasldb2")
        p = subprocess.run(["saslpasswd2", "-f", db, "-c", "-p", "-u",
                            "postfix.test", USER],
                           input=PASSWORD.encode(), capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        # Debian's Postfix reads $config_directory/sasl/smtpd.conf; the
        # database moves there too.
        conf = os.path.join(self.dir, "pf")
        with open(os.path.join(sasl, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "mech_list: PLAIN LOGIN\nsasldb_path: %s/sasl/sasldb2\n"
                    % conf)
        pf = peers.PrivatePostfix(
            self.dir, port,
            "mynetworks =\n"
            "smtpd_relay_restrictions = permit_sasl_authenticated, reject\n"
            "smtpd_tls_cert_file = %s/cert.pem\n"
            "smtpd_tls_key_file = %s/key.pem\n"
            "smtpd_tls_security_level = may\n"
            "smtpd_tls_auth_only = yes\n"
            "smtpd_sasl_auth_enable = yes\n"
            "smtpd_sasl_type = cyrus\nsmtpd_sasl_path = smtpd\n"
            "smtpd_sasl_local_domain = postfix.test\n" % (conf, conf),
            files={"cert.pem": CERT, "key.pem": KEY,
                   "sasl/smtpd.conf": os.path.join(sasl, "smtpd.conf"),
                   "sasl/sasldb2": db})
        dbcopy = os.path.join(conf, "sasl", "sasldb2")
        shutil.chown(dbcopy, "postfix")
        os.chmod(dbcopy, 0o600)
        try:
            code, err = self.send(port, "--starttls", "--ca", CA,
                                  "--tls-name", "mx.test", "--user", USER,
                                  "-v", "bob@relay.example", env_pw=PASSWORD)
            self.assertEqual(code, 0, err + (pf.maillog() if code else ""))
            self.assertIn("<<< 250-AUTH PLAIN LOGIN", err)
            self.assertIn(">>> AUTH PLAIN [redacted]", err)
            # The content went in a BDAT chunk (Postfix offers CHUNKING),
            # whose reply says how many octets.
            self.assertIn(">>> BDAT 104 LAST", err)
            self.assertIn("<bob@relay.example>: accepted (250 2.0.0 Ok: "
                          "104 bytes queued", err)
            # Without AUTH Postfix refuses to relay.
            code, err = self.send(port, "--starttls", "--ca", CA,
                                  "--tls-name", "mx.test",
                                  "bob@relay.example")
            self.assertEqual(code, 69, err)
            self.assertIn("failed (554 5.7.1", err)
        finally:
            pf.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
