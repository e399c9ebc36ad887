/* A small ACPI Machine Language (AML) byte-code builder: just what the
 * DSDT needs (ACPI 6.x, section 20 "ACPI Machine Language Specification",
 * and section 6.4 "Resource Data Types for ACPI").
 *
 * The builder is a growable buffer with a sticky error: every call after
 * the first failure (out of memory, a bad name, a package too big...) does
 * nothing, and aml_error() reports the first error as a negative errno.
 * Check it once at the end. The caller owns the buffer: aml_free() it, or
 * take it with aml_release() and free() it.
 *
 * Nested objects (Scope, Device, Method, Package) are opened with a
 * *_begin() call that returns a token and closed with aml_end(token), which
 * fills in the PkgLength; close them innermost first. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err; /* 0, or the first error (negative errno) */
};

/* Opcodes (ACPI 6.x, 20.3 "AML Byte Stream Byte Values"). */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define AML_STRING_PREFIX 0x0D
#define AML_QWORD_PREFIX 0x0E
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2E
#define AML_MULTI_NAME_PREFIX 0x2F
#define AML_EXT_OP_PREFIX 0x5B
#define AML_ROOT_CHAR 0x5C
#define AML_PARENT_PREFIX_CHAR 0x5E
#define AML_LOCAL0_OP 0x60
#define AML_ARG0_OP 0x68
#define AML_STORE_OP 0x70
#define AML_RETURN_OP 0xA4
#define AML_ONES_OP 0xFF
#define AML_EXT_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* Hands the bytes to the caller (free() them) and resets the builder.
 * Returns NULL (and frees) when an error is pending. */
uint8_t *aml_release(struct aml *a, size_t *len);
static inline int aml_error(const struct aml *a)
{
	return a->err;
}

/* Raw bytes. */
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_u16(struct aml *a, uint16_t v);
void aml_u32(struct aml *a, uint32_t v);
void aml_u64(struct aml *a, uint64_t v);

/* The PkgLength encoding of a package whose contents (after the PkgLength)
 * are body_len bytes: writes 1-4 bytes to out and returns their count, or
 * 0 when the package is too big (over 2^28 - 1 bytes). */
unsigned aml_pkglength_encode(size_t body_len, uint8_t out[4]);

/* NameString: "\\" root, "^" parent prefixes, then dot-separated NameSegs
 * of up to 4 characters (padded with '_'), e.g. "\\_SB.PCI0", "_S5",
 * "^^FOO", "\\" alone (the root: RootChar then NullName). */
void aml_namestring(struct aml *a, const char *path);

/* Data objects. aml_integer picks Zero/One/Ones or the smallest prefix. */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISAID("PNP0A03") as a DWord integer; a malformed id sets -EINVAL. */
void aml_eisaid(struct aml *a, const char *id);
/* The compressed 32-bit value of an EISA id, or -EINVAL. */
int aml_eisaid_value(const char *id, uint32_t *out);
/* Buffer(len) { bytes } */
void aml_buffer(struct aml *a, const void *data, size_t len);

/* Name(path, <object>): emits NameOp and the name; the caller emits the
 * object next. */
void aml_name(struct aml *a, const char *path);
void aml_name_integer(struct aml *a, const char *path, uint64_t v);
void aml_name_string(struct aml *a, const char *path, const char *s);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

/* Nested objects. */
size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *path);
/* nargs 0-7, sync_level 0-15. */
size_t aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized,
			unsigned sync_level);
/* Package(nelems): the caller emits exactly nelems objects (0-255). */
size_t aml_package_begin(struct aml *a, unsigned nelems);
void aml_end(struct aml *a, size_t token);

/* A few statements for method bodies: each is followed by its operands. */
static inline void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}
/* Store(source, target): emit the source, then the target. */
static inline void aml_store(struct aml *a)
{
	aml_byte(a, AML_STORE_OP);
}
static inline void aml_arg(struct aml *a, unsigned n) /* Arg0-Arg6 */
{
	aml_byte(a, (uint8_t)(AML_ARG0_OP + (n & 7)));
}
static inline void aml_local(struct aml *a, unsigned n) /* Local0-Local7 */
{
	aml_byte(a, (uint8_t)(AML_LOCAL0_OP + (n & 7)));
}

/* Resource templates (ACPI 6.x, 6.4). Descriptors are appended to their
 * own struct aml (a plain byte list); aml_resource_template() then emits
 * Buffer() { descriptors, EndTag with its checksum } into the AML. */
enum aml_mem_cache { AML_NON_CACHEABLE = 0, AML_CACHEABLE = 1, AML_WRITE_COMBINING = 2,
		     AML_PREFETCHABLE = 3 };

/* IO(Decode16, min, max, align, len) */
void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* IRQNoFlags() { irq } (irq 0-15) */
void aml_res_irq_noflags(struct aml *r, unsigned irq);
/* WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, len) */
void aml_res_word_bus_number(struct aml *r, uint16_t min, uint16_t max);
/* DWordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, len) */
void aml_res_dword_io(struct aml *r, uint32_t min, uint32_t max);
/* DWordMemory(producer/consumer, PosDecode, MinFixed, MaxFixed, cache, ReadWrite, 0, min, max, 0, len) */
void aml_res_dword_memory(struct aml *r, bool consumer, enum aml_mem_cache cache,
			  uint32_t min, uint32_t max);
/* QWordMemory(...) likewise */
void aml_res_qword_memory(struct aml *r, bool consumer, enum aml_mem_cache cache,
			  uint64_t min, uint64_t max);
/* Buffer() { r's descriptors, EndTag }: r is left unchanged. */
void aml_resource_template(struct aml *a, const struct aml *r);
