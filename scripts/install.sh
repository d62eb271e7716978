#!/bin/sh
# Puts a verified skip-action binary on this runner and prints its path; the composite action
# (action.yml) runs it next. POSIX sh: works with dash, bash and BusyBox ash, with curl or wget.
#
#   INPUT_BINARY=path        use this executable (e.g. built from source) instead of downloading
#   INPUT_DOWNLOAD_URL=url   base URL of the release assets (default: this project's GitHub
#                            release of the version in dist/VERSION); `{version}` is replaced
#   SKIP_ACTION_ARCH=arch    the machine instead of `uname -m` (x86_64/amd64/x64, aarch64/arm64)
#
# The binary for version V (dist/VERSION, committed with this script) and target T is downloaded
# from <url>/skip-action-T, with retries, and kept in $RUNNER_TOOL_CACHE/skip-action/V/T/. Before it
# is used, downloaded or cached, its SHA-256 must equal the one in dist/SHA256SUMS, committed in this
# repository: a checksum file served next to the asset proves nothing and is never read. A binary
# that does not match is deleted and never run.
#
# Writes `path=<binary>` (and `version`, `target`, `source`) to $GITHUB_OUTPUT when it is set.
set -eu

here=$(cd "$(dirname "$0")" && pwd -P)
dist=$(dirname "$here")/dist

in_actions() { [ "${GITHUB_ACTIONS:-}" = true ] || [ "${GITEA_ACTIONS:-}" = true ]; }
info() { printf '%s\n' "skip-action: $*" >&2; }
die() {
  if in_actions; then
    printf '::error title=skip-action setup::%s\n' "$*"
  fi
  printf '%s\n' "skip-action: error: $*" >&2
  exit 1
}
output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >> "$GITHUB_OUTPUT"
  fi
}
lower() { printf '%s' "$1" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz'; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r "$1" | cut -d' ' -f1
  else
    die "no sha256sum, shasum or openssl on this runner to verify the download; install one, or pass binary:"
  fi
}

# `--version` must answer: catches a wrong architecture or a noexec mount with a clear message.
check_runs() {
  if ! ver=$("$1" --version 2>&1); then
    die "$1 does not run on this machine ($(uname -m)): $ver"
  fi
  info "using $ver ($1)"
}

# ---- binary: a given executable ---------------------------------------------------------------
if [ -n "${INPUT_BINARY:-}" ]; then
  bin=$INPUT_BINARY
  case "$bin" in /*) ;; *) bin=$(pwd -P)/$bin ;; esac
  [ -f "$bin" ] || die "binary: $INPUT_BINARY does not exist (relative paths start at $(pwd -P))"
  [ -x "$bin" ] || die "binary: $INPUT_BINARY is not executable (chmod +x it)"
  check_runs "$bin"
  output path "$bin"
  output source binary
  exit 0
fi

# ---- which release asset ----------------------------------------------------------------------
[ -r "$dist/VERSION" ] || die "$dist/VERSION is missing: this checkout of the action has no release to download; pass binary: (a skip-action built from source)"
version=$(head -n1 "$dist/VERSION" | tr -d ' \r\t')
case "$version" in
  ''|*[!0-9A-Za-z.+-]*) die "$dist/VERSION holds '$version', not a version" ;;
esac

os=$(uname -s)
[ "$os" = Linux ] || die "no prebuilt skip-action for $os (only Linux x86_64 and aarch64); build it from source (cargo build --release) and pass its path as binary:"
machine=${SKIP_ACTION_ARCH:-$(uname -m)}
case "$(lower "$machine")" in
  x86_64|amd64|x64) target=x86_64-unknown-linux-musl ;;
  aarch64|arm64) target=aarch64-unknown-linux-musl ;;
  *) die "no prebuilt skip-action for the architecture '$machine' (only x86_64 and aarch64); build it from source (cargo build --release) and pass its path as binary:" ;;
esac
asset=skip-action-$target

[ -r "$dist/SHA256SUMS" ] || die "$dist/SHA256SUMS is missing: cannot verify a download; pass binary:"
expected=$(awk -v a="$asset" '$2 == a || $2 == "*" a { print $1; exit }' "$dist/SHA256SUMS")
case "$expected" in
  ????????????????????????????????????????????????????????????????) ;;
  *) die "dist/SHA256SUMS has no checksum for $asset (version $version); pass binary:" ;;
esac
case "$expected" in *[!0-9a-f]*) die "dist/SHA256SUMS: malformed checksum for $asset" ;; esac

default_url='https://github.com/org/skip-action/releases/download/v{version}'
base=${INPUT_DOWNLOAD_URL:-$default_url}
base=$(printf '%s' "$base" | sed "s/{version}/$version/g")
base=${base%/}
url=$base/$asset

cache_root=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}
dir=$cache_root/skip-action/$version/$target
bin=$dir/skip-action

# ---- cached? ----------------------------------------------------------------------------------
if [ -f "$bin" ]; then
  actual=$(sha256_of "$bin")
  if [ "$actual" = "$expected" ]; then
    [ -x "$bin" ] || chmod 755 "$bin"
    info "skip-action $version ($target) from the tool cache, sha256 $expected verified"
    check_runs "$bin"
    output path "$bin"; output version "$version"; output target "$target"; output source cache
    exit 0
  fi
  info "the cached $bin does not match dist/SHA256SUMS (sha256 $actual): downloading it again"
  rm -f "$bin"
fi

# ---- download, with retries -------------------------------------------------------------------
mkdir -p "$dir" || die "cannot create $dir"
# A name of its own: jobs sharing a tool cache may download at the same time.
tmp=$(mktemp "$dir/.download.XXXXXX" 2>/dev/null) || tmp=$dir/.download.$$
trap 'rm -f "$tmp"' EXIT INT TERM

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --connect-timeout 20 --max-time 300 -o "$tmp" "$url"; }
  client=curl
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -T 60 -O "$tmp" "$url"; }
  client=wget
else
  die "neither curl nor wget is installed on this runner: install one, or pass binary:"
fi

attempts=${SKIP_ACTION_DOWNLOAD_ATTEMPTS:-4}
delay=1
n=1
while :; do
  rm -f "$tmp"
  if fetch; then
    break
  fi
  if [ "$n" -ge "$attempts" ]; then
    die "could not download $url ($attempts attempts with $client). Check the network or download-url:, or pass binary:"
  fi
  info "download of $url failed (attempt $n of $attempts), retrying in ${delay}s"
  sleep "$delay"
  n=$((n + 1))
  delay=$((delay * 2))
done

actual=$(sha256_of "$tmp")
if [ "$actual" != "$expected" ]; then
  rm -f "$tmp"
  die "checksum mismatch for $url: expected sha256 $expected (dist/SHA256SUMS of this action), got $actual. The file was deleted and not run."
fi
chmod 755 "$tmp"
mv -f "$tmp" "$bin"
info "downloaded skip-action $version ($target) with $client from $url, sha256 $expected verified"
check_runs "$bin"
output path "$bin"; output version "$version"; output target "$target"; output source download
