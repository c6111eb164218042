# Line limits in an exchange (RFC 4954 4): AUTH with an initial response
# may be longer than other commands (up to AUTH_LINE), and a response
# over AUTH_LINE ends the exchange with 500 5.5.6.  A pause in on_auth
# holds the input; smtpx_server_reply answers it.
@auth
@user tim tanstaaftanstaaf
@policy AUTH_CLEARTEXT 1
@sasl PLAIN LOGIN
@limit LINE 64
@limit AUTH_LINE 120
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-AUTH PLAIN LOGIN
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: NOOP aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
S: 500 5.5.2 Line too long
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: dGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGltdGlt
S: 500 5.5.6 Authentication exchange line is too long
X: state command
A: set auth pause
C: AUTH PLAIN eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4AHRpbQB0YW5zdGFhZnRhbnN0YWFm
C: NOOP
E: auth PLAIN authzid=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx user=tim secret=good
X: want_read 0
A: reply 235 2.7.0 Fine
S: 235 2.7.0 Fine
S: 250 2.0.0 Ok
X: auth xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx tim PLAIN
E: close SMTPX_ERR_CLOSED
