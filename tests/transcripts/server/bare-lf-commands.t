# Command lines: a bare LF ends a line under the default (normalize)
# policy, as in Postfix 3.9; a bare CR or a NUL inside a line is refused.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ HELO c.test\nNOOP\n
E: helo HELO c.test
S: 250 mx.test
S: 250 2.0.0 Ok
C+ NOOP\rMAIL FROM:<a@b.example>\r\n
S: 500 5.5.2 Bare <CR> in command
C+ NO\x00OP\r\n
S: 500 5.5.2 NUL character in command
C+ EHLO bad\x01name\r\n
S: 501 5.5.2 Control character in host name
C+ EHLO tab\tname\r\n
S: 501 5.5.2 Control character in host name
E: close SMTPX_ERR_CLOSED
