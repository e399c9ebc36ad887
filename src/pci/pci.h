/* PCI bus 0: configuration mechanism #1 (0xCF8/0xCFC) and ECAM, type-0
 * configuration headers, BAR sizing and placement, capability lists, MSI,
 * MSI-X (table and PBA) and INTx through the IOAPIC.
 *
 * Where the windows, ECAM and INTx lines are: machine/memmap.h (64-bit
 * BARs of at most PCI_MMIO64_SMALL go below 4 GiB, as bhyve places them).
 *
 * Devices are created on the bus, describe their header, BARs and
 * capabilities, and then the bus is "sealed" (pci_bus_finish): BARs get
 * addresses, decoding is switched on (there is no firmware to do it) and
 * the INTx routes are fixed. Config accesses are serialized by one bus
 * lock; device callbacks run with it held.
 *
 * Lock order: bus lock, then a device's own lock, then a function's
 * irq_lock. Device threads never take the bus lock. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/io_bus.h"
#include "dev/platform.h"
#include "machine/memmap.h"

#define PCI_SLOTS 32
#define PCI_FUNCS 8
#define PCI_CFG_SIZE 256

#define PCI_MMIO64_SMALL 0x8000000ULL /* 64-bit BARs up to this go below 4 GiB */
#define PCI_CONFIG_ADDRESS_PORT 0xCF8
#define PCI_CONFIG_DATA_PORT 0xCFC

/* Configuration header offsets and bits. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define  PCI_COMMAND_IO 0x0001
#define  PCI_COMMAND_MEMORY 0x0002
#define  PCI_COMMAND_MASTER 0x0004
#define  PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS 0x06
#define  PCI_STATUS_INTERRUPT 0x0008
#define  PCI_STATUS_CAP_LIST 0x0010
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a /* subclass, then base class at 0x0b */
#define PCI_HEADER_TYPE 0x0e
#define  PCI_HEADER_TYPE_MULTI 0x80
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

#define PCI_MSI_FLAGS_ENABLE 0x0001
#define PCI_MSI_FLAGS_64BIT 0x0080
#define PCI_MSI_FLAGS_MASKBIT 0x0100
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 1u

#define PCI_NO_VECTOR 0xFFFF

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bus;
struct pci_dev;

struct pci_dev_ops {
	/* Config reads/writes of registers the core does not own (0x40 and
	 * up, outside the capabilities the core manages). NULL: reads give
	 * the stored bytes, writes go through the write mask. */
	uint32_t (*cfg_read)(struct pci_dev *d, unsigned reg, unsigned size);
	void (*cfg_write)(struct pci_dev *d, unsigned reg, unsigned size, uint32_t value);
	/* A BAR was mapped at addr (mapped true) or unmapped. Called with the
	 * bus lock held, after the io_bus change. */
	void (*bar_map)(struct pci_dev *d, int bar, uint64_t addr, bool mapped);
	/* Destroy the device's own state (the core frees struct pci_dev). */
	void (*destroy)(struct pci_dev *d);
};

struct pci_bar {
	enum pci_bar_type type;
	bool prefetch;
	uint64_t size; /* power of two; 0 = unused */
	uint64_t addr; /* as programmed */
	bool mapped;   /* registered on the bus at mapped_addr */
	uint64_t mapped_addr;
	const struct io_ops *ops;
	void *opaque;
};

struct pci_msix_vector {
	uint64_t addr;
	uint32_t data;
	uint32_t ctrl;
	bool pending;
	int gsi;     /* KVM route, -1 none */
	int efd;     /* its irqfd, -1 none */
	bool stale;  /* addr/data changed since the route was written */
};

struct pci_dev {
	struct pci_bus *bus;
	struct platform *p;
	uint8_t slot, func;
	char name[24];
	const struct pci_dev_ops *ops;
	void *opaque;

	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* bits cleared by writing 1 */
	uint8_t cap_end;               /* next free config byte for a capability */
	uint8_t last_cap;              /* offset of the last capability, 0 none */
	struct pci_bar bar[6];

	/* INTx: pin 1-4 (INTA-INTD), 0 none; gsi fixed at pci_bus_finish. */
	uint8_t intx_pin;
	unsigned intx_gsi;
	atomic_bool intx_level; /* what the device asks for */
	bool intx_on;    /* what it contributes to the line now */

	bool intx_disabled; /* copy of COMMAND.INTX_DISABLE */

	/* MSI (one vector, 64-bit, maskable). The message and mask are
	 * copied from config space under irq_lock. */
	uint8_t msi_cap; /* config offset, 0 none */
	int msi_gsi, msi_efd;
	bool msi_stale, msi_pending, msi_masked;
	uint64_t msi_addr;
	uint32_t msi_data;

	/* MSI-X. */
	uint8_t msix_cap;
	int msix_bar;
	uint32_t msix_table_off, msix_pba_off;
	unsigned msix_nvec;
	struct pci_msix_vector *msix;
	bool msix_maskall;
	void (*msix_watch)(void *opaque); /* see pci_msix_set_watch */
	void *msix_watch_opaque;
	pthread_mutex_t irq_lock; /* MSI/MSI-X state and INTx level */
	atomic_bool msix_enabled, msi_enabled;
};

/* Create the bus: claims 0xCF8 and 0xCFC (4 bytes each) and ECAM. */
int pci_bus_create(struct platform *p, struct pci_bus **out);
void pci_bus_destroy(struct pci_bus *bus); /* destroys every device */

/* A new function at slot:func with the given IDs and class (base class
 * << 16 | subclass << 8 | prog-if). Returns -EEXIST when taken, -EINVAL
 * for a slot or function out of range. */
int pci_dev_create(struct pci_bus *bus, unsigned slot, unsigned func, const char *name,
		   uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
		   const struct pci_dev_ops *ops, void *opaque, struct pci_dev **out);
struct pci_dev *pci_bus_get(struct pci_bus *bus, unsigned slot, unsigned func);

/* Header helpers for device set-up (before pci_bus_finish). */
void pci_set_u8(struct pci_dev *d, unsigned reg, uint8_t v);
void pci_set_u16(struct pci_dev *d, unsigned reg, uint16_t v);
void pci_set_u32(struct pci_dev *d, unsigned reg, uint32_t v);
uint8_t pci_get_u8(const struct pci_dev *d, unsigned reg);
uint16_t pci_get_u16(const struct pci_dev *d, unsigned reg);
uint32_t pci_get_u32(const struct pci_dev *d, unsigned reg);
void pci_set_subsystem(struct pci_dev *d, uint16_t vendor, uint16_t id);

/* Declare BAR n (size a power of two: >= 16 for memory, >= 4 for I/O).
 * A 64-bit BAR takes n and n+1. Accesses reach ops with offsets relative
 * to the BAR. */
int pci_bar_init(struct pci_dev *d, int n, enum pci_bar_type type, uint64_t size, bool prefetch,
		 const struct io_ops *ops, void *opaque);

/* Append a capability of len bytes (header included); returns its config
 * offset, or 0 when it does not fit. The caller fills in the body (and
 * may open bits in wmask). */
unsigned pci_cap_add(struct pci_dev *d, uint8_t id, unsigned len);
/* An MSI capability (one vector, 64-bit address, per-vector mask). */
int pci_msi_init(struct pci_dev *d);
/* An MSI-X capability with nvec vectors whose table (at table_off) and
 * PBA (at pba_off) live in BAR bar, which must already be declared and
 * is then served by the core. */
int pci_msix_init(struct pci_dev *d, unsigned nvec, int bar, uint32_t table_off,
		  uint32_t pba_off);
/* Use INTx pin (1 = INTA#). */
void pci_intx_init(struct pci_dev *d, uint8_t pin);

/* Place BARs, switch decoding on, wire INTx, set multi-function bits.
 * Fills routes (at most max entries) with the INTx routes in use and
 * returns their count, or -errno. */
int pci_bus_finish(struct pci_bus *bus, struct pci_intx_route *routes, unsigned max, char *err,
		   size_t errlen);

/* Interrupts, callable from any thread. */
bool pci_msix_enabled(struct pci_dev *d);
bool pci_msi_enabled(struct pci_dev *d);
/* Deliver MSI-X vector (ignored for PCI_NO_VECTOR or out of range; held
 * pending while masked). */
void pci_msix_notify(struct pci_dev *d, unsigned vector);
void pci_msi_notify(struct pci_dev *d);
/* For a back end that signals completions itself (vhost): the eventfd
 * that raises MSI-X vector `vector` without passing through this process
 * (the irqfd on its KVM route, made and brought up to date now). -1 when
 * the vector cannot be raised that way now: MSI-X off, the vector masked,
 * or no KVM routes; the caller then signals through pci_msix_notify,
 * which keeps a masked vector pending. */
int pci_msix_irqfd(struct pci_dev *d, unsigned vector);
/* changed(opaque) is called whenever what pci_msix_irqfd would answer may
 * have changed (MSI-X enabled or disabled, a mask or a message written),
 * on the thread that changed it, before the guest's write completes, with
 * no PCI lock held. One watcher per function; NULL removes it. */
void pci_msix_set_watch(struct pci_dev *d, void (*changed)(void *opaque), void *opaque);
/* Drive the function's INTx line (shared lines are ORed). */
void pci_intx_set(struct pci_dev *d, bool level);

/* Config space access as the guest sees it (bus 0), for tests: size 1, 2
 * or 4; absent functions read all-ones. */
uint32_t pci_cfg_read(struct pci_bus *bus, unsigned slot, unsigned func, unsigned reg,
		      unsigned size);
void pci_cfg_write(struct pci_bus *bus, unsigned slot, unsigned func, unsigned reg,
		   unsigned size, uint32_t value);
/* The upper bound of the 64-bit window: [base, base+size). */
void pci_bus_mmio64_window(const struct pci_bus *bus, uint64_t *base, uint64_t *size);
