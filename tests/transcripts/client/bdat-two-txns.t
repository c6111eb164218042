# RFC 3030 with PIPELINING: two transactions go out back to back, the
# second's MAIL right after the first's LAST chunk, and the replies come
# back together; nothing waits for a reply before sending.
A: start
A: ehlo c.test
A: txn a@b.example c@d.example one\r\n
A: txn a@b.example e@d.example,f@d.example two\n
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250-SIZE 1000000
S: 250 CHUNKING
E: reply EHLO 250 mx\nPIPELINING\nSIZE 1000000\nCHUNKING
C: MAIL FROM:<a@b.example> SIZE=5
C: RCPT TO:<c@d.example>
C: BDAT 5 LAST
B: one\r\n
C: MAIL FROM:<a@b.example> SIZE=5
C: RCPT TO:<e@d.example>
C: RCPT TO:<f@d.example>
C: BDAT 5 LAST
B: two\r\n
C: QUIT
S: 250 ok
S: 250 ok
S: 250 first
S: 250 ok
S: 250 ok
S: 550 5.1.1 no f
S: 250 second
S: 221 bye
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply BODY 250 first
E: txn c@d.example=ACCEPTED/BODY/250
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply RCPT 550 5.1.1 no f
E: reply BODY 250 second
E: txn e@d.example=ACCEPTED/BODY/250 f@d.example=FAILED/RCPT/550
E: reply QUIT 221 bye
E: close SMTPX_OK
