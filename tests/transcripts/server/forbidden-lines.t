# Header-like lines and binary (a TLS handshake on the plain port) end the
# session as HTTP request lines do; a line that merely starts with a space
# is an unrecognized command.
@log
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C:  NOOP
S: 500 5.5.2 Command unrecognized
C: Host: mx.test
L: notice forbidden command from 192.0.2.7 (another protocol?): Host: mx.test
S: 421 4.7.0 Not an SMTP command, closing connection
E: close SMTPX_ERR_PROTO
