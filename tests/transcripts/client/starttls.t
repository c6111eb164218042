# STARTTLS: after its 220 the client wants TLS and reads no clear text;
# once TLS is up the capabilities are forgotten and EHLO is said again.
A: start
A: ehlo c.test
A: starttls
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 STARTTLS
E: reply EHLO 250 mx\nSTARTTLS
C: STARTTLS
S: 220 2.0.0 go ahead
E: reply STARTTLS 220 2.0.0 go ahead
X: want_tls 1
X: want_read 0
A: tls
X: want_tls 0
X: esmtp 0
X: ext STARTTLS (null)
A: ehlo c.test
C: EHLO c.test
S: 250-mx
S: 250 AUTH PLAIN
E: reply EHLO 250 mx\nAUTH PLAIN
X: ext AUTH PLAIN
A: starttls
E: starttls returned SMTPX_ERR_INVALID_STATE
E: close SMTPX_ERR_CLOSED
