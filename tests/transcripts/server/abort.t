# The driver gives up (I/O error): the session ends at once and its output
# is dropped.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
A: drain off
C: NOOP
S: 250 2.0.0 Ok
X: out 14
A: abort
E: close SMTPX_ERR_IO
X: out 0
X: done 1
