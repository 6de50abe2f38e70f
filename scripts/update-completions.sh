#!/usr/bin/env bash
# Regenerates the committed shell completions and man pages from the binary
# itself. tests/cli.rs fails while they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/promsnap
"$bin" completions bash > completions/promsnap.bash
"$bin" completions zsh > completions/_promsnap
"$bin" completions fish > completions/promsnap.fish
"$bin" completions elvish > completions/promsnap.elv
"$bin" completions powershell > completions/_promsnap.ps1
echo "completions/ updated"
# One page for promsnap, one per subcommand `promsnap --help` lists.
rm -rf man && mkdir man
"$bin" man > man/promsnap.1
for sub in $("$bin" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF && $1 != "help" {print $1}'); do
    "$bin" man "$sub" > "man/promsnap-$sub.1"
done
echo "man/ updated ($(ls man | wc -l) pages)"
# The configuration the Debian package installs: the example with every key
# commented out, so that nothing runs until the administrator says where to.
{
    echo "# Installed by the promsnap package. Every key below is commented out:"
    echo "# set [repository] url (and what else you need), then"
    echo "# \`systemctl enable --now promsnap.timer\`."
    echo "#"
    sed -E 's/^([a-z_]+ = )/# \1/' examples/promsnap.toml
} > deploy/debian/promsnap.toml
echo "deploy/debian/promsnap.toml updated"
