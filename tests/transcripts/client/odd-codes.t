# Replies that make no sense where they come never accept a recipient:
# a 3xx to RCPT and a 250 to DATA defer; only the end of the message
# accepts.  HELO after EHLO forgets the extensions.
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
S: 250 ok
S: 354 odd
S: 250 ok
S: 250 odd data
E: reply MAIL 250 ok
E: reply RCPT 354 odd
E: reply RCPT 250 ok
E: reply DATA 250 odd data
E: reply BODY 554 5.5.0 Not sent: the transaction had already failed [local]
E: txn c@d.example=DEFERRED/RCPT/354 e@d.example=DEFERRED/DATA/250
C: RSET
S: 250 ok
A: helo c.test
C: HELO c.test
S: 250 mx
E: reply HELO 250 mx
X: esmtp 0
X: ext PIPELINING (null)
E: close SMTPX_ERR_CLOSED
