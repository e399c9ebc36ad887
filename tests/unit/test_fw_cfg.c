/* fw_cfg (signature, ID, RAM size, CPU counts, file directory, etc/e820,
 * added files) and the small platform devices: i8042, the 0xCF9 reset
 * register, debug-exit and the ACPI PM block. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/unit.h"
#include "port_io.h"
#include "boot/tables.h"
#include "dev/acpi_pm.h"
#include "dev/debug_exit.h"
#include "dev/fw_cfg.h"
#include "dev/i8042.h"
#include "dev/platform.h"
#include "dev/reset_cf9.h"

static atomic_int irq_level[24];
static atomic_int exit_status = -1;
static atomic_int exit_count;
static const char *exit_reason;

static void rec_set_irq(struct platform *p, unsigned gsi, bool level)
{
	(void)p;
	if (gsi < 24)
		atomic_store(&irq_level[gsi], level);
}

static void rec_request_exit(struct platform *p, int status, const char *reason)
{
	(void)p;
	atomic_store(&exit_status, status);
	atomic_fetch_add(&exit_count, 1);
	exit_reason = reason;
}

static void reset_exit(void)
{
	atomic_store(&exit_status, -1);
	atomic_store(&exit_count, 0);
	exit_reason = NULL;
}


/* ---- fw_cfg ---- */

static void fw_select(uint16_t key) { outw(FW_CFG_PORT_SEL, key); }

static void fw_read(void *buf, size_t len)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = inb(FW_CFG_PORT_DATA);
}

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Find a file the way firmware does; returns its size, selector in *sel. */
static int find_file(const char *name, uint16_t *sel)
{
	fw_select(FW_CFG_FILE_DIR);
	uint8_t hdr[4];
	fw_read(hdr, 4);
	uint32_t count = be32(hdr);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t e[64];
		fw_read(e, 64);
		if (!strncmp((char *)e + 8, name, 56)) {
			*sel = (uint16_t)(e[4] << 8 | e[5]);
			CHECK_EQ(e[6], 0);
			CHECK_EQ(e[7], 0);
			return (int)be32(e);
		}
	}
	return -1;
}

static void test_fw_cfg(struct platform *p, struct fw_cfg *fw)
{
	uint8_t buf[64];

	/* Signature; reads past the end give 0. */
	fw_select(FW_CFG_SIGNATURE);
	fw_read(buf, 6);
	CHECK(!memcmp(buf, "QEMU\0\0", 6));
	/* An 8-bit read of the selector port reads data too (as QEMU). */
	fw_select(FW_CFG_SIGNATURE);
	CHECK_EQ(inb(FW_CFG_PORT_SEL), 'Q');
	CHECK_EQ(inb(FW_CFG_PORT_DATA), 'E');
	/* Wide reads give 0 and do not advance. */
	CHECK_EQ(inw(FW_CFG_PORT_SEL), 0);
	CHECK_EQ(inb(FW_CFG_PORT_DATA), 'M');
	/* An 8-bit selector write selects. */
	outb(FW_CFG_PORT_SEL, FW_CFG_SIGNATURE);
	CHECK_EQ(inb(FW_CFG_PORT_DATA), 'Q');
	/* Data writes are ignored. */
	outb(FW_CFG_PORT_DATA, 0x55);
	CHECK_EQ(inb(FW_CFG_PORT_DATA), 'E');

	fw_select(FW_CFG_ID);
	fw_read(buf, 4);
	CHECK_EQ(le(buf, 4), 1); /* traditional interface, no DMA */

	fw_select(FW_CFG_UUID);
	fw_read(buf, 17);
	for (int i = 0; i < 17; i++)
		CHECK_EQ(buf[i], 0);

	fw_select(FW_CFG_RAM_SIZE);
	fw_read(buf, 8);
	CHECK_EQ(le(buf, 8), p->mem->size);

	fw_select(FW_CFG_NB_CPUS);
	fw_read(buf, 2);
	CHECK_EQ(le(buf, 2), 2);
	fw_select(FW_CFG_MAX_CPUS);
	fw_read(buf, 2);
	CHECK_EQ(le(buf, 2), 4);

	/* Unknown and architecture-local items read as 0. */
	fw_select(0x0123);
	CHECK_EQ(inb(FW_CFG_PORT_DATA), 0);
	fw_select(0x8000);
	CHECK_EQ(inb(FW_CFG_PORT_DATA), 0);

	/* The file directory and etc/e820. */
	uint16_t sel = 0;
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = guest_mem_e820(p->mem, map);
	CHECK(n >= 3);
	CHECK_EQ(find_file("etc/e820", &sel), n * 20);
	CHECK_EQ(sel, FW_CFG_FILE_FIRST);
	fw_select(sel);
	for (int i = 0; i < n; i++) {
		uint8_t e[20];
		fw_read(e, 20);
		CHECK_EQ(le(e, 8), map[i].addr);
		CHECK_EQ(le(e + 8, 8), map[i].size);
		CHECK_EQ(le(e + 16, 4), map[i].type);
	}
	CHECK_EQ(inb(FW_CFG_PORT_DATA), 0);
	/* The write-channel bit is ignored. */
	fw_select(0x4000 | FW_CFG_SIGNATURE);
	CHECK_EQ(inb(FW_CFG_PORT_DATA), 'Q');

	/* Files added later. */
	static const char text[] = "hello from the host";
	CHECK_EQ(fw_cfg_add_file(fw, "opt/khyve/test", text, sizeof(text)), 0);
	CHECK_EQ(fw_cfg_add_file(fw, "opt/khyve/test", text, 1), -EEXIST);
	char longname[80];
	memset(longname, 'x', sizeof(longname));
	longname[56] = '\0';
	CHECK_EQ(fw_cfg_add_file(fw, longname, text, 1), -ENAMETOOLONG);
	longname[55] = '\0';
	CHECK_EQ(fw_cfg_add_file(fw, longname, NULL, 0), 0); /* 55 chars is fine */
	CHECK_EQ(fw_cfg_add_file(fw, "", text, 1), -EINVAL);
	fw_select(FW_CFG_FILE_DIR);
	fw_read(buf, 4);
	CHECK_EQ(be32(buf), 3);
	CHECK_EQ(find_file("opt/khyve/test", &sel), (int)sizeof(text));
	CHECK_EQ(sel, FW_CFG_FILE_FIRST + 1);
	fw_select(sel);
	char got[sizeof(text)];
	fw_read(got, sizeof(got));
	CHECK(!memcmp(got, text, sizeof(text)));
	CHECK_EQ(find_file(longname, &sel), 0);
	CHECK_EQ(find_file("etc/none", &sel), -1);

	/* Fixed items can be set. */
	CHECK_EQ(fw_cfg_set_item(fw, 0x08, "\x34\x12\0\0", 4), 0);
	fw_select(0x08);
	fw_read(buf, 4);
	CHECK_EQ(le(buf, 4), 0x1234);
	CHECK_EQ(fw_cfg_set_item(fw, FW_CFG_FILE_DIR, "x", 1), -EINVAL);
	CHECK_EQ(fw_cfg_set_item(fw, FW_CFG_FILE_FIRST, "x", 1), -EINVAL);

	/* The DMA port is claimed but inert. */
	CHECK(io_bus_owner(pio, FW_CFG_PORT_DMA) != NULL);
	CHECK_EQ(inl(FW_CFG_PORT_DMA), 0xFFFFFFFFu);
	outl(FW_CFG_PORT_DMA + 4, 0x12345678);
}

/* ---- i8042 ---- */

static void kbc_cmd(uint8_t c) { outb(I8042_CMD_PORT, c); }

static void test_i8042(void)
{
	uint8_t st = inb(I8042_CMD_PORT);
	CHECK_EQ(st & 0x01, 0); /* output buffer empty */
	CHECK_EQ(st & 0x02, 0); /* input buffer empty */
	CHECK(st & 0x04);       /* system flag */

	kbc_cmd(0xAA);
	CHECK(inb(I8042_CMD_PORT) & 0x01);
	CHECK(inb(I8042_CMD_PORT) & 0x08); /* last write was a command */
	CHECK_EQ(inb(I8042_DATA_PORT), 0x55);
	CHECK_EQ(inb(I8042_CMD_PORT) & 0x01, 0);

	kbc_cmd(0xAB);
	CHECK_EQ(inb(I8042_DATA_PORT), 0x00);

	kbc_cmd(0x20);
	uint8_t cb = inb(I8042_DATA_PORT);
	CHECK(cb & 0x04);
	kbc_cmd(0xAD);
	kbc_cmd(0x20);
	CHECK(inb(I8042_DATA_PORT) & 0x10);
	kbc_cmd(0xAE);
	kbc_cmd(0xA7);
	kbc_cmd(0x20);
	uint8_t v = inb(I8042_DATA_PORT);
	CHECK_EQ(v & 0x10, 0);
	CHECK(v & 0x20);
	kbc_cmd(0xA8);
	kbc_cmd(0x60);
	outb(I8042_DATA_PORT, 0x47);
	CHECK_EQ(inb(I8042_CMD_PORT) & 0x08, 0);
	kbc_cmd(0x20);
	CHECK_EQ(inb(I8042_DATA_PORT), 0x47);

	/* A byte for the (absent) keyboard: 0xFE with the timeout bit at
	 * once (test_i8042 has the rest); unknown commands: nothing. */
	outb(I8042_DATA_PORT, 0xFF);
	CHECK_EQ(inb(I8042_CMD_PORT) & 0x41, 0x41);
	CHECK_EQ(inb(I8042_DATA_PORT), 0xFE);
	kbc_cmd(0xC0);
	CHECK_EQ(inb(I8042_CMD_PORT) & 0x01, 0);
	CHECK_EQ(atomic_load(&exit_count), 0);

	/* Output port: reset bit set keeps running, clear resets. */
	kbc_cmd(0xD1);
	outb(I8042_DATA_PORT, 0x03);
	CHECK_EQ(atomic_load(&exit_count), 0);
	kbc_cmd(0xD0);
	CHECK_EQ(inb(I8042_DATA_PORT), 0x03);
	kbc_cmd(0xD1);
	outb(I8042_DATA_PORT, 0x02);
	CHECK_EQ(atomic_load(&exit_status), VM_EXIT_REBOOT);
	reset_exit();

	kbc_cmd(0xFF); /* pulse nothing (bit 0 set) */
	CHECK_EQ(atomic_load(&exit_count), 0);
	kbc_cmd(0xFE);
	CHECK_EQ(atomic_load(&exit_status), VM_EXIT_REBOOT);
	CHECK(exit_reason && !strcmp(exit_reason, "reset through the keyboard controller"));
	reset_exit();
}

/* ---- 0xCF9 ---- */

static void test_cf9(void)
{
	CHECK(io_bus_owner(pio, 0xCF8) == NULL);
	CHECK(io_bus_owner(pio, 0xCFA) == NULL);
	CHECK(io_bus_owner(pio, 0xCFC) == NULL);
	CHECK(io_bus_owner(pio, 0xCF9) != NULL);
	CHECK_EQ(inb(0xCF9), 0);
	outb(0xCF9, 0x02);
	CHECK_EQ(inb(0xCF9), 0x02);
	CHECK_EQ(atomic_load(&exit_count), 0);
	outb(0xCF9, ACPI_RESET_VALUE);
	CHECK_EQ(atomic_load(&exit_status), VM_EXIT_REBOOT);
	CHECK(exit_reason && !strcmp(exit_reason, "reset through port 0xcf9"));
	CHECK_EQ(inb(0xCF9), 0x02); /* RST_CPU is not kept */
	reset_exit();
}

/* ---- debug-exit ---- */

static void test_debug_exit(void)
{
	CHECK_EQ(inb(DEBUG_EXIT_PORT), 0xFF);
	CHECK_EQ(inl(DEBUG_EXIT_PORT), 0xFFFFFFFFu);
	CHECK_EQ(atomic_load(&exit_count), 0);
	outb(DEBUG_EXIT_PORT, 0x10);
	CHECK_EQ(atomic_load(&exit_status), 0x21);
	CHECK(exit_reason && !strcmp(exit_reason, "debug-exit"));
	outb(DEBUG_EXIT_PORT, 0);
	CHECK_EQ(atomic_load(&exit_status), 1);
	outw(DEBUG_EXIT_PORT + 2, 0x1234);
	CHECK_EQ(atomic_load(&exit_status), 0x2469);
	outl(DEBUG_EXIT_PORT, 0x40000000);
	CHECK_EQ(atomic_load(&exit_status), (int)0x80000001u);
	CHECK(io_bus_owner(pio, DEBUG_EXIT_PORT + 4) == NULL);
	reset_exit();
}

/* ---- ACPI PM ---- */

#define PM1_STS ACPI_PM1A_EVT_PORT
#define PM1_EN (ACPI_PM1A_EVT_PORT + 2)
#define PM1_CNT ACPI_PM1A_CNT_PORT
#define PWRBTN 0x0100

static int64_t stepped_ns;
static int64_t stepped_clock(void *ctx)
{
	(void)ctx;
	return stepped_ns;
}

static void test_acpi_pm(struct acpi_pm *pm)
{
	CHECK(inw(PM1_CNT) & 1); /* SCI_EN: ACPI always on */
	outw(PM1_CNT, 0);
	CHECK(inw(PM1_CNT) & 1);
	CHECK_EQ(inw(PM1_STS), 0);
	CHECK_EQ(inw(PM1_EN), 0);
	CHECK(!acpi_pm_guest_enabled_button(pm));

	/* A press before the guest enables the button: status, no SCI. */
	acpi_pm_press_power_button(pm);
	CHECK_EQ(inw(PM1_STS), PWRBTN);
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 0);
	/* Enabling it with the status pending raises the SCI. */
	outw(PM1_EN, PWRBTN);
	CHECK(acpi_pm_guest_enabled_button(pm));
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 1);
	/* Write-1-to-clear; writing 0 bits changes nothing. */
	outw(PM1_STS, 0);
	CHECK_EQ(inw(PM1_STS), PWRBTN);
	outw(PM1_STS, PWRBTN);
	CHECK_EQ(inw(PM1_STS), 0);
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 0);
	acpi_pm_press_power_button(pm);
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 1);
	/* A dword read of the event block: status low, enable high. */
	CHECK_EQ(inl(PM1_STS), (uint32_t)PWRBTN << 16 | PWRBTN);
	outb(PM1_STS + 1, 0x01); /* byte-wise clear of bit 8 */
	CHECK_EQ(inw(PM1_STS), 0);
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 0);
	outw(PM1_EN, 0);
	CHECK(!acpi_pm_guest_enabled_button(pm));
	outw(PM1_EN, PWRBTN);

	/* Sleep types other than S5 do not end the VM; without sleep ops
	 * (acpi_pm_set_sleep_ops) not even S3 (type 1): the guest wakes. */
	outw(PM1_CNT, (uint16_t)(1 << 10 | 1 << 13));
	CHECK_EQ(atomic_load(&exit_count), 0);
	CHECK(inw(PM1_STS) & 0x8000); /* WAK_STS */
	CHECK_EQ(inw(PM1_CNT) & (1 << 13), 0); /* SLP_EN reads 0 */
	outw(PM1_STS, 0x8000);
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 0);
	/* Setting SLP_TYP alone does nothing. */
	outw(PM1_CNT, (uint16_t)(ACPI_S5_SLP_TYP << 10));
	CHECK_EQ(atomic_load(&exit_count), 0);
	CHECK_EQ((inw(PM1_CNT) >> 10) & 7, ACPI_S5_SLP_TYP);
	/* S5 powers off. */
	outw(PM1_CNT, (uint16_t)(ACPI_S5_SLP_TYP << 10 | 1 << 13));
	CHECK_EQ(atomic_load(&exit_status), VM_EXIT_POWEROFF);
	CHECK(exit_reason && !strcmp(exit_reason, "ACPI S5"));
	reset_exit();

	/* The PM timer: 3.579545 MHz, 24 bits, on a clock the test steps. */
	acpi_pm_set_clock(pm, stepped_clock, NULL);
	CHECK_EQ(inl(ACPI_PM_TMR_PORT), 0);
	stepped_ns += 20 * 1000000; /* 20 ms = 71590.9 ticks */
	uint32_t t1 = inl(ACPI_PM_TMR_PORT);
	CHECK_EQ(t1, 71590);
	stepped_ns += 1000000000; /* one second later */
	CHECK_EQ(inl(ACPI_PM_TMR_PORT), t1 + 3579545);
	/* 24 bits: it wraps after 2^24 ticks (4.69 s). */
	stepped_ns = (int64_t)((1ULL << 24) * 1000000000ULL / ACPI_PM_TIMER_HZ) + 1000;
	uint32_t w = inl(ACPI_PM_TMR_PORT);
	CHECK(w < 16);
	stepped_ns = 4 * 1000000000LL; /* 14318180 = 0xDA7A64 ticks */
	CHECK_EQ(inl(ACPI_PM_TMR_PORT), 0xDA7A64);
	/* Byte and word reads of it, and the reserved top byte. */
	CHECK_EQ(inb(ACPI_PM_TMR_PORT), 0x64);
	CHECK_EQ(inb(ACPI_PM_TMR_PORT + 1), 0x7A);
	CHECK_EQ(inb(ACPI_PM_TMR_PORT + 2), 0xDA);
	CHECK_EQ(inb(ACPI_PM_TMR_PORT + 3), 0);
	CHECK_EQ(inw(ACPI_PM_TMR_PORT + 2), 0xDA);
	outl(ACPI_PM_TMR_PORT, 0); /* writes are ignored */
	CHECK_EQ(inl(ACPI_PM_TMR_PORT), 0xDA7A64);
	acpi_pm_set_clock(pm, NULL, NULL);
}

/* S3 with sleep ops: what the machine is asked to do, and the status bits
 * a wake leaves. */
static int sleeps, wakes;
static const char *wake_cause;
static bool accept_sleep = true;

static bool rec_sleep(void *opaque)
{
	CHECK(opaque == &sleeps);
	sleeps++;
	return accept_sleep;
}

static void rec_wake(void *opaque, const char *cause)
{
	CHECK(opaque == &sleeps);
	wakes++;
	wake_cause = cause;
}

static const struct acpi_pm_sleep_ops rec_ops = { .sleep = rec_sleep, .wake = rec_wake };

#define RTC 0x0400
#define WAK 0x8000
#define S3_SLEEP ((uint16_t)(ACPI_S3_SLP_TYP << 10 | 1 << 13))

static void test_acpi_pm_s3(struct acpi_pm *pm)
{
	outw(PM1_STS, 0xFFFF);
	outw(PM1_EN, 0);
	acpi_pm_set_sleep_ops(pm, &rec_ops, &sleeps);
	CHECK_EQ(acpi_pm_wakeup(pm), -EALREADY); /* awake */
	CHECK(!acpi_pm_press_power_button(pm));   /* nobody listens */
	outw(PM1_STS, 0xFFFF);

	/* S3: the machine is asked to sleep; nothing more until a wake. */
	outw(PM1_CNT, S3_SLEEP);
	CHECK_EQ(sleeps, 1);
	CHECK_EQ(wakes, 0);
	CHECK(acpi_pm_sleeping(pm));
	CHECK_EQ(atomic_load(&exit_count), 0);
	/* An RTC alarm without RTC_EN: status only, still asleep. */
	acpi_pm_rtc_alarm(pm);
	CHECK(acpi_pm_sleeping(pm));
	CHECK_EQ(inw(PM1_STS), RTC);
	/* The power button wakes, PWRBTN_EN or not. */
	CHECK(acpi_pm_press_power_button(pm));
	CHECK_EQ(wakes, 1);
	CHECK(wake_cause && !strcmp(wake_cause, "power button"));
	CHECK(!acpi_pm_sleeping(pm));
	CHECK_EQ(inw(PM1_STS), WAK | PWRBTN | RTC);
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 0); /* nothing enabled */
	outw(PM1_STS, 0xFFFF);

	/* The RTC alarm with RTC_EN wakes; the SCI follows RTC_STS & RTC_EN. */
	outw(PM1_EN, RTC);
	outw(PM1_CNT, S3_SLEEP);
	CHECK_EQ(sleeps, 2);
	CHECK(acpi_pm_sleeping(pm));
	acpi_pm_rtc_alarm(pm);
	CHECK_EQ(wakes, 2);
	CHECK(wake_cause && !strcmp(wake_cause, "RTC alarm"));
	CHECK_EQ(inw(PM1_STS), WAK | RTC);
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 1);
	outw(PM1_STS, 0xFFFF);
	CHECK_EQ(atomic_load(&irq_level[ACPI_SCI_IRQ]), 0);

	/* A wake event pending at SLP_EN (it came after the OS cleared the
	 * status): the guest wakes at once rather than sleeping through it. */
	acpi_pm_rtc_alarm(pm);
	outw(PM1_CNT, S3_SLEEP);
	CHECK_EQ(sleeps, 3);
	CHECK_EQ(wakes, 3);
	CHECK(!acpi_pm_sleeping(pm));
	CHECK_EQ(inw(PM1_STS), WAK | RTC);
	outw(PM1_STS, 0xFFFF);
	acpi_pm_press_power_button(pm);
	outw(PM1_CNT, S3_SLEEP);
	CHECK_EQ(wakes, 4);
	CHECK(wake_cause && !strcmp(wake_cause, "power button"));
	outw(PM1_STS, 0xFFFF);

	/* A wake request from outside reads as the power button (QEMU's
	 * system_wakeup does the same). */
	outw(PM1_CNT, S3_SLEEP);
	CHECK_EQ(acpi_pm_wakeup(pm), 0);
	CHECK_EQ(wakes, 5);
	CHECK(wake_cause && !strcmp(wake_cause, "wake request"));
	CHECK_EQ(inw(PM1_STS), WAK | PWRBTN);
	CHECK_EQ(acpi_pm_wakeup(pm), -EALREADY);
	outw(PM1_STS, 0xFFFF);

	/* A machine that cannot sleep: the guest wakes at once, as before. */
	accept_sleep = false;
	outw(PM1_CNT, S3_SLEEP);
	CHECK_EQ(sleeps, 6);
	CHECK_EQ(wakes, 5);
	CHECK(!acpi_pm_sleeping(pm));
	CHECK_EQ(inw(PM1_STS), WAK);
	outw(PM1_STS, 0xFFFF);
	accept_sleep = true;

	/* S5 still powers off. */
	outw(PM1_CNT, (uint16_t)(ACPI_S5_SLP_TYP << 10 | 1 << 13));
	CHECK_EQ(atomic_load(&exit_status), VM_EXIT_POWEROFF);
	CHECK_EQ(sleeps, 6);
	reset_exit();
	outw(PM1_EN, 0);
	acpi_pm_set_sleep_ops(pm, NULL, NULL);
}

int main(void)
{
	pio = io_bus_create("pio");
	struct guest_mem gm;
	CHECK_EQ(guest_mem_create(&gm, 16ULL << 20), 0);
	struct platform p = {
		.pio = pio,
		.mem = &gm,
		.ncpus = 2,
		.max_cpus = 4,
		.set_irq = rec_set_irq,
		.request_exit = rec_request_exit,
	};
	struct fw_cfg *fw = NULL;
	struct i8042 *kbc = NULL;
	struct reset_cf9 *cf9 = NULL;
	struct debug_exit *dbg = NULL;
	struct acpi_pm *pm = NULL;
	CHECK_EQ(fw_cfg_create(&p, &fw), 0);
	CHECK_EQ(i8042_create(&p, &kbc), 0);
	CHECK_EQ(reset_cf9_create(&p, &cf9), 0);
	CHECK_EQ(debug_exit_create(&p, DEBUG_EXIT_PORT, &dbg), 0);
	CHECK_EQ(acpi_pm_create(&p, &pm), 0);
	struct fw_cfg *fw2;
	CHECK_EQ(fw_cfg_create(&p, &fw2), -EEXIST);

	test_fw_cfg(&p, fw);
	test_i8042();
	test_cf9();
	test_debug_exit();
	test_acpi_pm(pm);
	test_acpi_pm_s3(pm);

	fw_cfg_destroy(fw);
	i8042_destroy(kbc);
	reset_cf9_destroy(cf9);
	debug_exit_destroy(dbg);
	acpi_pm_destroy(pm);
	CHECK(io_bus_owner(pio, FW_CFG_PORT_SEL) == NULL);
	CHECK(io_bus_owner(pio, ACPI_PM_TMR_PORT) == NULL);
	guest_mem_destroy(&gm);
	io_bus_destroy(pio);
	return UNIT_RESULT();
}
