# SMTPX_POLICY_ENFORCE_SYNC: a client that sends MAIL behind EHLO has not
# seen whether PIPELINING is offered: 554 and disconnected.  Without the
# policy it is served, as in bdat.t.
@policy ENFORCE_SYNC 1
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C* EHLO c.test\r\nMAIL FROM:<a@b.example>\r\n
S: 554 5.5.0 Error: SMTP protocol synchronization
E: close SMTPX_ERR_PROTO
