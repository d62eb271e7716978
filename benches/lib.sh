# Shared by the benchmark scripts: a real docker-registry on 127.0.0.1, stopped on exit.
# Usage: source benches/lib.sh; start_registry DIR   (sets REGISTRY=127.0.0.1:PORT)

start_registry() {
  local dir=$1
  mkdir -p "$dir/data"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/config.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $dir/data }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
YML
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  trap 'kill $REGISTRY_PID 2>/dev/null || true' EXIT
  REGISTRY=127.0.0.1:$port
  for _ in $(seq 100); do
    curl -fs "http://$REGISTRY/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "registry did not start; log:" >&2; cat "$dir/registry.log" >&2; return 1
}

# Best wall-clock seconds of N runs of a command.
best_of() {
  local n=$1; shift
  local best=""
  for _ in $(seq "$n"); do
    local s e t
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "benchmark command failed: $*" >&2; return 1; }
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
  done
  printf '%.3f' "$best"
}

# The 1-minute load average, for the record: the machine is shared.
load_avg() { cut -d' ' -f1 /proc/loadavg; }

# Peak resident memory of a command, in MiB.
peak_mib() {
  local f kb
  f=$(mktemp)
  /usr/bin/time -f '%M' -o "$f" "$@" >/dev/null 2>&1
  kb=$(tail -1 "$f"); rm -f "$f"
  echo $((kb / 1024))
}

# The content tag of every image of the config in DIR, one a line, in config order.
tags_of() {
  (cd "$1" && "$bin" hash --json) |
    python3 -c 'import json,sys; [print(i["tag"]) for i in json.load(sys.stdin)["images"]]'
}

# The scale config of issue 15 in DIR: 6 bases × (100 benchmarks × 128 agents), one repository
# REPO; 12,806 images. With `per-platform`, every image is built per platform on its own runner
# (`runners:`, linux/amd64 + linux/arm64): 25,612 image × platform entries.
write_scale_config() {
  local dir=$1 repo=$2 mode=${3:-single}
  mkdir -p "$dir"
  {
    echo "version: 1"
    echo "repository: $repo"
    if [ "$mode" = per-platform ]; then
      echo "platforms: [linux/amd64, linux/arm64]"
      echo "runners: { linux/amd64: ubuntu-24.04, linux/arm64: ubuntu-24.04-arm }"
    fi
    cat <<YML
images:
  base:
    dockerfile: Dockerfile.base
    matrix:
      distro: [d0, d1, d2, d3, d4, d5]
    tag: "base-{variant}-{hash}"
  app:
    from: "base/{distro}"
    dockerfile: Dockerfile.app
    matrix:
      bench: [$(seq -s, 1 100)]
      agent: [$(seq -s, 1 128)]
      include:
YML
    for a in $(seq 1 128); do echo "        - { agent: $a, distro: d$((a % 6)) }"; done
    echo '    tag: "{bench}-{agent}-{hash}"'
  } > "$dir/skip-action.yml"
  printf 'FROM scratch\nARG distro\n' > "$dir/Dockerfile.base"
  printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG bench\nARG agent\n' > "$dir/Dockerfile.app"
}

# `skip-action decide` in DIR as on a runner ($GITHUB_OUTPUT, step summary, RUNNER_TEMP), plan
# on stdout. Scratch files go to $work.
decide_in() {
  mkdir -p "$work/tmp"
  # Fresh files: a runner appends to both, so a second run would add to the first's.
  rm -f "$work/out" "$work/summary"
  (cd "$1" && GITHUB_OUTPUT=$work/out GITHUB_STEP_SUMMARY=$work/summary RUNNER_TEMP=$work/tmp \
    "$bin" decide --json)
}

# decide's own account of a run in DIR: the `base check` and `decided` log lines' fields
# (images checked, manifests read, requests by method).
decide_log() {
  (cd "$1" && GITHUB_OUTPUT=$work/out RUNNER_TEMP=$work/tmp SKIP_ACTION_LOG=info "$bin" decide --json 2>&1 >/dev/null) |
    sed 's/\x1b\[[0-9;]*m//g' | grep -E 'base check|registry reads|decided' | sed 's/.*INFO [^ ]*: //'
}

# The peer floor: curl GETs every URL of FILE (one a line), PARALLEL at a time over reused
# connections, with the manifest Accept header decide sends. What the registry itself costs.
curl_gets() {
  local file=$1 parallel=$2 cfg
  cfg=$(mktemp)
  sed 's/.*/url = "&"\noutput = "\/dev\/null"/' "$file" > "$cfg"
  curl -s --fail-early --parallel --parallel-immediate --parallel-max "$parallel" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
    -K "$cfg"
  local rc=$?
  rm -f "$cfg"
  return $rc
}

# The registry's own GET rate: ab sending COUNT GETs of one manifest URL, PARALLEL at a time over
# keep-alive connections (a C client with next to no cost of its own).
ab_gets() {
  local url=$1 count=$2 parallel=$3
  ab -q -k -n "$count" -c "$parallel" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' \
    "$url" | grep -q "Failed requests: *0"
}

# The binary under test: $SKIP_ACTION_BIN (e.g. an older build, to compare), else the release
# build of this checkout. Sets $bin.
use_bin() {
  if [ -n "${SKIP_ACTION_BIN:-}" ]; then
    bin=$SKIP_ACTION_BIN
  else
    cargo build --release --quiet
    bin=$PWD/target/release/skip-action
  fi
}
