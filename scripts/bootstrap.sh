#!/usr/bin/env bash
# Set up what the panel (or, with `test`, the tests) need on Debian 12:
# the system packages, a virtualenv in .venv and the pinned Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-run}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  apt_install python3 python3-venv python3-pip
  PYTHON=python3
fi
if [ "$want" = test ]; then
  # The real daemon for the integration tests, and a browser for the page test.
  apt_install v2ray chromium
fi

reqs=requirements.txt
[ "$want" = test ] && reqs=requirements-dev.txt
stamp=.venv/.installed-$want
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$reqs" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$reqs"
  touch "$stamp"
fi
mkdir -p instance
