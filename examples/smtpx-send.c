/*
 * smtpx-send - send one message by SMTP, for scripts and cron jobs.
 *
 *   smtpx-send [--host HOST] [--port PORT] [-f FROM] [-t] [RCPT ...] < msg
 *   smtpx-send --host smtp.example.org --port 587 --starttls --user me \
 *              --password-file ~/.smtp-pass -t < msg
 *   smtpx-send --subject "Readings" --attach data.csv ops@example.org < text
 *
 * With --subject, --attach or --html the message is built (<libsmtpx/msg.h>):
 * standard input is the UTF-8 text, From is the envelope sender, To the
 * recipients, Date and Message-ID are made; attachments are read from
 * their files as the message is sent, so their size does not matter, and
 * their content type comes from their name (a small built-in table) unless
 * FILE:TYPE says it.
 *
 * TLS: --starttls (RFC 3207) or --tls (implicit, RFC 8314, port 465),
 * verifying the server's certificate and name against the system's CAs
 * (or --ca) unless --tls-level says otherwise.  AUTH: --user with the
 * password from --password-file or $SMTPX_PASSWORD (never on the command
 * line, where other users could read it), or a bearer token from
 * --token-file or $SMTPX_TOKEN; the strongest mechanism both sides have
 * is used unless --auth-mech names one.
 * Sendmail-compatible where it matters: -f sets the envelope sender, -t
 * takes recipients from the To, Cc and Bcc headers (adding them to those on
 * the command line, as Postfix's sendmail does) and removes Bcc, and
 * without -i (or -oi) a line holding only "." ends the message on standard
 * input.  Defaults come from the environment (SMTPX_HOST, SMTPX_PORT,
 * SMTPX_FROM, SMTPX_HELO) or a config file of "key value" lines.
 *
 * The exit status tells success, temporary and permanent failure apart
 * (sysexits.h): 0 every recipient accepted; 75 (EX_TEMPFAIL) some not
 * accepted but none for good (deferred, or unknown after a lost
 * connection); 69 (EX_UNAVAILABLE) at least one refused for good; 64 usage,
 * 65 bad address or message, 66 no input, 68 unknown host, 76 protocol
 * error, 77 (EX_NOPERM) credentials refused, 70 internal error.  Each
 * recipient's result is printed on standard error when not all were
 * accepted (always with -v or --summary).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>
#include <libsmtpx/tls_mbedtls.h>

/* sysexits.h values, spelled out: the header is not in POSIX. */
#define EX_OK_          0
#define EX_USAGE_       64
#define EX_DATAERR_     65
#define EX_NOINPUT_     66
#define EX_NOHOST_      68
#define EX_UNAVAILABLE_ 69
#define EX_SOFTWARE_    70
#define EX_IOERR_       74
#define EX_TEMPFAIL_    75
#define EX_PROTOCOL_    76
#define EX_NOPERM_      77

/* Messages at least this big get a progress bar on a terminal. */
#define PROGRESS_MIN (1024 * 1024)

typedef struct send_opts {
    const char *host, *port, *from, *helo, *file, *config;
    int tls_mode;  /* 0 none, 1 STARTTLS, 2 implicit */
    int tls_level; /* SMTPX_TLS_*, or -1: from the mode */
    const char *ca, *tls_name;
    const char *user, *password_file, *token_file, *auth_mech;
    char **rcpts;
    size_t nrcpts;
    int extract;     /* -t */
    int ignore_dots; /* -i, -oi */
    int verbose, quiet, summary;
    /* Building the message (--subject, --attach, --html). */
    const char *subject, *html;
    char **attach;
    size_t nattach;
    unsigned timeout_s;
    int lmtp;        /* --lmtp */
    int prefer_data; /* --data */
    int binary;      /* --binary */
    int requiretls;  /* --requiretls */
    int priority, has_priority;
    unsigned notify;   /* --dsn-notify */
    int ret;           /* --dsn-ret */
    const char *envid; /* --envid */
    const char *batch; /* --batch DIR */
} send_opts;

/* Strings from the config file live as long as the program. */
static char *cfg_host, *cfg_port, *cfg_from, *cfg_helo, *cfg_user,
    *cfg_password_file, *cfg_ca;

typedef struct msgbuf {
    char *p;
    size_t len, cap;
} msgbuf;

static void die(int code, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "smtpx-send: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void mb_add(msgbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            die(EX_SOFTWARE_, "out of memory");
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* read_message - the whole message, octet for octet (NULs too); without
 * -i a lone "." line ends it */
static void read_message(FILE *fp, int ignore_dots, msgbuf *b)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    while ((n = getline(&line, &cap, fp)) > 0) {
        if (!ignore_dots && (b->len == 0 || b->p[b->len - 1] == '\n') &&
            ((n == 2 && memcmp(line, ".\n", 2) == 0) ||
             (n == 3 && memcmp(line, ".\r\n", 3) == 0)))
            break;
        mb_add(b, line, (size_t)n);
    }
    free(line);
    if (ferror(fp))
        die(EX_IOERR_, "reading the message: %s", strerror(errno));
}

/* ---- recipients from headers (-t) ---------------------------------------- */

static void add_rcpt(send_opts *o, const char *a, size_t n)
{
    char *copy;
    size_t i;

    while (n > 0 && (*a == ' ' || *a == '\t'))
        a++, n--;
    while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
        n--;
    if (n == 0)
        return;
    copy = malloc(n + 1);
    if (copy == NULL)
        die(EX_SOFTWARE_, "out of memory");
    memcpy(copy, a, n);
    copy[n] = '\0';
    for (i = 0; i < o->nrcpts; i++)
        if (strcmp(o->rcpts[i], copy) == 0) {
            free(copy);
            return;
        }
    o->rcpts = realloc(o->rcpts, (o->nrcpts + 1) * sizeof(char *));
    if (o->rcpts == NULL)
        die(EX_SOFTWARE_, "out of memory");
    o->rcpts[o->nrcpts++] = copy;
}

/*
 * parse_addresses - the addr-specs of an RFC 5322 3.4 address-list:
 * "Name <a@b>", "a@b", groups ("team: a@b, c@d;"), quoted strings and
 * comments, which may hold commas and angle brackets.
 */
static void parse_addresses(send_opts *o, const char *s)
{
    const char *start = s, *angle = NULL;
    int quoted = 0, comment = 0;

    for (;; s++) {
        char c = *s;
        if (quoted) {
            if (c == '\\' && s[1] != '\0')
                s++;
            else if (c == '"')
                quoted = 0;
            else if (c == '\0')
                return;
            continue;
        }
        if (comment > 0) {
            if (c == '\\' && s[1] != '\0')
                s++;
            else if (c == '(')
                comment++;
            else if (c == ')')
                comment--;
            else if (c == '\0')
                return;
            continue;
        }
        if (c == '"') {
            quoted = 1;
        } else if (c == '(') {
            comment = 1;
        } else if (c == '<') {
            angle = s + 1;
        } else if (c == '>' && angle != NULL) {
            add_rcpt(o, angle, (size_t)(s - angle));
            angle = NULL;
            start = s + 1;
            while (*start && *start != ',' && *start != ';')
                start++;
            s = start - 1;
        } else if (c == ':' && angle == NULL) {
            start = s + 1; /* a group's name */
        } else if (c == ',' || c == ';' || c == '\0') {
            if (angle == NULL && s > start) {
                /* A bare addr-spec, without its comments. */
                char buf[1024];
                size_t n = 0;
                const char *q;
                int depth = 0;
                for (q = start; q < s && n < sizeof(buf) - 1; q++) {
                    if (*q == '(')
                        depth++;
                    else if (*q == ')' && depth > 0)
                        depth--;
                    else if (depth == 0)
                        buf[n++] = *q;
                }
                if (memchr(buf, '@', n) != NULL)
                    add_rcpt(o, buf, n);
            }
            if (c == '\0')
                return;
            start = s + 1;
            angle = NULL;
        }
    }
}

/*
 * extract_headers - collect To, Cc and Bcc recipients, and drop Bcc
 * header fields (with their continuation lines) from the message.
 */
static void extract_headers(send_opts *o, msgbuf *m)
{
    msgbuf out = {0};
    size_t pos = 0;

    while (pos < m->len) {
        size_t end = pos, next;
        int is_rcpt, is_bcc;
        char *field;

        /* The end of the header block. */
        if (m->p[pos] == '\n' ||
            (m->p[pos] == '\r' && pos + 1 < m->len && m->p[pos + 1] == '\n'))
            break;
        /* A field and its continuation lines (RFC 5322 2.2.3). */
        for (;;) {
            char *nl = memchr(m->p + end, '\n', m->len - end);
            end = nl ? (size_t)(nl - m->p) + 1 : m->len;
            if (end >= m->len || (m->p[end] != ' ' && m->p[end] != '\t'))
                break;
        }
        next = end;
        field = malloc(end - pos + 1);
        if (field == NULL)
            die(EX_SOFTWARE_, "out of memory");
        {
            /* Unfold. */
            size_t i, n = 0;
            for (i = pos; i < end; i++)
                if (m->p[i] != '\r' && m->p[i] != '\n')
                    field[n++] = m->p[i];
            field[n] = '\0';
        }
        is_bcc = strncasecmp(field, "Bcc:", 4) == 0;
        is_rcpt = is_bcc || strncasecmp(field, "To:", 3) == 0 ||
                  strncasecmp(field, "Cc:", 3) == 0;
        if (is_rcpt)
            parse_addresses(o, strchr(field, ':') + 1);
        free(field);
        if (!is_bcc)
            mb_add(&out, m->p + pos, end - pos);
        pos = next;
    }
    mb_add(&out, m->p + pos, m->len - pos);
    free(m->p);
    *m = out;
}

/* ---- configuration --------------------------------------------------------
 */

static void read_config(const char *path, int must)
{
    FILE *fp = fopen(path, "r");
    char line[1024], key[64], value[960];

    if (fp == NULL) {
        if (must)
            die(EX_NOINPUT_, "config %s: %s", path, strerror(errno));
        return;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (line[0] == '#' || sscanf(line, "%63s %959s", key, value) != 2)
            continue;
        if (strcmp(key, "host") == 0)
            cfg_host = strdup(value);
        else if (strcmp(key, "port") == 0)
            cfg_port = strdup(value);
        else if (strcmp(key, "from") == 0)
            cfg_from = strdup(value);
        else if (strcmp(key, "helo") == 0)
            cfg_helo = strdup(value);
        else if (strcmp(key, "user") == 0)
            cfg_user = strdup(value);
        else if (strcmp(key, "password-file") == 0)
            cfg_password_file = strdup(value);
        else if (strcmp(key, "ca") == 0)
            cfg_ca = strdup(value);
    }
    fclose(fp);
}

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: smtpx-send [options] [RCPT ...] < message\n"
        "  --host HOST       server (env SMTPX_HOST; default localhost)\n"
        "  --port PORT       port (env SMTPX_PORT; default 25)\n"
        "  -f FROM           envelope sender (env SMTPX_FROM; default "
        "user@host)\n"
        "  -t                also take recipients from To/Cc/Bcc; drop "
        "Bcc\n"
        "  -i, -oi           a line with only \".\" does not end the "
        "input\n"
        "  --file PATH       read the message from PATH\n"
        "  --helo NAME       name to greet with (env SMTPX_HELO)\n"
        "  --timeout SECONDS the whole delivery (default 300; 0: only "
        "the\n"
        "                    RFC 5321 timeouts of each command)\n"
        "  --config FILE     read defaults from FILE\n"
        "  --starttls        STARTTLS (RFC 3207); fail if not offered\n"
        "  --tls             TLS from the first byte (port 465)\n"
        "  --tls-level LEVEL none|may|encrypt|verify (default verify "
        "with\n"
        "                    --starttls or --tls: certificate and name)\n"
        "  --ca FILE         trusted CAs (default: the system's)\n"
        "  --tls-name NAME   the name the certificate must carry "
        "(default\n"
        "                    the host)\n"
        "  --user NAME       AUTH as NAME; the password comes from\n"
        "  --password-file FILE  (first line) or $SMTPX_PASSWORD\n"
        "  --token-file FILE bearer token (XOAUTH2, OAUTHBEARER), or\n"
        "                    $SMTPX_TOKEN\n"
        "  --auth-mech LIST  mechanisms to allow (e.g. SCRAM-SHA-256,PLAIN)"
        "\n"
        "  --lmtp            speak LMTP (RFC 2033); HOST may be a socket "
        "path\n"
        "  --data            DATA even where CHUNKING (BDAT) is offered\n"
        "  --binary          the message is binary MIME: sent byte for "
        "byte\n"
        "                    (BDAT, BODY=BINARYMIME, RFC 3030; implies "
        "-i)\n"
        "  --dsn-notify LIST NEVER, or SUCCESS,FAILURE,DELAY (RFC 3461)\n"
        "  --dsn-ret full|hdrs  what a bounce carries\n"
        "  --envid ID        envelope identifier the reports quote\n"
        "  --requiretls      only over verified TLS to a REQUIRETLS "
        "server\n"
        "  --priority N      MT-PRIORITY, -9 to 9 (RFC 6710)\n"
        "  --batch DIR       send every file in DIR on one connection, one\n"
        "                    transaction each, to the same recipients\n"
        "  --subject TEXT    build the message: standard input is the "
        "UTF-8\n"
        "                    text; From, To, Date and Message-ID come "
        "from\n"
        "                    the envelope\n"
        "  --attach FILE[:TYPE]  attach a file (type from its name "
        "unless\n"
        "                    given); may be repeated\n"
        "  --html FILE       an HTML version of the text\n"
        "  -v                print the SMTP dialogue and the summary\n"
        "  --summary         always print each recipient's result\n"
        "  -q                print nothing but errors\n"
        "  -h, --help, --version\n"
        "exit: 0 delivered, 75 try later, 69 refused, 64 usage, 68 no "
        "host,\n      77 credentials refused\n");
}

/* parse_uint - a decimal number up to max, nothing else */
static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    unsigned long v = 0;
    size_t i;

    if (s == NULL || s[0] == '\0' || strlen(s) > 10)
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return 0;
    *out = (unsigned)v;
    return 1;
}

static void parse_args(int argc, char **argv, send_opts *o)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'P'},
        {"file", required_argument, NULL, 'F'},
        {"helo", required_argument, NULL, 'E'},
        {"timeout", required_argument, NULL, 'T'},
        {"config", required_argument, NULL, 'C'},
        {"summary", no_argument, NULL, 'S'},
        {"starttls", no_argument, NULL, 's'},
        {"tls", no_argument, NULL, 'L'},
        {"tls-level", required_argument, NULL, 'l'},
        {"ca", required_argument, NULL, 'A'},
        {"tls-name", required_argument, NULL, 'N'},
        {"user", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'p'},
        {"token-file", required_argument, NULL, 'k'},
        {"auth-mech", required_argument, NULL, 'm'},
        {"lmtp", no_argument, NULL, 'M'},
        {"data", no_argument, NULL, 'D'},
        {"binary", no_argument, NULL, 'b'},
        {"dsn-notify", required_argument, NULL, 'n'},
        {"dsn-ret", required_argument, NULL, 'r'},
        {"envid", required_argument, NULL, 'e'},
        {"requiretls", no_argument, NULL, 'R'},
        {"priority", required_argument, NULL, 'y'},
        {"batch", required_argument, NULL, 'B'},
        {"subject", required_argument, NULL, 'j'},
        {"attach", required_argument, NULL, 'a'},
        {"html", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    const char *conf = NULL;
    int c, i;

    memset(o, 0, sizeof(o[0]));
    o->timeout_s = 300;
    o->tls_level = -1;
    /* sendmail's -oi is one option; getopt would read it as -o i. */
    static char dash_i[] = "-i";
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "-oi") == 0)
            argv[i] = dash_i;
    while ((c = getopt_long(argc, argv, "f:tivqhH:P:", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->from = optarg;
            break;
        case 't':
            o->extract = 1;
            break;
        case 'i':
            o->ignore_dots = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'H':
            o->host = optarg;
            break;
        case 'P':
            o->port = optarg;
            break;
        case 'F':
            o->file = optarg;
            break;
        case 'E':
            o->helo = optarg;
            break;
        case 'C':
            conf = optarg;
            break;
        case 'S':
            o->summary = 1;
            break;
        case 's':
            o->tls_mode = 1;
            break;
        case 'L':
            o->tls_mode = 2;
            break;
        case 'l':
            if (strcmp(optarg, "none") == 0)
                o->tls_level = SMTPX_TLS_NONE;
            else if (strcmp(optarg, "may") == 0)
                o->tls_level = SMTPX_TLS_MAY;
            else if (strcmp(optarg, "encrypt") == 0)
                o->tls_level = SMTPX_TLS_ENCRYPT;
            else if (strcmp(optarg, "verify") == 0)
                o->tls_level = SMTPX_TLS_VERIFY;
            else
                die(EX_USAGE_, "bad --tls-level %s", optarg);
            break;
        case 'A':
            o->ca = optarg;
            break;
        case 'N':
            o->tls_name = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'p':
            o->password_file = optarg;
            break;
        case 'k':
            o->token_file = optarg;
            break;
        case 'm':
            o->auth_mech = optarg;
            break;
        case 'M':
            o->lmtp = 1;
            break;
        case 'D':
            o->prefer_data = 1;
            break;
        case 'b':
            o->binary = 1;
            o->ignore_dots = 1;
            break;
        case 'n': {
            char list[64], *w, *save = NULL;
            snprintf(list, sizeof(list), "%s", optarg);
            for (w = strtok_r(list, ",", &save); w != NULL;
                 w = strtok_r(NULL, ",", &save)) {
                if (strcasecmp(w, "NEVER") == 0)
                    o->notify |= SMTPX_DSN_NOTIFY_NEVER;
                else if (strcasecmp(w, "SUCCESS") == 0)
                    o->notify |= SMTPX_DSN_NOTIFY_SUCCESS;
                else if (strcasecmp(w, "FAILURE") == 0)
                    o->notify |= SMTPX_DSN_NOTIFY_FAILURE;
                else if (strcasecmp(w, "DELAY") == 0)
                    o->notify |= SMTPX_DSN_NOTIFY_DELAY;
                else
                    die(EX_USAGE_, "bad --dsn-notify %s", optarg);
            }
            break;
        }
        case 'r':
            if (strcasecmp(optarg, "full") == 0)
                o->ret = SMTPX_DSN_RET_FULL;
            else if (strcasecmp(optarg, "hdrs") == 0)
                o->ret = SMTPX_DSN_RET_HDRS;
            else
                die(EX_USAGE_, "bad --dsn-ret %s (full or hdrs)", optarg);
            break;
        case 'e':
            o->envid = optarg;
            break;
        case 'R':
            o->requiretls = 1;
            break;
        case 'y': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < -9 || v > 9)
                die(EX_USAGE_, "bad --priority %s (-9 to 9)", optarg);
            o->priority = (int)v;
            o->has_priority = 1;
            break;
        }
        case 'B':
            o->batch = optarg;
            break;
        case 'j':
            o->subject = optarg;
            break;
        case 'a':
            o->attach = realloc(o->attach, (o->nattach + 1) * sizeof(char *));
            if (o->attach == NULL)
                die(EX_SOFTWARE_, "out of memory");
            o->attach[o->nattach++] = optarg;
            break;
        case 'x':
            o->html = optarg;
            break;
        case 'T':
            if (!parse_uint(optarg, 86400, &o->timeout_s))
                die(EX_USAGE_, "bad --timeout %s (seconds, 0 to 86400)",
                    optarg);
            break;
        case 'h':
            usage(stdout);
            exit(EX_OK_);
        case 'V':
            printf("smtpx-send (libsmtpx %s)\n", smtpx_version_string());
            exit(EX_OK_);
        default:
            usage(stderr);
            exit(EX_USAGE_);
        }
    }
    for (i = optind; i < argc; i++)
        add_rcpt(o, argv[i], strlen(argv[i]));
    /* Defaults: the command line, then the environment, then a file. */
    if (conf == NULL)
        conf = getenv("SMTPX_SEND_CONFIG");
    if (conf != NULL) {
        read_config(conf, 1);
    } else {
        char path[1024];
        const char *home = getenv("HOME");
        if (home != NULL) {
            snprintf(path, sizeof(path), "%s/.config/smtpx-send.conf", home);
            read_config(path, 0);
        }
        if (cfg_host == NULL && cfg_port == NULL && cfg_from == NULL)
            read_config("/etc/smtpx-send.conf", 0);
    }
#define DEFAULT(field, env, cfgv, dflt)                                        \
    if (o->field == NULL)                                                      \
        o->field = getenv(env);                                                \
    if (o->field == NULL)                                                      \
        o->field = cfgv;                                                       \
    if (o->field == NULL)                                                      \
        o->field = dflt;
    DEFAULT(host, "SMTPX_HOST", cfg_host, "localhost")
    DEFAULT(port, "SMTPX_PORT", cfg_port, NULL)
    DEFAULT(helo, "SMTPX_HELO", cfg_helo, NULL)
    DEFAULT(from, "SMTPX_FROM", cfg_from, NULL)
#undef DEFAULT
    if (o->port == NULL)
        o->port = o->tls_mode == 2 ? "465" : "25";
    {
        unsigned p;
        if (!parse_uint(o->port, 65535, &p) || p == 0)
            die(EX_USAGE_, "bad port %s (1 to 65535)", o->port);
    }
    if (o->user == NULL)
        o->user = cfg_user;
    if (o->password_file == NULL)
        o->password_file = cfg_password_file;
    if (o->ca == NULL)
        o->ca = cfg_ca;
    if (o->tls_level < 0)
        o->tls_level = o->tls_mode != 0 ? SMTPX_TLS_VERIFY : SMTPX_TLS_NONE;
    else if (o->tls_mode == 0 && o->tls_level > SMTPX_TLS_NONE)
        o->tls_mode = 1; /* --tls-level alone means STARTTLS */
    if (o->tls_mode == 2 && o->tls_level == SMTPX_TLS_NONE)
        die(EX_USAGE_, "--tls needs a TLS level other than none");
}

/* read_secret - the first line of a file (without its line end); the
 * buffer is wiped by the caller */
static void read_secret(const char *path, char *buf, size_t size)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    if (fp == NULL)
        die(EX_NOINPUT_, "%s: %s", path, strerror(errno));
    if (fgets(buf, (int)size, fp) == NULL)
        buf[0] = '\0';
    fclose(fp);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n == 0)
        die(EX_NOINPUT_, "%s: empty", path);
}

/* wipe - clear a secret in a way the compiler keeps */
static void wipe(char *p, size_t n)
{
    volatile char *v = p;

    while (n-- > 0)
        *v++ = 0;
}

/* ---- building -------------------------------------------------------------
 */

static int is_type(const char *t)
{
    const char *slash = strchr(t, '/');
    return slash != NULL && slash != t && slash[1] != '\0' &&
           strchr(slash + 1, '/') == NULL;
}

/*
 * build_message - the message from the options: the text read from
 * standard input, an HTML alternative, the attachments read from their
 * files while the message is sent (so a file of any size is never held
 * in memory)
 */
static smtpx_msg *build_message(const send_opts *o, const msgbuf *text,
                                int *fds)
{
    smtpx_msg *m;
    smtpx_msg_part p;
    size_t i;
    int rc;

    if (smtpx_msg_new(&m, 0, NULL) != 0)
        die(EX_SOFTWARE_, "out of memory");
    if ((rc = smtpx_msg_add_addr(m, "From", NULL, o->from)) != 0)
        die(EX_DATAERR_, "bad sender address for From: %s", o->from);
    for (i = 0; i < o->nrcpts; i++)
        if (smtpx_msg_add_addr(m, "To", NULL, o->rcpts[i]) != 0)
            die(EX_DATAERR_, "bad recipient address for To: %s", o->rcpts[i]);
    if (o->subject != NULL && smtpx_msg_set_subject(m, o->subject) != 0)
        die(EX_DATAERR_, "bad subject (control characters, or not UTF-8)");
    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.kind = SMTPX_PART_TEXT;
    p.data = text->p != NULL ? text->p : "";
    p.len = text->len;
    if (smtpx_msg_add_part(m, &p) != 0)
        die(EX_DATAERR_, "bad text");
    if (o->html != NULL) {
        int fd = open(o->html, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die(EX_NOINPUT_, "%s: %s", o->html, strerror(errno));
        memset(&p, 0, sizeof(p));
        p.size = sizeof(p);
        p.kind = SMTPX_PART_HTML;
        if (smtpx_msg_add_fd(m, &p, fd) != 0)
            die(EX_SOFTWARE_, "cannot add %s", o->html);
        fds[o->nattach] = fd;
    }
    for (i = 0; i < o->nattach; i++) {
        char *path = o->attach[i], *colon = strrchr(path, ':');
        const char *type = NULL;
        struct stat st;
        int fd;

        /* FILE:TYPE, unless FILE itself has that name. */
        if (colon != NULL && is_type(colon + 1) && stat(path, &st) != 0) {
            *colon = '\0';
            type = colon + 1;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die(EX_NOINPUT_, "%s: %s", path, strerror(errno));
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
            die(EX_NOINPUT_, "%s: not a regular file", path);
        memset(&p, 0, sizeof(p));
        p.size = sizeof(p);
        p.kind = SMTPX_PART_ATTACHMENT;
        p.type = type;
        p.filename = path;
        if (smtpx_msg_add_fd(m, &p, fd) != 0)
            die(EX_USAGE_, "bad attachment %s%s%s", path, type ? ":" : "",
                type ? type : "");
        fds[i] = fd;
    }
    return m;
}

/* ---- sending --------------------------------------------------------------
 */

typedef struct progress {
    const char *p;
    size_t len, pos;
    int show;
    int last_pct;
} progress;

static smtpx_ssize read_progress(void *ctx, uint8_t *buf, size_t len)
{
    progress *pr = ctx;
    size_t n = pr->len - pr->pos;

    if (n > len)
        n = len;
    memcpy(buf, pr->p + pr->pos, n);
    pr->pos += n;
    if (pr->show) {
        int pct = (int)((double)pr->pos * 100.0 / (double)pr->len);
        if (pct != pr->last_pct) {
            fprintf(stderr, "\rsmtpx-send: sending %3d%% (%zu of %zu KiB)", pct,
                    pr->pos / 1024, pr->len / 1024);
            pr->last_pct = pct;
        }
        if (n == 0 || pr->pos == pr->len)
            fputc('\n', stderr);
    }
    return (smtpx_ssize)n;
}

static void on_trace(smtpx_client *c, int dir, const char *line, size_t len,
                     void *user_data)
{
    char shown[SMTPX_ESCAPE_SIZE(1000)];

    (void)c;
    (void)user_data;
    /* The server's lines may hold anything: shown escaped. */
    fprintf(stderr, "%s %s\n", dir == SMTPX_TRACE_OUT ? ">>>" : "<<<",
            smtpx_escape(shown, sizeof(shown), line, len));
}

static void on_log(smtpx_client *c, int level, const char *msg, void *user_data)
{
    const send_opts *o = user_data;
    char why[200] = "";
    const char *code;

    (void)c;
    if (o->quiet || (level > SMTPX_LOG_WARNING && !o->verbose))
        return;
    /* A TLS failure carries mbedTLS's code: say what it means. */
    code = strstr(msg, "TLS implementation code ");
    if (code != NULL)
        smtpx_mbedtls_strerror(atoi(code + 24), why, sizeof(why));
    fprintf(stderr, "smtpx-send: %s%s%s\n", msg, why[0] ? ": " : "", why);
}

static int exit_for(int status)
{
    switch (status) {
    case SMTPX_ERR_RESOLVE:
        return EX_NOHOST_;
    case SMTPX_ERR_PROTO:
        return EX_PROTOCOL_;
    case SMTPX_ERR_NOMEM:
    case SMTPX_ERR_INVALID_ARGUMENT:
        return EX_SOFTWARE_;
    case SMTPX_ERR_AUTH:
        return EX_NOPERM_;
    default:
        return EX_TEMPFAIL_;
    }
}

/* has_8bit - an octet with the high bit set */
static int has_8bit(const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char)p[i] >= 0x80)
            return 1;
    return 0;
}

/* make_txn - a transaction of the options' envelope for a message: in
 * memory, through the progress reader, or built (built) */
static smtpx_txn *make_txn(const smtpx_config *cfg, const send_opts *o,
                           const char *body, size_t len, progress *pr,
                           smtpx_msg *built)
{
    smtpx_txn *t;
    size_t i;
    int rc;

    if (smtpx_txn_new(&t, cfg, o->from) != 0)
        die(EX_DATAERR_, "bad sender address: %s", o->from);
    for (i = 0; i < o->nrcpts; i++) {
        if (smtpx_txn_add_rcpt(t, o->rcpts[i], NULL) != 0)
            die(EX_DATAERR_, "bad recipient address: %s", o->rcpts[i]);
        if ((o->notify != 0 || o->envid != NULL) &&
            smtpx_txn_set_rcpt_dsn(t, i, o->notify, o->rcpts[i]) != 0)
            die(EX_USAGE_, "bad --dsn-notify");
    }
    if ((o->ret != 0 || o->envid != NULL) &&
        smtpx_txn_set_dsn(t, o->ret, o->envid) != 0)
        die(EX_USAGE_,
            "bad --envid %s (printable ASCII, up to 100 octets "
            "once encoded)",
            o->envid);
    if (o->requiretls)
        smtpx_txn_set_requiretls(t, 1);
    if (o->has_priority)
        smtpx_txn_set_priority(t, o->priority);
    if (o->prefer_data)
        smtpx_txn_set_prefer_data(t, 1);
    if (built != NULL) {
        /* Streamed: attachments are read as the message goes out. */
        int type = smtpx_msg_body_type(built);
        if (type < 0)
            die(EX_SOFTWARE_, "cannot build the message: %s",
                smtpx_strerror(type));
        rc = smtpx_txn_set_body_reader(t, smtpx_msg_read, built, 0);
        if (rc == 0 && type != SMTPX_BODY_7BIT)
            rc = smtpx_txn_set_body_type(t, type, 0);
    } else if (pr != NULL && pr->show) {
        rc = smtpx_txn_set_body_reader(t, read_progress, pr, len);
        /* A reader's content is not looked at: say what it is. */
        if (rc == 0 && !o->binary && has_8bit(body, len))
            rc = smtpx_txn_set_body_type(t, SMTPX_BODY_8BITMIME, 0);
    } else {
        rc = smtpx_txn_set_body(t, body, len);
    }
    /* Binary content goes byte for byte, or not at all (RFC 3030). */
    if (rc == 0 && o->binary)
        rc = smtpx_txn_set_body_type(t, SMTPX_BODY_BINARYMIME, 0);
    if (rc != 0)
        die(EX_SOFTWARE_, "cannot set the message");
    /* 8-bit content is found by the library and declared as such where
     * the server offers 8BITMIME (it is not sent where it does not). */
    return t;
}

/* report - each recipient's result (name: the message's file, or NULL);
 * returns the exit status it calls for */
static int report(const send_opts *o, const char *name, smtpx_txn *t,
                  int status)
{
    size_t i, counts[SMTPX_RCPT_STATE_COUNT];
    int code = EX_OK_;

    smtpx_txn_counts(t, counts);
    if (counts[SMTPX_RCPT_FAILED] > 0)
        code = EX_UNAVAILABLE_;
    else if (counts[SMTPX_RCPT_ACCEPTED] != smtpx_txn_rcpt_count(t))
        code = status != 0 && counts[SMTPX_RCPT_UNKNOWN] == 0 ? exit_for(status)
                                                              : EX_TEMPFAIL_;
    if (o->quiet || (code == EX_OK_ && !o->verbose && !o->summary))
        return code;
    for (i = 0; i < smtpx_txn_rcpt_count(t); i++) {
        const smtpx_rcpt_status *st = smtpx_txn_rcpt(t, i);
        const char *text = st->reply.text ? st->reply.text : "";
        const char *nl = strchr(text, '\n');
        fprintf(stderr, "smtpx-send: %s%s<%s>: %s (%d", name ? name : "",
                name ? ": " : "", st->addr, smtpx_rcpt_state_name(st->state),
                st->reply.code);
        if (st->reply.enh[0])
            fprintf(stderr, " %u.%u.%u", st->reply.enh[0], st->reply.enh[1],
                    st->reply.enh[2]);
        fprintf(stderr, " %.*s)\n", nl ? (int)(nl - text) : (int)strlen(text),
                text);
    }
    return code;
}

/* The files of a --batch directory, in name order. */
typedef struct batch {
    char **names;
    msgbuf *msgs;
    smtpx_txn **txns;
    size_t n;
} batch;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void read_batch(const char *dir, batch *b)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t cap = 0, i;

    if (d == NULL)
        die(EX_NOINPUT_, "--batch %s: %s", dir, strerror(errno));
    memset(b, 0, sizeof(*b));
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (b->n == cap) {
            cap = cap ? cap * 2 : 16;
            b->names = realloc(b->names, cap * sizeof(*b->names));
            if (b->names == NULL)
                die(EX_SOFTWARE_, "out of memory");
        }
        b->names[b->n] = strdup(path);
        if (b->names[b->n] == NULL)
            die(EX_SOFTWARE_, "out of memory");
        b->n++;
    }
    closedir(d);
    if (b->n == 0)
        die(EX_NOINPUT_, "--batch %s: no files", dir);
    qsort(b->names, b->n, sizeof(*b->names), cmp_names);
    b->msgs = calloc(b->n, sizeof(*b->msgs));
    b->txns = calloc(b->n, sizeof(*b->txns));
    if (b->msgs == NULL || b->txns == NULL)
        die(EX_SOFTWARE_, "out of memory");
    for (i = 0; i < b->n; i++) {
        FILE *fp = fopen(b->names[i], "rb");
        if (fp == NULL)
            die(EX_NOINPUT_, "%s: %s", b->names[i], strerror(errno));
        read_message(fp, 1, &b->msgs[i]);
        fclose(fp);
    }
}

int main(int argc, char **argv)
{
    send_opts o;
    msgbuf msg = {0};
    smtpx_config *cfg;
    smtpx_txn *t = NULL;
    smtpx_client_callbacks cbs;
    smtpx_sendmail_opts so;
    smtpx_auth_creds cr;
    smtpx_mbedtls *tls = NULL;
    progress pr;
    batch bt;
    char from[512], secret[4096] = "";
    size_t i;
    int status, rc, code, building, *fds = NULL;
    smtpx_msg *built = NULL;

    parse_args(argc, argv, &o);
    building = o.subject != NULL || o.nattach > 0 || o.html != NULL;
    if (building && o.extract)
        die(EX_USAGE_, "-t reads recipients from a message; with --subject, "
                       "--attach or --html give them on the command line");
    if (building && o.binary)
        die(EX_USAGE_, "--binary sends a message as it is; --subject, "
                       "--attach and --html build one in 7 or 8 bits");
    if (o.from == NULL) {
        /* USER@this host's fully qualified name, as sendmail does. */
        const char *user = getenv("USER");
        char host[256];
        if (smtpx_posix_hostname(host, sizeof(host)) < 0) {
            /* No fully qualified name to be found: the bare one, said. */
            if (gethostname(host, sizeof(host)) < 0)
                strcpy(host, "localhost");
            host[sizeof(host) - 1] = '\0';
            if (!o.quiet)
                fprintf(stderr,
                        "smtpx-send: warning: this host has no fully "
                        "qualified name; sending as %s@%s (give -f)\n",
                        user ? user : "root", host);
        }
        snprintf(from, sizeof(from), "%s@%s", user ? user : "root", host);
        o.from = from;
    }
    if (o.batch != NULL) {
        if (o.extract || o.file != NULL)
            die(EX_USAGE_, "--batch goes with neither -t nor --file");
    } else if (o.file != NULL) {
        FILE *fp = fopen(o.file, "rb");
        if (fp == NULL)
            die(EX_NOINPUT_, "%s: %s", o.file, strerror(errno));
        read_message(fp, 1, &msg);
        fclose(fp);
    } else {
        read_message(stdin, o.ignore_dots, &msg);
    }
    if (o.extract && !building)
        extract_headers(&o, &msg);
    if (o.nrcpts == 0)
        die(EX_USAGE_, "no recipients (give them, or use -t)");
    if (building) {
        fds = malloc((o.nattach + 1) * sizeof(int));
        if (fds == NULL)
            die(EX_SOFTWARE_, "out of memory");
        for (i = 0; i <= o.nattach; i++)
            fds[i] = -1;
        built = build_message(&o, &msg, fds);
    }

    if (smtpx_config_new(&cfg,
                         o.lmtp ? SMTPX_ROLE_LMTP_CLIENT : SMTPX_ROLE_CLIENT,
                         NULL) != 0 ||
        smtpx_config_freeze(cfg) != 0)
        die(EX_SOFTWARE_, "cannot set up");
    memset(&cr, 0, sizeof(cr));
    cr.size = sizeof(cr);
    if (o.user != NULL) {
        const char *env_pw = getenv("SMTPX_PASSWORD");
        const char *env_tok = getenv("SMTPX_TOKEN");
        cr.user = o.user;
        if (o.token_file != NULL) {
            read_secret(o.token_file, secret, sizeof(secret));
            cr.token = secret;
        } else if (o.password_file != NULL) {
            read_secret(o.password_file, secret, sizeof(secret));
            cr.password = secret;
        } else if (env_pw != NULL && env_pw[0] != '\0') {
            cr.password = env_pw;
        } else if (env_tok != NULL && env_tok[0] != '\0') {
            cr.token = env_tok;
        } else {
            die(EX_USAGE_, "--user needs --password-file, --token-file, "
                           "$SMTPX_PASSWORD or $SMTPX_TOKEN");
        }
        if (o.auth_mech != NULL) {
            char list[256], *m, *save = NULL;
            snprintf(list, sizeof(list), "%s", o.auth_mech);
            for (m = strtok_r(list, ",", &save); m != NULL;
                 m = strtok_r(NULL, ",", &save)) {
                unsigned bit = smtpx_sasl_from_name(m);
                if (bit == 0)
                    die(EX_USAGE_, "unknown --auth-mech %s", m);
                cr.mechs |= bit;
            }
        }
        if (o.tls_level < SMTPX_TLS_ENCRYPT && !o.quiet)
            fprintf(stderr, "smtpx-send: warning: credentials without "
                            "required TLS\n");
    }
    if (o.tls_level > SMTPX_TLS_NONE) {
        if (smtpx_mbedtls_new(&tls, 0) != 0)
            die(EX_SOFTWARE_, "cannot set up TLS");
        if (o.ca != NULL && (rc = smtpx_mbedtls_add_ca_file(tls, o.ca)) != 0)
            die(EX_NOINPUT_, "--ca %s: %s", o.ca, smtpx_strerror(rc));
    }
    memset(&pr, 0, sizeof(pr));
    pr.p = msg.p ? msg.p : "";
    pr.len = msg.len;
    pr.last_pct = -1;
    pr.show = !o.quiet && msg.len >= PROGRESS_MIN && isatty(2);
    if (o.batch != NULL) {
        if (building)
            die(EX_USAGE_, "--batch sends files as they are: no --subject, "
                           "--attach or --html");
        read_batch(o.batch, &bt);
        for (i = 0; i < bt.n; i++)
            bt.txns[i] = make_txn(cfg, &o, bt.msgs[i].p ? bt.msgs[i].p : "",
                                  bt.msgs[i].len, NULL, NULL);
    } else {
        t = make_txn(cfg, &o, pr.p, pr.len, &pr, built);
    }

    memset(&cbs, 0, sizeof(cbs));
    if (o.verbose)
        cbs.on_trace = on_trace;
    cbs.on_log = on_log;
    memset(&so, 0, sizeof(so));
    so.size = sizeof(so);
    so.host = o.host;
    so.port = o.port;
    so.helo = o.helo;
    so.timeout_ms = (int)o.timeout_s * 1000;
    so.connect_timeout_ms =
        o.timeout_s > 0 && o.timeout_s < 30 ? (int)o.timeout_s * 1000 : 30000;
    so.cbs = &cbs;
    so.cbs_size = sizeof(cbs);
    so.user_data = &o;
    if (tls != NULL) {
        so.tls = smtpx_mbedtls_ops();
        so.tls_cfg = tls;
        so.tls_level = o.tls_level;
        so.implicit_tls = o.tls_mode == 2;
        so.tls_name = o.tls_name;
    }
    if (cr.user != NULL)
        so.auth = &cr;
    if (o.batch != NULL)
        status = smtpx_posix_sendmail_batch(cfg, &so, bt.txns, bt.n);
    else
        status = smtpx_posix_sendmail(cfg, &so, t);
    wipe(secret, sizeof(secret));

    if (status != 0 && status != SMTPX_ERR_CLOSED && !o.quiet)
        fprintf(stderr, "smtpx-send: %s:%s: %s\n", o.host, o.port,
                smtpx_strerror(status));
    code = EX_OK_;
    if (o.batch != NULL) {
        /* The worst of the messages' outcomes decides. */
        for (i = 0; i < bt.n; i++) {
            int c = report(&o, bt.names[i], bt.txns[i], status);
            if (c != EX_OK_ && (code == EX_OK_ || c == EX_UNAVAILABLE_))
                code = c;
            smtpx_txn_free(bt.txns[i]);
            free(bt.msgs[i].p);
            free(bt.names[i]);
        }
        free(bt.txns);
        free(bt.msgs);
        free(bt.names);
    } else {
        code = report(&o, NULL, t, status);
        smtpx_txn_free(t);
    }
    smtpx_msg_free(built);
    for (i = 0; fds != NULL && i <= o.nattach; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(o.attach);
    smtpx_config_free(cfg);
    smtpx_mbedtls_free(tls);
    for (i = 0; i < o.nrcpts; i++)
        free(o.rcpts[i]);
    free(o.rcpts);
    free(msg.p);
    return code;
}
