#!/bin/sh
# The digest of the sources a skip-action binary is built from, so the installer can tell whether
# the action's own checkout is the commit a release was built from. POSIX sh, no git needed (the
# runner's copy of an action is a tarball).
#
#   sh scripts/source-digest.sh [DIR]          # prints the sha256 (hex) of DIR (default: this checkout)
#   sh scripts/source-digest.sh --list [DIR]   # prints the files it covers, one a line
#
# What it covers: the workspace manifests and lock file, the toolchain pin, cargo's config, a
# build script, and every file under src/ and crates/ (all workspace members, their tests
# included: too much only costs a source build, too little would run an older binary under a
# newer action.yml). tests/action_install.rs checks that every file cargo reads to build the
# binary (its dep-info) is covered, so a new source location cannot be missed silently.
#
# The digest: sha256 of the lines `<sha256 of the file>  <path>`, paths relative to DIR, sorted
# bytewise, after the line `skip-action-sources v1`. Independent of where DIR is, of file
# modes, owners and times. scripts/build-release.sh writes it to dist/SOURCES on a release.
set -eu

list=false
if [ "${1:-}" = "--list" ]; then
  list=true
  shift
fi
root=${1:-$(cd "$(dirname "$0")/.." && pwd -P)}
cd "$root" || { echo "source-digest.sh: cannot enter $root" >&2; exit 2; }

# A missing tool inside the pipelines below would not fail them: it would hash a shorter list.
for tool in find sort cut; do
  command -v "$tool" >/dev/null 2>&1 || { echo "source-digest.sh: $tool is not installed" >&2; exit 2; }
done

sha256_stdin() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 | cut -d' ' -f1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r | cut -d' ' -f1
  else
    echo "source-digest.sh: no sha256sum, shasum or openssl" >&2
    exit 2
  fi
}

files() {
  for f in Cargo.toml Cargo.lock rust-toolchain.toml rust-toolchain build.rs .cargo/config.toml .cargo/config; do
    if [ -f "$f" ]; then printf '%s\n' "$f"; fi
  done
  for d in src crates; do
    if [ -d "$d" ]; then
      find "$d" -type d -name target -prune -o -type f -print
    fi
  done
}

if [ "$list" = true ]; then
  files | LC_ALL=C sort
  exit 0
fi

{
  echo "skip-action-sources v1"
  files | LC_ALL=C sort | while IFS= read -r f; do
    printf '%s  %s\n' "$(sha256_stdin < "$f")" "$f"
  done
} | sha256_stdin
