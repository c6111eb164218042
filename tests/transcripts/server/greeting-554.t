# A refused greeting (RFC 5321 3.1): 554, then 503 to everything but QUIT.
A: set connect 554 5.7.1 No service for you
E: connect 192.0.2.7 41000
S: 554 No service for you
C: EHLO c.test
S: 503 5.5.1 Service refused, send QUIT
C: MAIL FROM:<a@b.example>
S: 503 5.5.1 Service refused, send QUIT
C: QUIT
S: 221 2.0.0 mx.test closing connection
E: close SMTPX_OK
