# The application's pointer per recipient is kept with accepted recipients
# only, and can be read until the transaction ends.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ EHLO c.test\r\nMAIL FROM:<a@b.example>\r\n
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
E: mail <a@b.example>
S: 250 2.1.0 Ok
A: rcptdata 11
C: RCPT TO:<one@d.example>
E: rcpt <one@d.example> #0
S: 250 2.1.5 Ok
A: rcptdata 22
A: set rcpt 550 no
C: RCPT TO:<two@d.example>
E: rcpt <two@d.example> #1
S: 550 no
A: rcptdata 33
C: RCPT TO:<three@d.example>
E: rcpt <three@d.example> #1
S: 250 2.1.5 Ok
X: rcpts 2
X: rcptdata 0 11
X: rcptdata 1 33
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
