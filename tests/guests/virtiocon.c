/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Drives virtio-console (1af4:1043) with MULTIPORT: the control queue
 * handshake (DEVICE_READY, DEVICE_ADD, PORT_READY, PORT_NAME, CONSOLE_PORT,
 * PORT_OPEN), then text both ways. Command line (all optional):
 *   say=1            write "hello from <name>\n" on every port
 *   wait=<name>      before that, wait until the host side of <name> is open
 *   listen=<name>    read a line from port <name>
 *   emerg=1          write "E" through the emergency-write register
 * Output:
 *   CON: ports=<max_nr_ports> multiport=<0|1>
 *   CON: port <id> name=<name> console=<0|1> open=<0|1>
 *   CON: <name> open                          (after wait=)
 *   CON: said <n> bytes on <name>
 *   CON: <name> got <line>
 *   PASS
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

#define F_MULTIPORT 1
#define F_EMERG 2
#define MAXP 8
#define QSIZE 16

static uint8_t qmem[2 * (MAXP + 1)][2 * 4096] __attribute__((aligned(4096)));
static uint8_t rxbuf[MAXP + 1][QSIZE][128];
static uint8_t txbuf[256];
static struct virtio_dev dev;
static struct virtq rx[MAXP], tx[MAXP], crx, ctx;
static unsigned nports;
static struct {
    bool added, console, open;
    char name[64];
} port[MAXP];
static uint8_t cmsg[8];

static void post(struct virtq *q, unsigned slot)
{
    for (unsigned i = 0; i < QSIZE; i++) {
        struct vbuf b = { rxbuf[slot][i], 128, true };
        virtq_add(q, &b, 1, NULL);
    }
    virtq_kick(q);
}

static void ctrl_send(uint32_t id, uint16_t event, uint16_t value)
{
    memcpy(cmsg, &id, 4);
    memcpy(cmsg + 4, &event, 2);
    memcpy(cmsg + 6, &value, 2);
    struct vbuf b = { cmsg, 8, false };
    virtq_add(&ctx, &b, 1, NULL);
    virtq_kick(&ctx);
    uint32_t l;
    if (virtq_wait_used(&ctx, &l, 3000) < 0)
        test_fail("control message not taken");
}

/* Handle control messages for up to ms; true if any came. */
static bool ctrl_poll(unsigned ms)
{
    uint32_t len;
    int h = virtq_wait_used(&crx, &len, ms);
    if (h < 0)
        return false;
    /* heads map to buffer slots in post() order: desc i is buffer i */
    uint8_t *m = rxbuf[MAXP][h];
    uint32_t id;
    uint16_t ev, val;
    memcpy(&id, m, 4);
    memcpy(&ev, m + 4, 2);
    memcpy(&val, m + 6, 2);
    if (id < MAXP) {
        switch (ev) {
        case 1: /* DEVICE_ADD */
            port[id].added = true;
            ctrl_send(id, 3, 1); /* PORT_READY */
            break;
        case 4: port[id].console = true; break;
        case 6: port[id].open = val; break;
        case 7: {
            size_t n = len > 8 ? len - 8 : 0;
            if (n > 63)
                n = 63;
            memcpy(port[id].name, m + 8, n);
            port[id].name[n] = 0;
            break;
        }
        }
    }
    struct vbuf b = { m, 128, true };
    virtq_add(&crx, &b, 1, NULL);
    virtq_kick(&crx);
    return true;
}

static int find(const char *name)
{
    for (unsigned i = 0; i < nports; i++)
        if (!strcmp(port[i].name, name))
            return (int)i;
    return -1;
}

int main(void)
{
    int bdf = pci_find_device(0x1af4, 0x1043, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf))
        test_fail("no virtio-console device");
    if (!virtio_negotiate(&dev, 1ull << F_MULTIPORT | 1ull << F_EMERG | 1ull << VIRTIO_F_EVENT_IDX))
        test_fail("FEATURES_OK refused");
    virtio_setup_irq(&dev, VIRTIO_IRQ_POLL, 0);
    nports = virtio_cfg_read32(&dev, 4);
    bool mp = dev.features & (1ull << F_MULTIPORT);
    printf("CON: ports=%u multiport=%d\n", nports, mp);
    if (nports > MAXP)
        nports = MAXP;
    for (unsigned i = 0; i < nports; i++) {
        unsigned rq = i == 0 ? 0 : 2 + 2 * i;
        if (!virtq_setup(&dev, &rx[i], rq, QSIZE, qmem[2 * i], VIRTIO_NO_VECTOR) ||
            !virtq_setup(&dev, &tx[i], rq + 1, QSIZE, qmem[2 * i + 1], VIRTIO_NO_VECTOR))
            test_fail("port %u queues missing", i);
    }
    if (!virtq_setup(&dev, &crx, 2, QSIZE, qmem[2 * MAXP], VIRTIO_NO_VECTOR) ||
        !virtq_setup(&dev, &ctx, 3, QSIZE, qmem[2 * MAXP + 1], VIRTIO_NO_VECTOR))
        test_fail("control queues missing");
    virtio_driver_ok(&dev);
    for (unsigned i = 0; i < nports; i++)
        post(&rx[i], i);
    post(&crx, MAXP);
    ctrl_send(0, 0, 1); /* DEVICE_READY */
    while (ctrl_poll(500))
        ;
    for (unsigned i = 0; i < nports; i++) {
        printf("CON: port %u name=%s console=%d open=%d\n", i, port[i].name, port[i].console,
               port[i].open);
        if (!port[i].added)
            test_fail("port %u was never added", i);
    }
    if (cmdline_has("emerg"))
        virtio_cfg_write8(&dev, 8, 'E');
    char name[64];
    if (cmdline_get("wait", name, sizeof(name))) {
        int p = find(name);
        if (p < 0)
            test_fail("no port %s", name);
        uint64_t deadline = timeout_start(30000);
        while (!port[p].open && !timeout_expired(deadline))
            ctrl_poll(200);
        if (!port[p].open)
            test_fail("the host side of %s never opened", name);
        printf("CON: %s open\n", name);
    }
    if (cmdline_has("say")) {
        for (unsigned i = 0; i < nports; i++) {
            int n = snprintf((char *)txbuf, sizeof(txbuf), "hello from %s\n", port[i].name);
            struct vbuf b = { txbuf, (uint32_t)n, false };
            virtq_add(&tx[i], &b, 1, NULL);
            virtq_kick(&tx[i]);
            uint32_t l;
            if (virtq_wait_used(&tx[i], &l, 3000) < 0)
                test_fail("port %u did not take our text", i);
            printf("CON: said %d bytes on %s\n", n, port[i].name);
        }
    }
    if (cmdline_get("listen", name, sizeof(name))) {
        int p = find(name);
        if (p < 0)
            test_fail("no port %s", name);
        char line[128];
        size_t n = 0;
        uint64_t deadline = timeout_start(30000);
        while (!timeout_expired(deadline)) {
            uint32_t len;
            int h = virtq_wait_used(&rx[p], &len, 500);
            if (h < 0)
                continue;
            uint8_t *b = rxbuf[p][h];
            bool nl = false;
            for (uint32_t k = 0; k < len && n < sizeof(line) - 1; k++) {
                if (b[k] == '\n') {
                    nl = true;
                    break;
                }
                line[n++] = (char)b[k];
            }
            struct vbuf vb = { b, 128, true };
            virtq_add(&rx[p], &vb, 1, NULL);
            virtq_kick(&rx[p]);
            if (nl)
                break;
        }
        line[n] = 0;
        printf("CON: %s got %s\n", name, line);
        if (!n)
            test_fail("nothing arrived on %s", name);
    }
    virtio_reset(&dev);
    return 0;
}
