# EHLO refused with 502: the client says HELO, reports the HELO's reply for
# its EHLO, and uses no extension (no SIZE, no pipelining).
A: start
A: ehlo client.test
A: txn a@b.example c@d.example hi
S: 220 old.test SMTP
E: reply greeting 220 old.test SMTP
C: EHLO client.test
S: 502 5.5.1 command not implemented
C: HELO client.test
S: 250 old.test
E: reply EHLO 250 old.test
X: esmtp 0
C: MAIL FROM:<a@b.example>
S: 250 ok
E: reply MAIL 250 ok
C: RCPT TO:<c@d.example>
S: 250 ok
E: reply RCPT 250 ok
C: DATA
S: 354 go
E: reply DATA 354 go
B: hi\r\n
C: .
S: 250 ok
E: reply BODY 250 ok
E: txn c@d.example=ACCEPTED/BODY/250
E: close SMTPX_ERR_CLOSED
