#!/bin/sh
# Puts a skip-action binary that matches this action's commit on the runner and prints its path;
# the composite action (action.yml) runs it next. POSIX sh: works with dash, bash and BusyBox
# ash, with curl or wget.
#
#   INPUT_BINARY=path        use this executable (e.g. built from source) and nothing else
#   INPUT_DOWNLOAD_URL=url   base URL of the release assets (default: the releases of the
#                            repository this action runs from, see below); `{version}` is replaced
#   SKIP_ACTION_ARCH=arch    the machine instead of `uname -m` (x86_64/amd64/x64, aarch64/arm64)
#
# Which binary. dist/VERSION names the last release and dist/SOURCES the digest of the sources it
# was built from (scripts/source-digest.sh). When this checkout's sources have that digest, the
# release asset is the right binary: it is downloaded. When they differ (a commit between
# releases: its action.yml may use a command the release lacks), when dist/SOURCES is missing, or
# when no asset can be had (a fork that never released, no prebuilt for this machine, downloads
# failing), the action's own checkout is built with cargo (the host target only) and the result
# is cached by that digest in the tool cache. No cargo: a clear error with the fix. A checkout
# without sources (a trimmed copy of the action) downloads as before.
#
# Where from. <url>/skip-action-<target>, where <url> is INPUT_DOWNLOAD_URL, else
# <server>/<OWNER>/<REPO>/releases/download/v<version>: OWNER/REPO from the path the runner put
# this action in (GITHUB_ACTION_PATH = …/_actions/OWNER/REPO/REF) or, when that has no such
# layout, GITHUB_ACTION_REPOSITORY; <server> is GITHUB_SERVER_URL (a Gitea or GHES host, the same
# URL layout), then https://github.com when that differs (Gitea fetches actions from github.com by
# default). Forks and mirrors thus download their own releases.
#
# Trust. A downloaded or cached asset must have the SHA-256 that dist/SHA256SUMS, committed in
# this repository, names; a checksum file served next to the asset proves nothing and is never
# read. A binary that does not match is deleted and never run, and nothing is built instead: a
# mismatch means something is wrong. A binary built from source comes from the same checkout as
# this script.
#
# Writes `path=<binary>` (and `version`, `target`, `source`: binary, download, cache, build or
# build-cache) to $GITHUB_OUTPUT when it is set.
set -eu

here=$(cd "$(dirname "$0")" && pwd -P)
action_dir=$(dirname "$here")
dist=$action_dir/dist

in_actions() { [ "${GITHUB_ACTIONS:-}" = true ] || [ "${GITEA_ACTIONS:-}" = true ]; }
info() { printf '%s\n' "skip-action: $*" >&2; }
notice() {
  if in_actions; then
    printf '::notice title=skip-action setup::%s\n' "$*"
  fi
  info "$*"
}
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

# ---- this checkout's sources ------------------------------------------------------------------
cache_root=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}
has_sources=false
src_digest=""
if [ -f "$action_dir/Cargo.toml" ] && [ -d "$action_dir/src" ] && [ -r "$here/source-digest.sh" ]; then
  has_sources=true
  src_digest=$(sh "$here/source-digest.sh" "$action_dir") || die "could not compute the digest of $action_dir's sources (scripts/source-digest.sh)"
fi

# Builds this checkout with cargo (cached by source digest) and exits; $1 says why, $2 (optional)
# is one more way out for the no-cargo error.
build_from_source() {
  why=$1
  more=${2:-}
  host=$(lower "$(uname -s)-$(uname -m)")
  bdir=$cache_root/skip-action/src-$src_digest/$host
  bbin=$bdir/skip-action
  if [ -x "$bbin" ] && ver=$("$bbin" --version 2>/dev/null); then
    info "$why: using $ver built from this checkout's sources earlier ($bbin)"
    check_runs "$bbin"
    output path "$bbin"; output version "${version:-}"; output target "$host"; output source build-cache
    exit 0
  fi
  cargo_bin=$(command -v cargo 2>/dev/null || true)
  cargo_home=${CARGO_HOME:-${HOME:-/nonexistent}/.cargo}
  if [ -z "$cargo_bin" ] && [ -x "$cargo_home/bin/cargo" ]; then
    cargo_bin=$cargo_home/bin/cargo
  fi
  if [ -z "$cargo_bin" ]; then
    die "$why, so skip-action must be built from this action's sources, and cargo is not installed on this runner. Fix, one of: (1) install Rust in a step before this one: run: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal && echo \"\$HOME/.cargo/bin\" >> \"\$GITHUB_PATH\"; (2) use a released version of the action (uses: OWNER/skip-action@v1, whose binary is downloaded); (3) pass binary: (a skip-action you built)${more:+; $more}"
  fi
  channel=""
  if [ -f "$action_dir/rust-toolchain.toml" ]; then
    channel=$(sed -n 's/^channel *= *"\([^"]*\)".*$/\1/p' "$action_dir/rust-toolchain.toml" | head -n1)
  fi
  plus=""
  # With rustup: the pinned toolchain, minimal, without the release's extra targets and
  # components (rust-toolchain.toml lists them for release builds; this build needs the host's).
  if [ -n "$channel" ] && command -v rustup >/dev/null 2>&1; then
    info "installing Rust $channel (minimal profile) for the build"
    rustup toolchain install "$channel" --profile minimal --no-self-update >&2 \
      || die "rustup toolchain install $channel failed (log above)"
    plus=+$channel
  fi
  mkdir -p "$cache_root/skip-action" || die "cannot create $cache_root/skip-action"
  work=$(mktemp -d "$cache_root/skip-action/.build.XXXXXX") || die "cannot create a build directory in $cache_root/skip-action"
  trap 'rm -rf "$work"' EXIT INT TERM
  info "$why: building skip-action from $action_dir with $cargo_bin $plus (release, host target only)"
  started=$(date +%s)
  # shellcheck disable=SC2086
  if ! (cd "$action_dir" && CARGO_TARGET_DIR="$work/target" "$cargo_bin" $plus build --release --locked --bin skip-action >&2); then
    die "cargo build of $action_dir failed (log above); pass binary: or download-url: to use a prebuilt skip-action"
  fi
  took=$(( $(date +%s) - started ))
  mkdir -p "$bdir" || die "cannot create $bdir"
  cp "$work/target/release/skip-action" "$work/skip-action"
  chmod 755 "$work/skip-action"
  mv -f "$work/skip-action" "$bbin"
  rm -rf "$work"
  notice "built skip-action from source in ${took}s ($why); cached in $bdir for the other jobs on this runner"
  check_runs "$bbin"
  output path "$bbin"; output version "${version:-}"; output target "$host"; output source build
  exit 0
}

# Without sources: the old refusal (no way to build). With them: build, saying why.
cannot_download() {
  if [ "$has_sources" = true ]; then
    build_from_source "$1" "${3:-}"
  fi
  die "$2"
}

# ---- which release asset ----------------------------------------------------------------------
version=""
if [ ! -r "$dist/VERSION" ]; then
  cannot_download "dist/VERSION is missing (no release)" "$dist/VERSION is missing: this checkout of the action has no release to download; pass binary: (a skip-action built from source)"
fi
version=$(head -n1 "$dist/VERSION" | tr -d ' \r\t')
case "$version" in
  ''|*[!0-9A-Za-z.+-]*) die "$dist/VERSION holds '$version', not a version" ;;
esac

# A commit between releases: its sources are not the release's, so neither is the binary.
if [ "$has_sources" = true ]; then
  release_digest=""
  if [ -r "$dist/SOURCES" ]; then
    release_digest=$(head -n1 "$dist/SOURCES" | tr -d ' \r\t')
  fi
  if [ -z "$release_digest" ]; then
    build_from_source "dist/SOURCES is missing, so nothing says this commit is release $version"
  elif [ "$release_digest" != "$src_digest" ]; then
    build_from_source "this commit's sources (digest $src_digest) differ from release $version's (dist/SOURCES: $release_digest)"
  fi
  info "this commit's sources are release $version's (digest $src_digest): using the release binary"
fi

os=$(uname -s)
machine=${SKIP_ACTION_ARCH:-$(uname -m)}
target=""
if [ "$os" != Linux ]; then
  cannot_download "no prebuilt skip-action for $os" "no prebuilt skip-action for $os (only Linux x86_64 and aarch64); build it from source (cargo build --release) and pass its path as binary:"
fi
case "$(lower "$machine")" in
  x86_64|amd64|x64) target=x86_64-unknown-linux-musl ;;
  aarch64|arm64) target=aarch64-unknown-linux-musl ;;
  *) cannot_download "no prebuilt skip-action for the architecture '$machine'" "no prebuilt skip-action for the architecture '$machine' (only x86_64 and aarch64); build it from source (cargo build --release) and pass its path as binary:" ;;
esac
asset=skip-action-$target

[ -r "$dist/SHA256SUMS" ] || cannot_download "dist/SHA256SUMS is missing" "$dist/SHA256SUMS is missing: cannot verify a download; pass binary:"
expected=$(awk -v a="$asset" '$2 == a || $2 == "*" a { print $1; exit }' "$dist/SHA256SUMS")
case "$expected" in
  ????????????????????????????????????????????????????????????????) ;;
  *) cannot_download "dist/SHA256SUMS has no checksum for $asset" "dist/SHA256SUMS has no checksum for $asset (version $version); pass binary:" ;;
esac
case "$expected" in *[!0-9a-f]*) die "dist/SHA256SUMS: malformed checksum for $asset" ;; esac

# ---- where from -------------------------------------------------------------------------------
# OWNER/REPO of `…/_actions/OWNER/REPO/REF[/…]`, or nothing.
repo_of_path() {
  case "$1" in
    */_actions/*/*/*) ;;
    *) return 0 ;;
  esac
  rest=${1##*/_actions/}
  o=${rest%%/*}
  rest=${rest#*/}
  r=${rest%%/*}
  printf '%s/%s' "$o" "$r"
}
valid_repo() {
  case "$1" in
    */*/*|/*|*/|*[!A-Za-z0-9._/-]*|.*|*/.*) return 1 ;;
    */*) return 0 ;;
    *) return 1 ;;
  esac
}
bases=""
if [ -n "${INPUT_DOWNLOAD_URL:-}" ]; then
  b=$(printf '%s' "$INPUT_DOWNLOAD_URL" | sed "s/{version}/$version/g")
  bases=${b%/}
  where="download-url"
else
  repo=""
  from_path=$(repo_of_path "${GITHUB_ACTION_PATH:-$action_dir}")
  from_env=${GITHUB_ACTION_REPOSITORY:-}
  if [ -n "$from_path" ] && valid_repo "$from_path"; then
    repo=$from_path
    where="the action's path ${GITHUB_ACTION_PATH:-$action_dir}"
    if [ -n "$from_env" ] && [ "$from_env" != "$from_path" ]; then
      info "GITHUB_ACTION_REPOSITORY is $from_env, the action's path says $from_path: using the path (it is where this script is)"
    fi
  elif [ -n "$from_env" ] && valid_repo "$from_env"; then
    repo=$from_env
    where="GITHUB_ACTION_REPOSITORY"
  fi
  if [ -z "$repo" ]; then
    cannot_download "cannot tell which repository this action came from" "cannot tell which repository this action came from (GITHUB_ACTION_PATH ${GITHUB_ACTION_PATH:-unset} has no …/_actions/OWNER/REPO/REF layout and GITHUB_ACTION_REPOSITORY is unset): pass download-url: (e.g. https://gitea.example.com/OWNER/skip-action/releases/download/v{version}) or binary:" "(4) set download-url: to where release $version's assets are"
  fi
  server=${GITHUB_SERVER_URL:-https://github.com}
  server=${server%/}
  bases="$server/$repo/releases/download/v$version"
  if [ "$server" != https://github.com ]; then
    bases="$bases https://github.com/$repo/releases/download/v$version"
  fi
fi

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
  cannot_download "neither curl nor wget is installed" "neither curl nor wget is installed on this runner: install one, or pass binary:"
fi

attempts=${SKIP_ACTION_DOWNLOAD_ATTEMPTS:-4}
got=false
tried=""
for base in $bases; do
  url=$base/$asset
  tried="$tried $url"
  delay=1
  n=1
  while :; do
    rm -f "$tmp"
    if fetch; then
      got=true
      break
    fi
    if [ "$n" -ge "$attempts" ]; then
      info "could not download $url ($attempts attempts with $client)"
      break
    fi
    info "download of $url failed (attempt $n of $attempts), retrying in ${delay}s"
    sleep "$delay"
    n=$((n + 1))
    delay=$((delay * 2))
  done
  [ "$got" = true ] && break
done
if [ "$got" != true ]; then
  rm -f "$tmp"
  rmdir "$dir" 2>/dev/null || true
  cannot_download "the release asset could not be downloaded (from $where:$tried)" "could not download$tried ($attempts attempts each with $client; location from $where). Check the network or download-url:, or pass binary:" "(4) set download-url: to where release $version's assets are"
fi

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
