# A large transcript (more than 2 KiB of client input): replayed whole,
# by octet and in random pieces from 64 seeds.  Two pipelined messages
# with stuffed dots, bare LFs and lone dots after bare LFs.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO big.test
E: helo EHLO big.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
C+ ..dot line 00 with a stuffed dot\r\n
C+ plain line 01 of the message, long enough to matter\r\n
C+ plain line 02 of the message, long enough to matter\r\n
C+ plain line 03 of the message, long enough to matter\r\n
C+ plain line 04 of the message, long enough to matter\r\n
C+ ..dot line 05 with a stuffed dot\r\n
C+ plain line 06 of the message, long enough to matter\r\n
C+ bare LF line 07\n
C+ plain line 08 of the message, long enough to matter\r\n
C+ plain line 09 of the message, long enough to matter\r\n
C+ ..dot line 10 with a stuffed dot\r\n
C+ .\n
C+ plain line 12 of the message, long enough to matter\r\n
C+ plain line 13 of the message, long enough to matter\r\n
C+ bare LF line 14\n
C+ ..dot line 15 with a stuffed dot\r\n
C+ plain line 16 of the message, long enough to matter\r\n
C+ plain line 17 of the message, long enough to matter\r\n
C+ plain line 18 of the message, long enough to matter\r\n
C+ plain line 19 of the message, long enough to matter\r\n
C+ ..dot line 20 with a stuffed dot\r\n
C+ bare LF line 21\n
C+ .\n
C+ plain line 23 of the message, long enough to matter\r\n
C+ plain line 24 of the message, long enough to matter\r\n
C+ ..dot line 25 with a stuffed dot\r\n
C+ plain line 26 of the message, long enough to matter\r\n
C+ plain line 27 of the message, long enough to matter\r\n
C+ bare LF line 28\n
C+ plain line 29 of the message, long enough to matter\r\n
C+ ..dot line 30 with a stuffed dot\r\n
C+ plain line 31 of the message, long enough to matter\r\n
C+ plain line 32 of the message, long enough to matter\r\n
C+ .\n
C+ plain line 34 of the message, long enough to matter\r\n
C+ ..dot line 35 with a stuffed dot\r\n
C+ plain line 36 of the message, long enough to matter\r\n
C+ plain line 37 of the message, long enough to matter\r\n
C+ plain line 38 of the message, long enough to matter\r\n
C+ plain line 39 of the message, long enough to matter\r\n
C+ ..dot line 40 with a stuffed dot\r\n
C+ plain line 41 of the message, long enough to matter\r\n
C+ bare LF line 42\n
C+ plain line 43 of the message, long enough to matter\r\n
C+ .\n
C+ ..dot line 45 with a stuffed dot\r\n
C+ plain line 46 of the message, long enough to matter\r\n
C+ plain line 47 of the message, long enough to matter\r\n
C+ plain line 48 of the message, long enough to matter\r\n
C+ bare LF line 49\n
C+ ..dot line 50 with a stuffed dot\r\n
C+ plain line 51 of the message, long enough to matter\r\n
C+ plain line 52 of the message, long enough to matter\r\n
C+ plain line 53 of the message, long enough to matter\r\n
C+ plain line 54 of the message, long enough to matter\r\n
C+ ..dot line 55 with a stuffed dot\r\n
C+ bare LF line 56\n
C+ plain line 57 of the message, long enough to matter\r\n
C+ plain line 58 of the message, long enough to matter\r\n
C+ plain line 59 of the message, long enough to matter\r\n
C+ .\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
E: data ".dot line 00 with a stuffed dot\r\nplain line 01 of the message, long enough to matter\r\nplain line 02 of the message, long enough to matter\r\nplain line 03 of the message, long enough to matter\r\nplain line 04 of the message, long enough to matter\r\n.dot line 05 with a stuffed dot\r\nplain line 06 of the message, long enough to matter\r\nbare LF line 07\r\nplain line 08 of the message, long enough to matter\r\nplain line 09 of the message, long enough to matter\r\n.dot line 10 with a stuffed dot\r\n.\r\nplain line 12 of the message, long enough to matter\r\nplain line 13 of the message, long enough to matter\r\nbare LF line 14\r\n.dot line 15 with a stuffed dot\r\nplain line 16 of the message, long enough to matter\r\nplain line 17 of the message, long enough to matter\r\nplain line 18 of the message, long enough to matter\r\nplain line 19 of the message, long enough to matter\r\n.dot line 20 with a stuffed dot\r\nbare LF line 21\r\n.\r\nplain line 23 of the message, long enough to matter\r\nplain line 24 of the message, long enough to matter\r\n.dot line 25 with a stuffed dot\r\nplain line 26 of the message, long enough to matter\r\nplain line 27 of the message, long enough to matter\r\nbare LF line 28\r\nplain line 29 of the message, long enough to matter\r\n.dot line 30 with a stuffed dot\r\nplain line 31 of the message, long enough to matter\r\nplain line 32 of the message, long enough to matter\r\n.\r\nplain line 34 of the message, long enough to matter\r\n.dot line 35 with a stuffed dot\r\nplain line 36 of the message, long enough to matter\r\nplain line 37 of the message, long enough to matter\r\nplain line 38 of the message, long enough to matter\r\nplain line 39 of the message, long enough to matter\r\n.dot line 40 with a stuffed dot\r\nplain line 41 of the message, long enough to matter\r\nbare LF line 42\r\nplain line 43 of the message, long enough to matter\r\n.\r\n.dot line 45 with a stuffed dot\r\nplain line 46 of the message, long enough to matter\r\nplain line 47 of the message, long enough to matter\r\nplain line 48 of the message, long enough to matter\r\nbare LF line 49\r\n.dot line 50 with a stuffed dot\r\nplain line 51 of the message, long enough to matter\r\nplain line 52 of the message, long enough to matter\r\nplain line 53 of the message, long enough to matter\r\nplain line 54 of the message, long enough to matter\r\n.dot line 55 with a stuffed dot\r\nbare LF line 56\r\nplain line 57 of the message, long enough to matter\r\nplain line 58 of the message, long enough to matter\r\nplain line 59 of the message, long enough to matter\r\n"
E: data_end size=2488
S: 250 2.0.0 Ok
E: txn_end DONE
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
C+ ..dot line 00 with a stuffed dot\r\n
C+ plain line 01 of the message, long enough to matter\r\n
C+ plain line 02 of the message, long enough to matter\r\n
C+ plain line 03 of the message, long enough to matter\r\n
C+ plain line 04 of the message, long enough to matter\r\n
C+ ..dot line 05 with a stuffed dot\r\n
C+ plain line 06 of the message, long enough to matter\r\n
C+ bare LF line 07\n
C+ plain line 08 of the message, long enough to matter\r\n
C+ plain line 09 of the message, long enough to matter\r\n
C+ ..dot line 10 with a stuffed dot\r\n
C+ .\n
C+ plain line 12 of the message, long enough to matter\r\n
C+ plain line 13 of the message, long enough to matter\r\n
C+ bare LF line 14\n
C+ ..dot line 15 with a stuffed dot\r\n
C+ plain line 16 of the message, long enough to matter\r\n
C+ plain line 17 of the message, long enough to matter\r\n
C+ plain line 18 of the message, long enough to matter\r\n
C+ plain line 19 of the message, long enough to matter\r\n
C+ ..dot line 20 with a stuffed dot\r\n
C+ bare LF line 21\n
C+ .\n
C+ plain line 23 of the message, long enough to matter\r\n
C+ plain line 24 of the message, long enough to matter\r\n
C+ ..dot line 25 with a stuffed dot\r\n
C+ plain line 26 of the message, long enough to matter\r\n
C+ plain line 27 of the message, long enough to matter\r\n
C+ bare LF line 28\n
C+ plain line 29 of the message, long enough to matter\r\n
C+ ..dot line 30 with a stuffed dot\r\n
C+ plain line 31 of the message, long enough to matter\r\n
C+ plain line 32 of the message, long enough to matter\r\n
C+ .\n
C+ plain line 34 of the message, long enough to matter\r\n
C+ ..dot line 35 with a stuffed dot\r\n
C+ plain line 36 of the message, long enough to matter\r\n
C+ plain line 37 of the message, long enough to matter\r\n
C+ plain line 38 of the message, long enough to matter\r\n
C+ plain line 39 of the message, long enough to matter\r\n
C+ ..dot line 40 with a stuffed dot\r\n
C+ plain line 41 of the message, long enough to matter\r\n
C+ bare LF line 42\n
C+ plain line 43 of the message, long enough to matter\r\n
C+ .\n
C+ ..dot line 45 with a stuffed dot\r\n
C+ plain line 46 of the message, long enough to matter\r\n
C+ plain line 47 of the message, long enough to matter\r\n
C+ plain line 48 of the message, long enough to matter\r\n
C+ bare LF line 49\n
C+ ..dot line 50 with a stuffed dot\r\n
C+ plain line 51 of the message, long enough to matter\r\n
C+ plain line 52 of the message, long enough to matter\r\n
C+ plain line 53 of the message, long enough to matter\r\n
C+ plain line 54 of the message, long enough to matter\r\n
C+ ..dot line 55 with a stuffed dot\r\n
C+ bare LF line 56\n
C+ plain line 57 of the message, long enough to matter\r\n
C+ plain line 58 of the message, long enough to matter\r\n
C+ plain line 59 of the message, long enough to matter\r\n
C+ .\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
E: data ".dot line 00 with a stuffed dot\r\nplain line 01 of the message, long enough to matter\r\nplain line 02 of the message, long enough to matter\r\nplain line 03 of the message, long enough to matter\r\nplain line 04 of the message, long enough to matter\r\n.dot line 05 with a stuffed dot\r\nplain line 06 of the message, long enough to matter\r\nbare LF line 07\r\nplain line 08 of the message, long enough to matter\r\nplain line 09 of the message, long enough to matter\r\n.dot line 10 with a stuffed dot\r\n.\r\nplain line 12 of the message, long enough to matter\r\nplain line 13 of the message, long enough to matter\r\nbare LF line 14\r\n.dot line 15 with a stuffed dot\r\nplain line 16 of the message, long enough to matter\r\nplain line 17 of the message, long enough to matter\r\nplain line 18 of the message, long enough to matter\r\nplain line 19 of the message, long enough to matter\r\n.dot line 20 with a stuffed dot\r\nbare LF line 21\r\n.\r\nplain line 23 of the message, long enough to matter\r\nplain line 24 of the message, long enough to matter\r\n.dot line 25 with a stuffed dot\r\nplain line 26 of the message, long enough to matter\r\nplain line 27 of the message, long enough to matter\r\nbare LF line 28\r\nplain line 29 of the message, long enough to matter\r\n.dot line 30 with a stuffed dot\r\nplain line 31 of the message, long enough to matter\r\nplain line 32 of the message, long enough to matter\r\n.\r\nplain line 34 of the message, long enough to matter\r\n.dot line 35 with a stuffed dot\r\nplain line 36 of the message, long enough to matter\r\nplain line 37 of the message, long enough to matter\r\nplain line 38 of the message, long enough to matter\r\nplain line 39 of the message, long enough to matter\r\n.dot line 40 with a stuffed dot\r\nplain line 41 of the message, long enough to matter\r\nbare LF line 42\r\nplain line 43 of the message, long enough to matter\r\n.\r\n.dot line 45 with a stuffed dot\r\nplain line 46 of the message, long enough to matter\r\nplain line 47 of the message, long enough to matter\r\nplain line 48 of the message, long enough to matter\r\nbare LF line 49\r\n.dot line 50 with a stuffed dot\r\nplain line 51 of the message, long enough to matter\r\nplain line 52 of the message, long enough to matter\r\nplain line 53 of the message, long enough to matter\r\nplain line 54 of the message, long enough to matter\r\n.dot line 55 with a stuffed dot\r\nbare LF line 56\r\nplain line 57 of the message, long enough to matter\r\nplain line 58 of the message, long enough to matter\r\nplain line 59 of the message, long enough to matter\r\n"
E: data_end size=2488
S: 250 2.0.0 Ok
E: txn_end DONE
C: QUIT
S: 221 2.0.0 mx.test closing connection
E: close SMTPX_OK
X: msgs 2
