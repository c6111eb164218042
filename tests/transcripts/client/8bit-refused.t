# RFC 6152 3: 8-bit content (found in the body, not declared) to a server
# without 8BITMIME is not sent as it is: a local 554 5.6.3.  Declared
# 7bit, the same body goes (the application vouches for it).
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example Gr\xc3\xbc\xc3\x9fe\r\n
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
E: reply MAIL 554 5.6.3 The message has 8-bit content and the server does not offer 8BITMIME [local]
E: reply RCPT 554 5.6.3 The message has 8-bit content and the server does not offer 8BITMIME [local]
E: reply DATA 554 5.6.3 The message has 8-bit content and the server does not offer 8BITMIME [local]
E: reply BODY 554 5.6.3 The message has 8-bit content and the server does not offer 8BITMIME [local]
E: txn r1@d.example=FAILED/MAIL/554
C: QUIT
S: 221 bye
E: reply QUIT 221 bye
E: close SMTPX_OK
