#include <errno.h>

#include "unit.h"
#include "util/parse.h"

int main(void)
{
	uint64_t v;
	CHECK_EQ(parse_mem_size("512M", &v), 0);
	CHECK_EQ(v, 512ULL << 20);
	CHECK_EQ(parse_mem_size("2G", &v), 0);
	CHECK_EQ(v, 2ULL << 30);
	CHECK_EQ(parse_mem_size("2g", &v), 0);
	CHECK_EQ(v, 2ULL << 30);
	CHECK_EQ(parse_mem_size("1024", &v), 0); /* bare numbers are MiB, as in bhyve */
	CHECK_EQ(v, 1024ULL << 20);
	CHECK_EQ(parse_mem_size("65536k", &v), 0);
	CHECK_EQ(v, 64ULL << 20);
	CHECK_EQ(parse_mem_size("1T", &v), 0);
	CHECK_EQ(v, 1ULL << 40);
	CHECK_EQ(parse_mem_size("", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("M", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("-1G", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("12X", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("1GG", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("99999999999999T", &v), -ERANGE);
	CHECK_EQ(parse_mem_size("99999999999999999999999", &v), -ERANGE);

	CHECK_EQ(parse_uint("0xf4", 0xffff, &v), 0);
	CHECK_EQ(v, 0xf4);
	CHECK_EQ(parse_uint("70000", 0xffff, &v), -ERANGE);
	CHECK_EQ(parse_uint("12a", 0xffff, &v), -EINVAL);
	CHECK_EQ(parse_uint("-1", 0xffff, &v), -EINVAL);
	return UNIT_RESULT();
}
