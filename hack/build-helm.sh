#!/usr/bin/env bash
# Builds helm from its Go module (helm.sh/helm/v4, pinned) into a version-keyed cache.
#
# helm's go.mod has no replace directives, so `go install module/cmd/helm@version` works
# directly. The binary lands in $CERTMINT_CACHE_DIR/bin/helm-<version>/ and is reused on
# every later run; the directory is printed for the Makefile to link into .venv/bin.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
CACHE_DIR="${CERTMINT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/certmint}"
HELM_BIN="$CACHE_DIR/bin/helm-$HELM_VERSION"
LOG="$CACHE_DIR/build-logs/helm.log"
export CGO_ENABLED=0

command -v go >/dev/null || { echo "a Go toolchain is needed to build helm (go not on PATH)" >&2; exit 1; }

if [ ! -x "$HELM_BIN/helm" ]; then
  mkdir -p "$HELM_BIN.tmp" "$(dirname "$LOG")"
  printf '==> building helm %s from its Go module (first run only)\n' "$HELM_VERSION" >&2
  ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
  if ! GOBIN="$HELM_BIN.tmp" go install -trimpath -ldflags "$ldflags" \
      "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >"$LOG" 2>&1; then
    echo "helm build failed; last 25 lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    exit 1
  fi
  rm -rf "$HELM_BIN"
  mv "$HELM_BIN.tmp" "$HELM_BIN"
fi
printf '%s\n' "$HELM_BIN"
