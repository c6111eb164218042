/*
 * reply - SMTP reply formatting.
 *
 * Exports smtpx__reply_append(), smtpx__reply_text() and
 * smtpx__reply_fix_enh().  A reply is "code SP [enh SP] text CRLF", with
 * "code-" on every line but the last of a multi-line reply (RFC 5321 4.2.1).
 * Text is restricted to printable ASCII (4.2: textstring), so application
 * text can never carry CR or LF into the protocol stream; each line is cut
 * to the reply line limit (4.5.3.1.5).
 */
#include <stdio.h>
#include <string.h>

#include "reply.h"

const char *smtpx__reply_text(int code)
{
    switch (code) {
    case 211:
        return "System status";
    case 214:
        return "Help";
    case 220:
        return "Service ready";
    case 221:
        return "Bye";
    case 250:
        return "Ok";
    case 251:
        return "User not local; will forward";
    case 252:
        return "Cannot VRFY user, but will accept message and attempt "
               "delivery";
    case 354:
        return "End data with <CR><LF>.<CR><LF>";
    case 421:
        return "Service not available, closing transmission channel";
    case 450:
        return "Requested mail action not taken: mailbox unavailable";
    case 451:
        return "Requested action aborted: local error in processing";
    case 452:
        return "Requested action not taken: insufficient system storage";
    case 455:
        return "Server unable to accommodate parameters";
    case 500:
        return "Syntax error, command unrecognized";
    case 501:
        return "Syntax error in parameters or arguments";
    case 502:
        return "Command not implemented";
    case 503:
        return "Bad sequence of commands";
    case 504:
        return "Command parameter not implemented";
    case 550:
        return "Requested action not taken: mailbox unavailable";
    case 551:
        return "User not local";
    case 552:
        return "Requested mail action aborted: exceeded storage allocation";
    case 553:
        return "Requested action not taken: mailbox name not allowed";
    case 554:
        return "Transaction failed";
    case 555:
        return "MAIL FROM/RCPT TO parameters not recognized or not "
               "implemented";
    default:
        break;
    }
    if (code >= 200 && code < 300)
        return "Ok";
    if (code >= 300 && code < 400)
        return "Go ahead";
    if (code >= 400 && code < 500)
        return "Temporary failure";
    return "Failure";
}

void smtpx__reply_fix_enh(int code, uint16_t enh[3])
{
    if (enh[0] == 0 && enh[1] == 0 && enh[2] == 0)
        return;
    if (enh[0] != code / 100 || enh[0] == 3 || enh[1] > 999 || enh[2] > 999) {
        enh[0] = (uint16_t)(code / 100);
        enh[1] = 0;
        enh[2] = 0;
    }
    /* RFC 3463 has no class 3: a 354 carries no enhanced code. */
    if (enh[0] == 3)
        enh[0] = enh[1] = enh[2] = 0;
}

/* reply_line - append one line, sanitised and cut */
static int reply_line(smtpx__buf *out, const smtpx_mem *mem, int code, int last,
                      const char *enh, size_t enh_len, const char *text,
                      size_t len, size_t max_line)
{
    size_t head = 4 + enh_len, room, i;
    uint8_t *p;

    /* "NNN-" or "NNN ", the enhanced code, the text, CRLF. */
    room = max_line > head + 2 ? max_line - head - 2 : 0;
    if (len > room)
        len = room;
    p = smtpx__buf_reserve(out, mem, head + len + 2);
    if (p == NULL)
        return SMTPX_ERR_NOMEM;
    p[0] = (uint8_t)('0' + code / 100);
    p[1] = (uint8_t)('0' + code / 10 % 10);
    p[2] = (uint8_t)('0' + code % 10);
    p[3] = last ? ' ' : '-';
    memcpy(p + 4, enh, enh_len);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            c = ' ';
        else if (c >= 0x80)
            c = '?';
        p[head + i] = c;
    }
    p[head + len] = '\r';
    p[head + len + 1] = '\n';
    smtpx__buf_commit(out, head + len + 2);
    return 0;
}

int smtpx__reply_append(smtpx__buf *out, const smtpx_mem *mem, int code,
                        const uint16_t *enh, const char *text, size_t max_line)
{
    char e[24];
    size_t elen = 0;
    const char *p, *nl;

    if (enh != NULL && (enh[0] | enh[1] | enh[2]) != 0) {
        int n = snprintf(e, sizeof(e), "%u.%u.%u ", (unsigned)enh[0],
                         (unsigned)enh[1], (unsigned)enh[2]);
        elen = n > 0 ? (size_t)n : 0;
    }
    if (text == NULL || *text == '\0')
        text = smtpx__reply_text(code);
    p = text;
    for (;;) {
        int rc;
        nl = strchr(p, '\n');
        /* A trailing '\n' does not make an empty last line. */
        if (nl != NULL && nl[1] == '\0') {
            rc = reply_line(out, mem, code, 1, e, elen, p, (size_t)(nl - p),
                            max_line);
            return rc;
        }
        rc = reply_line(out, mem, code, nl == NULL, e, elen, p,
                        nl ? (size_t)(nl - p) : strlen(p), max_line);
        if (rc < 0 || nl == NULL)
            return rc;
        p = nl + 1;
    }
}
