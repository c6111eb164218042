# RFC 3461 5.2: to a server without DSN the requests are left out (and
# smtpx_txn_dsn_dropped() says so); MT-PRIORITY, advisory, too.
@log
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example hi\r\n ret=full notify=N priority=5
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
L: info transaction from <a@b.example> to 1 recipient: DATA
L: info the server does not offer DSN: the DSN requests of <a@b.example> are left out
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply DATA 354 go
B: hi\r\n
C: .
C: QUIT
S: 250 queued
S: 221 bye
E: reply BODY 250 queued
E: txn r1@d.example=ACCEPTED/BODY/250
E: reply QUIT 221 bye
E: close SMTPX_OK
