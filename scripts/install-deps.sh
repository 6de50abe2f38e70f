#!/usr/bin/env bash
# Install what promsnap's tests need, skipping whatever is already there:
#   - prometheus + promtool 2.42 (Debian 12's package `prometheus`)
#   - prometheus + promtool 3.5 LTS (Debian sid's `prometheus` and `promtool`),
#     unpacked into a cache directory and never installed (see below)
#   - the Pushgateway (Debian package `prometheus-pushgateway`; not started)
#   - garage, the S3 server for end-to-end tests (cargo install, ~10 min)
#   - cargo-deb and man-db, to build, install and read the Debian package
#   - kubernetes-validate (PyPI) in a venv, ~/.cache/promsnap/venv, for the
#     Kubernetes manifests' test (tests/deploy.rs)
#   - rustfmt and clippy
# Safe to run repeatedly.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"

log() { echo "install-deps: $*"; }

# Root runs apt directly; everyone else through sudo.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    log "prometheus present: $(prometheus --version 2>&1 | head -n1)"
else
    log "installing Debian package prometheus"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus
fi

# Prometheus 3.5 LTS for the end-to-end tests, from Debian's sid suite (its
# binaries run on Debian 12). Nothing from sid is installed: apt runs with a
# private configuration and state under the cache directory (sources naming
# only sid, pinned at 50 so that nothing but an explicit `pkg/sid` is ever
# taken from it), downloads the two .deb files, and `dpkg-deb -x` unpacks them
# there. The system's own apt sources, pins and packages are left alone, so no
# later apt-get upgrade can pull anything from sid. The tests look for the
# binaries in $PROM3_DIR/usr/bin; PROMSNAP_TEST_PROMETHEUS_3_5_DIR overrides
# the directory, for this script and for the tests.
PROM3_DIR=${PROMSNAP_TEST_PROMETHEUS_3_5_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/promsnap/prometheus-3.5}
PROM3_SERIES=3.5.
PROM3_HINT="the tests need Prometheus 3.5 from Debian sid (deb.debian.org must be reachable); \
or unpack prometheus and promtool 3.5 into \$PROMSNAP_TEST_PROMETHEUS_3_5_DIR/usr/bin yourself"

prom3_fail() {
    echo "install-deps: error: $1" >&2
    echo "install-deps: hint: $PROM3_HINT" >&2
    exit 1
}

install_prometheus_3() {
    local apt_dir=$PROM3_DIR/apt
    mkdir -p "$apt_dir"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial,debs}
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: sid' \
        'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
        >"$apt_dir/sources.list.d/sid.sources"
    printf '%s\n' 'Package: *' 'Pin: release n=sid' 'Pin-Priority: 50' \
        >"$apt_dir/preferences.d/sid.pref"
    local apt_opts=(
        -o "Dir::Etc::SourceList=$apt_dir/sources.list.d/none.list"
        -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
        -o "Dir::Etc::Preferences=$apt_dir/preferences.d/none.pref"
        -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache=$apt_dir/cache"
        -o "APT::Sandbox::User=$(id -un)"
    )
    log "downloading prometheus and promtool from Debian sid into $PROM3_DIR"
    if ! apt-get "${apt_opts[@]}" -q update >"$apt_dir/update.log" 2>&1; then
        cat "$apt_dir/update.log" >&2
        prom3_fail "apt-get update of Debian sid failed (output above)"
    fi
    rm -f "$apt_dir"/debs/*.deb
    if ! (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -q download prometheus/sid promtool/sid) \
        >"$apt_dir/download.log" 2>&1; then
        cat "$apt_dir/download.log" >&2
        prom3_fail "apt-get download prometheus/sid promtool/sid failed (output above)"
    fi
    local deb
    for deb in "$apt_dir"/debs/*.deb; do
        dpkg-deb -x "$deb" "$PROM3_DIR"
    done
    rm -f "$apt_dir"/debs/*.deb
}

prom3_version() {
    "$PROM3_DIR/usr/bin/$1" --version 2>&1 | head -n1 || true
}

prom3_present() {
    [[ $(prom3_version prometheus) == *"version $PROM3_SERIES"* &&
        $(prom3_version promtool) == *"version $PROM3_SERIES"* ]]
}

if prom3_present; then
    log "prometheus 3.5 present in $PROM3_DIR: $(prom3_version prometheus)"
else
    install_prometheus_3
    prom3_present || prom3_fail "$PROM3_DIR/usr/bin does not hold prometheus and promtool \
3.5 after unpacking (found: '$(prom3_version prometheus)', '$(prom3_version promtool)'); \
Debian sid may have moved past 3.5"
    log "prometheus 3.5 unpacked into $PROM3_DIR: $(prom3_version prometheus)"
fi

if command -v openssl >/dev/null; then
    log "openssl present"
else
    log "installing Debian package openssl (test certificates)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y openssl
fi

if command -v prometheus-pushgateway >/dev/null; then
    log "prometheus-pushgateway present"
else
    log "installing Debian package prometheus-pushgateway"
    as_root apt-get update
    # Its postinst may try to start a service; tests start their own.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus-pushgateway
fi

if command -v garage >/dev/null; then
    log "garage present: $(command -v garage)"
else
    log "building garage with cargo install (takes a while)"
    cargo install garage --locked
fi

if command -v man >/dev/null && command -v dpkg-deb >/dev/null; then
    log "man present"
else
    log "installing Debian package man-db (the package test reads its man page)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y man-db
fi

# Pinned: scripts/test-package.sh relies on its flags.
if cargo deb --version 2>/dev/null | grep -q "3.8.0"; then
    log "cargo-deb present"
else
    log "building cargo-deb with cargo install (~3 min)"
    cargo install cargo-deb --version 3.8.0 --locked
fi

VENV=${PROMSNAP_VENV:-$HOME/.cache/promsnap/venv}
if "$VENV/bin/python" -c "import kubernetes_validate, yaml, jsonschema" 2>/dev/null; then
    log "kubernetes-validate present in $VENV"
else
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" 2>/dev/null; then
        log "installing Debian packages python3 and python3-venv"
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv
    fi
    log "installing kubernetes-validate into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "kubernetes-validate==1.37.0"
fi

# Probe through cargo, so a toolchain without rustup (distro Rust) counts too.
for pair in rustfmt:fmt clippy:clippy; do
    component=${pair%%:*} subcommand=${pair#*:}
    if cargo "$subcommand" --version >/dev/null 2>&1; then
        log "$component present"
    else
        log "adding rust component $component"
        rustup component add "$component"
    fi
done
