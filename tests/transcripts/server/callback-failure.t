# A callback that fails ends the session with 421 4.3.0; recv reports the
# fatal error and keeps reporting it.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
A: set mail fail
C+ EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nNOOP\r\n
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
E: mail <a@b.example>
S: 421 4.3.0 Local error, closing connection
E: close SMTPX_ERR_CALLBACK_FAILURE
E: fatal SMTPX_ERR_CALLBACK_FAILURE
