#!/usr/bin/env bash
# The main job on the bundled example, against a real registry on this machine:
#   1. decide on examples/devbox with nothing published: every image must be built;
#   2. "build" them (push stand-in images, variants on top of the base's layers — no Docker needed);
#   3. decide again: everything is reused;
#   4. promote: base-latest and latest-<variant> move to the content tags by re-tag;
#   5. change one variant's arg: only that variant is built.
# Needs Debian's docker-registry (installed with apt-get when missing and running as root/sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if ! command -v docker-registry >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq docker-registry >/dev/null
fi
cargo build --release --quiet --bin skip-action -p skip-action
cargo build --release --quiet --bin skip-testkit -p skip-testkit
bin=$root/target/release/skip-action
kit=$root/target/release/skip-testkit
source benches/lib.sh
work=$(mktemp -d)
start_registry "$work/registry"
trap 'kill $REGISTRY_PID 2>/dev/null || true; rm -rf "$work"' EXIT

cp -r examples/devbox "$work/devbox"
cd "$work/devbox"
sed -i "s|ghcr.io/acme/devbox|$REGISTRY/acme/devbox|" skip-action.yml
export GITHUB_OUTPUT=$work/outputs GITHUB_STEP_SUMMARY=$work/summary

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
output() { # the last value of output $1 in $GITHUB_OUTPUT
  awk -v n="$1" '$0 ~ "^"n"<<" {d=substr($0, length(n)+3); v=""; while ((getline l) > 0 && l != d) v = v (v=="" ? "" : "\n") l; last=v} END {print last}' "$GITHUB_OUTPUT"
}

step "decide, nothing published yet"
"$bin" decide
step "build: push the base, then each variant FROM it"
base=$(output base_image)
"$kit" push "$base"
output variants_matrix | python3 -c 'import json,sys; [print(e["image"]) for e in json.load(sys.stdin)["include"]]' |
  while read -r img; do "$kit" push "$img" --from "$base"; done
step "decide again: everything is reused"
"$bin" decide
step "promote: aliases move by re-tag"
"$bin" promote
step "change one variant's arg: only it is built"
sed -i 's/omos:         { INSTALL_OMOS: "true"/omos:         { INSTALL_OMOS: "yes"/' skip-action.yml
"$bin" decide
