#!/usr/bin/env bash
# Builds the Debian package, installs it with dpkg on this machine, checks
# what a user would (the binary runs, `man promsnap` reads, the systemd units
# and the configuration are in place, the timer is not enabled), then
# removes and purges it and checks that nothing is left. scripts/test.sh runs
# it; it needs root (or sudo) and cargo-deb (scripts/install-deps.sh).
#
# The package is built from the debug binary the tests use (`--profile dev`),
# so CI does not compile a release build only to install it; a release
# package is `cargo deb` (see README, "Packages").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

fail() { echo "test-package: FAILED: $*" >&2; exit 1; }
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if dpkg-query -W -f='${Status}' promsnap 2>/dev/null | grep -q "ok installed"; then
    fail "a promsnap package is already installed on this machine; this test installs \
and purges its own, so run it where none is (or remove that one: dpkg -r promsnap)"
fi

work=$(mktemp -d)
cleanup() {
    as_root dpkg -P promsnap >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "test-package: building the package"
cargo build --locked --quiet --bin promsnap
cargo deb --no-build --profile dev --fast -o "$work/promsnap.deb" 2>&1 \
    | grep -v -e "dev profile is not supported" -e "To enable debug symbols" -e "Cargo also supports" || true
[[ -s $work/promsnap.deb ]] || fail "cargo deb made no package"

echo "test-package: dpkg -i"
# Minimal images exclude man pages from packages (path-exclude); include ours.
as_root dpkg -i --path-include='/usr/share/man/man1/promsnap*' "$work/promsnap.deb"

version=$(/usr/bin/promsnap --version) || fail "/usr/bin/promsnap --version failed"
[[ $version == "promsnap $(cargo metadata --no-deps --format-version 1 \
    | sed -E 's/.*"name":"promsnap","version":"([^"]+)".*/\1/')"* ]] \
    || fail "unexpected version line: $version"
echo "test-package: $version"

page=$(MANPAGER=cat MANWIDTH=80 man promsnap 2>&1) || fail "man promsnap: $page"
grep -q "Back up and restore Prometheus TSDB data" <<<"$page" || fail "man promsnap lacks its description: $page"
grep -q "promsnap-backup(1)" <<<"$page" || fail "man promsnap does not point to the subcommands' pages"
page=$(MANPAGER=cat MANWIDTH=80 man promsnap-restore 2>&1) || fail "man promsnap-restore: $page"
grep -q -- "--data-dir" <<<"$page" || fail "man promsnap-restore lacks --data-dir"
echo "test-package: man promsnap and man promsnap-restore read"

for f in /usr/lib/systemd/system/promsnap.service /usr/lib/systemd/system/promsnap.timer \
    /usr/lib/systemd/system/promsnap-serve.service \
    /etc/promsnap/promsnap.toml /usr/share/bash-completion/completions/promsnap \
    /usr/share/doc/promsnap/examples/promsnap-alerts.yml; do
    [[ -f $f ]] || fail "$f is not installed"
done
if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify /usr/lib/systemd/system/promsnap.service \
        /usr/lib/systemd/system/promsnap.timer \
        /usr/lib/systemd/system/promsnap-serve.service 2>&1) || fail "systemd-analyze verify: $out"
    echo "test-package: systemd-analyze verify passed"
fi
[[ ! -e /etc/systemd/system/timers.target.wants/promsnap.timer ]] \
    || fail "the timer was enabled by the installation"
# The installed configuration names no repository: promsnap asks for one.
out=$(/usr/bin/promsnap --config /etc/promsnap/promsnap.toml list 2>&1) && fail "list ran without a repository"
grep -q "no repository given" <<<"$out" || fail "unexpected error with the installed configuration: $out"

echo "test-package: dpkg -r"
as_root dpkg -r promsnap
[[ ! -e /usr/bin/promsnap ]] || fail "/usr/bin/promsnap is left after dpkg -r"
[[ ! -e /usr/share/man/man1/promsnap.1.gz ]] || fail "the man page is left after dpkg -r"
[[ ! -e /usr/lib/systemd/system/promsnap.service ]] || fail "the service is left after dpkg -r"
[[ ! -e /usr/lib/systemd/system/promsnap-serve.service ]] || fail "the serve unit is left after dpkg -r"
[[ -f /etc/promsnap/promsnap.toml ]] || fail "dpkg -r removed the (conffile) configuration"
echo "test-package: dpkg -P"
as_root dpkg -P promsnap
[[ ! -e /etc/promsnap ]] || fail "/etc/promsnap is left after dpkg -P"
dpkg-query -W promsnap >/dev/null 2>&1 && fail "dpkg still knows promsnap after purge"
echo "test-package: OK (installed, used, removed, purged)"
