/* KVM's GSI routing table, irqfd and ioeventfd, offered to devices as the
 * msi_route_*, irqfd, ioeventfd and signal_msi hooks of struct platform.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so this keeps the table
 * KVM starts with (GSIs 0-15 to the PICs and the IOAPIC, 16-23 to the
 * IOAPIC) and adds one MSI entry per route a device asks for. */
#pragma once
#include <stdint.h>

struct vm;

/* Fill in the platform hooks of vm (called by vm_create). Returns 0 or
 * -errno; nothing is allocated until a device adds a route. */
int irq_routing_attach(struct vm *vm);
void irq_routing_detach(struct vm *vm);
