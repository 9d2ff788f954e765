#!/usr/bin/env bash
# Regenerates go.mod/go.sum for the helm harness from the pinned version below.
# helm.sh/helm/v4 requires published k8s.io modules (no ./staging replace lines), so no
# replace directives are needed; check its go.mod again when bumping the pin.
set -euo pipefail
cd "$(dirname "$0")"
HELM=v4.3.1
rm -f go.mod go.sum
go mod init redis-istio-guard/test/harness/helm >/dev/null
go mod edit -go=1.26.0
go get -tool "helm.sh/helm/v4/cmd/helm@$HELM"
go mod tidy
echo "helm $HELM"
