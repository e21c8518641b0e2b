# Sourced by run.sh: fetch Debian's Xen and kernel packages, build the dom0
# and guest initramfs images. Expects LAB (this directory), OUT
# (target/xen-lab), ROOT (the repository) and log().

XEN_PACKAGES="xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils
  libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
  libxenhypfs1 libxenmisc4.17 libxenstore4 libxentoolcore1 libxentoollog1 libyajl2"

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
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$kpkg" ]; then
        return 0
    fi
    mkdir -p "$debs"
    log "downloading $kpkg and Xen 4.17 packages"
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
    echo "$kpkg" > "$stamp"
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

# The ELF kernel inside a bzImage (xz payload, as Debian builds it).
extract_vmlinux() {
    local offset
    offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -n1 | cut -d: -f1)
    [ -n "$offset" ] || { log "no xz payload in $1"; return 1; }
    # xz stops at the payload's end and complains about the trailer.
    tail -c +$((offset + 1)) "$1" | xz -dc 2>/dev/null || true
}

kernel_version() {
    basename "$(ls -d "$OUT"/cache/root/lib/modules/*-amd64 | head -n1)"
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
    install -m 0644 "$OUT/cache/root/lib/modules/$kver/kernel/drivers/net/xen-netfront.ko" "$img/lib/"
    (cd "$img" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/domU.cpio.gz"
}

# The dom0 image. Uses, when present: target/xl-rex/4.17/xl (patched xl),
# target/release/librex.so and target/release/rex.
build_dom0_image() {
    local img=$OUT/dom0-root cache=$OUT/cache/root kver xl b m
    kver=$(kernel_version)
    rm -rf "$img"
    mkdir -p "$img"/{bin,sbin,proc,sys,dev,tmp,run,etc/rex,lab,usr/local/bin,var/lib,var/log}
    install -m 0755 /bin/busybox "$img/bin/busybox"
    install -m 0755 "$LAB/dom0/init" "$img/init"
    install -m 0644 "$LAB"/dom0/*.sh "$img/lab/"
    copy_with_libs /bin/bash /bin/bash "$img"

    xl=$cache/usr/lib/xen-4.17/bin/xl
    if [ -x "$ROOT/target/xl-rex/4.17/xl" ]; then
        xl=$ROOT/target/xl-rex/4.17/xl
        echo patched > "$img/lab/xl-kind"
    else
        echo stock > "$img/lab/xl-kind"
    fi
    copy_with_libs "$xl" /usr/lib/xen-4.17/bin/xl "$img"
    for b in xenstored xenconsoled xen-init-dom0; do
        copy_with_libs "$cache/usr/lib/xen-4.17/bin/$b" "/usr/lib/xen-4.17/bin/$b" "$img"
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
        install -D -m 0644 "$cache/lib/modules/$kver/kernel/$m.ko" \
            "$img/lib/modules/$kver/kernel/$m.ko"
    done

    install -m 0755 "$OUT/loadgen" "$img/usr/local/bin/loadgen"
    if [ -x "$ROOT/target/release/rex" ]; then
        copy_with_libs "$ROOT/target/release/rex" /usr/local/bin/rex "$img"
    fi
    if [ -f "$ROOT/target/release/librex.so" ]; then
        copy_with_libs "$ROOT/target/release/librex.so" /usr/lib/librex.so "$img"
    fi
    {
        echo 'autoballoon="off"'
        if [ -f "$ROOT/target/release/librex.so" ]; then
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
