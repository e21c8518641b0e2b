#!/usr/bin/env bash
# Build one Xen release's xl with its `xl rex' series applied, the way
# Debian ships that release, without building the rest of Xen.
#
#   xl-patch/build-xl.sh [RELEASE]          build target/xl-rex/RELEASE/xl
#   xl-patch/build-xl.sh [RELEASE] --check  check the series applies, with
#                                           patch and with quilt
#
# RELEASE is 4.17 (Debian 12, the default) or 4.20 (Debian 13). The script
# fetches Debian's xen source package of that release (pinned below, kept
# in target/xl-rex/download/), unpacks a pristine tree with Debian's own
# patches applied, and applies every patch in xl-patch/RELEASE/series with
# no fuzz and no offset. --check also adds the series to the package's own
# debian/patches and runs `quilt push -a`, as a distribution carries it.
# The build uses upstream's makefiles and warning flags (-Werror included)
# against that release's libxenlight: this machine's, if it is that
# release, else inside a chroot of the Debian release that ships it
# (tests/debian-chroot; needs root). Each run starts from a fresh tree.
#
# The source comes from deb.debian.org through a private apt list (nothing
# on the host is changed). Where the archive does not have it, either put
# the .dsc and its tarballs in target/xl-rex/download/, or set
# REX_XEN_GIT to a clone of upstream Xen: the tree is then upstream's
# RELEASE-X.Y.Z tag that Debian's version starts from, without Debian's
# patches (which touch none of the files the series does), and the quilt
# check is skipped. Set REX_XL_WORK to work somewhere other than
# target/xl-rex. On a fresh Debian it installs dpkg-dev, gcc, make, quilt
# and the release's libxen-dev as root or through sudo.
set -euo pipefail

patch_root=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$patch_root")
say() { printf 'build-xl: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

release=4.17
mode=build
for arg in "$@"; do
    case "$arg" in
        --check) mode=check ;;
        -h|--help) sed -n '2,28s/^# \{0,1\}//p' "$0"; exit 0 ;;
        [0-9]*.[0-9]*) release=$arg ;;
        *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

# Each release: the Debian suite that ships it and its source package,
# pinned by the .dsc's sha256 (which pins the tarballs' hashes in turn).
case "$release" in
    4.17)
        suite=bookworm
        src_version=4.17.5+72-g01140da4e8-1
        dsc_sha256=f13956b67fb7a65707c2b0620d89b41ee5d203434dd7bb913017356791ee66c1
        ;;
    4.20)
        suite=trixie
        src_version=4.20.4+63-g7abfd2bce2-0+deb13u1
        dsc_sha256=20ee94272da311e2dd64cf1e8dd1c86f683d0bc3ba3efde1fd1de2db16e64902
        ;;
    *) die "no series for Xen $release (there are: $(cd "$patch_root" &&
                                          echo [0-9]*/ | tr -d /))" ;;
esac
patch_dir=$patch_root/$release
upstream=${src_version%%+*}        # 4.20.4
upstream=${upstream%%-*}
dsc=xen_${src_version}.dsc
work_root=${REX_XL_WORK:-$repo/target/xl-rex}
work=$work_root/$release
download=$work_root/download
tree=$work/xen-$upstream
readonly BUILD_DEPS=(dpkg-dev gcc make quilt libxen-dev libyajl-dev)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "'$*' needs root"
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

dsc_ok() {
    [ -f "$download/$dsc" ] &&
        echo "$dsc_sha256  $download/$dsc" | sha256sum -c --quiet - \
            >/dev/null 2>&1
}

# apt-get source from SUITE through a sources list of our own, so the
# host's apt configuration is neither needed nor changed.
fetch_source() {
    dsc_ok && { say "using cached $dsc"; return 0; }
    local apt=$download/apt-$suite
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    cat >"$apt/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $suite-security main
EOF
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
                -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
                -o APT::Sandbox::User=root)
    say "downloading xen $src_version source ($suite)"
    apt-get "${opts[@]}" update -qq >&2 &&
        (cd "$download" && apt-get "${opts[@]}" source -qq --download-only \
             "xen=$src_version" >&2) || return 1
    dsc_ok || die "$download/$dsc does not match its pinned sha256"
}

# A pristine tree: upstream plus Debian's patches, as `apt-get source`
# leaves it. dpkg-source checks every tarball against the .dsc.
unpack_tree() {
    local out
    rm -rf "$tree"
    out=$(dpkg-source -x "$download/$dsc" "$tree" 2>&1) || {
        printf '%s\n' "$out" >&2
        die "cannot unpack $dsc"
    }
}

# Upstream's tag, for when Debian's source cannot be had.
export_upstream_tree() {
    local tag=RELEASE-$upstream
    git -C "$REX_XEN_GIT" rev-parse -q --verify "$tag^{commit}" >/dev/null ||
        die "REX_XEN_GIT=$REX_XEN_GIT has no tag $tag"
    rm -rf "$tree"
    mkdir -p "$tree"
    git -C "$REX_XEN_GIT" archive "$tag" | tar -x -C "$tree"
    say "using upstream $tag from $REX_XEN_GIT (not Debian's source:" \
        "Debian's patches and its +N stable commits are missing)"
}

apply_series() {
    local p out
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        [ -f "$patch_dir/$p" ] || die "$release/series names $p, which is missing"
        # --fuzz=0 and no offsets: the series must match this tree exactly.
        if ! out=$(patch -d "$tree" -p1 -N --fuzz=0 --dry-run \
                   <"$patch_dir/$p" 2>&1) ||
           grep -q 'offset\|fuzz' <<<"$out"; then
            printf '%s\n' "$out" >&2
            die "$release/$p does not apply cleanly to xen $src_version"
        fi
        patch -d "$tree" -p1 -N --fuzz=0 -s <"$patch_dir/$p"
        say "applied $release/$p"
    done <"$patch_dir/series"
}

# The series appended to Debian's own patch queue and pushed with quilt,
# in a second copy of the pristine tree.
quilt_check() {
    local qtree=$work/quilt out
    rm -rf "$qtree"
    dpkg-source -x "$download/$dsc" "$qtree" >/dev/null 2>&1 ||
        die "cannot unpack $dsc"
    mkdir -p "$qtree/debian/patches/rex"
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        cp "$patch_dir/$p" "$qtree/debian/patches/rex/"
        echo "rex/$p" >>"$qtree/debian/patches/series"
    done <"$patch_dir/series"
    if ! out=$(cd "$qtree" && QUILT_PATCHES=debian/patches \
               QUILT_PC=.pc quilt push -a --fuzz=0 2>&1); then
        printf '%s\n' "$out" >&2
        die "quilt push -a failed with the series in debian/patches"
    fi
    grep -q 'offset\|fuzz' <<<"$out" && {
        printf '%s\n' "$out" >&2; die "quilt applied the series with offsets"; }
    say "quilt: Debian's patches, then the series, pushed with no fuzz"
    rm -rf "$qtree"
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
    cat >"$tree/tools/config.h" <<EOF
/* Written by rex's xl-patch/build-xl.sh in place of ./configure. */
#define XEN_CONFIG_DIR "/etc/xen"
#define XEN_LOCK_DIR "/var/lock"
#define XEN_DUMP_DIR "/var/lib/xen/dump"
#define XEN_LOG_DIR "/var/log/xen"
#define XEN_SCRIPT_DIR "/etc/xen/scripts"
#define XENFIRMWAREDIR "/usr/lib/xen-$release/boot"
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

# The libxenlight release this machine builds against, "" if none.
host_release() {
    local v
    v=$(pkg-config --modversion xenlight 2>/dev/null) || return 0
    echo "${v%.*}"
}

mkdir -p "$work" "$download"
# One build per release at a time: concurrent test runs share the tree.
exec 9>"$work/lock"
flock 9

if [ -z "${REX_XL_IN_CHROOT-}" ]; then
    command -v dpkg-source >/dev/null && command -v quilt >/dev/null ||
        install_build_deps
    if [ -n "${REX_XEN_GIT-}" ]; then
        export_upstream_tree
    else
        fetch_source || die "cannot download xen $src_version from" \
            "deb.debian.org ($suite). Put $dsc and the tarballs it names" \
            "(https://snapshot.debian.org/package/xen/) in $download, or" \
            "set REX_XEN_GIT to a clone of upstream Xen"
        unpack_tree
    fi
    apply_series
    if [ "$mode" = check ]; then
        if [ -n "${REX_XEN_GIT-}" ]; then
            say "quilt check skipped: no Debian source package"
        else
            quilt_check
        fi
        say "the $release series applies cleanly to xen" \
            "${REX_XEN_GIT:+upstream RELEASE-$upstream, not }$src_version"
        exit 0
    fi
    if [ "$(host_release)" != "$release" ]; then
        # Another release's libxenlight here: build in its Debian release.
        say "building in a Debian $suite chroot (this machine has" \
            "libxenlight $(h=$(host_release); echo "${h:-none}"))"
        flock -u 9
        rel_tree=${tree#"$repo"/}
        [ "$rel_tree" != "$tree" ] ||
            die "REX_XL_WORK must be inside the repository for a chroot build"
        REX_CHROOT_ENV="REX_XL_IN_CHROOT=/rex/$rel_tree" \
            "$repo/tests/debian-chroot" "$suite" -- \
            xl-patch/build-xl.sh "$release" >/dev/null
        echo "$work/xl"
        exit 0
    fi
    install_build_deps
else
    # Inside the chroot, on the tree the host side prepared.
    tree=$REX_XL_IN_CHROOT
    work=$(dirname "$tree")
fi
build_xl
say "built with -Werror, no warnings; log in $work/build.log"
echo "$work/xl"
