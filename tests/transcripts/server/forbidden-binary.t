# TLS spoken to the plain port: the ClientHello is binary.
@log
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ \x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\n
L: notice forbidden command from 192.0.2.7 (another protocol?): \x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03
S: 421 4.7.0 Not an SMTP command, closing connection
E: close SMTPX_ERR_PROTO
