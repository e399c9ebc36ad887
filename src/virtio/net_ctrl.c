#include "virtio/net_ctrl.h"

#include <string.h>

#define VIRTIO_NET_CTRL_RX 0
#define VIRTIO_NET_CTRL_RX_PROMISC 0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_MAC 1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET 1
#define VIRTIO_NET_CTRL_ANNOUNCE 3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0

static bool has(uint64_t features, unsigned bit) { return features >> bit & 1; }

void net_filter_reset(struct net_filter *f, const uint8_t mac[6])
{
	memset(f, 0, sizeof(*f));
	memcpy(f->mac, mac, 6);
	f->promisc = true;
}

bool net_filter_wants(const struct net_filter *f, const uint8_t dst[6])
{
	if (f->promisc)
		return true;
	if (dst[0] & 1) {
		static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
		if (!memcmp(dst, bcast, 6) || f->allmulti || f->multi_overflow)
			return true;
		for (unsigned i = 0; i < f->nmulti; i++)
			if (!memcmp(dst, f->multi[i], 6))
				return true;
		return false;
	}
	if (!memcmp(dst, f->mac, 6) || f->uni_overflow)
		return true;
	for (unsigned i = 0; i < f->nuni; i++)
		if (!memcmp(dst, f->uni[i], 6))
			return true;
	return false;
}

/* Two tables, each a le32 count and count addresses: unicast, then
 * multicast; together exactly the request's data. A table longer than
 * the filter holds means "accept all" of its kind, as QEMU does. */
static uint8_t mac_table_set(struct net_filter *f, const struct vq_chain *c)
{
	uint64_t off = 2;
	uint64_t cnt[2];
	uint8_t tmp[2][NET_MAC_TABLE][6];
	for (int t = 0; t < 2; t++) {
		uint8_t le[4];
		if (vq_chain_read(c, off, le, 4) != 4)
			return VIRTIO_NET_ERR;
		uint64_t k = (uint64_t)le[0] | (uint64_t)le[1] << 8 | (uint64_t)le[2] << 16 |
			     (uint64_t)le[3] << 24;
		off += 4;
		if (k * 6 > c->out_len - off)
			return VIRTIO_NET_ERR;
		cnt[t] = k;
		if (k <= NET_MAC_TABLE && vq_chain_read(c, off, tmp[t], k * 6) != k * 6)
			return VIRTIO_NET_ERR;
		off += k * 6;
	}
	if (off != c->out_len)
		return VIRTIO_NET_ERR;
	bool over[2] = { cnt[0] > NET_MAC_TABLE, cnt[1] > NET_MAC_TABLE };
	f->uni_overflow = over[0];
	f->nuni = over[0] ? 0 : (unsigned)cnt[0];
	memcpy(f->uni, tmp[0], (size_t)f->nuni * 6);
	f->multi_overflow = over[1];
	f->nmulti = over[1] ? 0 : (unsigned)cnt[1];
	memcpy(f->multi, tmp[1], (size_t)f->nmulti * 6);
	return VIRTIO_NET_OK;
}

uint8_t net_ctrl_apply(struct net_filter *f, uint64_t features, uint16_t max_pairs,
		       const struct vq_chain *c, struct net_ctrl_done *done)
{
	uint8_t hdr[2], data[6];
	*done = (struct net_ctrl_done){ 0 };
	if (c->out_len < 2 || vq_chain_read(c, 0, hdr, 2) != 2)
		return VIRTIO_NET_ERR;
	uint64_t dlen = c->out_len - 2;
	switch (hdr[0]) {
	case VIRTIO_NET_CTRL_RX:
		if (!has(features, VIRTIO_NET_F_CTRL_RX) || dlen != 1 ||
		    vq_chain_read(c, 2, data, 1) != 1)
			return VIRTIO_NET_ERR;
		if (hdr[1] == VIRTIO_NET_CTRL_RX_PROMISC)
			f->promisc = data[0] != 0;
		else if (hdr[1] == VIRTIO_NET_CTRL_RX_ALLMULTI)
			f->allmulti = data[0] != 0;
		else
			return VIRTIO_NET_ERR;
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC:
		if (hdr[1] == VIRTIO_NET_CTRL_MAC_TABLE_SET)
			return has(features, VIRTIO_NET_F_CTRL_RX) ? mac_table_set(f, c) : VIRTIO_NET_ERR;
		if (hdr[1] == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
			if (!has(features, VIRTIO_NET_F_CTRL_MAC_ADDR) || dlen != 6 ||
			    vq_chain_read(c, 2, data, 6) != 6)
				return VIRTIO_NET_ERR;
			memcpy(f->mac, data, 6);
			return VIRTIO_NET_OK;
		}
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_ANNOUNCE:
		if (!has(features, VIRTIO_NET_F_GUEST_ANNOUNCE) ||
		    hdr[1] != VIRTIO_NET_CTRL_ANNOUNCE_ACK || dlen != 0)
			return VIRTIO_NET_ERR;
		done->announce_acked = true;
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MQ: {
		/* 5.1.6.5.5: a le16 count, 1 to max_virtqueue_pairs. */
		if (!has(features, VIRTIO_NET_F_MQ) || hdr[1] != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET ||
		    dlen != 2 || vq_chain_read(c, 2, data, 2) != 2)
			return VIRTIO_NET_ERR;
		uint16_t pairs = (uint16_t)(data[0] | data[1] << 8);
		if (pairs < 1 || pairs > max_pairs)
			return VIRTIO_NET_ERR;
		done->pairs = pairs;
		return VIRTIO_NET_OK;
	}
	default:
		return VIRTIO_NET_ERR;
	}
}
