#!/usr/bin/env bash
# The VM demo (what `make demo-vm` runs), as root: a QEMU virtual machine
# with an empty disk and network boot first is powered on, and one
# `landscaper apply` of examples/install takes it to an installed system
# that boots from its own disk: keys, boot entry, the installer booted from
# `landscaper serve`, its host key checked and rotated, nixos.install (disk
# script, copy, boot loader, reboot from the disk), nixos.system (nothing
# left to do). The installer is built from Debian's packages and the system
# is a stand-in built by Nix without nixpkgs (scripts/vm-assets.sh and
# landscaper/vmtest/testdata, as in the VM tests). Each phase is printed
# with its time. Everything it started is stopped and its files removed;
# LANDSCAPER_DEMO_KEEP=DIR keeps the VM's disk image and the deployment
# (with its state, which holds private keys, mode 0600) in DIR.
# LANDSCAPER_VM_ACCEL=kvm|tcg chooses QEMU's accelerator; by default KVM
# when /dev/kvm can run ordinary guests. Needs no input.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/usr/local/go/bin:$PATH"
cd "$root"

demo_start=$SECONDS
phase_start=$SECONDS
phase_name=
phases=()
# phase NAME: ends the current phase (printing its time) and starts NAME.
phase() {
	end_phase
	phase_name=$1 phase_start=$SECONDS
	printf '\n==> %s\n' "$1"
}
end_phase() {
	[ -n "$phase_name" ] || return 0
	local d=$((SECONDS - phase_start))
	phases+=("$(printf '%4d s  %s' "$d" "$phase_name")")
	printf -- '--- %s: %d s\n' "$phase_name" "$d"
	phase_name=
}
die() { printf '\ndemo-vm: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run it as root (it debootstraps the installer once and builds with nix)"

cache=${LANDSCAPER_VM_CACHE:-/var/cache/landscaper-vm}
keep=${LANDSCAPER_DEMO_KEEP:-}
mac=52:54:00:4c:53:10
work=$(mktemp -d -t landscaper-demo-vm.XXXXXX)
serve_pid=
qemu_pid=
cmd_pid=
stop() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	stop "$cmd_pid"
	stop "$qemu_pid"
	stop "$serve_pid"
	if [ -n "$keep" ] && [ -d "$work/deployment" ]; then
		mkdir -p "$keep"
		chmod 0700 "$keep"
		cp -a "$work/disk.qcow2" "$work/deployment" "$work/serial.log" "$keep/" 2>/dev/null || true
		echo "kept in $keep: disk.qcow2 (the VM's disk), deployment/ (with .landscaper/state.json, which holds private keys), serial.log"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# run CMD...: a long command in the background, waited for, so that a
# signal reaches the traps at once.
run() {
	"$@" 0<&0 &
	cmd_pid=$!
	local rc=0
	wait "$cmd_pid" || rc=$?
	cmd_pid=
	return "$rc"
}

phase "Dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh

phase "Build (make build)"
make --no-print-directory build
go build -o "$work/bin/" ./internal/cmd/landscaper-demo-server
ls="$root/bin/landscaper"
export PATH="$root/bin:$PATH"

phase "The installer and the stand-in systems' parts (scripts/vm-assets.sh $cache; minutes on the first run, cached after)"
bash scripts/vm-assets.sh "$cache"

phase "Boot server: landscaper serve"
mkdir -p "$work/boot"
http_port=$("$work/bin/landscaper-demo-server" free-port)
"$ls" serve --boot-dir "$work/boot" --tftp-listen 127.0.0.1:0 --http-listen "127.0.0.1:$http_port" \
	--http-url "http://10.0.2.2:$http_port/" --ipxe-dir /usr/lib/ipxe >"$work/serve.log" 2>&1 &
serve_pid=$!
tftp=
for _ in $(seq 1 300); do
	tftp=$(sed -n 's/.*msg="boot server listening".* tftp=\([0-9.]*:[0-9]*\).*/\1/p' "$work/serve.log")
	[ -n "$tftp" ] && break
	kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log"; die "landscaper serve exited"; }
	sleep 0.1
done
[ -n "$tftp" ] || die "landscaper serve did not start listening"
echo "TFTP on $tftp, HTTP on 127.0.0.1:$http_port (the VM reaches both at 10.0.2.2)"

phase "Power on the VM: empty 8 GB disk, network boot first"
ssh_port=$("$work/bin/landscaper-demo-server" free-port)
qemu-img create -q -f qcow2 "$work/disk.qcow2" 8G
accel=(-accel tcg,thread=multi -cpu max)
why="TCG"
case "${LANDSCAPER_VM_ACCEL:-}" in
kvm) accel=(-accel kvm -cpu host) why="KVM (LANDSCAPER_VM_ACCEL=kvm)" ;;
tcg) why="TCG (LANDSCAPER_VM_ACCEL=tcg)" ;;
*)
	if [ -w /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ]; then
		accel=(-accel kvm -cpu host) why="KVM"
	elif [ -e /sys/module/kvm_pvm ]; then
		why="TCG (/dev/kvm is kvm_pvm, which runs only PVM guests)"
	else
		why="TCG (no usable /dev/kvm)"
	fi ;;
esac
qemu-system-x86_64 "${accel[@]}" -machine pc -smp 2 -m 2048 -nographic -boot reboot-timeout=5000 \
	-netdev "user,id=n0,bootfile=tftp://10.0.2.2:${tftp##*:}/boot.ipxe,hostfwd=tcp:127.0.0.1:$ssh_port-:22" \
	-device "e1000,netdev=n0,mac=$mac,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom,bootindex=1" \
	-drive "file=$work/disk.qcow2,if=none,id=disk0,format=qcow2" -device virtio-blk-pci,drive=disk0,bootindex=2 \
	</dev/null >"$work/serial.log" 2>&1 &
qemu_pid=$!
powered_on=$(date +%s.%N)
echo "QEMU ($why), MAC $mac, its sshd forwarded to 127.0.0.1:$ssh_port; serial console in $work/serial.log"

phase "The deployment: examples/install with this VM's parameters"
dep="$work/deployment"
mkdir -p "$dep"
cp examples/install/landscaper.nix examples/install/params.nix "$dep/"
cat >"$dep/params.local.nix" <<EOF
# Written by scripts/demo-vm.sh: overrides examples/install/params.nix.
let standins = import $root/landscaper/vmtest/testdata { parts = "$cache/parts"; }; in
{
  address = "127.0.0.1";
  port = $ssh_port;
  mac = "$mac";
  bootDir = "$work/boot";
  kernel = "$cache/installer/bzImage";
  initrd = [ "$cache/installer/initrd" ];
  cmdline = "console=ttyS0,115200 panic=10";
  diskoScript = standins.disko;
  toplevel = standins.systemA;
}
EOF
cat "$dep/params.local.nix"
cd "$dep"

phase "landscaper apply --auto-approve: power-on to the installed system"
run bash -c 'set -o pipefail; "$0" apply --auto-approve 2>&1 | tee "$1"' "$ls" "$work/apply.log" || {
	echo "--- the VM's serial console (last 40 lines)"
	tail -n 40 "$work/serial.log" | tr -d '\r'
	die "apply failed"
}
# Within the apply, from its timestamped lines.
since_power_on() { awk -v t0="$powered_on" -v t="$(date -d "$1" +%s.%N)" 'BEGIN { printf "%5.1f s", t - t0 }'; }
answered=$(grep -m1 'hostKey: .* presents the expected host key' "$work/apply.log" | cut -d' ' -f1)
installed=$(grep -m1 'install: Creation complete' "$work/apply.log" | cut -d' ' -f1)
echo "--- within the apply, from power-on:"
[ -n "$answered" ] && echo "  $(since_power_on "$answered")  the installer's sshd answers with the temporary key (firmware, iPXE, kernel and installer over the network)"
[ -n "$installed" ] && echo "  $(since_power_on "$installed")  installed and booted from its disk (rotation, disk script, copy, boot loader, reboot)"
grep -o '^[^ ]* [a-zA-Z.]*: Creation complete after .*' "$work/apply.log" | cut -d' ' -f2- | sed 's/^/  /'

phase "Check: what the VM boots and runs"
field() { "$ls" state show "$1" ${3:+--show-sensitive} | sed -n "s/^ *\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p"; }
recorded=$(field server.hostKey hostPublicKey)
temporary=$(field server.installerHostKey publicKey)
presented=$(ssh-keyscan -T 10 -t ed25519 -p "$ssh_port" 127.0.0.1 2>/dev/null | awk '!/^#/ { print $2 " " $3 }')
(umask 077 && field server.deployKey privateKey sensitive | sed 's/\\n/\n/g' >"$work/deploy-key")
printf '[127.0.0.1]:%s %s\n' "$ssh_port" "$recorded" >"$work/known_hosts"
report=$(ssh -p "$ssh_port" -i "$work/deploy-key" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes \
	-o BatchMode=yes -o LogLevel=ERROR root@127.0.0.1 \
	'echo "/run/booted-system  $(readlink /run/booted-system)"; echo "root file system    $(awk '\''$2 == "/" { print $1 " (" $3 ")" }'\'' /proc/mounts)"; echo "kernel              $(uname -r)"')
rm -f "$work/deploy-key"
want=$(field server.install toplevel | head -n 1)
cat <<EOF
$report
host key presented  $(printf '%s\n' "$presented" | ssh-keygen -lf - | awk '{ print $2 }')
recorded (state)    $(printf '%s\n' "$recorded" | ssh-keygen -lf - | awk '{ print $2 }')
temporary key       $(printf '%s\n' "$temporary" | ssh-keygen -lf - | awk '{ print $2 }')
EOF
grep -q "booting from its disk" "$work/serial.log" || die "the boot server did not send the installed VM to its disk"
echo "the boot server sent the installed VM to its disk (network boot is still first)"
case "$report" in *"/run/booted-system  $want"*) ;; *) die "the VM did not boot $want" ;; esac
case "$report" in *"/dev/vda"*) ;; *) die "the VM's root file system is not on its disk" ;; esac
[ -n "$presented" ] && [ "$presented" = "$recorded" ] || die "the VM presents $presented, the state records $recorded"

phase "landscaper plan --detailed-exitcode (0: nothing left to do)"
rc=0
"$ls" plan --detailed-exitcode || rc=$?
[ "$rc" -eq 0 ] || die "the plan after apply exited $rc (0 expected: no changes)"

phase "Stop the VM and the boot server"
cd "$root"
stop "$qemu_pid"
stop "$serve_pid"
qemu_pid= serve_pid=
end_phase

printf '\n==> Demo complete in %d s (%s)\n' "$((SECONDS - demo_start))" "$why"
printf '%s\n' "${phases[@]}"
