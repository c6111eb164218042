# RFC 3030 4.2: every recipient refused while the chunk was already on the
# wire; the server reads the chunk and refuses it.  The recipients keep
# their own refusals; BODY's one reply is the server's answer to the chunk.
A: start
A: ehlo c.test
A: txn a@b.example c@d.example,e@d.example body\r\n
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250 CHUNKING
E: reply EHLO 250 mx\nPIPELINING\nCHUNKING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<c@d.example>
C: RCPT TO:<e@d.example>
C: BDAT 6 LAST
B: body\r\n
C: QUIT
S: 250 ok
S: 550 5.1.1 no c
S: 450 4.2.1 e busy
S: 554 5.5.1 No valid recipients
S: 221 bye
E: reply MAIL 250 ok
E: reply RCPT 550 5.1.1 no c
E: reply RCPT 450 4.2.1 e busy
E: reply BODY 554 5.5.1 No valid recipients
E: txn c@d.example=FAILED/RCPT/550 e@d.example=DEFERRED/RCPT/450
E: reply QUIT 221 bye
E: close SMTPX_OK
