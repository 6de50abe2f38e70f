#!/usr/bin/env bash
# Regenerates the field tables of the README's "JSON output" section from the
# JSON Schemas in docs/json/. tests/json.rs fails while they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
PROMSNAP_UPDATE_README=1 cargo test --quiet --test integration \
    json::readme_json_section_is_generated_from_the_schemas
echo "README.md's JSON output section updated"
