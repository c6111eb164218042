/*
 * fuzz_reply - the reply parser (client side) on arbitrary server lines,
 * and the reply writer (server side) on arbitrary text, checked against
 * each other.
 *
 * Part one cuts the input at LF (a CR before it is dropped, as the line
 * framer does) and feeds the lines to smtpx__rparse_line: every result is
 * one of those documented; a complete reply has the code its last line
 * began with, an enhanced code of its class or none, and NUL-terminated
 * text of at most SMTPX__REPLY_MAX octets with no control character but
 * HT and the LF between lines.
 *
 * Part two writes a reply with smtpx__reply_append (the code, enhanced
 * code and line limit from the first octets, the text from the rest) and
 * reads it back: only whole "NNN-" / "NNN " lines of printable ASCII come
 * out, none longer than the limit allows, and the parser gives back the
 * code, the enhanced code and the text as the writer sanitised and cut it.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "proto/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const smtpx_reply *r, const char *last)
{
    size_t len;

    if (r->code < 200 || r->code > 599 ||
        r->code !=
            (last[0] - '0') * 100 + (last[1] - '0') * 10 + (last[2] - '0'))
        abort();
    if ((r->enh[0] | r->enh[1] | r->enh[2]) != 0 &&
        (r->enh[0] != r->code / 100 || r->enh[1] > 999 || r->enh[2] > 999))
        abort();
    len = strlen(r->text);
    if (len > SMTPX__REPLY_MAX)
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)r->text[i];
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
            abort(); /* no control character reaches the application */
    }
}

/* parse_lines - part one */
static void parse_lines(const uint8_t *data, size_t size)
{
    const smtpx_mem *mem = smtpx__mem_default();
    const char *s = (const char *)data, *end = s + size;
    smtpx__rparse p;
    smtpx_reply r;

    memset(&p, 0, sizeof(p));
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        char *line;
        int rc;

        if (len > 0 && s[len - 1] == '\r')
            len--;
        /* An exact copy: reading past the line is caught. */
        line = malloc(len ? len : 1);
        if (line == NULL)
            abort();
        memcpy(line, s, len);
        rc = smtpx__rparse_line(&p, mem, line, len, &r);
        if (rc == 1)
            check_reply(&r, line);
        else if (rc == SMTPX_ERR_PROTO)
            smtpx__rparse_free(&p, mem); /* the client gives up */
        else if (rc != 0)
            abort();
        free(line);
        s = nl ? nl + 1 : end;
    }
    smtpx__rparse_free(&p, mem);
}

/* expected_text - what the parser must give back: the writer's lines
 * (a trailing LF makes no empty line), sanitised and cut to room octets,
 * joined by LF.  Sets *digit when a line starts with a digit (it might
 * then read as an enhanced code). */
static char *expected_text(const char *text, size_t room, int *digit)
{
    size_t n = strlen(text), o = 0, i;
    char *out = malloc(n + 1);
    const char *p = text;

    if (out == NULL)
        abort();
    *digit = 0;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        int last = nl == NULL || nl[1] == '\0';

        if (len > room)
            len = room;
        if (len > 0 && p[0] >= '0' && p[0] <= '9')
            *digit = 1;
        for (i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            out[o++] = (char)(c < 0x20 || c == 0x7f ? ' '
                              : c >= 0x80           ? '?'
                                                    : c);
        }
        if (last)
            break;
        out[o++] = '\n';
        p = nl + 1;
    }
    out[o] = '\0';
    return out;
}

/* round_trip - part two */
static void round_trip(const uint8_t *data, size_t size)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__buf out = SMTPX__BUF_INIT;
    smtpx__rparse p;
    smtpx_reply r;
    uint16_t enh[3];
    size_t max_line, head, pos, i;
    char *text, *want;
    int code, done = 0, digit, has_enh;

    if (size < 6)
        return;
    /* RFC 5321 4.2: 2-5, 0-5, 0-9 (the parser takes nothing else). */
    code = (2 + data[0] % 4) * 100 + data[1] % 6 * 10 + data[1] / 6 % 10;
    enh[0] = data[2] % 6;
    enh[1] = (uint16_t)(data[3] * 5);
    enh[2] = (uint16_t)(data[4] * 5);
    smtpx__reply_fix_enh(code, enh);
    has_enh = (enh[0] | enh[1] | enh[2]) != 0;
    max_line = 8 + data[5] % 200 * 3;
    text = malloc(size - 6 + 1);
    if (text == NULL)
        abort();
    memcpy(text, data + 6, size - 6);
    text[size - 6] = '\0'; /* the text ends at its first NUL */
    if (smtpx__reply_append(&out, mem, code, enh, text, max_line) != 0)
        abort();
    if (text[0] == '\0') {
        free(text);
        text = NULL; /* the standard text is checked below */
    }
    head = 4 + (has_enh ? (size_t)(enh[1] > 99  ? 3
                                   : enh[1] > 9 ? 2
                                                : 1) +
                              (size_t)(enh[2] > 99  ? 3
                                       : enh[2] > 9 ? 2
                                                    : 1) +
                              4
                        : 0);
    want = expected_text(text ? text : smtpx__reply_text(code),
                         max_line > head + 2 ? max_line - head - 2 : 0, &digit);
    memset(&p, 0, sizeof(p));
    pos = 0;
    while (pos < smtpx__buf_used(&out)) {
        const char *line = (const char *)smtpx__buf_head(&out) + pos;
        const char *crlf = memchr(line, '\r', smtpx__buf_used(&out) - pos);
        size_t len;
        int rc;

        if (done || crlf == NULL || crlf[1] != '\n')
            abort(); /* whole lines only, nothing after the last */
        len = (size_t)(crlf - line);
        if (len + 2 > (max_line > head + 2 ? max_line : head + 2))
            abort();
        for (i = 0; i < len; i++)
            if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
                abort();
        rc = smtpx__rparse_line(&p, mem, line, len, &r);
        if (rc < 0 || (rc == 1) != (line[3] == ' '))
            abort();
        if (rc == 1) {
            if (r.code != code)
                abort();
            /* Without an enhanced code, text that starts like one
             * ("2.1.5 ...") reads as one: that is the protocol. */
            if ((has_enh || !digit) && (memcmp(r.enh, enh, sizeof(enh)) != 0 ||
                                        strcmp(r.text, want) != 0))
                abort();
            done = 1;
        }
        pos += len + 2;
    }
    if (!done)
        abort();
    smtpx__rparse_free(&p, mem);
    smtpx__buf_free(&out, mem);
    free(want);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_lines(data, size);
    round_trip(data, size);
    return 0;
}
