# The server hangs up in the middle of a pipelined transaction: what was
# written waits for a reply that will not come ("lost"), what was not
# written was never sent ("closed"); all in queue order, then on_close.
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
A: eof
E: reply MAIL 421 4.4.2 Connection lost before the reply [local]
E: reply RCPT 421 4.4.2 Connection lost before the reply [local]
E: reply DATA 421 4.4.2 Connection lost before the reply [local]
E: reply BODY 421 4.4.2 The session was closed [local]
E: txn r1@d.example=DEFERRED/MAIL/421
E: reply QUIT 421 4.4.2 The session was closed [local]
E: close SMTPX_ERR_EOF
