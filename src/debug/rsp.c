#include "debug/rsp.h"

#include <string.h>

void rsp_init(struct rsp_parser *p)
{
	p->state = RSP_IDLE;
	p->len = 0;
	p->sum = 0;
	p->overflow = false;
	p->buf[0] = 0;
}

int rsp_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum rsp_event rsp_feed(struct rsp_parser *p, uint8_t c)
{
	switch (p->state) {
	case RSP_IDLE:
		if (c == '$') {
			p->state = RSP_DATA;
			p->len = 0;
			p->sum = 0;
			p->overflow = false;
			return RSP_NONE;
		}
		if (c == 0x03)
			return RSP_INTERRUPT;
		if (c == '+')
			return RSP_ACK;
		if (c == '-')
			return RSP_NAK;
		return RSP_NONE; /* noise between packets */
	case RSP_DATA:
		if (c == '#') {
			p->state = RSP_CSUM1;
			return RSP_NONE;
		}
		if (c == '$') {
			/* A new start: the previous packet was cut short. */
			p->len = 0;
			p->sum = 0;
			p->overflow = false;
			return RSP_NONE;
		}
		p->sum = (uint8_t)(p->sum + c);
		if (p->len < RSP_MAX_PAYLOAD)
			p->buf[p->len++] = c;
		else
			p->overflow = true;
		return RSP_NONE;
	case RSP_CSUM1: {
		int v = rsp_hexval(c);
		if (v < 0) {
			p->state = RSP_IDLE;
			return RSP_BAD_CHECKSUM;
		}
		p->csum = (uint8_t)(v << 4);
		p->state = RSP_CSUM2;
		return RSP_NONE;
	}
	case RSP_CSUM2: {
		int v = rsp_hexval(c);
		p->state = RSP_IDLE;
		p->buf[p->len] = 0;
		if (v < 0 || (uint8_t)(p->csum | v) != p->sum)
			return RSP_BAD_CHECKSUM;
		return p->overflow ? RSP_TOO_LONG : RSP_PACKET;
	}
	}
	p->state = RSP_IDLE;
	return RSP_NONE;
}

static const char hexdigits[] = "0123456789abcdef";

size_t rsp_frame(const void *payload, size_t len, bool escape, uint8_t *out, size_t outlen)
{
	const uint8_t *in = payload;
	size_t o = 0;
	uint8_t sum = 0;
	if (outlen < 4)
		return 0;
	out[o++] = '$';
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];
		bool esc = escape && (c == '$' || c == '#' || c == '}' || c == '*');
		if (o + (esc ? 2 : 1) + 3 > outlen)
			return 0;
		if (esc) {
			out[o++] = '}';
			sum = (uint8_t)(sum + '}');
			c ^= 0x20;
		}
		out[o++] = c;
		sum = (uint8_t)(sum + c);
	}
	out[o++] = '#';
	out[o++] = (uint8_t)hexdigits[sum >> 4];
	out[o++] = (uint8_t)hexdigits[sum & 15];
	return o;
}

long rsp_unescape(uint8_t *buf, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '}') {
			if (++i == len)
				return -1;
			buf[o++] = buf[i] ^ 0x20;
		} else {
			buf[o++] = buf[i];
		}
	}
	return (long)o;
}

bool rsp_hex_decode(const char *hex, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = rsp_hexval((unsigned char)hex[2 * i]);
		int lo = hi < 0 ? -1 : rsp_hexval((unsigned char)hex[2 * i + 1]);
		if (lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

void rsp_hex_encode(const void *buf, size_t n, char *out)
{
	const uint8_t *b = buf;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[b[i] >> 4];
		out[2 * i + 1] = hexdigits[b[i] & 15];
	}
	out[2 * n] = 0;
}

bool rsp_parse_hex(const char **s, uint64_t *value)
{
	const char *p = *s;
	uint64_t v = 0;
	int n = 0;
	int d;
	while ((d = rsp_hexval((unsigned char)*p)) >= 0) {
		if (++n > 16)
			return false;
		v = v << 4 | (uint64_t)d;
		p++;
	}
	if (!n)
		return false;
	*s = p;
	*value = v;
	return true;
}
