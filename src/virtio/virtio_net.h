/* virtio-net's entry points besides its -s emulation (net.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pci_bus;
struct platform;
struct tap;
struct virtio_dev;

/* bhyve's default MAC for slot, func and the VM's name. */
void virtio_net_default_mac(unsigned slot, unsigned func, const char *vm, uint8_t mac[6]);

/* A virtio-net function on a tap the caller opened (the device owns it
 * from here, even on failure); unit tests and fuzz harnesses pass one
 * made from a socket. MAC 02:00:00:00:00:01, no MTU. */
int virtio_net_create_on_tap(struct pci_bus *bus, unsigned slot, unsigned func, struct platform *p,
			     struct tap *tap, struct virtio_dev **out, char *err, size_t errlen);

/* The link state the guest sees (STATUS), as the tap's carrier watch sets
 * it: a change raises a config interrupt; coming up also asks the guest
 * to announce itself (GUEST_ANNOUNCE). Callable from any thread. */
void virtio_net_set_link(struct virtio_dev *v, bool up);
