# RFC 6531 3.4: only one recipient's address needs SMTPUTF8, which the
# server does not offer: that recipient fails (553 5.6.7, locally), the
# others go without it.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example,jörg@d.example,r3@d.example hi\r\n
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
E: reply RCPT 553 5.6.7 The server does not offer SMTPUTF8, which the addresses need [local]
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: RCPT TO:<r3@d.example>
C: DATA
S: 250 ok
S: 250 ok
S: 250 ok
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply RCPT 250 ok
E: reply DATA 354 go
B: hi\r\n
C: .
C: QUIT
S: 250 queued
S: 221 bye
E: reply BODY 250 queued
E: txn r1@d.example=ACCEPTED/BODY/250 j\xC3\xB6rg@d.example=FAILED/RCPT/553 r3@d.example=ACCEPTED/BODY/250
E: reply QUIT 221 bye
E: close SMTPX_OK
