/* fbsdmod.ko: a FreeBSD-style kernel module for fbsdmeta, an ELF
 * relocatable object (amd64 modules are ET_REL) with code, data, bss, a
 * named section holding a marker string and its symbol, which the loader
 * must lay out and the guest then finds through MODINFOMD_SHDR. */
__attribute__((section(".rodata.fbsdmod"), used)) const char fbsdmod_marker[] = "FBSDMOD-MARKER";
int fbsdmod_counter = 1;
static int fbsdmod_bss[64];

int fbsdmod_func(int i);
int fbsdmod_func(int i)
{
	fbsdmod_bss[i & 63]++;
	return fbsdmod_counter + fbsdmod_bss[i & 63] + fbsdmod_marker[i & 7];
}
