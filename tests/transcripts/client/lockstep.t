# No PIPELINING offered: one command at a time, each after the reply to
# the one before.  A refused recipient does not stop the other.
A: start
A: ehlo client.test
A: txn a@b.example c@d.example,e@d.example Hello\n
A: quit
S: 220 mx.test ESMTP
E: reply greeting 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 8BITMIME
E: reply EHLO 250 mx.test\n8BITMIME
C: MAIL FROM:<a@b.example>
S: 250 ok
E: reply MAIL 250 ok
C: RCPT TO:<c@d.example>
S: 550 5.1.1 no such user
E: reply RCPT 550 5.1.1 no such user
C: RCPT TO:<e@d.example>
S: 250 ok
E: reply RCPT 250 ok
C: DATA
S: 354 go
E: reply DATA 354 go
B: Hello\r\n
C: .
S: 250 queued
E: reply BODY 250 queued
E: txn c@d.example=FAILED/RCPT/550 e@d.example=ACCEPTED/BODY/250
C: QUIT
S: 221 bye
E: reply QUIT 221 bye
E: close SMTPX_OK
