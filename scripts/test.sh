#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian packages),
# then runs rustfmt, clippy and every test of the workspace.
#
#   scripts/test.sh            # everything
#   scripts/test.sh --quick    # skip the tool installs and clippy (for a tight edit loop)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true

# Debian packages the tests use: the CNCF registry, skopeo (pushes test images), apache2-utils
# (htpasswd for the Basic-auth registry), qemu-user-static (runs the aarch64 binary).
need=()
for pair in docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils qemu-aarch64-static:qemu-user-static; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "$quick" = false ] && [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

if [ "$quick" = false ]; then
  echo "==> cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

echo "==> cargo test"
cargo test --workspace --locked 2>&1
