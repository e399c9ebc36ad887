/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ACPI S3 (suspend to RAM) and the resume through the FACS waking vector,
 * as an OS does it: fills memory with a pattern, enables PWRBTN_EN (and
 * RTC_EN with an RTC alarm), writes its waking vector into the FACS,
 * writes SLP_TYP (from \_S3_) | SLP_EN to PM1a_CNT; after the resume it
 * checks that it came back through its vector, that memory survived, and
 * the wake status bits.
 *
 * Arguments (--append):
 *   wake=rtc      (default) arm the RTC alarm `delay` seconds ahead
 *                 (delay=N, default 2), set RTC_EN; expect RTC_STS
 *   wake=button   no alarm; the host presses the power button (SIGTERM);
 *                 expect PWRBTN_STS
 *   vector=real   (default) Firmware_Waking_Vector: a real-mode stub below
 *                 1 MiB (CS = vector >> 4), which enters long mode again
 *   vector=x      X_Firmware_Waking_Vector: a 32-bit protected-mode entry
 *                 (the real-mode vector is set too; X takes precedence)
 *   vector=none   leave both 0 (firmware then boots afresh: a reset)
 *   button=1      after the checks, wait for a power button press and
 *                 power off (S5), as powerbutton does, instead of PASS
 *
 * Output:
 *   S3: SLP_TYP=<n> PM1a_EVT=0x<port> PM1a_CNT=0x<port> FACS=0x<addr>
 *   S3: alarm at mm:ss (now mm:ss)                       (wake=rtc)
 *   S3: suspending (vector=<real|x|none> 0x<addr>)
 *   S3: resumed via <real|x> vector (stub CS=0x<cs> runs=<n>)
 *   S3: PM1_STS=0x<sts> WAK_STS=<0|1> PWRBTN_STS=<0|1> RTC_STS=<0|1> memory=<ok|BAD>
 *   PASS
 * with button=1, instead of PASS:
 *   S3: waiting for the power button
 *   POWERBUTTON: pressed
 *   ACPI: poweroff: ...
 * If the VMM does not suspend (WAK_STS comes back at once):
 *   FAIL: SLP_EN returned without a resume ...
 */
#include "guest.h"

#define XSTR(x) #x
#define STR(x) XSTR(x)

#define STS_PWRBTN (1u << 8)
#define STS_RTC (1u << 10)
#define STS_WAK (1u << 15)
#define EN_PWRBTN (1u << 8)
#define EN_RTC (1u << 10)
#define SLP_EN (1u << 13)

/* Saves the callee-saved registers and RSP, writes value to port; returns
 * 0 if the write returned (no suspend), and 1, a second time, when the
 * resume path comes back (like setjmp/longjmp). */
__attribute__((returns_twice)) int s3_sleep(uint32_t port, uint32_t value);
extern char s3_stub_start[], s3_stub_end[], s3_stub_cs[], s3_stub_runs[];
extern char s3_xentry32[];

__asm__(
    /* Real-mode waking vector, copied to a page below 1 MiB: entered with
     * CS = page >> 4, IP = 0 (CS-relative, as ap.S). Records CS and a run
     * count in its own copy, loads the image's GDT, enters protected mode
     * and jumps into the image. */
    "	.pushsection .rodata.s3_stub, \"a\"\n"
    "	.code16\n"
    "	.balign 16\n"
    "	.globl s3_stub_start, s3_stub_end, s3_stub_cs, s3_stub_runs\n"
    "s3_stub_start:\n"
    "	cli\n"
    "	cld\n"
    "	movw %cs, %ax\n"
    "	movw %ax, %ds\n"
    "	movw %ax, s3_stub_cs - s3_stub_start\n"
    "	incw s3_stub_runs - s3_stub_start\n"
    "	lgdtl s3_gdt_desc - s3_stub_start\n"
    "	movl %cr0, %eax\n"
    "	orl $1, %eax\n"
    "	movl %eax, %cr0\n"
    "	ljmpl $" STR(SEL_CODE32) ", $s3_entry32\n"
    "	.balign 8\n"
    "s3_gdt_desc:\n"
    "	.word 31\n"
    "	.long gdt\n"
    "s3_stub_cs:\n"
    "	.word 0\n"
    "s3_stub_runs:\n"
    "	.word 0\n"
    "s3_stub_end:\n"
    "	.popsection\n"

    "	.pushsection .text.s3, \"ax\"\n"
    "	.code32\n"
    /* X_Firmware_Waking_Vector: 32-bit flat, paging off, but the GDT and
     * selectors are the firmware's: load ours first. */
    "	.globl s3_xentry32\n"
    "s3_xentry32:\n"
    "	cli\n"
    "	lgdt gdt_desc32\n"
    "	ljmp $" STR(SEL_CODE32) ", $s3_entry32\n"
    "s3_entry32:\n"
    "	movl $" STR(SEL_DATA) ", %eax\n"
    "	movl %eax, %ds\n"
    "	movl %eax, %es\n"
    "	movl %eax, %ss\n"
    "	movl %eax, %fs\n"
    "	movl %eax, %gs\n"
    /* as ENTER_LONG_MODE (asm.h) */
    "	movl %cr4, %eax\n"
    "	orl $0x20, %eax\n"
    "	movl %eax, %cr4\n"
    "	movl $pml4, %eax\n"
    "	movl %eax, %cr3\n"
    "	movl $0xC0000080, %ecx\n"
    "	rdmsr\n"
    "	orl $0x100, %eax\n"
    "	wrmsr\n"
    "	movl %cr0, %eax\n"
    "	andl $0x9fffffff, %eax\n"
    "	orl $0x80010021, %eax\n"
    "	movl %eax, %cr0\n"
    "	ljmp $" STR(SEL_CODE64) ", $s3_entry64\n"

    "	.code64\n"
    "	.globl s3_sleep\n"
    "	.type s3_sleep, @function\n"
    "s3_sleep:\n"
    "	pushq %rbx\n"
    "	pushq %rbp\n"
    "	pushq %r12\n"
    "	pushq %r13\n"
    "	pushq %r14\n"
    "	pushq %r15\n"
    "	movq %rsp, s3_saved_rsp(%rip)\n"
    "	movl %edi, %edx\n"
    "	movl %esi, %eax\n"
    "	wbinvd\n" /* as ACPI asks before SLP_EN */
    "	outw %ax, %dx\n"
    "	xorl %eax, %eax\n"
    "	jmp 1f\n"
    "s3_entry64:\n"
    "	movl $" STR(SEL_DATA) ", %eax\n"
    "	movl %eax, %ds\n"
    "	movl %eax, %es\n"
    "	movl %eax, %ss\n"
    "	movl %eax, %fs\n"
    "	movl %eax, %gs\n"
    "	lidt idt_desc\n"
    "	movq s3_saved_rsp(%rip), %rsp\n"
    "	movl $1, %eax\n"
    "1:	popq %r15\n"
    "	popq %r14\n"
    "	popq %r13\n"
    "	popq %r12\n"
    "	popq %rbp\n"
    "	popq %rbx\n"
    "	ret\n"
    "	.popsection\n");

uint64_t s3_saved_rsp;

#define PATTERN_WORDS (256 * 1024 / 8)
static uint64_t pattern[PATTERN_WORDS];

static uint64_t pattern_word(uint64_t *x)
{
    /* xorshift64 */
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void fill_pattern(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < PATTERN_WORDS; i++)
        pattern[i] = pattern_word(&x);
}

static bool pattern_ok(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < PATTERN_WORDS; i++)
        if (pattern[i] != pattern_word(&x))
            return false;
    return true;
}

/* SLP_TYPa of \_S3_ in the DSDT (as acpi_s5_slp_typ does for _S5_). */
static int s3_slp_typ(void)
{
    const struct acpi_info *a = acpi_get();
    if (!a->dsdt || a->dsdt >= 0x100000000ull)
        return -1;
    const uint8_t *p = phys_to_ptr(a->dsdt);
    const uint8_t *end = p + ((const struct acpi_header *)p)->length;
    for (p += sizeof(struct acpi_header); p + 8 < end; p++) {
        if (memcmp(p, "_S3_", 4) || !(p[-1] == 0x08 || (p[-1] == '\\' && p[-2] == 0x08)))
            continue;
        const uint8_t *q = p + 4;
        if (*q++ != 0x12) /* PackageOp */
            continue;
        q += (*q >> 6) + 1; /* PkgLength */
        q++;                /* NumElements */
        if (*q == 0x0a)     /* BytePrefix */
            return q[1];
        if (*q == 0x00 || *q == 0x01) /* ZeroOp, OneOp */
            return *q;
        return -1;
    }
    return -1;
}

static uint8_t to_rtc(unsigned v, bool binary)
{
    return binary ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static void arm_alarm(unsigned delay)
{
    struct rtc_time t;
    if (rtc_read(&t))
        test_fail("RTC: no stable reading");
    unsigned s = t.min * 60 + t.sec + delay;
    unsigned am = (s / 60) % 60, as = s % 60;
    bool binary = t.reg_b & 0x04;
    cmos_write(0x01, to_rtc(as, binary)); /* seconds alarm */
    cmos_write(0x03, to_rtc(am, binary)); /* minutes alarm */
    cmos_write(0x05, 0xC0);               /* any hour */
    (void)cmos_read(0x0C);                /* clear stale flags */
    cmos_write(0x0B, (uint8_t)(cmos_read(0x0B) | 0x20)); /* AIE */
    printf("S3: alarm at %02u:%02u (now %02u:%02u)\n", am, as, t.min, t.sec);
}

int main(void)
{
    char wake[16] = "rtc", vector_mode[16] = "real";
    cmdline_get("wake", wake, sizeof(wake));
    cmdline_get("vector", vector_mode, sizeof(vector_mode));
    bool by_rtc = !strcmp(wake, "rtc");
    if (!by_rtc && strcmp(wake, "button"))
        test_fail("wake=%s: expected rtc or button", wake);
    if (strcmp(vector_mode, "real") && strcmp(vector_mode, "x") && strcmp(vector_mode, "none"))
        test_fail("vector=%s: expected real, x or none", vector_mode);

    const struct acpi_info *ai = acpi_get();
    if (!ai->fadt || !ai->pm1a_cnt)
        test_fail("no FADT or PM1a_CNT_BLK");
    const uint8_t *fadt = phys_to_ptr(ai->fadt);
    uint32_t evt, facs32;
    uint64_t facs = 0;
    memcpy(&evt, fadt + 56, 4); /* PM1a_EVT_BLK */
    memcpy(&facs32, fadt + 36, 4);
    if (((const struct acpi_header *)fadt)->length >= 140)
        memcpy(&facs, fadt + 132, 8); /* X_FIRMWARE_CTRL */
    if (!facs)
        facs = facs32;
    uint8_t evt_len = fadt[88];
    int typ = s3_slp_typ();
    printf("S3: SLP_TYP=%d PM1a_EVT=0x%x PM1a_CNT=0x%x FACS=0x%lx\n", typ, evt, ai->pm1a_cnt,
           facs);
    if (typ < 0)
        test_fail("no \\_S3_ package in the DSDT");
    if (!evt || evt_len < 4)
        test_fail("no PM1a event block");
    if (!facs || facs >= 0x100000000ull || memcmp(phys_to_ptr(facs), "FACS", 4))
        test_fail("no FACS");
    uint16_t sts = (uint16_t)evt, en = (uint16_t)(evt + evt_len / 2);
    uint8_t *f = phys_to_ptr(facs);

    uint32_t stub = 0;
    for (uint32_t pa = 0x9000; pa < 0x9f000 && !stub; pa += 0x1000)
        if (bootinfo_page_is_free(pa))
            stub = pa;
    if (!stub)
        test_fail("no free page below 1 MiB for the waking vector");
    size_t stub_len = (size_t)(s3_stub_end - s3_stub_start);
    memcpy(phys_to_ptr(stub), s3_stub_start, stub_len);
    volatile uint16_t *stub_cs = phys_to_ptr(stub + (uint32_t)(s3_stub_cs - s3_stub_start));
    volatile uint16_t *stub_runs = phys_to_ptr(stub + (uint32_t)(s3_stub_runs - s3_stub_start));

    fill_pattern();
    if (by_rtc)
        arm_alarm((unsigned)cmdline_get_u64("delay", 10, 2));

    /* Waking vectors (FACS offsets 12 and 24). */
    uint32_t v32 = !strcmp(vector_mode, "none") ? 0 : stub;
    uint64_t v64 = !strcmp(vector_mode, "x") ? (uint64_t)(uintptr_t)s3_xentry32 : 0;
    memcpy(f + 12, &v32, 4);
    memcpy(f + 24, &v64, 8);

    /* As ACPICA before sleeping: clear the status bits, enable the wake
     * events. Nothing clears them after this point: a press or an alarm
     * from now on must wake the guest, even one before SLP_EN. */
    outw(sts, 0xFFFF);
    outw(en, (uint16_t)(EN_PWRBTN | (by_rtc ? EN_RTC : 0)));
    uint16_t cnt = (uint16_t)((inw((uint16_t)ai->pm1a_cnt) & ~(7u << 10)) | ((unsigned)typ << 10));
    printf("S3: suspending (vector=%s 0x%lx)\n", vector_mode, v64 ? v64 : v32);
    outw((uint16_t)ai->pm1a_cnt, cnt); /* SLP_TYP, then SLP_EN, as ACPICA */
    if (!s3_sleep(ai->pm1a_cnt, cnt | SLP_EN)) {
        /* A VMM that pauses asynchronously (QEMU) may let a few
         * instructions run: wait for WAK_STS as an OS does. */
        for (int i = 0; i < 1000 && !(inw(sts) & STS_WAK); i++)
            mdelay(1);
        test_fail("SLP_EN returned without a resume (PM1_STS=0x%x)", inw(sts));
    }

    bool via_x = *stub_runs == 0;
    printf("S3: resumed via %s vector (stub CS=0x%x runs=%u)\n", via_x ? "x" : "real",
           *stub_cs, *stub_runs);
    uint16_t st = inw(sts);
    bool mem_ok = pattern_ok();
    printf("S3: PM1_STS=0x%x WAK_STS=%d PWRBTN_STS=%d RTC_STS=%d memory=%s\n", st,
           !!(st & STS_WAK), !!(st & STS_PWRBTN), !!(st & STS_RTC), mem_ok ? "ok" : "BAD");
    if (!mem_ok)
        test_fail("memory changed over S3");
    if (!(st & STS_WAK))
        test_fail("WAK_STS is not set after the resume");
    if (by_rtc && !(st & STS_RTC))
        test_fail("woke by the RTC alarm but RTC_STS is clear");
    if (!by_rtc && !(st & STS_PWRBTN))
        test_fail("woke by the power button but PWRBTN_STS is clear");
    if (!strcmp(vector_mode, "x") ? !via_x : (via_x || *stub_runs != 1 || *stub_cs != stub >> 4))
        test_fail("not resumed through the %s waking vector", vector_mode);
    outw(sts, 0xFFFF);
    if (by_rtc)
        (void)cmos_read(0x0C);

    if (cmdline_get_u64("button", 10, 0)) {
        printf("S3: waiting for the power button\n");
        while (!(inw(sts) & STS_PWRBTN))
            mdelay(1);
        outw(sts, STS_PWRBTN);
        printf("POWERBUTTON: pressed\n");
        acpi_poweroff(-1);
        test_fail("still running after S5");
    }
    return 0;
}
