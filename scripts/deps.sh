#!/usr/bin/env bash
# Installs what sov needs to build and test on Debian 12 (idempotent, quiet
# when everything is already there).
set -euo pipefail
pkgs=(gcc make pkg-config libpcre2-dev libjansson-dev libunistring-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libinih-dev iproute2 python3 curl chromium)
# node + npm run the API tests (the official openai package); a machine that
# already has them (e.g. from NodeSource) keeps its own
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
