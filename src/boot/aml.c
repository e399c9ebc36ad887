/* A small AML byte-code builder; see aml.h. References: ACPI 6.5 sections
 * 20.2 (AML grammar) and 6.4 (resource data types). */
#include "boot/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AML_PKGLENGTH_MAX 0x0FFFFFFFu /* 28 bits */

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

uint8_t *aml_release(struct aml *a, size_t *len)
{
	uint8_t *p = a->buf;
	size_t n = a->len;
	if (a->err) {
		aml_free(a);
		*len = 0;
		return NULL;
	}
	memset(a, 0, sizeof(*a));
	*len = n;
	return p;
}

static void set_err(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

/* Makes room for n more bytes; false (and the error set) when it can't. */
static bool reserve(struct aml *a, size_t n)
{
	if (a->err)
		return false;
	if (n > SIZE_MAX - a->len) {
		set_err(a, -E2BIG);
		return false;
	}
	if (a->len + n <= a->cap)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + n) {
		if (cap > SIZE_MAX / 2) {
			set_err(a, -E2BIG);
			return false;
		}
		cap *= 2;
	}
	uint8_t *p = realloc(a->buf, cap);
	if (!p) {
		set_err(a, -ENOMEM);
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (n == 0 || !reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

void aml_u16(struct aml *a, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	aml_bytes(a, b, sizeof(b));
}

void aml_u32(struct aml *a, uint32_t v)
{
	uint8_t b[4];
	for (unsigned i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, sizeof(b));
}

void aml_u64(struct aml *a, uint64_t v)
{
	uint8_t b[8];
	for (unsigned i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, sizeof(b));
}

/* PkgLength (20.2.4): the length counts the PkgLength bytes themselves.
 * One byte holds up to 63 in bits 0-5; otherwise bits 7-6 of the lead
 * byte give the count of following bytes (1-3), bits 3-0 hold the least
 * significant nibble and each following byte the next 8 bits. */
unsigned aml_pkglength_encode(size_t body_len, uint8_t out[4])
{
	for (unsigned n = 1; n <= 4; n++) {
		if (body_len > AML_PKGLENGTH_MAX - n)
			return 0;
		size_t total = body_len + n;
		size_t limit = n == 1 ? 0x3F : ((size_t)1 << (4 + 8 * (n - 1))) - 1;
		if (total > limit)
			continue;
		if (n == 1) {
			out[0] = (uint8_t)total;
		} else {
			out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0F));
			for (unsigned i = 1; i < n; i++)
				out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		}
		return n;
	}
	return 0;
}

static bool seg_char_ok(char c, bool lead)
{
	if ((c >= 'A' && c <= 'Z') || c == '_')
		return true;
	return !lead && c >= '0' && c <= '9';
}

/* NameString (20.2.2). */
void aml_namestring(struct aml *a, const char *path)
{
	if (a->err)
		return;
	if (!path) {
		set_err(a, -EINVAL);
		return;
	}
	const char *p = path;
	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == '^') {
			aml_byte(a, AML_PARENT_PREFIX_CHAR);
			p++;
		}
	}
	if (*p == '\0') {
		/* "\\" alone or "^": the NullName. A bare "" is an error. */
		if (p == path)
			set_err(a, -EINVAL);
		else
			aml_byte(a, 0x00);
		return;
	}

	/* Split into segments first, so the prefix can be chosen. */
	char segs[255][4];
	unsigned nsegs = 0;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n > 4 || nsegs == 255) {
			set_err(a, -EINVAL);
			return;
		}
		for (size_t i = 0; i < 4; i++) {
			char c = i < n ? p[i] : '_';
			if (!seg_char_ok(c, i == 0)) {
				set_err(a, -EINVAL);
				return;
			}
			segs[nsegs][i] = c;
		}
		nsegs++;
		if (!dot)
			break;
		p = dot + 1;
	}
	if (nsegs == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nsegs);
	}
	aml_bytes(a, segs, 4 * (size_t)nsegs);
}

/* ComputationalData / ConstObj (20.2.3). */
void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v == UINT64_MAX) {
		aml_byte(a, AML_ONES_OP);
	} else if (v <= 0xFF) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xFFFF) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_u16(a, (uint16_t)v);
	} else if (v <= 0xFFFFFFFF) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_u32(a, (uint32_t)v);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_u64(a, v);
	}
}

void aml_string(struct aml *a, const char *s)
{
	if (!s) {
		set_err(a, -EINVAL);
		return;
	}
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7F) { /* AsciiCharList: 0x01-0x7F */
			set_err(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* EISAID: three letters of 5 bits each ('A' = 1) and four hex digits,
 * stored big-endian-ish: byte 0 = c1<<2 | c2>>3, byte 1 = c2<<5 | c3,
 * bytes 2-3 the product id, read as a little-endian DWord. */
int aml_eisaid_value(const char *id, uint32_t *out)
{
	if (!id || strlen(id) != 7)
		return -EINVAL;
	unsigned c[3];
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
		c[i] = (unsigned)(id[i] - 'A' + 1);
	}
	int h[4];
	for (int i = 0; i < 4; i++) {
		h[i] = hexval(id[3 + i]);
		if (h[i] < 0)
			return -EINVAL;
	}
	uint8_t b0 = (uint8_t)((c[0] << 2) | (c[1] >> 3));
	uint8_t b1 = (uint8_t)(((c[1] & 7) << 5) | c[2]);
	uint8_t b2 = (uint8_t)((h[0] << 4) | h[1]);
	uint8_t b3 = (uint8_t)((h[2] << 4) | h[3]);
	*out = (uint32_t)b0 | (uint32_t)b1 << 8 | (uint32_t)b2 << 16 | (uint32_t)b3 << 24;
	return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v;
	int rc = aml_eisaid_value(id, &v);
	if (rc) {
		set_err(a, rc);
		return;
	}
	/* Always a DWord, as iasl emits it, whatever the value. */
	aml_byte(a, AML_DWORD_PREFIX);
	aml_u32(a, v);
}

/* Opens a package: remembers where its body starts. The PkgLength is
 * inserted there by aml_end(). */
static size_t open_pkg(struct aml *a)
{
	return a->err ? 0 : a->len;
}

void aml_end(struct aml *a, size_t token)
{
	if (a->err)
		return;
	if (token > a->len) {
		set_err(a, -EINVAL);
		return;
	}
	uint8_t pl[4];
	unsigned n = aml_pkglength_encode(a->len - token, pl);
	if (n == 0) {
		set_err(a, -E2BIG);
		return;
	}
	if (!reserve(a, n))
		return;
	memmove(a->buf + token + n, a->buf + token, a->len - token);
	memcpy(a->buf + token, pl, n);
	a->len += n;
}

void aml_buffer(struct aml *a, const void *data, size_t len)
{
	aml_byte(a, AML_BUFFER_OP);
	size_t t = open_pkg(a);
	aml_integer(a, len);
	aml_bytes(a, data, len);
	aml_end(a, t);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, path);
}

void aml_name_integer(struct aml *a, const char *path, uint64_t v)
{
	aml_name(a, path);
	aml_integer(a, v);
}

void aml_name_string(struct aml *a, const char *path, const char *s)
{
	aml_name(a, path);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name(a, path);
	aml_eisaid(a, id);
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	size_t t = open_pkg(a);
	aml_namestring(a, path);
	return t;
}

size_t aml_device_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_EXT_DEVICE_OP);
	size_t t = open_pkg(a);
	aml_namestring(a, path);
	return t;
}

size_t aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized,
			unsigned sync_level)
{
	if (nargs > 7 || sync_level > 15)
		set_err(a, -EINVAL);
	aml_byte(a, AML_METHOD_OP);
	size_t t = open_pkg(a);
	aml_namestring(a, path);
	/* MethodFlags: bits 0-2 ArgCount, bit 3 SerializeFlag, 4-7 SyncLevel */
	aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0) | ((sync_level & 15) << 4)));
	return t;
}

size_t aml_package_begin(struct aml *a, unsigned nelems)
{
	if (nelems > 255)
		set_err(a, -E2BIG); /* would need VarPackageOp */
	aml_byte(a, AML_PACKAGE_OP);
	size_t t = open_pkg(a);
	aml_byte(a, (uint8_t)nelems);
	return t;
}

/* ---- Resource descriptors (6.4) ---- */

/* Address space descriptor general flags (6.4.3.5, Table 6.4x):
 * bit 3 _MAF, bit 2 _MIF, bit 1 _DEC (0 = positive decode), bit 0
 * 1 = consumer only, 0 = producer and consumer. */
#define RES_GEN_MAX_FIXED 0x08
#define RES_GEN_MIN_FIXED 0x04
#define RES_GEN_CONSUMER 0x01

enum { RES_TYPE_MEMORY = 0, RES_TYPE_IO = 1, RES_TYPE_BUS = 2 };

/* I/O Port Descriptor (6.4.2.5): small item 0x08, length 7. */
void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml_byte(r, 0x47);
	aml_byte(r, 0x01); /* _DEC: decodes 16 address bits */
	aml_u16(r, min);
	aml_u16(r, max);
	aml_byte(r, align);
	aml_byte(r, len);
}

/* IRQ Descriptor without the flags byte (6.4.2.1): item 0x04, length 2. */
void aml_res_irq_noflags(struct aml *r, unsigned irq)
{
	if (irq > 15) {
		set_err(r, -EINVAL);
		return;
	}
	aml_byte(r, 0x22);
	aml_u16(r, (uint16_t)(1u << irq));
}

/* Word Address Space Descriptor (6.4.3.5.3): large item 0x08 (0x88),
 * length 13. */
void aml_res_word_bus_number(struct aml *r, uint16_t min, uint16_t max)
{
	if (max < min) {
		set_err(r, -EINVAL);
		return;
	}
	aml_byte(r, 0x88);
	aml_u16(r, 13);
	aml_byte(r, RES_TYPE_BUS);
	aml_byte(r, RES_GEN_MIN_FIXED | RES_GEN_MAX_FIXED);
	aml_byte(r, 0); /* no type-specific flags for bus numbers */
	aml_u16(r, 0);  /* _GRA */
	aml_u16(r, min);
	aml_u16(r, max);
	aml_u16(r, 0); /* _TRA */
	aml_u16(r, (uint16_t)(max - min + 1));
}

/* DWord Address Space Descriptor (6.4.3.5.2): large item 0x07 (0x87),
 * length 23. */
static void res_dword(struct aml *r, uint8_t type, uint8_t gen, uint8_t tflags, uint32_t min,
		      uint32_t max)
{
	if (max < min) {
		set_err(r, -EINVAL);
		return;
	}
	aml_byte(r, 0x87);
	aml_u16(r, 23);
	aml_byte(r, type);
	aml_byte(r, gen);
	aml_byte(r, tflags);
	aml_u32(r, 0); /* _GRA */
	aml_u32(r, min);
	aml_u32(r, max);
	aml_u32(r, 0); /* _TRA */
	aml_u32(r, max - min + 1);
}

void aml_res_dword_io(struct aml *r, uint32_t min, uint32_t max)
{
	/* I/O type-specific flags: bits 1-0 _RNG = 3 (entire range). */
	res_dword(r, RES_TYPE_IO, RES_GEN_MIN_FIXED | RES_GEN_MAX_FIXED, 0x03, min, max);
}

/* Memory type-specific flags: bit 0 _RW (1 = read/write), bits 2-1 _MEM. */
static uint8_t mem_tflags(enum aml_mem_cache cache)
{
	return (uint8_t)(0x01 | ((cache & 3) << 1));
}

void aml_res_dword_memory(struct aml *r, bool consumer, enum aml_mem_cache cache,
			  uint32_t min, uint32_t max)
{
	res_dword(r, RES_TYPE_MEMORY,
		  RES_GEN_MIN_FIXED | RES_GEN_MAX_FIXED | (consumer ? RES_GEN_CONSUMER : 0),
		  mem_tflags(cache), min, max);
}

/* QWord Address Space Descriptor (6.4.3.5.1): large item 0x0A (0x8A),
 * length 43. */
void aml_res_qword_memory(struct aml *r, bool consumer, enum aml_mem_cache cache,
			  uint64_t min, uint64_t max)
{
	if (max < min || (min == 0 && max == UINT64_MAX)) {
		set_err(r, -EINVAL);
		return;
	}
	aml_byte(r, 0x8A);
	aml_u16(r, 43);
	aml_byte(r, RES_TYPE_MEMORY);
	aml_byte(r, RES_GEN_MIN_FIXED | RES_GEN_MAX_FIXED | (consumer ? RES_GEN_CONSUMER : 0));
	aml_byte(r, mem_tflags(cache));
	aml_u64(r, 0); /* _GRA */
	aml_u64(r, min);
	aml_u64(r, max);
	aml_u64(r, 0); /* _TRA */
	aml_u64(r, max - min + 1);
}

/* End Tag (6.4.2.9): 0x79 and a checksum byte that makes the whole
 * template (descriptors and end tag) sum to zero. */
void aml_resource_template(struct aml *a, const struct aml *r)
{
	if (r->err) {
		set_err(a, r->err);
		return;
	}
	if (a->err)
		return;
	uint8_t sum = 0x79;
	for (size_t i = 0; i < r->len; i++)
		sum = (uint8_t)(sum + r->buf[i]);
	uint8_t end[2] = { 0x79, (uint8_t)(0x100 - sum) };

	aml_byte(a, AML_BUFFER_OP);
	size_t t = open_pkg(a);
	aml_integer(a, r->len + sizeof(end));
	aml_bytes(a, r->buf, r->len);
	aml_bytes(a, end, sizeof(end));
	aml_end(a, t);
}
