# BDAT errors: the chunk of a refused BDAT is still read (RFC 3030 2), so
# its bytes never become commands; a refused chunk fails the transaction;
# DATA and BDAT do not mix; BINARYMIME needs BDAT.
@ext +BINARYMIME
@limit MSG_SIZE 10
@limit ERRORS 100
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250-CHUNKING
S: 250 BINARYMIME
C+ BDAT 12\r\nQUIT\r\nNOOP\r\n
S: 503 5.5.1 Need MAIL command
C: BDAT x
S: 501 5.5.4 Syntax: BDAT size [LAST]
C: BDAT 1 FIRST
S: 501 5.5.4 Syntax: BDAT size [LAST]
C+ MAIL FROM:<a@b.example> BODY=BINARYMIME\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
E: mail <a@b.example> BODY=BINARYMIME body=3
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
S: 503 5.5.1 BODY=BINARYMIME needs BDAT
A: wait
C+ BDAT 6\r\n123456BDAT 6\r\n789012BDAT 2 LAST\r\nxy
E: data_begin BDAT body=3 rcpts=1
E: data "123456"
S: 250 2.0.0 6 octets received
E: data "7890"
E: txn_end REFUSED
S: 552 5.3.4 Message size exceeds fixed maximum message size
S: 503 5.5.1 Need MAIL command
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 3\r\nabcDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin BDAT body=0 rcpts=1
E: data "abc"
S: 250 2.0.0 3 octets received
S: 503 5.5.1 DATA cannot follow BDAT
A: wait
C+ RCPT TO:<late@d.example>\r\n
S: 503 5.5.1 Message content already began
A: set data_begin 452 4.3.1 Out of disk
C+ RSET\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 3\r\nxyzNOOP\r\n
E: txn_end RESET
S: 250 2.0.0 Ok
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin BDAT body=0 rcpts=1
E: txn_end REFUSED
S: 452 4.3.1 Out of disk
S: 250 2.0.0 Ok
E: close SMTPX_ERR_CLOSED
