# 8-bit content found in the body goes with BODY=8BITMIME where offered.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example Gr\xc3\xbc\xc3\x9fe\r\n
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250 8BITMIME
E: reply EHLO 250 mx\nPIPELINING\n8BITMIME
C: MAIL FROM:<a@b.example> BODY=8BITMIME
C: RCPT TO:<r1@d.example>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply DATA 354 go
B: Gr\xc3\xbc\xc3\x9fe\r\n
C: .
C: QUIT
S: 250 queued
S: 221 bye
E: reply BODY 250 queued
E: txn r1@d.example=ACCEPTED/BODY/250
E: reply QUIT 221 bye
E: close SMTPX_OK
