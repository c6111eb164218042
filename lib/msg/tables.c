/*
 * msg_tables - the names of the msg layer's tables.
 *
 * Exports smtpx_cte_name(), smtpx_msg_limit_name(), smtpx_msg_limit_text(),
 * smtpx_msg_limit_default(), smtpx_msg_defect_name(),
 * smtpx_msg_defect_text() and smtpx_msg_type_for_name(), each generated
 * from its X-macro table (SMTPX_CTE_MAP, SMTPX_MSG_LIMIT_MAP and
 * SMTPX_MSG_DEFECT_MAP in <libsmtpx/msg.h>, MSG_TYPE_MAP here), and
 * smtpx__cte_from_name() of "msg/tables.h".
 */
#include <string.h>

#include <libsmtpx/msg.h>

#include "msg/tables.h"

/* File name extensions and their content types (IANA media types): what
 * people attach from a sensor, an office, a camera or a build.  The
 * extension in lower case. */
#define MSG_TYPE_MAP(XX)                                                       \
    XX("txt", "text/plain")                                                    \
    XX("log", "text/plain")                                                    \
    XX("csv", "text/csv")                                                      \
    XX("tsv", "text/tab-separated-values")                                     \
    XX("htm", "text/html")                                                     \
    XX("html", "text/html")                                                    \
    XX("css", "text/css")                                                      \
    XX("md", "text/markdown")                                                  \
    XX("ics", "text/calendar")                                                 \
    XX("vcf", "text/vcard")                                                    \
    XX("xml", "application/xml")                                               \
    XX("json", "application/json")                                             \
    XX("js", "text/javascript")                                                \
    XX("pdf", "application/pdf")                                               \
    XX("zip", "application/zip")                                               \
    XX("gz", "application/gzip")                                               \
    XX("tgz", "application/gzip")                                              \
    XX("tar", "application/x-tar")                                             \
    XX("xz", "application/x-xz")                                               \
    XX("zst", "application/zstd")                                              \
    XX("7z", "application/x-7z-compressed")                                    \
    XX("doc", "application/msword")                                            \
    XX("docx", "application/vnd.openxmlformats-officedocument."                \
               "wordprocessingml.document")                                    \
    XX("xls", "application/vnd.ms-excel")                                      \
    XX("xlsx", "application/vnd.openxmlformats-officedocument."                \
               "spreadsheetml.sheet")                                          \
    XX("ppt", "application/vnd.ms-powerpoint")                                 \
    XX("pptx", "application/vnd.openxmlformats-officedocument."                \
               "presentationml.presentation")                                  \
    XX("odt", "application/vnd.oasis.opendocument.text")                       \
    XX("ods", "application/vnd.oasis.opendocument.spreadsheet")                \
    XX("rtf", "application/rtf")                                               \
    XX("jpg", "image/jpeg")                                                    \
    XX("jpeg", "image/jpeg")                                                   \
    XX("png", "image/png")                                                     \
    XX("gif", "image/gif")                                                     \
    XX("webp", "image/webp")                                                   \
    XX("svg", "image/svg+xml")                                                 \
    XX("bmp", "image/bmp")                                                     \
    XX("tif", "image/tiff")                                                    \
    XX("tiff", "image/tiff")                                                   \
    XX("heic", "image/heic")                                                   \
    XX("ico", "image/vnd.microsoft.icon")                                      \
    XX("mp3", "audio/mpeg")                                                    \
    XX("ogg", "audio/ogg")                                                     \
    XX("wav", "audio/wav")                                                     \
    XX("flac", "audio/flac")                                                   \
    XX("mp4", "video/mp4")                                                     \
    XX("webm", "video/webm")                                                   \
    XX("mov", "video/quicktime")                                               \
    XX("bin", "application/octet-stream")

static const struct {
    const char *ext;
    const char *type;
} msg_types[] = {
#define MSG_TYPE_ROW(ext, type) {ext, type},
    MSG_TYPE_MAP(MSG_TYPE_ROW)
#undef MSG_TYPE_ROW
};

static int tables_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        if (x != *b)
            return 0;
    }
    return *a == *b;
}

const char *smtpx_msg_type_for_name(const char *name)
{
    const char *dot, *slash;
    size_t i;

    if (name == NULL)
        return "application/octet-stream";
    slash = strrchr(name, '/');
    if (slash != NULL)
        name = slash + 1;
    dot = strrchr(name, '.');
    if (dot == NULL || dot == name)
        return "application/octet-stream";
    for (i = 0; i < sizeof(msg_types) / sizeof(msg_types[0]); i++)
        if (tables_ieq(dot + 1, msg_types[i].ext))
            return msg_types[i].type;
    return "application/octet-stream";
}

const char *smtpx_cte_name(int cte)
{
    switch (cte) {
#define TABLES_CTE_NAME(name, value, text)                                     \
    case value:                                                                \
        return text;
        SMTPX_CTE_MAP(TABLES_CTE_NAME)
#undef TABLES_CTE_NAME
    default:
        return NULL;
    }
}

int smtpx__cte_from_name(const char *s, size_t n)
{
    /* Trimmed, any case (RFC 2045 6.1: the values are not case
     * sensitive). */
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
#define TABLES_CTE_MATCH(name, value, text)                                    \
    if (n == sizeof(text) - 1) {                                               \
        size_t i;                                                              \
        for (i = 0; i < n; i++) {                                              \
            char c =                                                           \
                s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];  \
            if (c != text[i])                                                  \
                break;                                                         \
        }                                                                      \
        if (i == n)                                                            \
            return value;                                                      \
    }
    SMTPX_CTE_MAP(TABLES_CTE_MATCH)
#undef TABLES_CTE_MATCH
    return 0;
}

const char *smtpx_msg_limit_name(int limit)
{
    switch (limit) {
#define TABLES_LIMIT_NAME(name, value, dflt, text)                             \
    case value:                                                                \
        return #name;
        SMTPX_MSG_LIMIT_MAP(TABLES_LIMIT_NAME)
#undef TABLES_LIMIT_NAME
    default:
        return NULL;
    }
}

const char *smtpx_msg_limit_text(int limit)
{
    switch (limit) {
#define TABLES_LIMIT_TEXT(name, value, dflt, text)                             \
    case value:                                                                \
        return text;
        SMTPX_MSG_LIMIT_MAP(TABLES_LIMIT_TEXT)
#undef TABLES_LIMIT_TEXT
    default:
        return NULL;
    }
}

size_t smtpx_msg_limit_default(int limit)
{
    switch (limit) {
#define TABLES_LIMIT_DEFAULT(name, value, dflt, text)                          \
    case value:                                                                \
        return dflt;
        SMTPX_MSG_LIMIT_MAP(TABLES_LIMIT_DEFAULT)
#undef TABLES_LIMIT_DEFAULT
    default:
        return 0;
    }
}

const char *smtpx_msg_defect_name(int defect)
{
    switch (defect) {
#define TABLES_DEFECT_NAME(name, value, text)                                  \
    case value:                                                                \
        return #name;
        SMTPX_MSG_DEFECT_MAP(TABLES_DEFECT_NAME)
#undef TABLES_DEFECT_NAME
    default:
        return NULL;
    }
}

const char *smtpx_msg_defect_text(int defect)
{
    switch (defect) {
#define TABLES_DEFECT_TEXT(name, value, text)                                  \
    case value:                                                                \
        return text;
        SMTPX_MSG_DEFECT_MAP(TABLES_DEFECT_TEXT)
#undef TABLES_DEFECT_TEXT
    default:
        return NULL;
    }
}
