#!/usr/bin/env bash
# Build Xen 4.17's xl with the `xl rex' series applied, the way Debian 12
# ships it, without building the rest of Xen.
#
#   xl-patch/build-xl.sh           fetch (cached), apply, build: target/xl-rex/xl
#   xl-patch/build-xl.sh --check   fetch (cached) and check the series applies
#
# Fetches Debian's source package xen 4.17.5+72-g01140da4e8-1 (about 5 MB,
# kept in target/xl-rex/download/), unpacks a pristine tree with Debian's own
# patches applied, applies every patch in xl-patch/series with no fuzz and no
# offset, then builds tools/xl with upstream's makefiles and warning flags
# (-Werror included) against the system's libxenlight (libxen-dev). Each run
# starts from a fresh tree, so it always proves the series applies and builds.
#
# On a fresh Debian 12 it installs what it needs (dpkg-dev, gcc, make,
# libxen-dev, libyajl-dev) and adds a deb-src entry for bookworm if there is
# none, as root or through sudo. Set REX_XL_WORK to build somewhere other
# than target/xl-rex.
set -euo pipefail

readonly XEN_SRC_VERSION=4.17.5+72-g01140da4e8-1
readonly XEN_DSC=xen_${XEN_SRC_VERSION}.dsc
# The .dsc pins the checksums of the tarballs; pinning the .dsc pins them all.
readonly XEN_DSC_SHA256=f13956b67fb7a65707c2b0620d89b41ee5d203434dd7bb913017356791ee66c1
readonly BUILD_DEPS=(dpkg-dev gcc make libxen-dev libyajl-dev)

patch_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$patch_dir")
work=${REX_XL_WORK:-$repo/target/xl-rex}
download=$work/download
tree=$work/xen-4.17.5

say() { printf 'build-xl: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

mode=build
case "${1-}" in
    "") ;;
    --check) mode=check ;;
    -h|--help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (try --help)" ;;
esac

# Runs "$@" as root: directly, or through sudo like tests/install-deps.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "'$*' needs root"
    fi
}

install_build_deps() {
    local missing=() pkg
    for pkg in "${BUILD_DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
            | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} = 0 ] && return
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# apt-get source needs a deb-src line for bookworm; Debian 12 images
# usually have only deb lines (in the deb822 file debian.sources).
ensure_deb_src() {
    if apt-get indextargets 2>/dev/null | grep -q '^Identifier: Sources$'; then
        return
    fi
    say "adding /etc/apt/sources.list.d/rex-deb-src.sources"
    as_root tee /etc/apt/sources.list.d/rex-deb-src.sources >/dev/null <<'EOF'
# Added by rex's xl-patch/build-xl.sh: Debian 12 source packages, to fetch
# Xen's tools/xl.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    as_root apt-get update -qq
}

dsc_ok() {
    [ -f "$download/$XEN_DSC" ] &&
        echo "$XEN_DSC_SHA256  $download/$XEN_DSC" | sha256sum -c --quiet - \
            >/dev/null 2>&1
}

fetch_source() {
    if dsc_ok; then
        say "using cached source in $download"
        return
    fi
    mkdir -p "$download"
    ensure_deb_src
    say "downloading xen $XEN_SRC_VERSION source"
    (cd "$download" &&
     apt-get source -qq --download-only -o APT::Sandbox::User=root \
         "xen=$XEN_SRC_VERSION" >&2) ||
        die "apt-get source xen=$XEN_SRC_VERSION failed. If the archive has" \
            "moved on to a newer point release, put $XEN_DSC and the two" \
            "tarballs it names (from https://snapshot.debian.org/package/xen/)" \
            "in $download and run again"
    dsc_ok || die "$download/$XEN_DSC does not match its pinned sha256"
}

# A pristine tree: upstream plus Debian's patches, as `apt-get source`
# leaves it. dpkg-source checks every tarball against the .dsc.
unpack_tree() {
    local out
    rm -rf "$tree"
    # Without debian-keyring the signature cannot be checked (a warning);
    # the pinned .dsc hash stands in for it.
    out=$(dpkg-source -x "$download/$XEN_DSC" "$tree" 2>&1) || {
        printf '%s\n' "$out" >&2
        die "cannot unpack $XEN_DSC"
    }
}

apply_series() {
    local p out
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        [ -f "$patch_dir/$p" ] || die "series names $p, which is missing"
        # --fuzz=0 and no offsets: the series must match this tree exactly.
        if ! out=$(patch -d "$tree" -p1 -N --fuzz=0 --dry-run \
                   <"$patch_dir/$p" 2>&1) ||
           grep -q 'offset\|fuzz' <<<"$out"; then
            printf '%s\n' "$out" >&2
            die "$p does not apply cleanly to xen $XEN_SRC_VERSION"
        fi
        patch -d "$tree" -p1 -N --fuzz=0 -s <"$patch_dir/$p"
        say "applied $p"
    done <"$patch_dir/series"
}

# What ./configure would write, reduced to what tools/xl reads. Paths are
# those of Debian's configure call (debian/rules), so the binary behaves
# like Debian's xl.
write_configure_output() {
    local multiarch
    multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
    cat >"$tree/config/Paths.mk" <<EOF
# Written by rex's xl-patch/build-xl.sh in place of ./configure.
libdir := /usr/lib/$multiarch
EOF
    cat >"$tree/config/Tools.mk" <<'EOF'
# Written by rex's xl-patch/build-xl.sh in place of ./configure.
-include $(XEN_ROOT)/config/Paths.mk
CONFIG_WERROR := y
PTHREAD_CFLAGS := -pthread
PTHREAD_LDFLAGS := -pthread
EOF
    cat >"$tree/tools/config.h" <<'EOF'
/* Written by rex's xl-patch/build-xl.sh in place of ./configure. */
#define XEN_CONFIG_DIR "/etc/xen"
#define XEN_LOCK_DIR "/var/lock"
#define XEN_DUMP_DIR "/var/lib/xen/dump"
#define XEN_SCRIPT_DIR "/etc/xen/scripts"
#define XENFIRMWAREDIR "/usr/lib/xen-4.17/boot"
#define HAVE_YAJL_YAJL_VERSION_H 1
EOF
}

# Upstream's tools/xl/Makefile and tools/Rules.mk, with two substitutions:
# link the system's libraries instead of in-tree ones, and search the tree's
# tools/include (for xen-tools/*.h, which libxen-dev lacks) only after the
# system headers, so libxl.h and its generated headers come from libxen-dev.
# The files the series adds or changes are also held to
# -Wdeclaration-after-statement (CODING_STYLE: declarations first); upstream
# leaves it off for tools/ because older xl files would fail it.
build_xl() {
    local log=$work/build.log strict=-Wdeclaration-after-statement
    write_configure_output
    if ! make -C "$tree/tools/xl" -j"$(nproc)" \
            CFLAGS_xeninclude="-idirafter $tree/tools/include" \
            LDLIBS_libxenlight=-lxenlight \
            LDLIBS_libxenutil=-lxlutil \
            LDLIBS_libxentoollog=-lxentoollog \
            CFLAGS_xl.o=$strict CFLAGS_xl_cmdtable.o=$strict \
            CFLAGS_xl_rex.o=$strict \
            >"$log" 2>&1; then
        grep -E 'error:|warning:' "$log" >&2 || tail -20 "$log" >&2
        die "building tools/xl failed; full log in $log"
    fi
    if grep -q 'warning:' "$log"; then
        grep 'warning:' "$log" >&2
        die "tools/xl built with warnings; full log in $log"
    fi
    cp "$tree/tools/xl/xl" "$work/xl"
}

mkdir -p "$work"
# One build at a time: concurrent test runs share this work directory.
exec 9>"$work/lock"
flock 9

install_build_deps
fetch_source
unpack_tree
apply_series
if [ "$mode" = check ]; then
    say "the series applies cleanly to xen $XEN_SRC_VERSION"
    exit 0
fi
build_xl
say "built with -Werror, no warnings; log in $work/build.log"
echo "$work/xl"
