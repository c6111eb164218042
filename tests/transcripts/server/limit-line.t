# Command line length (RFC 5321 4.5.3.1.4): a line of exactly the limit,
# CRLF included, is accepted; one octet more is refused once its end has
# been read, and the session goes on.
@limit LINE 64
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
# 62 octets + CRLF = 64
C: NOOP xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
S: 250 2.0.0 Ok
# 63 octets + CRLF = 65
C: NOOP xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
S: 500 5.5.2 Line too long
C+ NOOP xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
C+ xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
C+ xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n
S: 500 5.5.2 Line too long
C: NOOP
S: 250 2.0.0 Ok
E: close SMTPX_ERR_CLOSED
