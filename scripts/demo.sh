#!/usr/bin/env bash
# Run the simulator and the panel side by side, so every flow can be tried
# without Xray. The simulator makes a little traffic for every user it holds.
#   scripts/demo.sh                 the demo
#   scripts/demo.sh flask ARGS...   a command on the demo's database, same settings
set -euo pipefail
cd "$(dirname "$0")/.."

# An instance folder of its own, so demo clients never mix with real ones.
# Commands get the same settings as the running demo (the main node follows
# the settings at every start): the demo notes its settings for them.
mkdir -p instance/demo
noted=instance/demo/demo.env
if [ "${1:-}" = flask ] && [ -f "$noted" ]; then
  # What the running demo was started with, unless given here again.
  while IFS='=' read -r name value; do
    [ -n "${!name:-}" ] || export "$name=$value"
  done < "$noted"
fi
port=${SIM_PORT:-10085}
export INFINITY_INSTANCE="$PWD/instance/demo"
export DATABASE_URL="sqlite:///$PWD/instance/demo/infinity.db"
export XRAY_API="127.0.0.1:$port" XRAY_FLAVOR=xray
export PUBLIC_HOST=${PUBLIC_HOST:-vpn.example.com}
export REALITY_SNI=${REALITY_SNI:-www.example.com}
export REALITY_PUBLIC_KEY=${REALITY_PUBLIC_KEY:-Z84J2IelR9ch3k8VtlVhhs5ycBUlXA7wHBWcBrjqnAw}
export REALITY_SHORT_ID=${REALITY_SHORT_ID:-6ba85179e30d4fc2}

if [ "${1:-}" = flask ]; then
  shift
  exec .venv/bin/python -m flask --app wsgi "$@"
fi

for name in SIM_PORT PANEL_PORT PUBLIC_HOST REALITY_SNI REALITY_PUBLIC_KEY \
    REALITY_SHORT_ID; do
  case $name in
    SIM_PORT) value=$port ;;
    PANEL_PORT) value=${PANEL_PORT:-8000} ;;
    *) value=${!name} ;;
  esac
  printf '%s=%s\n' "$name" "$value"
done > "$noted"
.venv/bin/python -m xray.simulator --port "$port" --demo-traffic &
sim=$!
trap 'kill "$sim" 2>/dev/null || true' EXIT INT TERM
.venv/bin/gunicorn -c deploy/gunicorn.conf.py wsgi:app
