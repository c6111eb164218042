# STARTTLS is refused when TLS is not available, with arguments, and
# before EHLO; the TLS hand-over cannot be faked by the driver.
@limit ERRORS 100
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: STARTTLS
S: 502 5.5.1 Command not implemented
A: tls
E: tls_started returned SMTPX_ERR_INVALID_STATE
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: STARTTLS now
S: 501 5.5.4 Syntax: STARTTLS
C: STARTTLS
S: 502 5.5.1 Command not implemented
E: close SMTPX_ERR_CLOSED
