#!/usr/bin/env bash
# Install a real Docker engine, BuildKit (buildx), compose v2, a registry, a static busybox and
# OpenSSH (client and server: the SSH tests run their own sshd on loopback) on Debian 12, then
# start dockerd and seed a local `busybox` image. Idempotent: rerun at will. No system sshd is
# started: the tests start theirs, with their own config, and stop it.
#
#   bash .ci/install-engine.sh            # install + start + seed
#   bash .ci/install-engine.sh --start    # only start dockerd and seed (already installed)
#
# docker-buildx and docker-compose (v2) are not packaged for Debian 12; Debian 13's packages
# need only libc6 >= 2.34, so they are downloaded with a separate, throwaway apt state (the
# system's sources are never touched, so apt does not upgrade unrelated packages) and
# installed with dpkg -i.
set -euo pipefail

log() { printf '[engine] %s\n' "$*"; }
need_root() { if [ "$(id -u)" != 0 ]; then log "run as root (or with sudo)"; exit 2; fi; }

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

install_packages() {
  export DEBIAN_FRONTEND=noninteractive
  local missing=()
  for p in docker.io docker-registry busybox-static iptables openssh-client openssh-server; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    # Where an init system runs, openssh-server's postinst would start a system sshd on :22:
    # deny service starts for the install (Debian's policy-rc.d), unless a policy exists.
    local policy=/usr/sbin/policy-rc.d own_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$own_policy" ]; then rm -f "$policy"; fi
  fi
  # The registry package starts a service on :5000 where an init system runs; tests start their own.
  if dpkg -s docker-buildx >/dev/null 2>&1 && dpkg -s docker-compose >/dev/null 2>&1 \
     && dpkg-query -W -f='${Version}' docker-compose | grep -q '^2'; then
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
  rm -rf "$tmp"
}

seed_alpine() {
  # The plan's helper image for volume copies is alpine; offline, busybox stands in for it.
  # Never over a real alpine a developer already has.
  if docker image inspect alpine:latest >/dev/null 2>&1; then return; fi
  docker tag busybox:latest alpine:latest
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
