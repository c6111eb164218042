# SMTPX_POLICY_ENFORCE_SYNC: a client that talks before the greeting (here
# while on_connect makes it wait, as for a block list lookup) gets 554 and
# is disconnected; the pause is abandoned, and answering it finds the
# session closed.
@policy ENFORCE_SYNC 1
@log
A: set connect pause
E: connect 192.0.2.7 41000
X: out 0
C* EHLO early.test\r\n
L: notice synchronization error from 192.0.2.7: 17 octets sent before the greeting
S: 554 5.5.0 Error: SMTP protocol synchronization
E: close SMTPX_ERR_PROTO
A: reply 220 mx.test ESMTP ready
E: reply returned SMTPX_ERR_CLOSED
X: done 1
