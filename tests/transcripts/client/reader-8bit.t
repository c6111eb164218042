# A body from a pull source in 7-octet pieces, declared 8BITMIME (offered),
# with a line over the text line limit broken as Postfix does.
@limit TEXT_LINE 64
A: start
A: ehlo c.test
A: txn a@b.example c@d.example Gr\xC3\xBC\xC3\x9Fe\n.dot\n01234567890123456789012345678901234567890123456789012345678901234567890\nend 8bit reader
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250 8BITMIME
E: reply EHLO 250 mx\nPIPELINING\n8BITMIME
C: MAIL FROM:<a@b.example> BODY=8BITMIME
C: RCPT TO:<c@d.example>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply DATA 354 go
B: Gr\xC3\xBC\xC3\x9Fe\r\n..dot\r\n01234567890123456789012345678901234567890123456789012345678901\r\n 234567890\r\nend\r\n
C: .
S: 250 ok
E: reply BODY 250 ok
E: txn c@d.example=ACCEPTED/BODY/250 long=1
E: close SMTPX_ERR_CLOSED
