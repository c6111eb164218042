# Back-pressure: a client that pipelines without reading fills the
# output; the session then stops taking input (want_read 0) and holds
# the rest instead of closing.  Once output is written it goes on.
@limit OUTBUF 1024
@limit JUNK 1000
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
A: drain off
C+ NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
X: want_read 0
X: out 1036
X: held 156
A: drain on
X: want_read 1
X: held 0
X: out 0
C: QUIT
S: 221 2.0.0 mx.test closing connection
E: close SMTPX_OK
