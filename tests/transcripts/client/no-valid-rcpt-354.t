# A server that says 354 although no recipient was accepted gets no
# content: only the final dot, then RSET.
A: start
A: ehlo c.test
A: txn a@b.example x@d.example secret\n
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<x@d.example>
C: DATA
S: 250 ok
S: 550 5.1.1 no x
S: 354 go anyway
E: reply MAIL 250 ok
E: reply RCPT 550 5.1.1 no x
E: reply DATA 354 go anyway
C: .
C: RSET
S: 554 5.5.1 no valid recipients
S: 250 ok
E: reply BODY 554 5.5.1 no valid recipients
E: txn x@d.example=FAILED/RCPT/550
E: close SMTPX_ERR_CLOSED
