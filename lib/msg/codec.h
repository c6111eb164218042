/*
 * codec - the transfer encodings of MIME as streams: base64 and
 * quoted-printable decoders that take input split anywhere and never fail
 * (what can be decoded is, the rest is reported), and the encoders the
 * builder uses.  Also a growing string for the msg layer.
 */
#ifndef SMTPX_LIB_MSG_CODEC_H
#define SMTPX_LIB_MSG_CODEC_H

#include <libsmtpx/common.h>

/* ---- a growing string -----------------------------------------------------
 */

/* A NUL-terminated string that grows through mem; after an allocation
 * failure err is SMTPX_ERR_NOMEM and every later append is ignored. */
typedef struct smtpx__mstr {
    char *p;
    size_t len, cap;
    const smtpx_mem *mem;
    int err;
} smtpx__mstr;

void smtpx__mstr_init(smtpx__mstr *s, const smtpx_mem *mem);
void smtpx__mstr_add(smtpx__mstr *s, const void *p, size_t n);
void smtpx__mstr_addc(smtpx__mstr *s, char c);
void smtpx__mstr_adds(smtpx__mstr *s, const char *z);
/* Forget the contents, keep the memory. */
void smtpx__mstr_clear(smtpx__mstr *s);
void smtpx__mstr_free(smtpx__mstr *s);

/* ---- decoders -------------------------------------------------------------
 */

/* Base64 (RFC 2045 6.8), as lenient as Python's email package: line ends
 * are skipped, other characters outside the alphabet are skipped and
 * reported, a complete "=" pad ends the data (what follows is ignored), a
 * last quantum of two or three characters gives its one or two octets. */
typedef struct smtpx__b64dec {
    uint32_t acc;  /* bits of the quantum so far */
    unsigned n;    /* characters in acc */
    unsigned pads; /* "=" seen in the current quantum */
    int done;      /* a pad ended the data */
    int bad;       /* characters were skipped or a quantum cut short */
} smtpx__b64dec;

/* The most octets smtpx__b64dec_run() writes for n characters. */
#define SMTPX__B64DEC_OUT(n) ((n) / 4 * 3 + 3)

void smtpx__b64dec_init(smtpx__b64dec *d);
/* Decode n characters into out (SMTPX__B64DEC_OUT(n) octets); returns the
 * octets written. */
size_t smtpx__b64dec_run(smtpx__b64dec *d, const uint8_t *in, size_t n,
                         uint8_t *out);
/* The end of the data: the octets of a last partial quantum (at most 2). */
size_t smtpx__b64dec_end(smtpx__b64dec *d, uint8_t *out);

/* Quoted-printable (RFC 2045 6.7), decoded as Python's binascii.a2b_qp
 * does: "=XX" (either case) is an octet, "=" before a line end a soft line
 * break (anything between "=" CR and the LF is dropped), "==" one "=", any
 * other "=" kept as it is (and reported), a "=" at the very end dropped. */
typedef struct smtpx__qpdec {
    int state; /* QPD_* */
    uint8_t hex;
    int bad;
} smtpx__qpdec;

/* Octets written are never more than the characters read plus 2. */
#define SMTPX__QPDEC_OUT(n) ((n) + 2)

void smtpx__qpdec_init(smtpx__qpdec *d);
size_t smtpx__qpdec_run(smtpx__qpdec *d, const uint8_t *in, size_t n,
                        uint8_t *out);
size_t smtpx__qpdec_end(smtpx__qpdec *d, uint8_t *out);

/* ---- encoders -------------------------------------------------------------
 */

/* Quoted-printable with lines of at most 76 characters and CRLF line ends.
 * text: LF and CRLF are line breaks (a body); otherwise only CRLF is, and
 * lone CR and LF are encoded, so that decoding gives back every octet. */
typedef struct smtpx__qpenc {
    int text;
    unsigned col; /* characters on the output line */
    int pending;  /* a held space, tab or CR (-1: none) */
    int nodash;   /* "-" first on a line is encoded: no line of the output
                     begins with "--", so none looks like a boundary */
} smtpx__qpenc;

/* The most octets smtpx__qpenc_run() writes for n input octets. */
#define SMTPX__QPENC_OUT(n) (4 * (n) + 16)

void smtpx__qpenc_init(smtpx__qpenc *e, int text);
size_t smtpx__qpenc_run(smtpx__qpenc *e, const uint8_t *in, size_t n,
                        uint8_t *out);
/* Flush what is held; ends with a line end only if the input did. */
size_t smtpx__qpenc_end(smtpx__qpenc *e, uint8_t *out);

/* Base64 (RFC 4648 4, padded) of n octets into out: 4 * ((n + 2) / 3)
 * characters, no NUL; returns that count.  For content, not secrets: a
 * table lookup, where mbedTLS's encoder (base/crypto.h) takes constant
 * time per character and is several times slower. */
size_t smtpx__b64enc_block(const uint8_t *in, size_t n, uint8_t *out);

/* Base64 as a body: lines of 76 characters (57 octets), CRLF between
 * them and none after the last (what follows, a boundary's CRLF, is the
 * caller's).  Input split anywhere. */
typedef struct smtpx__b64enc {
    uint8_t carry[57]; /* octets of a line not yet written */
    size_t ncarry;
    int lines; /* lines written */
} smtpx__b64enc;

/* The most octets smtpx__b64enc_run() or _end() writes for n octets. */
#define SMTPX__B64ENC_OUT(n) (((n) / 57 + 1) * 78)

void smtpx__b64enc_init(smtpx__b64enc *e);
/* The whole lines n more octets complete. */
size_t smtpx__b64enc_run(smtpx__b64enc *e, const uint8_t *in, size_t n,
                         uint8_t *out);
/* The last, partial line. */
size_t smtpx__b64enc_end(smtpx__b64enc *e, uint8_t *out);

/* Hex digit value, or -1. */
int smtpx__hexval(unsigned char c);

#endif
