# SMTPX_POLICY_ENFORCE_SYNC: after HELO no pipelining is in effect, so a
# client that sends MAIL behind HELO in one write has not waited for the
# reply: 554 and disconnected, HELO not run.
@policy ENFORCE_SYNC 1
@log
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C* HELO c.test\r\nMAIL FROM:<a@b.example>\r\n
L: notice synchronization error from 192.0.2.7: 25 octets sent before a reply it had to wait for
S: 554 5.5.0 Error: SMTP protocol synchronization
E: close SMTPX_ERR_PROTO
