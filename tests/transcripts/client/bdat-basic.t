# RFC 3030: the server offers CHUNKING and PIPELINING, so the content goes
# in BDAT: MAIL, RCPT and the chunk in one write, no DATA and no 354.  A
# body in memory that needs no change goes whole, in one LAST chunk.
A: start
A: ehlo c.test
A: txn a@b.example c@d.example line\r\n.dot\r\n
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
C: BDAT 12 LAST
B: line\r\n.dot\r\n
C: QUIT
S: 250 ok
S: 250 ok
S: 250 12 octets received
S: 221 bye
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply BODY 250 12 octets received
E: txn c@d.example=ACCEPTED/BODY/250
E: reply QUIT 221 bye
E: close SMTPX_OK
