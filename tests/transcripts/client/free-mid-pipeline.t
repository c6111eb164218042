# The application frees the client in the middle of a pipelined
# transaction: the same replies in queue order as for an EOF, on_close
# with SMTPX_ERR_CLOSED.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example hello\n
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: DATA
S: 250 ok
E: reply MAIL 250 ok
E: reply RCPT 421 4.4.2 The session was closed [local]
E: reply DATA 421 4.4.2 The session was closed [local]
E: reply BODY 421 4.4.2 The session was closed [local]
E: txn r1@d.example=DEFERRED/RCPT/421
E: reply QUIT 421 4.4.2 The session was closed [local]
E: close SMTPX_ERR_CLOSED
