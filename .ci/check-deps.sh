#!/usr/bin/env bash
# Checks the dependency direction that ARCHITECTURE.md states: the synchronous core crates
# never depend on an async runtime or an HTTP crate, each crate depends only on the
# Watchfire crates its row allows, and nothing depends on the binary crate.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='^(tokio|hyper|hyper-util|axum|reqwest|tower|tokio-rustls|h2|tonic|warp|actix-web)$'
# crate -> Watchfire crates it may depend on (normal dependencies, transitively)
declare -A allowed=(
  [watchfire-model]=""
  [watchfire-config]="watchfire-model"
  [watchfire-textparse]="watchfire-model"
  [watchfire-template]="watchfire-model"
  [watchfire-promql]="watchfire-model watchfire-storage"
  [watchfire-storage]="watchfire-model"
  [watchfire-tsdb]="watchfire-model watchfire-storage"
  [watchfire-hostmetrics]="watchfire-model watchfire-textparse"
  [watchfire-http]="watchfire-model watchfire-config"
  [watchfire-discovery]="watchfire-model watchfire-config watchfire-http"
  [watchfire-scrape]="watchfire-model watchfire-config watchfire-storage watchfire-textparse watchfire-discovery watchfire-http"
  [watchfire-alerting]="watchfire-model watchfire-config watchfire-template"
  [watchfire-notify]="watchfire-model watchfire-config watchfire-template watchfire-alerting watchfire-http"
  [watchfire-proto]=""
  [watchfire-remote]="watchfire-model watchfire-config watchfire-storage watchfire-tsdb watchfire-textparse watchfire-promql watchfire-proto watchfire-http"
  [watchfire-rules]="watchfire-model watchfire-config watchfire-storage watchfire-tsdb watchfire-promql watchfire-template watchfire-alerting watchfire-discovery watchfire-http"
)
# Crates that may use tokio and HTTP but must keep to their allowed Watchfire dependencies.
async_crates=(watchfire-http watchfire-discovery watchfire-scrape watchfire-alerting watchfire-notify watchfire-remote watchfire-rules)
sync_only=(watchfire-proto watchfire-hostmetrics watchfire-model watchfire-config watchfire-textparse watchfire-template watchfire-promql watchfire-storage watchfire-tsdb)

fail=0
members=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))')

deps_of() {
  cargo tree -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u | grep -vx "$1" || true
}

for crate in "${sync_only[@]}"; do
  grep -qx "$crate" <<<"$members" || continue
  deps=$(deps_of "$crate")
  bad=$(grep -E "$forbidden" <<<"$deps" || true)
  if [ -n "$bad" ]; then
    echo "FAIL: $crate must stay synchronous and HTTP-free but depends on: $(echo $bad)"; fail=1
  fi
  wf=$(grep -E '^watchfire' <<<"$deps" || true)
  for d in $wf; do
    if ! grep -qw -- "$d" <<<"${allowed[$crate]}"; then
      echo "FAIL: $crate may not depend on $d (see ARCHITECTURE.md)"; fail=1
    fi
  done
done

for crate in "${async_crates[@]}"; do
  grep -qx "$crate" <<<"$members" || continue
  for d in $(deps_of "$crate" | grep -E '^watchfire' || true); do
    if ! grep -qw -- "$d" <<<"${allowed[$crate]}"; then
      echo "FAIL: $crate may not depend on $d (see ARCHITECTURE.md)"; fail=1
    fi
  done
done

for crate in $members; do
  [ "$crate" = watchfire ] && continue
  if deps_of "$crate" | grep -qx watchfire; then
    echo "FAIL: $crate depends on the binary crate watchfire"; fail=1
  fi
done

if [ "$fail" = 0 ]; then echo "dependency direction: ok"; fi
exit $fail
