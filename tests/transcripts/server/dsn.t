# RFC 3461 parameters when the application offers DSN.
@ext +DSN
@limit ERRORS 100
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-DSN
S: 250-SMTPUTF8
S: 250 CHUNKING
C: MAIL FROM:<a@b.example> RET=PARTIAL
S: 501 5.5.4 Bad RET parameter
C: MAIL FROM:<a@b.example> ENVID=bad+zz
S: 501 5.5.4 Bad ENVID parameter
C: MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ314159+2B1
E: mail <a@b.example> RET=HDRS ENVID=QQ314159+2B1 ret=2 envid=QQ314159+2B1
S: 250 2.1.0 Ok
C: RCPT TO:<c@d.example> NOTIFY=NEVER,SUCCESS
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<c@d.example> NOTIFY=SUCCESS,SUCCESS
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<c@d.example> NOTIFY=SUCCESS,
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<c@d.example> ORCPT=c@d.example
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<c@d.example> NOTIFY=failure,DELAY ORCPT=rfc822;c+40d.example
E: rcpt <c@d.example> #0 NOTIFY=failure,DELAY ORCPT=rfc822;c+40d.example notify=12 orcpt=rfc822;c+40d.example
S: 250 2.1.5 Ok
C: RCPT TO:<e@d.example> NOTIFY=NEVER
E: rcpt <e@d.example> #1 NOTIFY=NEVER notify=1
S: 250 2.1.5 Ok
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
