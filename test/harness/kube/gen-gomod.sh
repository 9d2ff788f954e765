#!/usr/bin/env bash
# Regenerates go.mod/go.sum for the control-plane harness from the pinned versions below.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and maps them to ./staging/ with
# replace lines that do not apply to consumers; we derive the list from its own go.mod.
set -euo pipefail
cd "$(dirname "$0")"
K8S=v1.36.3
STAGING=v0.${K8S#v1.}
rm -f go.mod go.sum
go mod init redis-istio-guard/test/harness/kube >/dev/null
go mod edit -go=1.26.0
modfile=$(go list -m -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
ETCD=$(sed -n 's#^\s*go.etcd.io/etcd/server/v3 \(v[^ ]*\).*#\1#p' "$modfile" | head -1)
for name in $(sed -n 's#^\s*k8s.io/\([a-z0-9-]*\) => ./staging/.*#\1#p' "$modfile"); do
  go mod edit -replace="k8s.io/$name=k8s.io/$name@$STAGING"
done
go mod edit -require="k8s.io/kubernetes@$K8S"
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S"
go get -tool "k8s.io/kubernetes/cmd/kubectl@$K8S"
go get -tool "go.etcd.io/etcd/server/v3@$ETCD"
go mod tidy
echo "k8s $K8S, staging $STAGING, etcd $ETCD"
