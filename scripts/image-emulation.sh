#!/usr/bin/env bash
# Build the project's Dockerfile for linux/arm/v7 and linux/arm64 under qemu emulation (issue 13,
# item 4), where the python:*-slim images cannot be pulled: the base image is a stand-in made from
# the clean Debian bookworm root that scripts/board-emulation.sh caches (run that first), with
# python3, python3-venv, python3-pip, python3-dev, a `python` command and the host's CA bundle.
#
#   scripts/image-emulation.sh [armhf] [arm64]      (default: both)
#
# It starts its own dockerd (no bridge, no iptables; builds and runs use --network host) if no
# Docker engine answers, and stops it at the end. Per architecture it prints the build time,
# the image size and what `check-config` on config.example.yaml says in the image.
# Logs: $WORK_DIR/logs/image-<arch>-<step>.log.

# The step functions are called through run_step, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -euo pipefail

readonly CACHE_DIR=/var/cache/mqtt-gpio-bridge/emulation
readonly WORK_DIR=${WORK_DIR:-/var/tmp/mqtt-gpio-bridge-emulation}
readonly LOG_DIR=$WORK_DIR/logs
REPO=$(cd "$(dirname "$0")/.." && pwd)
readonly REPO

dockerd_pid="" step_ok=0 failed=0
results=()

platform_of() { case $1 in armhf) echo linux/arm/v7 ;; arm64) echo linux/arm64 ;; esac; }
goarch_of() { case $1 in armhf) echo arm ;; arm64) echo arm64 ;; esac; }
variant_of() { case $1 in armhf) echo v7 ;; arm64) echo "" ;; esac; }
tag_of() { case $1 in armhf) echo armv7 ;; arm64) echo arm64 ;; esac; }

# run_step LABEL STEP FUNCTION [ARGS...]: timed, logged; step_ok says whether it passed. Called
# as a plain command: bash ignores `set -e` under `if` and `||`.
run_step() {
  local label=$1 step=$2; shift 2
  local log="$LOG_DIR/image-$label-$step.log" start status=0 seconds
  printf '%-6s %-14s ' "$label" "$step"
  start=$EPOCHREALTIME
  ( "$@" ) >"$log" 2>&1 &
  wait $! || status=$?
  seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  if [ "$status" -eq 0 ]; then
    step_ok=1
    printf 'ok      %7ss\n' "$seconds"
  else
    step_ok=0 failed=1
    printf 'FAILED  %7ss  (exit %s, log %s)\n' "$seconds" "$status" "$log"
    tail -n 15 "$log" | sed 's/^/    | /'
  fi
  results+=("$label $step $([ "$status" -eq 0 ] && echo ok || echo FAILED) ${seconds}s")
}

passed() { [ "$step_ok" -eq 1 ]; }

start_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null || {
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io
  }
  # No bridge and no iptables: this script never creates a network, everything uses the host's.
  dockerd --bridge=none --iptables=false >"$LOG_DIR/dockerd.log" 2>&1 &
  dockerd_pid=$!
  local tries=0
  until docker info >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || { echo "dockerd did not answer, see $LOG_DIR/dockerd.log" >&2; exit 1; }
    sleep 1
  done
}

cleanup() {
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
}

# A stand-in for python:3.x-slim-bookworm: Debian's python3 with venv and pip, `python` on
# PATH (the Dockerfile calls `python` and `pip`), Python's headers (the official images carry
# them; python3-dev here), the host's CAs (PyPI through this host's proxy).
base_image() {
  local arch=$1 root="$WORK_DIR/image-base-$1"
  [ -f "$CACHE_DIR/bookworm-$arch.tar" ] || {
    echo "no $CACHE_DIR/bookworm-$arch.tar: run scripts/board-emulation.sh $arch first" >&2
    return 1
  }
  rm -rf --one-file-system "$root"
  mkdir -p "$root"
  tar -C "$root" --numeric-owner -xpf "$CACHE_DIR/bookworm-$arch.tar"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    /bin/sh -ec 'apt-get update -q
      apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip python3-dev python-is-python3
      apt-get clean
      rm -rf /var/lib/apt/lists/*'
  # After apt: ca-certificates would have rewritten the bundle without the host's own CAs.
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  rm -f "$root/usr/sbin/policy-rc.d"
  load_image "$root" "$arch"
  rm -rf --one-file-system "$root"
  docker image inspect -f '{{.Os}}/{{.Architecture}}/{{.Variant}}' "mgb-base:$arch"
}

# load_image ROOT ARCH: the root as a one-layer image tagged mgb-base:ARCH, made with `docker
# load` from a hand-made archive. `docker import --platform` would do, but Debian's dockerd
# (20.10) labels an imported image with the host's architecture whatever the flag says, and the
# build then refuses its own intermediate images ("does not match the specified platform").
load_image() {
  local root=$1 arch=$2 dir
  dir=$(mktemp -d)
  tar -C "$root" --numeric-owner -cf "$dir/layer.tar" .
  python3 - "$dir" "mgb-base:$arch" "$(goarch_of "$arch")" "$(variant_of "$arch")" <<'PY'
import hashlib, json, pathlib, sys

folder, tag, arch, variant = pathlib.Path(sys.argv[1]), *sys.argv[2:5]
digest = hashlib.sha256()
with (folder / "layer.tar").open("rb") as layer:
    for chunk in iter(lambda: layer.read(1 << 20), b""):
        digest.update(chunk)
config = {
    "architecture": arch,
    "os": "linux",
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["python3"],
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest.hexdigest()]},
}
if variant:
    config["variant"] = variant
data = json.dumps(config).encode()
name = hashlib.sha256(data).hexdigest() + ".json"
(folder / name).write_bytes(data)
manifest = [{"Config": name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
(folder / "manifest.json").write_text(json.dumps(manifest))
PY
  tar -C "$dir" -c . | docker load
  rm -rf "$dir"
}

build_image() {
  local arch=$1
  cd "$REPO"
  DOCKER_BUILDKIT=0 docker build --platform "$(platform_of "$arch")" \
    --build-arg PYTHON_IMAGE="mgb-base:$arch" --network host \
    -t "mqtt-gpio-bridge:$(tag_of "$arch")" .
  docker image inspect -f 'size {{.Size}} bytes, {{.Architecture}}/{{.Variant}}' \
    "mqtt-gpio-bridge:$(tag_of "$arch")"
}

check_config() {
  local arch=$1
  docker run --rm --network host --platform "$(platform_of "$arch")" \
    -v "$REPO/config.example.yaml:/config/config.yaml:ro" \
    "mqtt-gpio-bridge:$(tag_of "$arch")" check-config --config /config/config.yaml
}

main() {
  local arches=("$@") arch
  [ ${#arches[@]} -gt 0 ] || arches=(armhf arm64)
  [ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
  mkdir -p "$LOG_DIR"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  start_dockerd
  for arch in "${arches[@]}"; do
    run_step "$arch" base-image base_image "$arch"
    passed || continue
    run_step "$arch" build build_image "$arch"
    passed || continue
    grep '^size' "$LOG_DIR/image-$arch-build.log" | sed "s/^/$arch image /"
    run_step "$arch" check-config check_config "$arch"
  done
  echo
  printf '%s\n' "${results[@]}"
  exit "$failed"
}

main "$@"
