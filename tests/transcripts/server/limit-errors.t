# Errors before disconnect: the reply that reaches the limit is followed
# by 421 and the session ends; pipelined commands after it are ignored.
@limit ERRORS 3
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n
S: 500 5.5.2 Command unrecognized
S: 500 5.5.2 Command unrecognized
S: 500 5.5.2 Command unrecognized
S: 421 4.7.0 Too many errors, closing connection
E: close SMTPX_ERR_LIMIT
X: want_read 0
