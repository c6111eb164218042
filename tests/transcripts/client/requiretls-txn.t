# RFC 8689: a REQUIRETLS message goes only over verified TLS to a server
# that offers REQUIRETLS; here there is no TLS: 550 5.7.30, locally.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example hi\r\n requiretls
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250 REQUIRETLS
E: reply EHLO 250 mx\nPIPELINING\nREQUIRETLS
E: reply MAIL 550 5.7.30 REQUIRETLS support required: verified TLS to a server that offers REQUIRETLS [local]
E: reply RCPT 550 5.7.30 REQUIRETLS support required: verified TLS to a server that offers REQUIRETLS [local]
E: reply DATA 550 5.7.30 REQUIRETLS support required: verified TLS to a server that offers REQUIRETLS [local]
E: reply BODY 550 5.7.30 REQUIRETLS support required: verified TLS to a server that offers REQUIRETLS [local]
E: txn r1@d.example=FAILED/MAIL/550
C: QUIT
S: 221 bye
E: reply QUIT 221 bye
E: close SMTPX_OK
