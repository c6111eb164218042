# MAIL refused: every recipient fails with that reply, whatever the
# pipelined RCPT and DATA got; nothing is sent after DATA.
A: start
A: ehlo c.test
A: txn a@b.example c@d.example,e@d.example hi
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<c@d.example>
C: RCPT TO:<e@d.example>
C: DATA
S: 550 5.7.1 sender rejected
S: 503 5.5.1 need MAIL
S: 503 5.5.1 need MAIL
S: 503 5.5.1 need MAIL
E: reply MAIL 550 5.7.1 sender rejected
E: reply RCPT 503 5.5.1 need MAIL
E: reply RCPT 503 5.5.1 need MAIL
E: reply DATA 503 5.5.1 need MAIL
E: reply BODY 554 5.5.0 Not sent: the transaction had already failed [local]
E: txn c@d.example=FAILED/MAIL/550 e@d.example=FAILED/MAIL/550
C: RSET
E: close SMTPX_ERR_CLOSED
