#!/usr/bin/env bash
# Rebuilds contracts/build/*.json from contracts/src/*.sol.
#
# solc comes from npm (solcjs, the compiler built to WebAssembly, so no native
# binary is downloaded) and is installed once into a cache folder outside the
# repository. Output is deterministic: rebuilding unchanged sources gives
# byte-identical artifacts, so `git diff contracts/build` after a rebuild shows
# only real changes.
set -euo pipefail

SOLC_VERSION=0.8.37

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/keywatch/solc"
prefix="$cache_root/$SOLC_VERSION"
module="$prefix/node_modules/solc"

installed_version() {
  node -e 'try { process.stdout.write(require(process.argv[1] + "/package.json").version) } catch (e) {}' "$module"
}

if [[ "$(installed_version)" != "$SOLC_VERSION" ]]; then
  echo "installing solc@$SOLC_VERSION into $prefix" >&2
  mkdir -p "$cache_root"
  # Install into a scratch folder and move it into place, so an interrupted
  # or concurrent install never leaves a half-populated cache behind.
  tmp="$(mktemp -d "$cache_root/.install.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  npm install --prefix "$tmp" --no-audit --no-fund --no-save --loglevel=error "solc@$SOLC_VERSION" >&2
  rm -rf "$prefix"
  mv "$tmp" "$prefix" || true
  if [[ "$(installed_version)" != "$SOLC_VERSION" ]]; then
    echo "build.sh: solc@$SOLC_VERSION did not install into $prefix" >&2
    exit 1
  fi
fi

SOLC_MODULE="$module" SOLC_VERSION="$SOLC_VERSION" node "$here/build.js"
