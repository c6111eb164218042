# DSN requests (RFC 3461) go where DSN is offered: RET and ENVID on MAIL
# (xtext-encoded), NOTIFY and ORCPT on RCPT; MT-PRIORITY (RFC 6710) too.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example,r2@d.example hi\r\n ret=hdrs envid=id+1=x notify=SF:Orig@d.example priority=-3
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250-DSN
S: 250 MT-PRIORITY
E: reply EHLO 250 mx\nPIPELINING\nDSN\nMT-PRIORITY
C: MAIL FROM:<a@b.example> RET=HDRS ENVID=id+2B1+3Dx MT-PRIORITY=-3
C: RCPT TO:<r1@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Orig@d.example
C: RCPT TO:<r2@d.example>
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
E: txn r1@d.example=ACCEPTED/BODY/250 r2@d.example=ACCEPTED/BODY/250
E: reply QUIT 221 bye
E: close SMTPX_OK
