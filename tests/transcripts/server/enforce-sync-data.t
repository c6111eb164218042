# SMTPX_POLICY_ENFORCE_SYNC: PIPELINING lets MAIL, RCPT and DATA go in one
# write, but DATA ends the group (RFC 2920 3.1): message content sent with
# it, before the 354, is refused with the whole session; the transaction
# ends unfinished and no content reaches the application.
@policy ENFORCE_SYNC 1
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
A: wait
C* MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
S: 554 5.5.0 Error: SMTP protocol synchronization
E: txn_end ABORTED
E: close SMTPX_ERR_PROTO
