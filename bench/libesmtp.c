/*
 * libesmtp - N copies of a message over one session with libESMTP, the
 * other C SMTP client library (Debian's libesmtp-dev), for the round-trip
 * benchmark.
 *
 *   libesmtp HOST:PORT N MESSAGE_FILE
 *
 * libESMTP queues every message on the session and pipelines MAIL, RCPT
 * and DATA when the server offers PIPELINING (and uses BDAT where it
 * offers CHUNKING).  Exits 1 unless every message was accepted.
 */
#include <stddef.h>

#include <libesmtp.h>
#include <stdio.h>
#include <stdlib.h>

static int failed;

static void check(smtp_message_t m, void *arg)
{
    const smtp_status_t *st = smtp_message_transfer_status(m);

    (void)arg;
    if (st == NULL || st->code < 200 || st->code > 299)
        failed++;
}

int main(int argc, char **argv)
{
    smtp_session_t s;
    FILE *f;
    char *msg;
    long n, i, size;

    if (argc != 4) {
        fprintf(stderr, "usage: libesmtp HOST:PORT N MESSAGE_FILE\n");
        return 2;
    }
    n = strtol(argv[2], NULL, 10);
    f = fopen(argv[3], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        return 2;
    msg = malloc((size_t)size + 1);
    if (msg == NULL || fread(msg, 1, (size_t)size, f) != (size_t)size)
        return 2;
    msg[size] = '\0';
    fclose(f);
    s = smtp_create_session();
    smtp_set_server(s, argv[1]);
    smtp_set_hostname(s, "libesmtp.example.test");
    smtp_starttls_enable(s, Starttls_DISABLED);
    for (i = 0; i < n; i++) {
        smtp_message_t m = smtp_add_message(s);
        smtp_set_reverse_path(m, "bench@example.test");
        smtp_add_recipient(m, "sink@example.test");
        smtp_set_message_str(m, msg);
    }
    if (!smtp_start_session(s)) {
        char buf[128];
        fprintf(stderr, "libesmtp: %s\n",
                smtp_strerror(smtp_errno(), buf, sizeof(buf)));
        return 1;
    }
    smtp_enumerate_messages(s, check, NULL);
    smtp_destroy_session(s);
    free(msg);
    return failed ? 1 : 0;
}
