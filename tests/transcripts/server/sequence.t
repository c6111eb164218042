# Commands out of sequence (503), syntax errors (500/501), obsolete and
# unknown commands, and the replies of RSET, NOOP and HELP.
@limit ERRORS 100
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: RCPT TO:<a@b.example>
S: 503 5.5.1 Need MAIL command
C: DATA
S: 503 5.5.1 Need MAIL command
A: wait
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: MAIL FROM:<a@b.example>
E: mail <a@b.example>
S: 250 2.1.0 Ok
C: MAIL FROM:<a@b.example>
S: 503 5.5.1 Nested MAIL command
C: RSET now
S: 501 5.5.4 Syntax: RSET
C: RSET
E: txn_end RESET
S: 250 2.0.0 Ok
C: NOOP
S: 250 2.0.0 Ok
C: noop with words
S: 250 2.0.0 Ok
C: HELP
S: 214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN STARTTLS
C: DATA now
S: 501 5.5.4 Syntax: DATA
A: wait
C:
S: 500 5.5.2 Command unrecognized
C: XYZZY
S: 500 5.5.2 Command unrecognized
C: SEND FROM:<a@b.example>
S: 502 5.5.1 Command not implemented
C: SOML FROM:<a@b.example>
S: 502 5.5.1 Command not implemented
C: SAML FROM:<a@b.example>
S: 502 5.5.1 Command not implemented
C: TURN
S: 502 5.5.1 Command not implemented
C: ETRN example.org
S: 502 5.5.1 Command not implemented
C: AUTH PLAIN
S: 502 5.5.1 Command not implemented
C: MAIL TO:<a@b.example>
S: 501 5.5.4 Syntax: MAIL FROM:<address>
C: MAIL FROM:<a@b.example>
E: mail <a@b.example>
S: 250 2.1.0 Ok
C: RCPT FROM:<a@b.example>
S: 501 5.5.4 Syntax: RCPT TO:<address>
C: mail from:<lower@b.example>
S: 503 5.5.1 Nested MAIL command
C:    NOOP
S: 500 5.5.2 Command unrecognized
C: NOOP   
S: 250 2.0.0 Ok
C: quit
S: 221 2.0.0 mx.test closing connection
E: txn_end ABORTED
E: close SMTPX_OK
