# Lost before the message was written out: the server cannot have it, so
# the recipient is deferred, not unknown.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example hello\n
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: DATA
A: drain off
S: 250 ok
S: 250 ok
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply DATA 354 go
B: hello\r\n
C: .
X: out 10
A: eof
E: reply BODY 421 4.4.2 Connection lost before the reply [local]
E: txn r1@d.example=DEFERRED/BODY/421
E: close SMTPX_ERR_EOF
