#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's packages when promtool is not on PATH.
#
# The monitoring tests run the real `promtool test rules` and a real Prometheus on loopback.
# Idempotent: does nothing when promtool is already installed. Needs root (or sudo) on a
# Debian-family machine; the Debian package's service is never started, the tests start
# their own Prometheus with a temporary storage directory.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-prometheus: need root or sudo to apt-get install prometheus" >&2; exit 1; }
  as_root=(sudo)
fi
command -v apt-get >/dev/null 2>&1 || { echo "install-prometheus: apt-get not found; install prometheus (promtool) by hand" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
# The package's maintainer scripts try to start the service; with no init system running
# that is refused (exit 101 from policy-rc.d), which is what we want on a test machine.
policy="/usr/sbin/policy-rc.d"
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 0755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then "${as_root[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null

command -v promtool >/dev/null 2>&1 || { echo "install-prometheus: promtool still not on PATH after install" >&2; exit 1; }
promtool --version | head -n 1
