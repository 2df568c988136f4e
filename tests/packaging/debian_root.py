"""A fresh Debian 12 root with the package installed the way a user installs it, and the
same root booted with systemd as init under qemu.

The VM rig (scripts/vm-run) shares the host's root over 9p and runs a command as init, so
it cannot show what systemd does with the unit. Here debootstrap makes a real root,
`apt-get install ./directord_*.deb` runs in it (dependencies from the Debian mirror the
host's apt uses), `mke2fs -d` turns the folder into an ext4 image without a loop mount,
and qemu boots it with the host's Debian kernel and initrd (the root gets that kernel's
modules, copied: installing a kernel package would cost minutes). A oneshot unit runs
guest_checks.sh and powers off; its results and artifacts are read back from the image
with debugfs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SUITE = "bookworm"
# What the booted guest needs beyond minbase: systemd as init, udev for its devices, dbus as on
# any Debian server, ip for the dummy link, ipvsadm as an independent view of the table.
BOOT_PACKAGES = ("systemd", "systemd-sysv", "udev", "dbus", "kmod", "iproute2", "ipvsadm")
# The modules the checks load: IPVS with the schedulers a config may name, the dummy link.
MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_wlc", "ip_vs_lc", "ip_vs_sh", "dummy")
# A small keepalived.conf for `directord import` in the installed root.
KEEPALIVED_SAMPLE = """\
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.10/24
    }
}
virtual_server 192.0.2.10 80 {
    delay_loop 2
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""
CHECKS_UNIT = """\
[Unit]
Description=directord package checks (tests/packaging)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/guest_checks.sh
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
"""


class GuestError(Exception):
    """A step of building or booting the guest failed; the message says which and why."""


@dataclass(frozen=True)
class Kernel:
    version: str
    vmlinuz: Path
    initrd: Path


def run(argv: list[str], step: str, timeout: float, **kwargs: object) -> str:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, **kwargs)  # type: ignore[call-overload]
    except subprocess.TimeoutExpired as exc:
        raise GuestError(f"{step}: timed out after {timeout:.0f} s") from exc
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-25:])
        raise GuestError(f"{step}: exit {res.returncode}\n{tail}")
    return res.stdout


def host_kernel() -> Kernel:
    """The newest /boot kernel whose modules are installed; its initrd must mount an ext4
    root on virtio-blk."""
    for vmlinuz in sorted(Path("/boot").glob("vmlinuz-*-amd64"), reverse=True):
        version = vmlinuz.name.removeprefix("vmlinuz-")
        initrd = Path(f"/boot/initrd.img-{version}")
        if Path(f"/lib/modules/{version}").is_dir() and initrd.exists():
            listing = run(["lsinitramfs", str(initrd)], "list the initrd", 120)
            for module in ("virtio_blk.ko", "ext4.ko"):
                if module not in listing:
                    raise GuestError(f"{initrd}: has no {module}; the guest root (ext4 on virtio-blk) cannot mount")
            return Kernel(version, vmlinuz, initrd)
    raise GuestError("no Debian kernel with modules and initrd in /boot: run scripts/setup (linux-image-amd64)")


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (deb822 or one-line sources)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        match = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.M)
        if match:
            return match.group(1)
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        match = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", listing.read_text(), re.M)
        if match:
            return match.group(1)
    raise GuestError("no Debian mirror in /etc/apt/sources.list(.d): debootstrap needs one")


def debootstrap(root: Path, include: tuple[str, ...] = ()) -> None:
    extra = [f"--include={','.join(include)}"] if include else []
    run(["debootstrap", "--variant=minbase", *extra, SUITE, str(root), host_mirror()], "debootstrap", 900)


def install_package(root: Path, deb: Path) -> str:
    """`apt-get install ./directord_*.deb` in the root, exactly as a user runs it."""
    shutil.copy2(deb, root / "tmp" / deb.name)
    resolv = root / "etc" / "resolv.conf"
    shutil.copy2("/etc/resolv.conf", resolv)  # the chroot reaches the mirror by name
    try:
        return run(["chroot", str(root), "apt-get", "install", "-y", "-q", f"/tmp/{deb.name}"],
                   "apt-get install ./" + deb.name + " in the fresh root", 600)
    finally:
        resolv.unlink()
        (root / "tmp" / deb.name).unlink()


def copy_modules(root: Path, kernel: Kernel) -> None:
    """The listed modules and their dependencies, then depmod for the guest's root."""
    shown = run(["modprobe", "-S", kernel.version, "--show-depends", "-a", *MODULES], "resolve the modules", 60)
    base = Path(f"/lib/modules/{kernel.version}")
    files = {Path(line.split()[1]) for line in shown.splitlines() if line.startswith("insmod ")}
    files |= {p for p in base.glob("modules.builtin*")} | {base / "modules.order"}
    for src in files:
        dest = root / src.relative_to("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    run(["depmod", "-b", str(root), kernel.version], "depmod in the guest root", 120)


def prepare(root: Path) -> None:
    """The check script, its sample and the unit that runs it at boot."""
    shutil.copy2(HERE / "guest_checks.sh", root / "root" / "guest_checks.sh")
    (root / "root" / "samples").mkdir()
    (root / "root" / "samples" / "keepalived.conf").write_text(KEEPALIVED_SAMPLE)
    (root / "etc" / "hostname").write_text("guest\n")
    (root / "etc" / "fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    unit = root / "etc" / "systemd" / "system" / "directord-checks.service"
    unit.write_text(CHECKS_UNIT)
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")


def make_image(root: Path, image: Path) -> None:
    used = int(run(["du", "-sm", str(root)], "size the root", 120).split()[0])
    size = f"{used + 512}M"  # room for the journal, apt's work and the artifacts
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "root", "-d", str(root), str(image), size],
        "make the ext4 image", 300)


def other_vms() -> list[str]:
    res = subprocess.run(["pgrep", "-a", "qemu-system"], capture_output=True, text=True)
    return res.stdout.splitlines()


def boot(image: Path, kernel: Kernel, serial: Path, timeout: float) -> float:
    """Boot until the guest powers off; seconds taken. Waits first for another VM on
    this machine to end: two TCG guests on two cores slow each other into timeouts."""
    deadline = time.monotonic() + 1200
    while other_vms() and time.monotonic() < deadline:
        time.sleep(5)
    argv = ["qemu-system-x86_64", "-machine", "q35", "-cpu", "max", "-smp", "2", "-m", "1536",
            "-display", "none", "-monitor", "none", "-serial", f"file:{serial}", "-nic", "none", "-no-reboot",
            "-kernel", str(kernel.vmlinuz), "-initrd", str(kernel.initrd),
            "-append", "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=1",
            "-drive", f"file={image},format=raw,if=virtio"]
    start = time.monotonic()
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as vm:
        try:
            _, err = vm.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            vm.kill()
            vm.communicate()
            raise GuestError(f"the guest did not power off within {timeout:.0f} s; serial log tail:\n"
                             + serial_tail(serial)) from None
    if vm.returncode != 0:
        raise GuestError(f"qemu exit {vm.returncode}: {err.decode(errors='replace').strip()}\n" + serial_tail(serial))
    return time.monotonic() - start


def serial_tail(serial: Path, lines: int = 40) -> str:
    text = serial.read_text(errors="replace") if serial.exists() else "(no serial log)"
    return "\n".join(text.splitlines()[-lines:])


def extract(image: Path, guest_path: str, dest: Path) -> None:
    """Copy a file or folder out of the ext4 image (debugfs: no mount needed)."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["debugfs", "-R", f"rdump {guest_path} {dest}", str(image)], f"read {guest_path} from the image", 120)

