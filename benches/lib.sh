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
