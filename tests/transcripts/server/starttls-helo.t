# STARTTLS needs EHLO first: a client cannot have seen it offered
# otherwise.
@tls
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: STARTTLS
S: 503 5.5.1 Send EHLO first
C: HELO c.test
E: helo HELO c.test
S: 250 mx.test
C: STARTTLS
S: 503 5.5.1 Send EHLO first
E: close SMTPX_ERR_CLOSED
