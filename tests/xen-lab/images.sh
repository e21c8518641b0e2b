# Sourced by run.sh: fetch Debian's Xen and kernel packages, build the dom0
# and guest initramfs images. Expects LAB (this directory), OUT
# (target/xen-lab), ROOT (the repository), XEN_RELEASE (4.17 or 4.20),
# REX_BUILD (where rex and librex.so were built for that release) and log().
# For 4.20 run.sh calls these inside a Debian 13 chroot, so that apt, ldd and
# the libraries copied into dom0 are Debian 13's.

XEN_RELEASE=${XEN_RELEASE:-4.17}
REX_BUILD=${REX_BUILD:-$ROOT/target/release}
XEN_PACKAGES="xen-hypervisor-$XEN_RELEASE-amd64 xen-utils-$XEN_RELEASE xen-utils-common xenstore-utils
  libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
  libxenhypfs1 libxenmisc$XEN_RELEASE libxenstore4 libxentoolcore1 libxentoollog1 libyajl2"

# Host tools the lab needs; installed with apt-get when missing.
ensure_host_packages() {
    local missing=() pkg
    for pkg in qemu-system-x86 busybox-static cpio gcc libc6-dev xz-utils; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing host packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The versioned kernel package linux-image-amd64 stands for now.
current_kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1
}

# Downloads (once) and unpacks the packages into $OUT/cache/root.
fetch_packages() {
    local debs=$OUT/cache/debs stamp=$OUT/cache/root/.unpacked kpkg
    kpkg=$(current_kernel_package)
    if [ -z "$kpkg" ]; then
        # A fresh machine may have empty package lists.
        timeout 600 apt-get update -qq
        kpkg=$(current_kernel_package)
    fi
    [ -n "$kpkg" ] || { log "cannot resolve linux-image-amd64"; return 1; }
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$kpkg $XEN_RELEASE" ]; then
        return 0
    fi
    mkdir -p "$debs"
    log "downloading $kpkg and Xen $XEN_RELEASE packages"
    # apt's _apt user cannot write into root's tree; the download runs as root.
    (cd "$debs" && timeout 600 apt-get download -qq $XEN_PACKAGES "$kpkg" 2>&1 |
        grep -v '^W: Download is performed unsandboxed' || true)
    local p
    for p in $XEN_PACKAGES "$kpkg"; do
        ls "$debs/${p}_"*.deb >/dev/null 2>&1 || { log "download of $p failed"; return 1; }
    done
    rm -rf "$OUT/cache/root"
    mkdir -p "$OUT/cache/root"
    for p in "$debs"/*.deb; do dpkg -x "$p" "$OUT/cache/root"; done
    echo "$kpkg $XEN_RELEASE" > "$stamp"
}

# Copies binary $1 to $2 inside the image $3, with every library ldd lists.
copy_with_libs() {
    local bin=$1 dest=$2 img=$3 lib
    install -D -m 0755 "$bin" "$img$dest"
    LD_LIBRARY_PATH=$OUT/cache/root/usr/lib/x86_64-linux-gnu ldd "$bin" |
        awk '/=> \// { print $3 } /^\t\/lib64/ { print $1 }' |
        while read -r lib; do
            [ -e "$img/lib/x86_64-linux-gnu/$(basename "$lib")" ] && continue
            install -D -m 0755 "$(readlink -f "$lib")" "$img/lib/x86_64-linux-gnu/$(basename "$lib")"
        done
}

# The ELF kernel inside a bzImage: an xz payload (Debian 12) or a zstd one
# (Debian 13).
extract_vmlinux() {
    local offset
    offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -n1 | cut -d: -f1)
    if [ -n "$offset" ]; then
        # xz stops at the payload's end and complains about the trailer.
        tail -c +$((offset + 1)) "$1" | xz -dc 2>/dev/null || true
        return
    fi
    offset=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$1" | head -n1 | cut -d: -f1)
    [ -n "$offset" ] || { log "no xz or zstd payload in $1"; return 1; }
    tail -c +$((offset + 1)) "$1" | zstd -dcq 2>/dev/null || true
}

# Debian 12 ships modules in /lib/modules, Debian 13 in /usr/lib/modules.
modules_dir() {
    ls -d "$OUT"/cache/root/lib/modules "$OUT"/cache/root/usr/lib/modules 2>/dev/null | head -n1
}

# install_module PATH DEST: the module PATH (without .ko) as DEST, plain:
# Debian 13 ships them xz-compressed, which busybox's insmod may not read.
install_module() {
    mkdir -p "$(dirname "$2")"
    if [ -f "$1.ko" ]; then
        install -m 0644 "$1.ko" "$2"
    elif [ -f "$1.ko.xz" ]; then
        xz -dc "$1.ko.xz" > "$2"
    else
        log "module $1 not found"
        return 1
    fi
}

kernel_version() {
    basename "$(ls -d "$(modules_dir)"/*-amd64 | head -n1)"
}

build_domu_image() {
    local img=$OUT/domU-root kver
    kver=$(kernel_version)
    rm -rf "$img"
    mkdir -p "$img"/{bin,proc,sys,dev,lib,www/cgi-bin}
    install -m 0755 /bin/busybox "$img/bin/busybox"
    install -m 0755 "$LAB/domU/init" "$img/init"
    install -m 0755 "$LAB/domU/work.cgi" "$img/www/cgi-bin/work"
    install -m 0755 "$LAB/domU/hog.cgi" "$img/www/cgi-bin/hog"
    install -m 0755 "$LAB/domU/agent.cgi" "$img/www/cgi-bin/agent"
    if [ -x "$OUT/rex-agent" ]; then
        install -s -m 0755 "$OUT/rex-agent" "$img/bin/rex-agent"
    fi
    echo "rex xen lab guest" > "$img/www/index.html"
    install_module "$(modules_dir)/$kver/kernel/drivers/net/xen-netfront" "$img/lib/xen-netfront.ko"
    (cd "$img" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/domU.cpio.gz"
}

# The dom0 image. Uses, when present: target/xl-rex/RELEASE/xl (patched
# xl), and rex and librex.so in REX_BUILD.
build_dom0_image() {
    local img=$OUT/dom0-root cache=$OUT/cache/root kver xl b m
    kver=$(kernel_version)
    rm -rf "$img"
    mkdir -p "$img"/{bin,sbin,proc,sys,dev,tmp,run,etc/rex,lab,usr/local/bin,var/lib,var/log}
    install -m 0755 /bin/busybox "$img/bin/busybox"
    install -m 0755 "$LAB/dom0/init" "$img/init"
    install -m 0644 "$LAB"/dom0/*.sh "$img/lab/"
    copy_with_libs /bin/bash /bin/bash "$img"

    local bin=/usr/lib/xen-$XEN_RELEASE/bin
    xl=$cache$bin/xl
    if [ -x "$ROOT/target/xl-rex/$XEN_RELEASE/xl" ]; then
        xl=$ROOT/target/xl-rex/$XEN_RELEASE/xl
        echo patched > "$img/lab/xl-kind"
    else
        echo stock > "$img/lab/xl-kind"
    fi
    copy_with_libs "$xl" "$bin/xl" "$img"
    for b in xenstored xenconsoled xen-init-dom0 xenstore-control; do
        # Debian 13 moved xenstored out of the per-release directory.
        if [ -x "$cache$bin/$b" ]; then
            copy_with_libs "$cache$bin/$b" "$bin/$b" "$img"
        else
            copy_with_libs "$(ls "$cache"/usr/sbin/"$b" "$cache"/usr/lib/xen*/bin/"$b" 2>/dev/null | head -n1)" "$bin/$b" "$img"
        fi
    done
    copy_with_libs "$cache/usr/bin/xenstore" /usr/bin/xenstore "$img"
    for b in read write rm ls list exists chmod watch; do
        ln -s xenstore "$img/usr/bin/xenstore-$b"
    done
    # glibc dlopen()s libgcc_s for pthread_cancel; xl create fails without it.
    install -m 0644 "$(readlink -f /lib/x86_64-linux-gnu/libgcc_s.so.1)" \
        "$img/lib/x86_64-linux-gnu/libgcc_s.so.1"
    mkdir -p "$img/lib64"
    ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$img/lib64/ld-linux-x86-64.so.2"
    mkdir -p "$img/etc/xen"
    cp -a "$cache/etc/xen/scripts" "$img/etc/xen/"

    for m in drivers/xen/xen-privcmd drivers/xen/xenfs/xenfs drivers/xen/xen-evtchn \
        drivers/xen/xen-gntdev drivers/xen/xen-gntalloc drivers/net/xen-netback/xen-netback \
        net/llc/llc net/802/stp net/bridge/bridge; do
        install_module "$(modules_dir)/$kver/kernel/$m" \
            "$img/lib/modules/$kver/kernel/$m.ko"
    done

    install -m 0755 "$OUT/loadgen" "$img/usr/local/bin/loadgen"
    install -m 0755 "$OUT/hostile" "$img/usr/local/bin/hostile"
    install -m 0755 "$OUT/watchlog" "$img/usr/local/bin/watchlog"
    if [ -x "$REX_BUILD/rex" ]; then
        copy_with_libs "$REX_BUILD/rex" /usr/local/bin/rex "$img"
    fi
    if [ -f "$REX_BUILD/librex.so" ]; then
        copy_with_libs "$REX_BUILD/librex.so" /usr/lib/librex.so "$img"
    fi
    # The bare libxl call under one cap change, timed (examples/sched_floor.rs).
    if [ -x "$REX_BUILD/examples/sched_floor" ]; then
        copy_with_libs "$REX_BUILD/examples/sched_floor" /usr/local/bin/sched_floor "$img"
        strip "$img/usr/local/bin/sched_floor" 2>/dev/null || true
    fi
    {
        echo 'autoballoon="off"'
        if [ -f "$REX_BUILD/librex.so" ]; then
            echo 'rex.enable=1'
            echo 'rex.library="/usr/lib/librex.so"'
            echo 'rex.policy="/etc/rex/policy.cfg"'
        fi
    } > "$img/etc/xen/xl.conf"

    # The guests' kernel, decompressed here once: xl would otherwise unpack
    # the bzImage's xz payload in dom0 for every guest, slowly under TCG.
    extract_vmlinux "$cache/boot/vmlinuz-$kver" > "$img/lab/vmlinux"
    [ -s "$img/lab/vmlinux" ] || { log "could not extract the guest kernel"; return 1; }
    cp "$OUT/domU.cpio.gz" "$img/lab/domU.cpio.gz"
    (cd "$img" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/dom0.cpio.gz"
}
