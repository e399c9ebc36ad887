/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A small IPv4 network client on virtio-net (1af4:1041), for khyve-net's
 * tests: ARP (answers requests for its address, asks for its next hops),
 * ICMP echo (answers every echo request for its address, at every step;
 * sends its own), a DHCP client (DISCOVER/OFFER/REQUEST/ACK with option 12,
 * its hostname, so that dnsmasq registers the name) and DNS A queries over
 * UDP. Everything it parses comes from the network and is bounds-checked.
 *
 * Command line:
 *   name=<hostname> (khyve-guest)     ip=<a.b.c.d/len> (static address, no DHCP)
 *   router=<a.b.c.d> dns=<a.b.c.d>    (with ip=)
 *   do=<step>,<step>,...              steps, in order (default: dhcp):
 *     dhcp            get a lease
 *     resolve:NAME    A query to the DNS server from the lease (or dns=)
 *     ping:TARGET     an address or a name (resolved first); count= echoes (3)
 *     wait:NAME       resolve NAME until it resolves (another guest's lease)
 *     serve:N[:FROM]  wait until N echo requests (since boot; from FROM, a name or
 *                     address, if given) were answered
 *   timeout=<s> per step (120)
 * Output (COM1):
 *   NET: mac=<xx:..> name=<name>
 *   NET: lease ip=<a.b.c.d>/<len> router=<ip> dns=<ip> server=<ip> domain=<d> time=<s>
 *   NET: resolve <name> = <a.b.c.d>          (or FAIL: ... rcode=<n>)
 *   NET: ping <target> (<ip>) seq=<i> ok
 *   NET: served <n> echo requests
 *   NET: waited for <name> = <a.b.c.d>
 *   NET: answered echo from <ip>             (each echo request answered)
 *   NET: dropped <n> malformed frames
 *   PASS
 */
#include "guest.h"
#include "netbytes.h"
#include "pci.h"
#include "virtio.h"

#define F_MAC 5
#define F_STATUS 16
#define QSIZE 64
#define HDR 12
#define BUFSZ 2048
#define ETH 14

static uint8_t rxmem[3 * 4096] __attribute__((aligned(4096)));
static uint8_t txmem[3 * 4096] __attribute__((aligned(4096)));
static uint8_t rxbufs[QSIZE][BUFSZ] __attribute__((aligned(4096)));
static uint8_t txhdr[HDR];
static uint8_t tx[1600];
static struct virtio_dev dev;
static struct virtq rxq, txq;

static uint8_t mac[6];
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static uint32_t my_ip, mask, router, dns_ip, server_id;
static char name[64] = "khyve-guest", domain[64];
static unsigned answered, dropped, step_ms;
static struct { uint32_t ip; unsigned n; } echo_from[8];   /* answered, per source */

/* What the receive path hands to the step that waits for it. */
static uint16_t want_port;          /* UDP destination port being waited for */
static uint8_t udp_data[1500];
static size_t udp_len;              /* 0: nothing yet */
static uint32_t udp_src;
static uint16_t ping_id, ping_seq_got;

static struct { uint32_t ip; uint8_t mac[6]; } arp_cache[8];
static unsigned arp_next;


static const char *ipstr(uint32_t ip)
{
    static char b[4][16];
    static unsigned n;
    char *s = b[n++ % 4];
    snprintf(s, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    return s;
}

/* "a.b.c.d": true and *ip set only if it is exactly that. */
static bool parse_ip(const char *s, uint32_t *ip, const char **end)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned o = 0;
        for (int d = 0; *s >= '0' && *s <= '9'; d++, s++) {
            o = o * 10 + (unsigned)(*s - '0');
            if (d > 2 || o > 255)
                return false;
        }
        v = v << 8 | o;
        if (i < 3 && *s++ != '.')
            return false;
    }
    *ip = v;
    if (end)
        *end = s;
    return true;
}

static void post_rx(unsigned i)
{
    struct vbuf b = { rxbufs[i], BUFSZ, true };
    if (virtq_add(&rxq, &b, 1, NULL) < 0)
        test_fail("rx queue full");
}

static void send_frame(size_t len)
{
    if (len < 60) {
        memset(tx + len, 0, 60 - len);
        len = 60;
    }
    memset(txhdr, 0, HDR);
    struct vbuf b[2] = { { txhdr, HDR, false }, { tx, (uint32_t)len, false } };
    if (virtq_add(&txq, b, 2, NULL) < 0)
        test_fail("tx queue full");
    virtq_kick(&txq);
    uint32_t l;
    if (virtq_wait_used(&txq, &l, 10000) < 0)
        test_fail("transmit not completed in 10 s");
}

static void eth_hdr(const uint8_t *dst, uint16_t type)
{
    memcpy(tx, dst, 6);
    memcpy(tx + 6, mac, 6);
    put16(tx + 12, type);
}

/* IPv4 header at tx + ETH for a payload of len bytes. */
static void ip_hdr(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
    static uint16_t ident;
    uint8_t *ip = tx + ETH;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + len));
    put16(ip + 4, ident++);
    ip[8] = 64;
    ip[9] = proto;
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, csum(ip, 20));
}

static void arp_learn(uint32_t ip, const uint8_t *m)
{
    if (!ip || (m[0] & 1))
        return;
    for (unsigned i = 0; i < 8; i++)
        if (arp_cache[i].ip == ip) {
            memcpy(arp_cache[i].mac, m, 6);
            return;
        }
    arp_cache[arp_next % 8].ip = ip;
    memcpy(arp_cache[arp_next % 8].mac, m, 6);
    arp_next++;
}

static const uint8_t *arp_lookup(uint32_t ip)
{
    for (unsigned i = 0; i < 8; i++)
        if (arp_cache[i].ip == ip)
            return arp_cache[i].mac;
    return NULL;
}

static void send_arp(uint16_t op, const uint8_t *dmac, uint32_t dip)
{
    eth_hdr(op == 1 ? bcast : dmac, 0x0806);
    uint8_t *a = tx + ETH;
    put16(a, 1); put16(a + 2, 0x0800); a[4] = 6; a[5] = 4; put16(a + 6, op);
    memcpy(a + 8, mac, 6); put32(a + 14, my_ip);
    if (op == 1)
        memset(a + 18, 0, 6);
    else
        memcpy(a + 18, dmac, 6);
    put32(a + 24, dip);
    send_frame(ETH + 28);
}

static void rx_arp(const uint8_t *a, size_t len)
{
    if (len < 28 || get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) {
        dropped++;
        return;
    }
    uint16_t op = get16(a + 6);
    uint32_t sip = get32(a + 14), tip = get32(a + 24);
    if (my_ip && tip == my_ip) {
        arp_learn(sip, a + 8);
        if (op == 1) {
            uint8_t sha[6];
            memcpy(sha, a + 8, 6);
            send_arp(2, sha, sip);
        }
    } else if (op == 2) {
        arp_learn(sip, a + 8);
    }
}

static void rx_icmp(const uint8_t *src_mac, const uint8_t *ip, size_t ihl, size_t len)
{
    const uint8_t *ic = ip + ihl;
    size_t n = len - ihl;
    if (n < 8 || csum(ic, n) != 0) {
        dropped++;
        return;
    }
    uint32_t src = get32(ip + 12);
    if (ic[0] == 8 && get32(ip + 16) == my_ip && n <= sizeof(tx) - ETH - 20) {
        /* echo request: answer with the same id, sequence and data */
        uint8_t dmac[6];
        memcpy(dmac, src_mac, 6);
        arp_learn(src, dmac);
        eth_hdr(dmac, 0x0800);
        uint8_t *r = tx + ETH + 20;
        memmove(r, ic, n);
        r[0] = 0;
        put16(r + 2, 0);
        put16(r + 2, csum(r, n));
        ip_hdr(my_ip, src, 1, n);
        send_frame(ETH + 20 + n);
        answered++;
        for (unsigned i = 0; i < 8; i++)
            if (echo_from[i].ip == src || !echo_from[i].ip) {
                echo_from[i].ip = src;
                echo_from[i].n++;
                break;
            }
        printf("NET: answered echo from %s\n", ipstr(src));
    } else if (ic[0] == 0 && get16(ic + 4) == ping_id) {
        ping_seq_got = get16(ic + 6);
    }
}

static void rx_udp(const uint8_t *ip, size_t ihl, size_t len)
{
    const uint8_t *u = ip + ihl;
    size_t n = len - ihl;
    if (n < 8 || get16(u + 4) < 8 || get16(u + 4) > n) {
        dropped++;
        return;
    }
    n = get16(u + 4) - 8u;
    if (!want_port || get16(u + 2) != want_port || udp_len || n == 0 || n > sizeof(udp_data))
        return;
    memcpy(udp_data, u + 8, n);
    udp_len = n;
    udp_src = get32(ip + 12);
}

static void rx_frame(const uint8_t *f, size_t len)
{
    if (len < ETH) {
        dropped++;
        return;
    }
    if (memcmp(f, mac, 6) && memcmp(f, bcast, 6))
        return;
    uint16_t type = get16(f + 12);
    const uint8_t *p = f + ETH;
    len -= ETH;
    if (type == 0x0806) {
        rx_arp(p, len);
        return;
    }
    if (type != 0x0800)
        return;
    if (len < 20 || (p[0] >> 4) != 4) {
        dropped++;
        return;
    }
    size_t ihl = (size_t)(p[0] & 15) * 4, tot = get16(p + 2);
    if (ihl < 20 || tot < ihl || tot > len || csum(p, ihl) != 0) {
        dropped++;
        return;
    }
    if (get16(p + 6) & 0x3fff)      /* a fragment: not for this client */
        return;
    uint32_t dst = get32(p + 16);
    if (my_ip && dst != my_ip && dst != 0xffffffff && dst != (my_ip | ~mask))
        return;
    if (p[9] == 1 && my_ip)
        rx_icmp(f + 6, p, ihl, tot);
    else if (p[9] == 17)
        rx_udp(p, ihl, tot);
}

/* Receives and handles frames for up to ms milliseconds, or until one came. */
static void poll_net(unsigned ms)
{
    uint32_t len;
    int head = virtq_sleep_used(&rxq, &len, ms);
    while (head >= 0) {
        if ((unsigned)head >= QSIZE) {
            dropped++;
        } else {
            if (len > HDR && len <= BUFSZ)
                rx_frame(rxbufs[head] + HDR, len - HDR);
            else
                dropped++;
            post_rx((unsigned)head);
        }
        virtq_kick(&rxq);
        head = virtq_get_used(&rxq, &len);
    }
}

static uint64_t step_deadline(void) { return timeout_start(step_ms); }

static const uint8_t *resolve_mac(uint32_t ip)
{
    uint32_t hop = ((ip ^ my_ip) & mask) ? router : ip;
    if (!hop)
        test_fail("no route to %s", ipstr(ip));
    uint64_t deadline = step_deadline();
    while (!timeout_expired(deadline)) {
        const uint8_t *m = arp_lookup(hop);
        if (m)
            return m;
        send_arp(1, NULL, hop);
        uint64_t wait = timeout_start(1000);
        while (!arp_lookup(hop) && !timeout_expired(wait))
            poll_net(200);
    }
    test_fail("no ARP reply from %s", ipstr(hop));
}

static void send_udp(const uint8_t *dmac, uint32_t src, uint32_t dst, uint16_t sport,
                     uint16_t dport, const uint8_t *data, size_t n)
{
    eth_hdr(dmac, 0x0800);
    uint8_t *u = tx + ETH + 20;
    put16(u, sport); put16(u + 2, dport); put16(u + 4, (uint16_t)(8 + n)); put16(u + 6, 0);
    memmove(u + 8, data, n);
    ip_hdr(src, dst, 17, 8 + n);
    send_frame(ETH + 20 + 8 + n);
}

/* ---- DHCP ---- */

static uint8_t dhcp[600];

static size_t dhcp_msg(uint8_t type, uint32_t xid, uint32_t req_ip)
{
    memset(dhcp, 0, sizeof(dhcp));
    dhcp[0] = 1; dhcp[1] = 1; dhcp[2] = 6;
    put32(dhcp + 4, xid);
    put16(dhcp + 10, 0x8000);       /* broadcast replies: no address yet */
    memcpy(dhcp + 28, mac, 6);
    put32(dhcp + 236, 0x63825363);
    uint8_t *o = dhcp + 240;
    *o++ = 53; *o++ = 1; *o++ = type;
    size_t nl = strlen(name);
    *o++ = 12; *o++ = (uint8_t)nl; memcpy(o, name, nl); o += nl;
    *o++ = 55; *o++ = 4; *o++ = 1; *o++ = 3; *o++ = 6; *o++ = 15;
    if (req_ip) {
        *o++ = 50; *o++ = 4; put32(o, req_ip); o += 4;
        *o++ = 54; *o++ = 4; put32(o, server_id); o += 4;
    }
    *o++ = 255;
    return (size_t)(o - dhcp);
}

struct lease { uint8_t type; uint32_t yiaddr, mask, router, dns, server, time; char domain[64]; };

/* Parses udp_data as a BOOTP reply to xid; false if it is not one. */
static bool dhcp_parse(uint32_t xid, struct lease *l)
{
    const uint8_t *d = udp_data;
    size_t n = udp_len;
    if (n < 240 || d[0] != 2 || get32(d + 4) != xid || memcmp(d + 28, mac, 6) ||
        get32(d + 236) != 0x63825363)
        return false;
    memset(l, 0, sizeof(*l));
    l->yiaddr = get32(d + 16);
    for (size_t i = 240; i < n;) {
        uint8_t opt = d[i];
        if (opt == 255)
            break;
        if (opt == 0) {
            i++;
            continue;
        }
        if (i + 2 > n || i + 2 + d[i + 1] > n)
            return false;
        const uint8_t *v = d + i + 2;
        uint8_t ol = d[i + 1];
        if (opt == 53 && ol == 1) l->type = v[0];
        if (opt == 1 && ol == 4) l->mask = get32(v);
        if (opt == 3 && ol >= 4) l->router = get32(v);
        if (opt == 6 && ol >= 4) l->dns = get32(v);
        if (opt == 54 && ol == 4) l->server = get32(v);
        if (opt == 51 && ol == 4) l->time = get32(v);
        if (opt == 15 && ol < sizeof(l->domain)) {
            for (unsigned k = 0; k < ol; k++)
                l->domain[k] = (v[k] >= 0x21 && v[k] < 0x7f) ? (char)v[k] : '?';
            l->domain[ol] = 0;
        }
        i += 2u + ol;
    }
    return l->type != 0;
}

/* Sends msg until a reply of one of the wanted types arrives (or NAK). */
static bool dhcp_exchange(size_t len, uint32_t xid, uint8_t want, struct lease *l)
{
    uint64_t deadline = step_deadline();
    while (!timeout_expired(deadline)) {
        uint8_t msg[sizeof(dhcp)];
        memcpy(msg, dhcp, len);
        udp_len = 0;
        want_port = 68;
        send_udp(bcast, 0, 0xffffffff, 68, 67, msg, len);
        uint64_t wait = timeout_start(2000);
        while (!timeout_expired(wait)) {
            poll_net(200);
            if (!udp_len)
                continue;
            bool ok = dhcp_parse(xid, l);
            udp_len = 0;
            if (ok && (l->type == want || l->type == 6)) {
                want_port = 0;
                return l->type == want;
            }
        }
    }
    want_port = 0;
    return false;
}

static void do_dhcp(void)
{
    struct lease l;
    for (int attempt = 0; attempt < 3; attempt++) {
        uint32_t xid = (uint32_t)rdtsc() ^ get32(mac + 2);
        my_ip = 0;
        if (!dhcp_exchange(dhcp_msg(1, xid, 0), xid, 2, &l))
            test_fail("no DHCP offer");
        if (!l.yiaddr || !l.server)
            test_fail("DHCP offer without an address or server id");
        server_id = l.server;
        if (!dhcp_exchange(dhcp_msg(3, xid, l.yiaddr), xid, 5, &l))
            continue;                   /* NAK: start again */
        my_ip = l.yiaddr;
        mask = l.mask ? l.mask : 0xffffff00;
        router = l.router;
        dns_ip = l.dns;
        strlcpy(domain, l.domain, sizeof(domain));
        unsigned len = 0;
        for (uint32_t m = mask; m & 0x80000000u; m <<= 1)
            len++;
        printf("NET: lease ip=%s/%u router=%s dns=%s server=%s domain=%s time=%u\n",
               ipstr(my_ip), len, ipstr(router), ipstr(dns_ip), ipstr(l.server),
               domain[0] ? domain : "-", l.time);
        return;
    }
    test_fail("DHCP server keeps refusing (NAK)");
}

/* ---- DNS ---- */

/* Skips a (possibly compressed) name at d[*i]; false if it runs off the end. */
static bool dns_skip_name(const uint8_t *d, size_t n, size_t *i)
{
    for (unsigned labels = 0; labels < 128; labels++) {
        if (*i >= n)
            return false;
        uint8_t c = d[*i];
        if (c == 0) {
            (*i)++;
            return true;
        }
        if ((c & 0xc0) == 0xc0) {
            if (*i + 2 > n)
                return false;
            *i += 2;
            return true;
        }
        if (c & 0xc0)
            return false;
        *i += 1u + c;
    }
    return false;
}

/* The A record of q; 0 if the server says there is none and !fatal. */
static uint32_t resolve(const char *q, bool fatal)
{
    if (!dns_ip)
        test_fail("no DNS server to ask for %s", q);
    static uint16_t id = 0x4b00;
    uint8_t m[300];
    size_t qlen = strlen(q);
    if (qlen == 0 || qlen > 200)
        test_fail("bad name to resolve");
    memset(m, 0, 12);
    put16(m, ++id);
    put16(m + 2, 0x0100);               /* RD */
    put16(m + 4, 1);
    size_t o = 12;
    for (const char *s = q; *s;) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);
        if (l == 0 || l > 63)
            test_fail("bad name to resolve: %s", q);
        m[o++] = (uint8_t)l;
        memcpy(m + o, s, l);
        o += l;
        s += l + (dot ? 1 : 0);
    }
    m[o++] = 0;
    put16(m + o, 1); put16(m + o + 2, 1);
    o += 4;
    uint16_t sport = (uint16_t)(40000 + (rdtsc() & 0x3fff));
    uint64_t deadline = step_deadline();
    while (!timeout_expired(deadline)) {
        const uint8_t *dmac = resolve_mac(dns_ip);
        uint8_t dm[6];
        memcpy(dm, dmac, 6);
        udp_len = 0;
        want_port = sport;
        send_udp(dm, my_ip, dns_ip, sport, 53, m, o);
        uint64_t wait = timeout_start(2000);
        while (!timeout_expired(wait)) {
            poll_net(200);
            if (!udp_len)
                continue;
            const uint8_t *d = udp_data;
            size_t n = udp_len;
            udp_len = 0;
            if (udp_src != dns_ip || n < 12 || get16(d) != id || !(d[2] & 0x80))
                continue;
            want_port = 0;
            unsigned rcode = d[3] & 15, qd = get16(d + 4), an = get16(d + 6);
            size_t i = 12;
            for (unsigned k = 0; k < qd; k++)
                if (!dns_skip_name(d, n, &i) || (i += 4) > n)
                    test_fail("malformed DNS answer for %s", q);
            for (unsigned k = 0; k < an && rcode == 0; k++) {
                if (!dns_skip_name(d, n, &i) || i + 10 > n)
                    test_fail("malformed DNS answer for %s", q);
                uint16_t type = get16(d + i), cls = get16(d + i + 2), rdl = get16(d + i + 8);
                i += 10;
                if (i + rdl > n)
                    test_fail("malformed DNS answer for %s", q);
                if (type == 1 && cls == 1 && rdl == 4) {
                    uint32_t a = get32(d + i);
                    printf("NET: resolve %s = %s\n", q, ipstr(a));
                    return a;
                }
                i += rdl;
            }
            if (!fatal)
                return 0;
            test_fail("cannot resolve %s: rcode=%u answers=%u", q, rcode, an);
        }
    }
    test_fail("no DNS answer for %s from %s", q, ipstr(dns_ip));
}

static uint32_t do_resolve(const char *q) { return resolve(q, true); }

static void do_wait(const char *q)
{
    uint64_t deadline = step_deadline();
    while (!timeout_expired(deadline)) {
        uint32_t a = resolve(q, false);
        if (a) {
            printf("NET: waited for %s = %s\n", q, ipstr(a));
            return;
        }
        uint64_t pause = timeout_start(500);
        while (!timeout_expired(pause))
            poll_net(100);
    }
    test_fail("%s never resolved", q);
}

/* ---- ICMP echo ---- */

static void do_ping(const char *target, unsigned count)
{
    uint32_t dst;
    const char *end;
    if (!parse_ip(target, &dst, &end) || *end)
        dst = do_resolve(target);
    ping_id = (uint16_t)(0x4b48 + (rdtsc() & 0xff));
    for (unsigned seq = 1; seq <= count; seq++) {
        bool ok = false;
        uint64_t deadline = step_deadline();
        while (!ok && !timeout_expired(deadline)) {
            uint8_t dm[6];
            memcpy(dm, resolve_mac(dst), 6);
            eth_hdr(dm, 0x0800);
            uint8_t *ic = tx + ETH + 20;
            ic[0] = 8; ic[1] = 0; put16(ic + 2, 0); put16(ic + 4, ping_id); put16(ic + 6, (uint16_t)seq);
            for (unsigned i = 0; i < 56; i++)
                ic[8 + i] = (uint8_t)(i + seq);
            put16(ic + 2, csum(ic, 64));
            ip_hdr(my_ip, dst, 1, 64);
            ping_seq_got = 0;
            send_frame(ETH + 20 + 64);
            uint64_t wait = timeout_start(2000);
            while (ping_seq_got != seq && !timeout_expired(wait))
                poll_net(200);
            ok = ping_seq_got == seq;
        }
        if (!ok)
            test_fail("no echo reply from %s (%s) for seq %u", target, ipstr(dst), seq);
        printf("NET: ping %s (%s) seq=%u ok\n", target, ipstr(dst), seq);
    }
}

static unsigned answered_from(uint32_t ip)
{
    if (!ip)
        return answered;
    for (unsigned i = 0; i < 8; i++)
        if (echo_from[i].ip == ip)
            return echo_from[i].n;
    return 0;
}

static void do_serve(char *arg)
{
    char *from = strchr(arg, ':');
    if (from)
        *from++ = 0;
    unsigned n = (unsigned)strtoul(arg, NULL, 10);
    uint32_t src = 0;
    const char *end;
    if (from && (!parse_ip(from, &src, &end) || *end))
        src = do_resolve(from);
    uint64_t deadline = step_deadline();
    while (answered_from(src) < n && !timeout_expired(deadline))
        poll_net(500);
    if (answered_from(src) < n)
        test_fail("only %u of %u echo requests came", answered_from(src), n);
    printf("NET: served %u echo requests\n", answered_from(src));
}

static void static_config(const char *s)
{
    const char *end;
    if (!parse_ip(s, &my_ip, &end) || *end != '/')
        test_fail("bad ip=%s", s);
    unsigned len = (unsigned)strtoul(end + 1, NULL, 10);
    if (len == 0 || len > 30)
        test_fail("bad prefix length in ip=%s", s);
    mask = ~0u << (32 - len);
    char v[20];
    if (cmdline_get("router", v, sizeof(v)) && !parse_ip(v, &router, NULL))
        test_fail("bad router=%s", v);
    if (cmdline_get("dns", v, sizeof(v)) && !parse_ip(v, &dns_ip, NULL))
        test_fail("bad dns=%s", v);
}

int main(void)
{
    char steps[256] = "dhcp", v[32];
    cmdline_get("name", name, sizeof(name));
    cmdline_get("do", steps, sizeof(steps));
    step_ms = (unsigned)cmdline_get_u64("timeout", 10, 120) * 1000;
    unsigned count = (unsigned)cmdline_get_u64("count", 10, 3);
    int bdf = pci_find_device(0x1af4, 0x1041, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf))
        test_fail("no virtio-net device");
    if (!virtio_negotiate(&dev, 1ull << F_MAC | 1ull << F_STATUS | 1ull << VIRTIO_F_EVENT_IDX))
        test_fail("FEATURES_OK refused");
    virtio_setup_irq(&dev, VIRTIO_IRQ_MSIX, 0x60);
    if (!virtq_setup(&dev, &rxq, 0, QSIZE, rxmem, 1) || !virtq_setup(&dev, &txq, 1, QSIZE, txmem, 2))
        test_fail("queues missing");
    for (unsigned i = 0; i < QSIZE; i++)
        post_rx(i);
    virtio_driver_ok(&dev);
    virtq_kick(&rxq);
    for (unsigned i = 0; i < 6; i++)
        mac[i] = virtio_cfg_read8(&dev, i);
    printf("NET: mac=%02x:%02x:%02x:%02x:%02x:%02x name=%s\n", mac[0], mac[1], mac[2], mac[3],
           mac[4], mac[5], name);
    if (cmdline_get("ip", v, sizeof(v)))
        static_config(v);

    for (char *s = steps; *s;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = 0;
        char *arg = strchr(s, ':');
        if (arg)
            *arg++ = 0;
        if (!strcmp(s, "dhcp"))
            do_dhcp();
        else if (!strcmp(s, "resolve") && arg)
            do_resolve(arg);
        else if (!strcmp(s, "ping") && arg)
            do_ping(arg, count);
        else if (!strcmp(s, "wait") && arg)
            do_wait(arg);
        else if (!strcmp(s, "serve") && arg)
            do_serve(arg);
        else
            test_fail("unknown step '%s'", s);
        s = comma ? comma + 1 : s + strlen(s);
    }
    printf("NET: dropped %u malformed frames\n", dropped);
    virtio_reset(&dev);
    return 0;
}
