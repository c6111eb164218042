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

#include "proto/reply.h"

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

/* ---- parsing replies ----------------------------------------------------- */

static int rp_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* rp_enh - length of an enhanced code "c.sss.ddd " at the text's start
 * whose class is cls, or 0 (RFC 3463 2) */
static size_t rp_enh(const char *t, size_t len, int cls, uint16_t enh[3])
{
    size_t i = 0, part, digits;
    unsigned v[3];

    for (part = 0; part < 3; part++) {
        v[part] = 0;
        for (digits = 0; i < len && rp_digit(t[i]) && digits < 3; digits++)
            v[part] = v[part] * 10 + (unsigned)(t[i++] - '0');
        if (digits == 0 || (part == 0 && digits != 1))
            return 0;
        if (part < 2) {
            if (i >= len || t[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && t[i] != ' ')
        return 0;
    /* RFC 3463 2: the class is 2, 4 or 5 and matches the reply code's;
     * a 354 has none, whatever its text starts with. */
    if ((int)v[0] != cls || cls == 3)
        return 0;
    enh[0] = (uint16_t)v[0];
    enh[1] = (uint16_t)v[1];
    enh[2] = (uint16_t)v[2];
    return i < len ? i + 1 : i;
}

int smtpx__rparse_line(smtpx__rparse *p, const smtpx_mem *mem, const char *line,
                       size_t len, smtpx_reply *out)
{
    const char *text;
    size_t tlen, skip;
    uint16_t enh[3];
    int code, last;

    /* Reply-line = *( Reply-code "-" [ textstring ] CRLF )
     *              Reply-code [ SP textstring ] CRLF   (RFC 5321 4.2) */
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
        line[1] > '5' || !rp_digit(line[2]))
        return SMTPX_ERR_PROTO;
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return SMTPX_ERR_PROTO;
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    last = len == 3 || line[3] == ' ';
    if (p->code != 0 && code != p->code)
        return SMTPX_ERR_PROTO; /* RFC 5321 4.2.1: one code per reply */
    text = len > 4 ? line + 4 : "";
    tlen = len > 4 ? len - 4 : 0;
    skip = rp_enh(text, tlen, code / 100, enh);
    if (skip > 0) {
        if (p->lines == 0)
            memcpy(p->enh, enh, sizeof(enh));
        text += skip;
        tlen -= skip;
    }
    if (smtpx__buf_used(&p->text) + tlen + 2 > SMTPX__REPLY_MAX)
        return SMTPX_ERR_PROTO;
    if (p->lines > 0 && smtpx__buf_append(&p->text, mem, "\n", 1) < 0)
        return SMTPX_ERR_NOMEM;
    if (tlen > 0) {
        /* RFC 5321 4.2: textstring is HT and printable octets.  A hostile
         * server's CR, NUL or escape sequence would otherwise reach the
         * application's logs and cut the text at a NUL; 8-bit octets
         * (RFC 6531 replies) are kept. */
        uint8_t *dst = smtpx__buf_reserve(&p->text, mem, tlen);
        size_t i;
        if (dst == NULL)
            return SMTPX_ERR_NOMEM;
        for (i = 0; i < tlen; i++) {
            uint8_t c = (uint8_t)text[i];
            dst[i] = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : c;
        }
        smtpx__buf_commit(&p->text, tlen);
    }
    p->code = code;
    p->lines++;
    if (!last)
        return 0;
    if (smtpx__buf_reserve(&p->text, mem, 1) == NULL)
        return SMTPX_ERR_NOMEM;
    p->text.data[p->text.len] = '\0';
    out->code = code;
    memcpy(out->enh, p->enh, sizeof(out->enh));
    out->text = (const char *)smtpx__buf_head(&p->text);
    /* The next reply starts afresh; the text stays until then. */
    p->code = 0;
    p->lines = 0;
    memset(p->enh, 0, sizeof(p->enh));
    p->text.len = p->text.off;
    return 1;
}

void smtpx__rparse_free(smtpx__rparse *p, const smtpx_mem *mem)
{
    smtpx__buf_free(&p->text, mem);
    memset(p, 0, sizeof(*p));
}
