#!/usr/bin/env bash
# Builds the release binaries: fully static musl executables for x86_64 and aarch64, reproducibly.
#
#   scripts/build-release.sh                  # build both, write dist/VERSION, dist/SHA256SUMS and
#                                             # dist/SOURCES (scripts/source-digest.sh)
#   scripts/build-release.sh --check          # build both; fail unless they and this checkout's
#                                             # sources match dist/ (release CI)
#   scripts/build-release.sh --reproducible   # also build again from a copy of the tree at another
#                                             # path with another target dir, and compare the bytes
#   options: --out DIR (assets; default $CARGO_TARGET_DIR/release-assets), --no-dist (leave dist/
#            alone), --target TRIPLE (repeatable; default both), --no-install (install nothing)
#
# The assets are `skip-action-<target>` (the bare executable) and `SHA256SUMS`. The action
# downloads an asset and checks it against the dist/SHA256SUMS committed with it, and downloads at
# all only when its checkout's sources have the digest in dist/SOURCES (else it builds them), so
# dist/ must be written by this script, on the commit that is tagged (see README, "Releasing").
#
# What makes the bytes reproducible: the toolchain pinned by rust-toolchain.toml, `--locked`,
# rust-lld (shipped with that toolchain) as the linker for both targets (.cargo/config.toml), path
# remapping of the checkout, the target dir, CARGO_HOME and RUSTUP_HOME (rustc and the C compiler),
# SOURCE_DATE_EPOCH, and one C compiler for ring's C and assembly: clang. Different clang versions
# give different bytes: the release workflow builds in debian:12, whose clang is 14.0.6; build the
# checksums you commit there too (README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"

all_targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl"
targets=""
out=""
write_dist=true
check=false
reproducible=false
install=true
smoke=true
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --target) targets="$targets $2"; shift 2 ;;
    --target=*) targets="$targets ${1#--target=}"; shift ;;
    --no-dist) write_dist=false; shift ;;
    --check) check=true; write_dist=false; shift ;;
    --reproducible) reproducible=true; shift ;;
    --no-install) install=false; shift ;;
    --no-smoke) smoke=false; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-release.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
targets=${targets:-$all_targets}
target_dir=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$target_dir"
target_dir=$(cd "$target_dir" && pwd -P)
export CARGO_TARGET_DIR=$target_dir
out=${out:-$target_dir/release-assets}
mkdir -p "$out"
out=$(cd "$out" && pwd -P)

version=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || { echo "build-release.sh: no version in Cargo.toml" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- prerequisites: the pinned toolchain with both musl targets, clang (ring's C and assembly)
# and llvm-ar, a host C toolchain for build scripts. On a bare Debian (debian:12 in the release
# workflow) this installs everything, rustup included.
if [ "$install" = true ]; then
  pkgs=()
  command -v clang >/dev/null 2>&1 || pkgs+=(clang)
  command -v llvm-ar >/dev/null 2>&1 || pkgs+=(llvm)
  command -v cc >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
  command -v file >/dev/null 2>&1 || pkgs+=(file)
  need_rustup=false
  if ! command -v rustup >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/rustup" ]; then
    need_rustup=true
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
    pkgs+=(ca-certificates)
  fi
  if [ ${#pkgs[@]} -gt 0 ]; then
    echo "==> installing ${pkgs[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
  if [ "$need_rustup" = true ]; then
    echo "==> installing rustup (the toolchain itself is pinned by rust-toolchain.toml)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none >/dev/null
  fi
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  channel=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)
  if ! rustup run "$channel" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$channel" --profile minimal >/dev/null
  fi
  # shellcheck disable=SC2086
  rustup target add --toolchain "$channel" $targets >/dev/null
fi
for tool in clang llvm-ar cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-release.sh: $tool not found (apt-get install clang llvm; rustup)" >&2; exit 1; }
done

# --- reproducibility settings ----------------------------------------------------------------
cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
rustup_home=$(cd "${RUSTUP_HOME:-$HOME/.rustup}" 2>/dev/null && pwd -P || echo "${RUSTUP_HOME:-$HOME/.rustup}")
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
# rustc applies the last matching --remap-path-prefix: the most specific prefixes go last.
remaps="$rustup_home=/rustup $cargo_home=/cargo $root=/skip-action $target_dir=/target"
rustflags=""
cflags=""
for m in $remaps; do
  rustflags="$rustflags${rustflags:+$'\x1f'}--remap-path-prefix=$m"
  cflags="$cflags -ffile-prefix-map=$m"
done
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS
export CARGO_ENCODED_RUSTFLAGS=$rustflags
export CARGO_INCREMENTAL=0
for t in $targets; do
  u=$(echo "$t" | tr '-' '_')
  export "CC_$u=clang" "AR_$u=llvm-ar" "CFLAGS_$u=$cflags"
done

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# --- build -----------------------------------------------------------------------------------
echo "==> skip-action $version: $(rustc --version), $(clang --version | head -n1)"
echo "    SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH target dir $target_dir"
for t in $targets; do
  echo "==> cargo build --release --locked --target $t"
  cargo build --release --locked --target "$t"
  cp "$target_dir/$t/release/skip-action" "$out/skip-action-$t"
done

: > "$out/SHA256SUMS.tmp"
for t in $all_targets; do
  f="$out/skip-action-$t"
  case " $targets " in *" $t "*) ;; *) continue ;; esac
  echo "$(sha256 "$f")  skip-action-$t" >> "$out/SHA256SUMS.tmp"
done
mv "$out/SHA256SUMS.tmp" "$out/SHA256SUMS"

echo "==> assets in $out"
for t in $targets; do
  f="$out/skip-action-$t"
  printf '    %-42s %9d bytes (%s MB)  sha256 %s\n' "skip-action-$t" "$(wc -c < "$f")" \
    "$(awk -v b="$(wc -c < "$f")" 'BEGIN { printf "%.2f", b / 1048576 }')" "$(sha256 "$f")"
done

# --- smoke: each binary starts and reports the version (aarch64 under qemu on x86_64) ---------
if [ "$smoke" = true ]; then
  host=$(uname -m)
  for t in $targets; do
    f="$out/skip-action-$t"
    runner=""
    case "$t" in
      x86_64-*) [ "$host" = x86_64 ] || runner=qemu-x86_64-static ;;
      aarch64-*) [ "$host" = aarch64 ] || runner=qemu-aarch64-static ;;
    esac
    if [ -n "$runner" ] && ! command -v "$runner" >/dev/null 2>&1; then
      echo "    $t: not run ($runner not installed)"
      continue
    fi
    got=$($runner "$f" --version)
    [ "$got" = "skip-action $version" ] || { echo "build-release.sh: $t --version printed '$got'" >&2; exit 1; }
    if command -v file >/dev/null 2>&1; then
      case "$(file -b "$f")" in
        *"statically linked"*|*"static-pie linked"*) ;;
        *) echo "build-release.sh: $t is not static: $(file -b "$f")" >&2; exit 1 ;;
      esac
    fi
    echo "    $t: ${runner:+$runner }--version ok"
  done
fi

# --- dist/: what the action verifies downloads against -----------------------------------------
if [ "$write_dist" = true ]; then
  if [ "$targets" != "$all_targets" ]; then
    echo "build-release.sh: dist/ lists every target: build both (or pass --no-dist)" >&2; exit 2
  fi
  mkdir -p dist
  echo "$version" > dist/VERSION
  cp "$out/SHA256SUMS" dist/SHA256SUMS
  sh scripts/source-digest.sh "$root" > dist/SOURCES
  echo "==> wrote dist/VERSION ($version), dist/SHA256SUMS and dist/SOURCES: commit them, then tag v$version"
fi
if [ "$check" = true ]; then
  fail=false
  [ "$(cat dist/VERSION 2>/dev/null)" = "$version" ] || { echo "dist/VERSION is '$(cat dist/VERSION 2>/dev/null)', Cargo.toml says $version" >&2; fail=true; }
  if ! diff -u dist/SHA256SUMS "$out/SHA256SUMS" >&2; then
    echo "the binaries built here differ from dist/SHA256SUMS (above: committed, then built)" >&2
    fail=true
  fi
  sources=$(sh scripts/source-digest.sh "$root")
  if [ "$(cat dist/SOURCES 2>/dev/null)" != "$sources" ]; then
    echo "dist/SOURCES is '$(cat dist/SOURCES 2>/dev/null)', this checkout's sources are $sources: the action would build from source instead of downloading this release" >&2
    fail=true
  fi
  [ "$fail" = false ] || { echo "build-release.sh --check: FAILED" >&2; exit 1; }
  echo "==> dist/ matches the build"
fi

# --- reproducibility: again, from elsewhere, and compare ---------------------------------------
if [ "$reproducible" = true ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/skip-action-repro.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "==> second build from a copy at $work/elsewhere/tree (target dir $work/target2)"
  mkdir -p "$work/elsewhere/tree"
  # The files a clone would have (tracked, plus new files not yet ignored), not target/ or .git.
  # shellcheck disable=SC2016
  if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$root" ls-files -z --cached --others --exclude-standard \
      | (cd "$root" && xargs -0 sh -c 'for f; do if [ -e "$f" ] || [ -L "$f" ]; then printf "%s\0" "$f"; fi; done' sh) \
      | tar -C "$root" --null -T - -cf - | tar -C "$work/elsewhere/tree" -xf -
  else
    tar -C "$root" --exclude=./target --exclude="./target-*" -cf - . | tar -C "$work/elsewhere/tree" -xf -
  fi
  target_args=()
  for t in $targets; do target_args+=(--target "$t"); done
  CARGO_TARGET_DIR="$work/target2" "$work/elsewhere/tree/scripts/build-release.sh" \
    --no-dist --no-install --no-smoke --out "$work/out2" "${target_args[@]}" \
    > "$work/build2.log" 2>&1 || { cat "$work/build2.log" >&2; exit 1; }
  same=true
  for t in $targets; do
    a="$out/skip-action-$t" b="$work/out2/skip-action-$t"
    if cmp -s "$a" "$b"; then
      echo "    $t: identical ($(sha256 "$a"))"
    else
      echo "    $t: DIFFERENT: $(sha256 "$a") vs $(sha256 "$b"); first differing bytes: $(cmp "$a" "$b" | head -n1)" >&2
      same=false
    fi
  done
  [ "$same" = true ] || { echo "build-release.sh --reproducible: NOT reproducible" >&2; exit 1; }
  echo "==> reproducible: two builds (different paths and target dirs) gave identical bytes"
fi
