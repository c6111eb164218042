# SMTPX_LIMIT_UNKNOWN (default 3): a stream of junk ends the session
# before it can reach a command; known commands in between do not reset
# the count.
@log
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: XCLIENT NAME=x
S: 500 5.5.2 Command unrecognized
C: NOOP
S: 250 2.0.0 Ok
C: FOO
S: 500 5.5.2 Command unrecognized
C: BAR
S: 500 5.5.2 Command unrecognized
C: BAZ
L: notice too many unrecognized commands from 192.0.2.7
S: 421 4.7.0 Too many unrecognized commands, closing connection
E: close SMTPX_ERR_LIMIT
