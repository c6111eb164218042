# Every recipient refused: the pipelined DATA is refused too, no content
# is sent, and the transaction is reset.
A: start
A: ehlo c.test
A: txn a@b.example x@d.example,y@d.example hi
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<x@d.example>
C: RCPT TO:<y@d.example>
C: DATA
S: 250 ok
S: 550 5.1.1 no x
S: 550 5.1.1 no y
S: 554 5.5.1 No valid recipients
E: reply MAIL 250 ok
E: reply RCPT 550 5.1.1 no x
E: reply RCPT 550 5.1.1 no y
E: reply DATA 554 5.5.1 No valid recipients
E: reply BODY 554 5.5.0 Not sent: the transaction had already failed [local]
E: txn x@d.example=FAILED/RCPT/550 y@d.example=FAILED/RCPT/550
C: RSET
S: 250 ok
A: quit
C: QUIT
S: 221 bye
E: reply QUIT 221 bye
E: close SMTPX_OK
