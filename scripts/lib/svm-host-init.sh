#!/bin/sh
# /init of the SVM test host (built by scripts/svm-host).
#
# Loads 9p/virtio/kvm-amd/net modules, mounts the host's root (9p tag
# "hostroot", read-only) at /newroot with fresh proc/sys/dev/tmpfs mounts,
# mounts the read-write shares listed in the control share (tag "svmctl")
# at their host paths, makes that the root (in_root) and runs /run/svm-host/cmd.sh with
# stdout on ttyS0 and stderr on ttyS1. Marker lines on ttyS0, all prefixed
# with "SVM-HOST-<nonce>" (nonce from the kernel command line):
#   -BEGIN        the command starts (everything before is boot noise)
#   -EXIT: N      the command exited with status N
#   -ERROR: TEXT  the test host could not be set up
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

nonce=x
verbose=0
for w in $(cat /proc/cmdline); do
	case "$w" in
	svmhost.nonce=*) nonce=${w#*=} ;;
	svmhost.verbose=*) verbose=${w#*=} ;;
	esac
done
M="SVM-HOST-$nonce"

fail() {
	echo "$M-ERROR: $*"
	sync
	poweroff -f
	sleep 5
	exit 1
}

kver=$(uname -r)
while read -r m; do
	[ "$m" = brd ] && continue
	insmod "/lib/modules/$kver/$m.ko" 2>/dev/null || [ -d "/sys/module/$m" ] ||
		echo "svm-host init: insmod $m failed"
done </etc/modules.load

[ "$verbose" = 1 ] || echo 1 >/proc/sys/kernel/printk

if [ ! -c /dev/kvm ]; then
	why=$(dmesg | grep -E 'kvm|svm:|SVM' | tail -n 5 | tr '\n' '|')
	fail "/dev/kvm does not exist after loading kvm_amd (is SVM offered by QEMU's -cpu?); dmesg: $why"
fi

O9P="trans=virtio,version=9p2000.L,msize=262144"
mkdir -p /newroot /ctl
mount -t 9p -o "$O9P" svmctl /ctl || fail "cannot mount the control share (svmctl)"
mount -t 9p -o "ro,cache=loose,$O9P" hostroot /newroot || fail "cannot mount the host root (hostroot)"
R=/newroot
[ -r /ctl/opts ] && . /ctl/opts

mount -t proc proc $R/proc || fail "cannot mount proc in the host root"
mount -t sysfs sysfs $R/sys
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts $R/dev/pts
ln -sf pts/ptmx $R/dev/ptmx 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t tmpfs -o mode=755 tmpfs $R/run
mount -t tmpfs -o mode=1777 tmpfs $R/var/tmp
if [ "${SHARE_TMP:-0}" = 1 ]; then
	:
elif [ "${TMP_FS:-tmpfs}" = ext4 ]; then
	# A RAM disk with ext4, as /tmp is on many hosts: unlike tmpfs (before
	# Linux 6.6) it takes O_DIRECT, which khyve's virtio-blk "direct" needs.
	insmod "/lib/modules/$kver/brd.ko" rd_nr=1 rd_size="${TMP_SIZE_KB:-2097152}" max_part=0 ||
		fail "cannot load brd for an ext4 /tmp"
	chroot $R mkfs.ext4 -q -F -m 0 -E nodiscard,lazy_itable_init=1 /dev/ram0 ||
		fail "cannot make ext4 on /dev/ram0 for /tmp"
	mount -t ext4 -o noatime $R/dev/ram0 $R/tmp || fail "cannot mount the ext4 /tmp"
	chmod 1777 $R/tmp
else
	mount -t tmpfs -o mode=1777 tmpfs $R/tmp
fi
mkdir -p $R/run/svm-host
mount --bind /ctl $R/run/svm-host

# Read-write shares, "TAG PATH" per line, parents before children.
if [ -r /ctl/shares ]; then
	while read -r tag path; do
		[ -n "$tag" ] || continue
		mkdir -p "$R$path" 2>/dev/null
		mount -t 9p -o "rw,cache=loose,$O9P" "$tag" "$R$path" ||
			fail "cannot mount the share $path (tag $tag)"
	done </ctl/shares
fi

hostname svm-host
ip link set lo up 2>/dev/null
stty -F /dev/ttyS0 raw -echo 2>/dev/null
stty -F /dev/ttyS1 raw -echo 2>/dev/null

# The command's root is $R moved onto / in a mount namespace of its own, as
# switch_root leaves a real host, not a chroot: the kernel refuses to make
# user namespaces in a chroot (EPERM), and a user's `unshare -r` (virtiofsd
# as a user, khyve-run's) must work here as it does on a host.
in_root() {
	unshare -m sh -c 'cd "$1" && mount --move . / && shift && exec chroot . "$@"' sh "$R" "$@"
}

# A heartbeat that svm-host watches: when it stops, this test host has
# stopped running (a TCG stall), whatever its CPU looks like from outside.
(n=0; while echo $n >/ctl/heartbeat 2>/dev/null; do n=$((n + 1)); sleep 5; done) &
beat=$!

echo "$M-BEGIN" >/dev/ttyS0
if [ "${INTERACTIVE:-0}" = 1 ]; then
	# The console is the user's terminal: a tty in its usual modes, of the
	# terminal's size, controlling the command's session.
	stty -F /dev/ttyS0 sane ${ROWS:+rows $ROWS} ${COLS:+cols $COLS} 2>/dev/null
	in_root /usr/bin/setsid -c -w /bin/sh /run/svm-host/cmd.sh </dev/ttyS0 >/dev/ttyS0 2>&1
	rc=$?
	stty -F /dev/ttyS0 raw -echo 2>/dev/null
elif [ "${STDIO_TTY:-0}" = 1 ]; then
	in_root /bin/sh /run/svm-host/cmd.sh </dev/null >/dev/ttyS0 2>/dev/ttyS1
	rc=$?
else
	# stdout/stderr are pipes, as when the caller captures the output.
	mkfifo /tmp/out /tmp/err
	cat /tmp/out >/dev/ttyS0 &
	p1=$!
	cat /tmp/err >/dev/ttyS1 &
	p2=$!
	in_root /bin/sh /run/svm-host/cmd.sh </dev/null >/tmp/out 2>/tmp/err
	rc=$?
	wait $p1 $p2
fi
kill $beat 2>/dev/null
[ "${DMESG:-0}" = 1 ] && dmesg >/dev/ttyS1
echo "$rc" >/ctl/rc
echo "$M-EXIT: $rc" >/dev/ttyS0
sync
poweroff -f
sleep 5
