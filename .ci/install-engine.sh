#!/usr/bin/env bash
# Install a real Docker engine, BuildKit (buildx), compose v2, a registry and a static busybox
# on Debian 12 or Ubuntu 24.04, then start dockerd and seed a local `busybox` image.
# Idempotent: rerun at will.
# Also installs what the README's `python3 -m venv .venv` needs when it is missing: Debian and
# Ubuntu ship ensurepip separately (python3.X-venv), and a minimal system may lack python3.
# What this script installed or created (not what was already there) is listed under
# /var/lib/meeshy-tasks/ (installed-packages, seeded-images), for the README's "Uninstall".
# Also OpenSSH (client and server): the SSH tests run their own sshd on loopback; no system
# sshd is started.
#
#   bash .ci/install-engine.sh            # install + start + seed
#   bash .ci/install-engine.sh --start    # only start dockerd and seed (already installed)
#
# docker-buildx and docker-compose (v2) come from the system's sources where it has them
# (Ubuntu 24.04). They are not packaged for Debian 12; Debian 13's packages
# need only libc6 >= 2.34, so there they are downloaded with a separate, throwaway apt state (the
# system's sources are never touched, so apt does not upgrade unrelated packages) and
# installed with dpkg -i.
set -euo pipefail

log() { printf '[engine] %s\n' "$*"; }
need_root() { if [ "$(id -u)" != 0 ]; then log "run as root (or with sudo)"; exit 2; fi; }

RECORD_DIR=/var/lib/meeshy-tasks
record() {
  # record FILE ITEM...: remember what this script installed or created (one per line, no
  # duplicates) so that it, and only it, can be removed later.
  local file="$RECORD_DIR/$1" item
  shift
  mkdir -p "$RECORD_DIR"
  touch "$file"
  for item in "$@"; do grep -qxF "$item" "$file" || printf '%s\n' "$item" >>"$file"; done
}

venv_works() {
  # The python3 checked is the first on PATH: the one the README's next step runs.
  command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1
}

python_packages() {
  # What `python3 -m venv` needs, as apt package names, on stdout. apt's lists must be current.
  if ! command -v python3 >/dev/null 2>&1; then
    printf '%s\n' python3 python3-venv
    return
  fi
  local ver
  ver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  # The versioned package carries ensurepip for this interpreter (python3-venv only pulls in the
  # default version's); a python3 that apt has no venv package for gets one clear line instead.
  if apt-cache show "python${ver}-venv" >/dev/null 2>&1; then
    printf '%s\n' "python${ver}-venv"
  else
    log "$(command -v python3) cannot create a venv (no ensurepip) and apt has no python${ver}-venv" >&2
  fi
}

mirror_uri() {
  # The Debian mirror this machine already uses (deb822 or one-line format), never a guessed host.
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {for (i=2;i<=NF;i++) if ($i !~ /security/) {print $i; exit}}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { log "no Debian mirror found in /etc/apt/sources.list{,.d}"; exit 2; }
  printf '%s\n' "$uri"
}

system_plugin_packages() {
  # buildx and compose v2 from the system's own sources, when it packages them (Ubuntu 24.04:
  # docker-buildx and docker-compose-v2; Debian 13: docker-buildx and docker-compose 2.x).
  apt-cache show docker-buildx >/dev/null 2>&1 || return 1
  if apt-cache show docker-compose-v2 >/dev/null 2>&1; then
    printf '%s\n' docker-buildx docker-compose-v2
  elif apt-cache policy docker-compose | awk '/Candidate:/ {print $2}' | grep -q '^2'; then
    printf '%s\n' docker-buildx docker-compose
  else
    return 1
  fi
}

install_packages() {
  export DEBIAN_FRONTEND=noninteractive
  local missing=() p
  # iproute2: `ip`, which the tests' second engine needs for its bridge (minimal systems lack it).
  # openssh-*: the SSH tests' own sshd on loopback, and the client every ssh:// engine uses.
  for p in docker.io docker-registry busybox-static iptables iproute2 openssh-client openssh-server; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  local need_python=0 updated=0
  venv_works || need_python=1
  if [ ${#missing[@]} -gt 0 ] || [ "$need_python" = 1 ]; then
    apt-get update -qq
    updated=1
    # shellcheck disable=SC2207  # apt package names: no spaces, no globs
    [ "$need_python" = 0 ] || missing+=($(python_packages))
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    # Where an init system runs, openssh-server's postinst would start a system sshd on :22:
    # deny service starts for the install (Debian's policy-rc.d), unless a policy exists.
    local policy=/usr/sbin/policy-rc.d own_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$own_policy" ]; then rm -f "$policy"; fi
    record installed-packages "${missing[@]}"
  fi
  # The registry package starts a service on :5000 where an init system runs; tests start their own.
  # buildx and compose v2 already there (packaged, or Docker's own plugins): done.
  if docker buildx version >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    return
  fi
  [ "$updated" = 1 ] || apt-get update -qq
  local plugins
  if plugins=$(system_plugin_packages); then
    # shellcheck disable=SC2086  # apt package names: no spaces, no globs
    log "apt-get install" $plugins
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $plugins >/dev/null
    # shellcheck disable=SC2086
    record installed-packages $plugins
    return
  fi
  local tmp uri
  tmp=$(mktemp -d)
  uri=$(mirror_uri)
  log "fetching docker-buildx and docker-compose from Debian 13 (trixie) at $uri"
  mkdir -p "$tmp/sources.list.d" "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/debs"
  cat >"$tmp/sources.list.d/trixie.sources" <<SRC
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$tmp/sources.list.d"
              -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives"
              -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=0")
  apt-get "${opts[@]}" update -qq
  (cd "$tmp/debs" && apt-get "${opts[@]}" download docker-buildx docker-compose)
  dpkg -i "$tmp"/debs/*.deb >/dev/null
  record installed-packages docker-buildx docker-compose
  rm -rf "$tmp"
}

start_dockerd() {
  if docker version >/dev/null 2>&1; then log "engine already answering"; return; fi
  log "starting dockerd"
  mkdir -p /var/log
  # A dockerd killed with its session leaves its pid file; dockerd refuses to start over it.
  local pid
  if [ -f /var/run/docker.pid ]; then
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
      log "removing stale /var/run/docker.pid"
      rm -f /var/run/docker.pid
    fi
  fi
  # No init system here: start it directly, detached, logging to a file.
  nohup dockerd --host=unix:///var/run/docker.sock >/var/log/dockerd.log 2>&1 &
  local dpid=$!
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && { log "engine up"; return; }
    kill -0 "$dpid" 2>/dev/null || break  # dockerd exited: no point waiting
    sleep 1
  done
  log "dockerd did not come up; see /var/log/dockerd.log:"
  tail -n 20 /var/log/dockerd.log
  exit 1
}

seed_busybox() {
  if docker image inspect busybox:latest >/dev/null 2>&1; then log "busybox image present"; return; fi
  local tmp
  tmp=$(mktemp -d)
  cp /bin/busybox "$tmp/busybox"
  cat >"$tmp/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
DF
  log "building local busybox:latest from Debian's busybox-static"
  DOCKER_BUILDKIT=1 docker buildx build --load -t busybox:latest "$tmp" >/dev/null 2>&1 \
    || docker build -t busybox:latest "$tmp" >/dev/null
  record seeded-images busybox:latest
  rm -rf "$tmp"
}

seed_alpine() {
  # The plan's helper image for volume copies is alpine; offline, busybox stands in for it.
  # Never over a real alpine a developer already has.
  if docker image inspect alpine:latest >/dev/null 2>&1; then return; fi
  docker tag busybox:latest alpine:latest
  record seeded-images alpine:latest
}

main() {
  need_root
  if [ "${1:-}" != "--start" ]; then install_packages; fi
  start_dockerd
  seed_busybox
  seed_alpine
  docker buildx version
  docker compose version
}
main "$@"
