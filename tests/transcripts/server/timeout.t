# Deadlines (RFC 5321 4.5.3.2.7): the command deadline runs from the last
# reply, so a command trickling in a byte at a time does not extend it.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
X: expiry +300000
A: time +100000
C+ NO
A: time +100000
C+ O
A: time +99999
X: expiry +1
C+ P
A: time +1
S: 421 4.4.2 Timeout, closing connection
E: close SMTPX_ERR_TIMEOUT
X: want_read 0
X: done 1
