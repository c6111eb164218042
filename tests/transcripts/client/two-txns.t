# Connection reuse with PIPELINING: the next transaction's MAIL, RCPT and
# DATA go right after the end of the first message (RFC 2920).
A: start
A: ehlo c.test
A: txn a@b.example c@d.example one
A: txn a@b.example e@d.example two
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<c@d.example>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply DATA 354 go
B: one\r\n
C: .
C: MAIL FROM:<a@b.example>
C: RCPT TO:<e@d.example>
C: DATA
S: 250 first queued
S: 250 ok
S: 250 ok
S: 354 go
E: reply BODY 250 first queued
E: txn c@d.example=ACCEPTED/BODY/250
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply DATA 354 go
B: two\r\n
C: .
C: QUIT
S: 250 second queued
S: 221 bye
E: reply BODY 250 second queued
E: txn e@d.example=ACCEPTED/BODY/250
E: reply QUIT 221 bye
E: close SMTPX_OK
