#!/bin/sh
# /init of khyve's Linux guest kit (built by scripts/linux-kit).
#
# Kernel command line words it understands:
#   khyve.cmd=WORD          run WORD with `sh -c` (no spaces; or khyve.cmd="a b")
#   khyve.cmd64=BASE64      the same, base64-encoded (any text)
#   khyve.after=poweroff|reboot|halt   what to do afterwards (default poweroff)
# Prints "KHYVE-KIT: up", "KHYVE-KIT: cpus=N", "KHYVE-KIT: memkb=N" and,
# after a command, "KHYVE-KIT: rc=N". Without a command: an interactive shell.
# A press of the ACPI power button prints "KHYVE-KIT: power button", syncs
# and powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=linux
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /tmp 2>/dev/null

kver=$(uname -r)
while read -r m; do
	insmod "/lib/modules/$kver/$m.ko" 2>/dev/null
done </etc/modules.load

# The ACPI power button (khyve presses it on SIGTERM) shuts down cleanly.
mkdir -p /etc/acpi/PWRF /var/log /var/run
printf '#!/bin/sh\necho "KHYVE-KIT: power button" >/dev/console\nsync\npoweroff -f\n' >/etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid -c /etc/acpi -l /dev/null 2>/dev/null

hostname khyve-guest
ip link set lo up 2>/dev/null

set -f
cmdline=$(cat /proc/cmdline)
cmd=
after=poweroff
for w in $cmdline; do
	case "$w" in
	khyve.cmd64=*) cmd=$(printf '%s\n' "${w#khyve.cmd64=}" | base64 -d) ;;
	khyve.cmd=\"*) cmd=$(printf '%s\n' "$cmdline" | sed -n 's/.*khyve\.cmd="\([^"]*\)".*/\1/p') ;;
	khyve.cmd=*) cmd=${w#khyve.cmd=} ;;
	khyve.after=*) after=${w#khyve.after=} ;;
	esac
done
set +f

cpus=$(grep -c '^processor' /proc/cpuinfo)
memkb=$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo)
echo "KHYVE-KIT: up"
echo "KHYVE-KIT: cpus=$cpus"
echo "KHYVE-KIT: memkb=$memkb"

if [ -n "$cmd" ]; then
	sh -c "$cmd"
	echo "KHYVE-KIT: rc=$?"
else
	# busybox's poweroff, reboot and halt signal PID 1 (this script): act on
	# them once the shell, run in the background so that `wait` can be
	# interrupted, is waited for. Leaving the shell powers off.
	trap 'after=poweroff; kill -HUP $shell 2>/dev/null' USR2
	trap 'after=reboot; kill -HUP $shell 2>/dev/null' TERM
	trap 'after=halt; kill -HUP $shell 2>/dev/null' USR1
	setsid cttyhack sh </dev/console >/dev/console 2>&1 &
	shell=$!
	while kill -0 $shell 2>/dev/null; do
		wait $shell
	done
fi

sync
case "$after" in
reboot) reboot -f ;;
halt) halt -f ;;
*) poweroff -f ;;
esac
# not reached unless the above failed
sleep 1
echo "KHYVE-KIT: $after failed"
exec sh
