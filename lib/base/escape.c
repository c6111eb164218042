/*
 * escape - untrusted octets made safe to show in a log line or a trace.
 *
 * Exports smtpx__escape(), and smtpx_escape() of <libsmtpx/common.h>, the
 * same for applications.  A peer controls much of what a session logs
 * (a malformed reply, a VRFY argument, an AUTH identity): written as it
 * came, a CR or LF would forge log lines and an escape sequence would
 * drive the terminal of whoever reads the log.  Invariant: the output
 * holds only printable ASCII and is never longer than size - 1.
 */
#include <string.h>

#include "base/escape.h"

static size_t escape_width(unsigned char c)
{
    return c == '\\' ? 2 : c >= 0x20 && c < 0x7f ? 1 : 4;
}

const char *smtpx__escape(char *out, size_t size, const void *in, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = in;
    size_t i, n = 0, total = 0, room;

    if (size < 4) {
        if (size > 0)
            out[0] = '\0';
        return out;
    }
    for (i = 0; i < len && total < size; i++)
        total += escape_width(p[i]);
    /* All of it, or as much as leaves room for "...". */
    room = total <= size - 1 ? size - 1 : size - 4;
    for (i = 0; i < len; i++) {
        unsigned char c = p[i];
        size_t need = escape_width(c);

        if (n + need > room) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        if (need == 1) {
            out[n++] = (char)c;
        } else if (need == 2) {
            out[n++] = '\\';
            out[n++] = '\\';
        } else {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return out;
}

const char *smtpx_escape(char *out, size_t size, const void *in, size_t len)
{
    if (out == NULL)
        return NULL;
    if (in == NULL)
        len = 0;
    return smtpx__escape(out, size, in != NULL ? in : "", len);
}
