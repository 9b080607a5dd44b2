#!/usr/bin/env bash
# Extracts the compiled Safe contracts keywatch's tests deploy, and the
# addresses of Safe's own library deployments, from the npm packages that
# publish them:
#
#   @gnosis.pm/safe-contracts     1.3.0    -> contracts/safe/1.3.0/*.json
#   @safe-global/safe-contracts   1.4.1    -> contracts/safe/1.4.1/*.json
#   @safe-global/safe-deployments (pinned) -> contracts/safe/deployments.json
#
# The packages are installed once into a cache folder outside the repository
# (npm install --ignore-scripts: nothing of theirs runs). The artifacts are
# the packages' own compiled bytecode, not rebuilt here. Output is
# deterministic: re-running leaves contracts/safe byte-identical.
set -euo pipefail

SAFE_130="@gnosis.pm/safe-contracts@1.3.0"
SAFE_141="@safe-global/safe-contracts@1.4.1"
DEPLOYMENTS="@safe-global/safe-deployments@1.37.63"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/keywatch/safe-contracts"
key="safe-130-141-deployments-1.37.63"
prefix="$cache_root/$key"

installed() {
  node -e '
    const [prefix, ...want] = process.argv.slice(1);
    for (const spec of want) {
      const at = spec.lastIndexOf("@");
      const name = spec.slice(0, at), version = spec.slice(at + 1);
      try {
        if (require(prefix + "/node_modules/" + name + "/package.json").version !== version) process.exit(1);
      } catch (e) { process.exit(1); }
    }' "$prefix" "$SAFE_130" "$SAFE_141" "$DEPLOYMENTS"
}

if ! installed; then
  echo "installing $SAFE_130 $SAFE_141 $DEPLOYMENTS into $prefix" >&2
  mkdir -p "$cache_root"
  # Install into a scratch folder and move it into place, so an interrupted
  # or concurrent install never leaves a half-populated cache behind.
  tmp="$(mktemp -d "$cache_root/.install.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  npm install --prefix "$tmp" --no-audit --no-fund --no-save --ignore-scripts --omit=peer --loglevel=error \
    "$SAFE_130" "$SAFE_141" "$DEPLOYMENTS" >&2
  rm -rf "$prefix"
  mv "$tmp" "$prefix" || true
  if ! installed; then
    echo "extract.sh: the packages did not install into $prefix" >&2
    exit 1
  fi
fi

NODE_MODULES="$prefix/node_modules" node "$here/extract.js"
