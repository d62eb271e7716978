#!/usr/bin/env bash
# Promote benchmark: `skip-action promote` (whole process: config, hashing, every check, the
# writes) against the least a re-tag can cost — one `curl` GET + PUT pair — and against
# `skopeo copy --all --preserve-digests`, on a local docker-registry; then 100 aliases at once.
#
#   benches/promote.sh [RUNS]        (default 20 runs per command; needs docker-registry, curl,
#                                     jq, skopeo, hyperfine: all Debian packages)
#
# The registry runs on 127.0.0.1 with a temp config and storage and is stopped on exit. Images are
# pushed with curl (random layer, config, OCI manifest). Before every timed run each alias is put
# back on another digest (hyperfine --prepare), so every command really writes every alias.
# Prints a Markdown table and the ratios; also written to benches/results/promote.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
root=$PWD
for tool in docker-registry curl jq skopeo hyperfine; do
  command -v "$tool" >/dev/null || { echo "benches/promote.sh needs $tool (apt-get install $tool)" >&2; exit 2; }
done

if [ -z "${SKIP_ACTION_BIN:-}" ]; then
  cargo build --release --quiet -p skip-action
  SKIP_ACTION_BIN=${CARGO_TARGET_DIR:-$root/target}/release/skip-action
fi
bin=$SKIP_ACTION_BIN

work=$(mktemp -d /tmp/skip-promote-bench.XXXXXX)
reg_pid=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- registry ------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: $host
  secret: bench-not-a-secret
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
  curl -fs "http://$host/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://$host/v2/" >/dev/null || { cat "$work/registry.log"; exit 1; }

# --- pushing with curl -----------------------------------------------------------------------
# push_blob REPO FILE -> prints the digest
push_blob() {
  local repo=$1 file=$2 digest loc
  digest=sha256:$(sha256sum "$file" | cut -d' ' -f1)
  if curl -fsI "http://$host/v2/$repo/blobs/$digest" >/dev/null 2>&1; then echo "$digest"; return; fi
  loc=$(curl -fsi -X POST "http://$host/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  case $loc in http*) ;; *) loc="http://$host$loc" ;; esac
  case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -fs -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$loc" >/dev/null
  echo "$digest"
}

# push_image REPO TAG... -> an image with one random layer under each TAG; prints its digest
push_image() {
  local repo=$1; shift
  local d=$work/img.$RANDOM$RANDOM
  mkdir -p "$d"
  head -c 4096 /dev/urandom > "$d/layer"
  local ld; ld=$(push_blob "$repo" "$d/layer")
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$ld" > "$d/config"
  local cd; cd=$(push_blob "$repo" "$d/config")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":4096}]}' \
    "$cd" "$(stat -c %s "$d/config")" "$ld" > "$d/manifest"
  for tag in "$@"; do
    curl -fs -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
      --data-binary "@$d/manifest" "http://$host/v2/$repo/manifests/$tag" >/dev/null
  done
  echo "sha256:$(sha256sum "$d/manifest" | cut -d' ' -f1)"
  cp "$d/manifest" "$work/last-manifest"
}

# --- workspace 1: one image, one alias ---------------------------------------------------------
one=$work/one
mkdir -p "$one"
printf 'FROM alpine:3.20\nRUN true\n' > "$one/Dockerfile"
cat > "$one/skip-action.yml" <<YML
version: 1
repository: $host/acme/app
images:
  app:
    tag: app-{hash}
    promote: [latest]
YML
app_tag=$(cd "$one" && "$bin" hash --json | jq -r '.images[0].tag')
push_image acme/app "$app_tag" >/dev/null
push_image acme/app other >/dev/null
cp "$work/last-manifest" "$work/other-manifest"
reset_one="curl -fs -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @$work/other-manifest http://$host/v2/acme/app/manifests/latest >/dev/null"
accept='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
curl_pair="curl -fs -H 'Accept: $accept' -D $work/h -o $work/m http://$host/v2/acme/app/manifests/$app_tag && curl -fs -X PUT -H \"Content-Type: \$(awk 'tolower(\$1)==\"content-type:\" {print \$2}' $work/h | tr -d '\\r')\" --data-binary @$work/m http://$host/v2/acme/app/manifests/latest"
skopeo_one="skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false docker://$host/acme/app:$app_tag docker://$host/acme/app:latest"
ours_one="cd $one && $bin promote --wait 0 >/dev/null"

# Sanity: each command really moves the alias to the content digest.
want=$(curl -fsI -H "Accept: $accept" "http://$host/v2/acme/app/manifests/$app_tag" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}')
for c in "$ours_one" "$curl_pair" "$skopeo_one"; do
  eval "$reset_one"; eval "$c" >/dev/null
  got=$(curl -fsI -H "Accept: $accept" "http://$host/v2/acme/app/manifests/latest" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}')
  [ "$got" = "$want" ] || { echo "sanity check failed for: $c ($got != $want)" >&2; exit 1; }
done

hyperfine -N --version >/dev/null 2>&1 || true
hyperfine --warmup 3 --runs "$runs" --style basic --export-json "$work/one.json" \
  --prepare "$reset_one" \
  -n "skip-action promote (1 alias)" "$ours_one" \
  -n "curl GET + PUT" "$curl_pair" \
  -n "skopeo copy --all --preserve-digests" "$skopeo_one" > "$work/one.txt"

# --- workspace 2: 100 variants, one alias each --------------------------------------------------
many=$work/many
mkdir -p "$many"
printf 'FROM alpine:3.20\nARG N\nRUN echo $N\n' > "$many/Dockerfile"
{
  printf 'version: 1\nrepository: %s/acme/many\nimages:\n  app:\n    tag: "{variant}-{hash}"\n    promote: ["latest-{variant}"]\n    variants:\n' "$host"
  for i in $(seq -w 0 99); do printf '      v%s: { N: "%s" }\n' "$i" "$i"; done
} > "$many/skip-action.yml"
(cd "$many" && "$bin" hash --json | jq -r '.images[].tag') > "$work/many-tags"
mapfile -t many_tags < "$work/many-tags"
push_image acme/many "${many_tags[@]}" >/dev/null
push_image acme/many other >/dev/null
cp "$work/last-manifest" "$work/other-many"
seq -w 0 99 | sed 's/^/latest-v/' > "$work/many-aliases"
paste -d' ' "$work/many-tags" "$work/many-aliases" > "$work/many-pairs"
reset_many="xargs -P 16 -I{} curl -fs -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @$work/other-many http://$host/v2/acme/many/manifests/{} < $work/many-aliases >/dev/null"
ours_many="cd $many && $bin promote --wait 0 >/dev/null"
curl_many_seq="while read -r t a; do curl -fs -H 'Accept: $accept' -o $work/mm http://$host/v2/acme/many/manifests/\$t && curl -fs -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @$work/mm http://$host/v2/acme/many/manifests/\$a; done < $work/many-pairs"
curl_many_par="xargs -P 16 -L 1 sh -c 'curl -fs -H \"Accept: $accept\" -o $work/mm.\$1 http://$host/v2/acme/many/manifests/\$0 && curl -fs -X PUT -H \"Content-Type: application/vnd.oci.image.manifest.v1+json\" --data-binary @$work/mm.\$1 http://$host/v2/acme/many/manifests/\$1' < $work/many-pairs"
skopeo_many="while read -r t a; do skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false docker://$host/acme/many:\$t docker://$host/acme/many:\$a; done < $work/many-pairs"

eval "$reset_many"; eval "$ours_many"
moved=$(curl -fsI -H "Accept: $accept" "http://$host/v2/acme/many/manifests/latest-v57" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}')
want=$(curl -fsI -H "Accept: $accept" "http://$host/v2/acme/many/manifests/${many_tags[57]}" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}')
[ "$moved" = "$want" ] || { echo "sanity check failed for 100 aliases" >&2; exit 1; }

many_runs=$(( runs < 10 ? runs : 10 ))
hyperfine --warmup 1 --runs "$many_runs" --style basic --export-json "$work/many.json" \
  --prepare "$reset_many" \
  -n "skip-action promote (100 aliases)" "$ours_many" \
  -n "curl GET + PUT x100, sequential" "$curl_many_seq" \
  -n "curl GET + PUT x100, 16 parallel" "$curl_many_par" \
  -n "skopeo copy x100, sequential" "$skopeo_many" > "$work/many.txt"

# --- report ------------------------------------------------------------------------------------
report() {
  jq -r '.results as $r | $r[0].mean as $ours |
    ($r[] | "| \(.command) | \((.mean*1000)|floor) ms | ±\((.stddev*1000*10|floor)/10) ms | \(((.mean/$ours)*100|floor)/100)× |")' "$1"
}
mkdir -p benches/results
{
  echo "## promote benchmark ($(nproc) cores, docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}'), $runs runs)"
  echo
  echo "Whole process, against a local registry; every run really moves every alias."
  echo "The last column is the command's time relative to skip-action's (above 1: slower than skip-action)."
  echo
  echo "| one alias | mean | stddev | vs skip-action |"
  echo "|---|---|---|---|"
  report "$work/one.json"
  echo
  echo "| 100 aliases (100 images) | mean | stddev | vs skip-action |"
  echo "|---|---|---|---|"
  report "$work/many.json"
} | tee benches/results/promote.md
