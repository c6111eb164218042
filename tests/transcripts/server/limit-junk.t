# Commands that make no progress are limited (as Postfix's
# smtpd_junk_command_limit).
@limit JUNK 3
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ NOOP\r\nRSET\r\nHELP\r\nNOOP\r\nNOOP\r\n
S: 250 2.0.0 Ok
S: 250 2.0.0 Ok
S: 214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN STARTTLS
S: 421 4.7.0 Too many commands, closing connection
E: close SMTPX_ERR_LIMIT
