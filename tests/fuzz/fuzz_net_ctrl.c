/* Fuzz target for virtio-net's control queue (src/virtio/net_ctrl.c): the
 * requests a guest writes, split over descriptors as it likes, applied to
 * the receive filter under any negotiated features. Checked after every
 * request: the ack is OK or ERR; a refused request leaves the filter as it
 * was; the tables stay within bounds ("overflow" means empty and accept
 * all); an accepted MAC_TABLE_SET holds exactly the addresses the request
 * carried; an accepted MAC_ADDR_SET is the new address; an accepted
 * MQ_VQ_PAIRS_SET names 1 to max_virtqueue_pairs, and a refused one
 * (0, past the maximum, a wrong length, MQ not taken) names nothing.
 *
 * With clang: fuzz_net_ctrl is a libFuzzer binary
 *   build-fuzz/tests/fuzz/fuzz_net_ctrl tests/fuzz/corpus/net_ctrl -max_len=1024
 * With any compiler, fuzz_net_ctrl_replay runs the corpus (a unit test). */
#include <string.h>
#include <sys/uio.h>

#include "fuzz_input.h"
#include "virtio/net_ctrl.h"

#define SEGS 8
#define REQ_MAX 2048

static void check_bounds(const struct net_filter *f)
{
	FUZZ_CHECK(f->nuni <= NET_MAC_TABLE && f->nmulti <= NET_MAC_TABLE);
	FUZZ_CHECK(!f->uni_overflow || f->nuni == 0);
	FUZZ_CHECK(!f->multi_overflow || f->nmulti == 0);
	if (!(f->mac[0] & 1))
		FUZZ_CHECK(net_filter_wants(f, f->mac));
	for (unsigned i = 0; i < f->nmulti; i++)
		if (f->multi[i][0] & 1)
			FUZZ_CHECK(net_filter_wants(f, f->multi[i]));
	for (unsigned i = 0; i < f->nuni; i++)
		if (!(f->uni[i][0] & 1))
			FUZZ_CHECK(net_filter_wants(f, f->uni[i]));
}

static bool same(const struct net_filter *a, const struct net_filter *b)
{
	return !memcmp(a->mac, b->mac, 6) && a->promisc == b->promisc && a->allmulti == b->allmulti &&
	       a->uni_overflow == b->uni_overflow && a->multi_overflow == b->multi_overflow &&
	       a->nuni == b->nuni && a->nmulti == b->nmulti &&
	       !memcmp(a->uni, b->uni, sizeof(a->uni)) && !memcmp(a->multi, b->multi, sizeof(a->multi));
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* What an accepted request must have done, from its bytes laid end to end. */
static void check_applied(const struct net_filter *f, const uint8_t *req, size_t len)
{
	if (req[0] == 1 && req[1] == 0) { /* MAC_TABLE_SET */
		uint32_t nu = le32(req + 2);
		size_t moff = 6 + (size_t)nu * 6;
		uint32_t nm = le32(req + moff);
		FUZZ_CHECK(moff + 4 + (size_t)nm * 6 == len);
		FUZZ_CHECK(f->uni_overflow == (nu > NET_MAC_TABLE));
		FUZZ_CHECK(f->multi_overflow == (nm > NET_MAC_TABLE));
		if (nu <= NET_MAC_TABLE)
			FUZZ_CHECK(f->nuni == nu && !memcmp(f->uni, req + 6, (size_t)nu * 6));
		if (nm <= NET_MAC_TABLE)
			FUZZ_CHECK(f->nmulti == nm && !memcmp(f->multi, req + moff + 4, (size_t)nm * 6));
	} else if (req[0] == 1 && req[1] == 1) { /* MAC_ADDR_SET */
		FUZZ_CHECK(len == 8 && !memcmp(f->mac, req + 2, 6));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	static const uint8_t mac[6] = { 0x58, 0x9c, 0xfc, 0x01, 0x02, 0x03 };
	struct net_filter f;
	net_filter_reset(&f, mac);
	uint8_t fsel = fin_u8(&in);
	uint64_t features = (fsel & 1 ? 1ULL << VIRTIO_NET_F_CTRL_RX : 0) |
			    (fsel & 2 ? 1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR : 0) |
			    (fsel & 4 ? 1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE : 0) |
			    (fsel & 8 ? 1ULL << VIRTIO_NET_F_MQ : 0);
	uint16_t max_pairs = (uint16_t)(1 + (fsel >> 4)); /* 1..16 */
	static uint8_t req[REQ_MAX];
	while (fin_more(&in)) {
		/* A request: its length, how it is cut into segments, its bytes. */
		size_t len = fin_u16(&in) % REQ_MAX;
		unsigned nseg = 1 + fin_u8(&in) % SEGS;
		for (size_t i = 0; i < len; i++)
			req[i] = fin_u8(&in);
		struct iovec iov[SEGS];
		struct vq_chain c = { .cap = SEGS, .iov = iov, .out_len = len, .in_len = 1, .nin = 0 };
		size_t off = 0;
		for (unsigned s = 0; s < nseg && off < len; s++) {
			size_t take = s == nseg - 1 ? len - off : 1 + fin_u8(&in) % (len - off);
			iov[c.nout++] = (struct iovec){ req + off, take };
			off += take;
		}
		if (off < len) /* fewer segments than asked: the rest in the last */
			iov[c.nout - 1].iov_len += len - off;
		struct net_filter before = f;
		struct net_ctrl_done done;
		uint8_t ack = net_ctrl_apply(&f, features, max_pairs, &c, &done);
		FUZZ_CHECK(ack == VIRTIO_NET_OK || ack == VIRTIO_NET_ERR);
		if (ack == VIRTIO_NET_ERR) {
			FUZZ_CHECK(same(&before, &f) && !done.announce_acked && !done.pairs);
		} else {
			FUZZ_CHECK(len >= 2);
			check_applied(&f, req, len);
			if (req[0] == VIRTIO_NET_CTRL_MQ)
				FUZZ_CHECK(len == 4 && (features >> VIRTIO_NET_F_MQ & 1) &&
					   done.pairs == (req[2] | req[3] << 8) && done.pairs >= 1 &&
					   done.pairs <= max_pairs);
			else
				FUZZ_CHECK(!done.pairs);
		}
		check_bounds(&f);
	}
	return 0;
}
