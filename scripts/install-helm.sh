#!/usr/bin/env bash
# Installs the pinned helm into .tools/bin/helm with `go install` (the Go module proxy is the one
# source of helm these machines reach). Does nothing when that version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.1
GOBIN_DIR="$PWD/.tools/bin"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

if [ -x "$GOBIN_DIR/helm" ] && "$GOBIN_DIR/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  echo "helm $HELM_VERSION already installed at .tools/bin/helm"
  exit 0
fi
if [ ! -x "$GO" ]; then
  echo "install-helm: no Go toolchain found (looked for go on PATH and /usr/local/go/bin/go)" >&2
  exit 2
fi

echo "installing helm $HELM_VERSION with $("$GO" version | cut -d' ' -f3) into .tools/bin (a cold build takes minutes)"
start=$(date +%s)
# Linked as helm's own Makefile links a release: the version, and the default Kubernetes version of
# `helm template` and of lint's deprecation checks from the client-go it builds with (v0.N -> 1.N),
# not the 1.20 compiled in. -trimpath keeps the build independent of where the module cache lives.
helm_mod=$(GOFLAGS= "$GO" mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
k8s_minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$helm_mod")
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$GOBIN_DIR" GOFLAGS="-trimpath -buildvcs=false" "$GO" install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
echo "installed $("$GOBIN_DIR/helm" version --short) (default Kubernetes 1.$k8s_minor) in $(( $(date +%s) - start ))s"
