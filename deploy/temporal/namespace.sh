#!/bin/sh
# One-shot (docker-compose.prod.yml, service temporal-namespace): the namespace Firewatch
# runs in, with its retention, and Firewatch's custom search attributes.
#   namespace.sh NAMESPACE RETENTION NAME=Type...
# The NAME=Type list is starter/temporal_setup.py's SEARCH_ATTRIBUTES (a test keeps the
# compose file in sync). Idempotent: only what is missing is created. A namespace just
# created takes a few seconds to reach the frontend's cache, so each step is retried.
set -eu

ns=$1
retention=$2
shift 2

retry() {
    n=0
    until "$@"; do
        n=$((n + 1))
        if [ "$n" -ge 30 ]; then
            echo "temporal-namespace: giving up on: $*" >&2
            return 1
        fi
        sleep 2
    done
}

retry temporal operator cluster health
if temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; then
    echo "temporal-namespace: namespace $ns exists"
else
    retry temporal operator namespace create --namespace "$ns" --retention "$retention"
    echo "temporal-namespace: namespace $ns created (retention $retention)"
fi
retry temporal operator search-attribute list --namespace "$ns" >/dev/null
for attribute in "$@"; do
    name=${attribute%%=*}
    kind=${attribute##*=}
    if temporal operator search-attribute list --namespace "$ns" | grep -qw "$name"; then
        echo "temporal-namespace: search attribute $name exists"
        continue
    fi
    retry temporal operator search-attribute create --namespace "$ns" --name "$name" --type "$kind"
    echo "temporal-namespace: search attribute $name ($kind) created"
done
