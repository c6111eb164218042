# Implicit TLS (RFC 8314): the handshake completes before the client says
# anything; STARTTLS is then neither offered nor accepted.
@tls
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
A: tls
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
C: STARTTLS
S: 503 5.5.1 TLS already active
A: tls
E: tls_started returned SMTPX_ERR_INVALID_STATE
E: close SMTPX_ERR_CLOSED
