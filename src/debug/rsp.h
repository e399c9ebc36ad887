/* The GDB remote serial protocol's framing: "$payload#cs" packets, the
 * '+'/'-' acknowledgements and the 0x03 interrupt byte. The parser is fed
 * bytes as they come from the socket and never reads or writes outside
 * its own buffer, whatever arrives. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest payload accepted (advertised as PacketSize). */
#define RSP_MAX_PAYLOAD 16384

enum rsp_event {
	RSP_NONE,         /* nothing complete yet */
	RSP_PACKET,       /* a packet with a good checksum: rsp_payload() */
	RSP_BAD_CHECKSUM, /* a packet whose checksum is wrong: answer '-' */
	RSP_TOO_LONG,     /* a packet longer than RSP_MAX_PAYLOAD, dropped */
	RSP_INTERRUPT,    /* 0x03 outside a packet */
	RSP_ACK,          /* '+' */
	RSP_NAK,          /* '-' */
};

struct rsp_parser {
	enum { RSP_IDLE, RSP_DATA, RSP_CSUM1, RSP_CSUM2 } state;
	uint8_t sum;      /* of the payload bytes so far */
	uint8_t csum;     /* the checksum as received */
	bool overflow;
	size_t len;
	uint8_t buf[RSP_MAX_PAYLOAD + 1]; /* payload, NUL-terminated */
};

void rsp_init(struct rsp_parser *p);
/* Feed one byte; returns what it completed. After RSP_PACKET the payload
 * is p->buf[0..p->len) (NUL-terminated, but it may contain NULs) until the
 * next call. */
enum rsp_event rsp_feed(struct rsp_parser *p, uint8_t byte);

/* Frame payload as "$payload#cs" into out (outlen >= len + 4); bytes that
 * the protocol reserves ('$', '#', '}', '*') are escaped when escape is
 * set (binary replies), which can double the length (outlen >= 2 * len +
 * 4). Returns the framed length, or 0 if it does not fit. */
size_t rsp_frame(const void *payload, size_t len, bool escape, uint8_t *out, size_t outlen);

/* Binary data as in 'X' packets: '}' escapes the next byte (XOR 0x20).
 * Decodes in place; returns the decoded length, or -1 for a trailing '}'. */
long rsp_unescape(uint8_t *buf, size_t len);

/* Hex helpers. */
int rsp_hexval(int c); /* -1 if not a hex digit */
/* Decode 2*n hex digits into n bytes; false on a bad digit. */
bool rsp_hex_decode(const char *hex, size_t n, uint8_t *out);
void rsp_hex_encode(const void *buf, size_t n, char *out); /* 2n chars + NUL */
/* A hex number (no prefix, at most 16 digits) at *s, advancing *s. */
bool rsp_parse_hex(const char **s, uint64_t *value);
