/*
 * base64.h - strict base64 (RFC 4648 §4) for SASL exchanges: padding
 * required, no whitespace, no characters outside the alphabet.  Output
 * lengths are exact (binary data with NUL bytes survives).
 */
#ifndef HATO_BASE64_H
#define HATO_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Octets needed to decode len characters (an upper bound). */
#define BASE64_DECODED_MAX(len) (((len) / 4) * 3 + 3)
/* Characters needed to encode len octets, plus the NUL. */
#define BASE64_ENCODED_SIZE(len) ((((len) + 2) / 3) * 4 + 1)

/* Decode in[0..len) into out; false on any malformed input. */
bool base64_decode(const char *in, size_t len, unsigned char *out, size_t *outlen);

/* Encode len octets into out (BASE64_ENCODED_SIZE(len) bytes, NUL-terminated). */
void base64_encode(const unsigned char *in, size_t len, char *out);

#endif
