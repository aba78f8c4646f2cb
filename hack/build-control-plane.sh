#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from their Go modules into a version-keyed cache.
#
# Neither k8s.io/kubernetes nor etcd's server module can be `go install`ed: their go.mod
# files use replace directives that only apply to the main module. So we generate a tiny
# wrapper module per component that requires the upstream module at a pinned version and
# repeats the replace lines with real versions. Binaries land in
# $CERTMINT_CACHE_DIR/bin/<version>/ and are reused on every later run.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_DIR="${CERTMINT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/certmint}"
K8S_BIN="$CACHE_DIR/bin/kubernetes-$K8S_VERSION"
ETCD_BIN="$CACHE_DIR/bin/etcd-$ETCD_VERSION"
LOG_DIR="$CACHE_DIR/build-logs"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod"

step() { printf '==> %s\n' "$*" >&2; }

# Runs a build step quietly; on failure prints the step, the tail of its log and exits.
run_step() {
  local name="$1"; shift
  local log="$LOG_DIR/$name.log"
  mkdir -p "$LOG_DIR"
  if ! "$@" >"$log" 2>&1; then
    printf 'control-plane build failed at step "%s": %s\n' "$name" "$*" >&2
    printf -- '--- last 25 lines of %s ---\n' "$log" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}

command -v go >/dev/null || { echo "a Go toolchain is needed to build the control plane (go not on PATH)" >&2; exit 1; }

build_kubernetes() {
  [ -x "$K8S_BIN/kube-apiserver" ] && [ -x "$K8S_BIN/kubectl" ] && return 0
  local src="$CACHE_DIR/src/kubernetes-$K8S_VERSION"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local staging="v0.${K8S_VERSION#v1.}"
  mkdir -p "$src/kube-apiserver" "$src/kubectl" "$K8S_BIN"
  step "fetching k8s.io/kubernetes@$K8S_VERSION module metadata"
  local upstream_mod
  upstream_mod="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [ -f "$upstream_mod" ] || { echo "could not download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
  {
    echo "module certmint.local/kubernetes-wrapper"
    echo
    grep -E '^(go|godebug) ' "$upstream_mod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" \
      | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } >"$src/go.mod"
  cat >"$src/kube-apiserver/main.go" <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
  cat >"$src/kubectl/main.go" <<'GO'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  step "resolving Kubernetes $K8S_VERSION dependencies (first run only)"
  run_step k8s-tidy bash -c "cd '$src' && go mod tidy"
  step "building kube-apiserver $K8S_VERSION (first run only; several minutes)"
  run_step kube-apiserver bash -c "cd '$src' && go build -trimpath -ldflags '$ldflags' -o '$K8S_BIN/kube-apiserver.tmp' ./kube-apiserver"
  step "building kubectl $K8S_VERSION"
  run_step kubectl bash -c "cd '$src' && go build -trimpath -ldflags '$ldflags' -o '$K8S_BIN/kubectl.tmp' ./kubectl"
  mv "$K8S_BIN/kube-apiserver.tmp" "$K8S_BIN/kube-apiserver"
  mv "$K8S_BIN/kubectl.tmp" "$K8S_BIN/kubectl"
}

build_etcd() {
  [ -x "$ETCD_BIN/etcd" ] && return 0
  local src="$CACHE_DIR/src/etcd-$ETCD_VERSION"
  mkdir -p "$src" "$ETCD_BIN"
  cat >"$src/go.mod" <<MOD
module certmint.local/etcd-wrapper

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  step "resolving etcd $ETCD_VERSION dependencies (first run only)"
  run_step etcd-tidy bash -c "cd '$src' && go mod tidy"
  step "building etcd $ETCD_VERSION"
  run_step etcd bash -c "cd '$src' && go build -trimpath -ldflags '-s -w' -o '$ETCD_BIN/etcd.tmp' ."
  mv "$ETCD_BIN/etcd.tmp" "$ETCD_BIN/etcd"
}

build_etcd
build_kubernetes
# Print the directories for callers (the Makefile links them into .local/bin).
printf '%s\n%s\n' "$K8S_BIN" "$ETCD_BIN"
