# A connection left idle for an hour is used again: the deadline of the
# new commands runs from when they are written, not from the last activity.
# (The whole-session cap is turned off here to look at command deadlines.)
@timeout SESSION 0
A: start
A: ehlo c.test
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
X: expiry 0
A: time +3600000
A: txn a@b.example c@d.example hi
C: MAIL FROM:<a@b.example>
C: RCPT TO:<c@d.example>
C: DATA
X: expiry +300000
X: done 0
S: 250 ok
S: 250 ok
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply DATA 354 go
B: hi\r\n
C: .
S: 250 ok
E: reply BODY 250 ok
E: txn c@d.example=ACCEPTED/BODY/250
E: close SMTPX_ERR_CLOSED
