# STARTTLS (RFC 3207): offered only when TLS is available; every byte the
# client sent after the STARTTLS line is dropped (command injection), and
# once TLS is up the EHLO state is forgotten (4.2).
@tls
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-STARTTLS
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: MAIL FROM:<before@tls.example>
E: mail <before@tls.example>
S: 250 2.1.0 Ok
C+ STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\nRCPT TO:<v@x.example>\r\n
E: txn_end RESET
S: 220 2.0.0 Ready to start TLS
X: want_tls 1
X: want_read 0
X: held 0
A: tls
X: want_tls 0
X: want_read 1
X: helo (null)
X: protocol SMTP
C: MAIL FROM:<a@b.example>
S: 503 5.5.1 Send HELO/EHLO first
C: STARTTLS
S: 503 5.5.1 TLS already active
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
X: protocol ESMTPS
C: MAIL FROM:<a@b.example>
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
