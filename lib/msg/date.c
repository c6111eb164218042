/*
 * msg_date - the RFC 5322 3.3 date-time of a message.
 *
 * Exports smtpx_format_date() of <libsmtpx/msg.h> (used by the builder's
 * Date field and by the trace headers of the mta layer).
 *
 * The date-time is computed from a count of seconds and an offset the
 * caller gives: no time zone database, no clock.  The calendar arithmetic
 * is the proleptic Gregorian days-to-civil conversion of Howard Hinnant
 * ("chrono-Compatible Low-Level Date Algorithms"), exact for every day,
 * before 1970 too.  Years are 1900 to 9999: RFC 5322 3.3 wants "1900 or
 * later" and four digits keep the result within 32 bytes.
 */
#include <string.h>

#include <libsmtpx/msg.h>

/* 1900-01-01T00:00:00Z and 10000-01-01T00:00:00Z. */
#define DATE_TIME_MIN (-2208988800LL)
#define DATE_TIME_END 253402300800LL
#define DATE_DAY      86400
/* Offsets of less than a day either side. */
#define DATE_OFFSET_MAX 1439
/* Length of a formatted date. */
#define DATE_LEN 31

/* date_civil - the Gregorian date of a day counted from 1970-01-01 */
static void date_civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    /* Counted from 0000-03-01, in 400-year eras of 146097 days, so that
     * the leap day is the last day of a year. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097; /* day of era */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* from March 1 */
    int64_t mp = (5 * doy + 2) / 153;                      /* March is 0 */

    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

static char *date_digits(char *p, unsigned v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

smtpx_ssize smtpx_format_date(int64_t unix_time, int utc_offset, char *buf,
                              size_t size)
{
    static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    int64_t local, days, secs, year;
    unsigned month, day, off;
    char *p;

    if (buf == NULL || size <= DATE_LEN || utc_offset < -DATE_OFFSET_MAX ||
        utc_offset > DATE_OFFSET_MAX)
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* Range first, so that adding the offset cannot overflow. */
    if (unix_time < DATE_TIME_MIN - DATE_DAY ||
        unix_time >= DATE_TIME_END + DATE_DAY)
        return SMTPX_ERR_INVALID_ARGUMENT;
    local = unix_time + (int64_t)utc_offset * 60;
    if (local < DATE_TIME_MIN || local >= DATE_TIME_END)
        return SMTPX_ERR_INVALID_ARGUMENT;
    days = local / DATE_DAY;
    secs = local % DATE_DAY;
    if (secs < 0) { /* round towards the past, not towards 1970 */
        secs += DATE_DAY;
        days--;
    }
    date_civil(days, &year, &month, &day);
    p = buf;
    /* 1970-01-01 was a Thursday; days is at least -25567 here. */
    memcpy(p, wdays[(days % 7 + 11) % 7], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = date_digits(p, day, 2);
    *p++ = ' ';
    memcpy(p, months[month - 1], 3);
    p += 3;
    *p++ = ' ';
    p = date_digits(p, (unsigned)year, 4);
    *p++ = ' ';
    p = date_digits(p, (unsigned)(secs / 3600), 2);
    *p++ = ':';
    p = date_digits(p, (unsigned)(secs / 60 % 60), 2);
    *p++ = ':';
    p = date_digits(p, (unsigned)(secs % 60), 2);
    *p++ = ' ';
    *p++ = utc_offset < 0 ? '-' : '+';
    off = (unsigned)(utc_offset < 0 ? -utc_offset : utc_offset);
    p = date_digits(p, off / 60 * 100 + off % 60, 4);
    *p = '\0';
    return DATE_LEN;
}
