#!/usr/bin/env bash
# Install what promsnap's tests need, skipping whatever is already there:
#   - prometheus + promtool (Debian package `prometheus`)
#   - the Pushgateway (Debian package `prometheus-pushgateway`; not started)
#   - garage, the S3 server for end-to-end tests (cargo install, ~10 min)
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
