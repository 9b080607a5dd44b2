#!/usr/bin/env bash
# Installs the external programs keywatch's tests run against, at pinned
# versions, and says what it did. Safe to run again: when everything is in
# place it only checks versions and exits in well under a second.
#
#   redis-server  from the system packages (apt-get), when not on PATH
#   geth          go install, into the cache bin folder
#   btcd, btcctl  go install, into the cache bin folder (KEYWATCH_SKIP_BTCD=1 skips)
#   chromium      from the system packages (apt-get), when not on PATH, for the
#                 operator console's browser test (KEYWATCH_SKIP_CHROMIUM=1 skips)
#
# internal/testenv finds a binary through its variable (KEYWATCH_REDIS_SERVER,
# KEYWATCH_GETH, KEYWATCH_BTCD, KEYWATCH_CHROMIUM), then PATH, then the cache bin
# folder below; `keywatch demo` finds btcd the same way.
set -euo pipefail

# Pinned versions. GETH_VERSION matches the go-ethereum module in go.mod.
GETH_VERSION="v1.17.10"
BTCD_VERSION="v0.24.2"

BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/keywatch/bin"

log() { printf 'deps: %s\n' "$*"; }
die() {
	printf 'deps: error: %s\n' "$*" >&2
	exit 1
}

# version_of CMD [ARGS...]: the first x.y.z in CMD's output, or nothing.
version_of() {
	{ "$@" 2>&1 || true; } | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true
}

# as_root CMD...: run CMD as root, through sudo when needed and available.
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run '$*' (no sudo): install it by hand"
	fi
}

# go_install BINARY PACKAGE VERSION: build PACKAGE@VERSION into BIN_DIR.
go_install() {
	local name=$1 pkg=$2 version=$3 start
	command -v go >/dev/null 2>&1 || die "go is not on PATH: needed to build $name $version"
	mkdir -p "$BIN_DIR"
	log "$name: building $pkg@$version into $BIN_DIR (takes a few minutes)"
	start=$SECONDS
	# Outside any module and workspace, so the build uses the pinned
	# release's own go.mod, not this repository's.
	(cd "${TMPDIR:-/tmp}" && GOBIN="$BIN_DIR" GOWORK=off GOFLAGS=-buildvcs=false go install "$pkg@$version")
	log "$name: built in $((SECONDS - start))s"
}

# module_version BIN: the version of the main module BIN was built from, as
# recorded by the Go toolchain (x.y.z without the v), or nothing.
module_version() {
	{ go version -m "$1" 2>/dev/null || true; } | awk '$1 == "mod" { sub(/^v/, "", $3); print $3; exit }'
}

# ensure_pinned BINARY PACKAGE VERSION CHECK...: install BINARY into BIN_DIR
# unless CHECK, run with the binary's path, prints VERSION (without the v).
ensure_pinned() {
	local name=$1 pkg=$2 version=$3
	shift 3
	local bin="$BIN_DIR/$name" have=""
	if [[ -x $bin ]]; then
		have=$("$@" "$bin")
		if [[ $have == "${version#v}" ]]; then
			log "$name: $version present ($bin)"
			return
		fi
		log "$name: $bin is '${have:-unknown version}', want $version"
	fi
	go_install "$name" "$pkg" "$version"
	have=$("$@" "$bin")
	[[ $have == "${version#v}" ]] || die "$name: built $bin is '${have:-unknown version}', want $version"
	log "$name: $version installed ($bin)"
	local onpath
	if onpath=$(command -v "$name" 2>/dev/null) && [[ $onpath != "$bin" ]]; then
		log "$name: note: $onpath on PATH comes first for the tests ($("$@" "$onpath"))"
	fi
}

# geth_version BIN: x.y.z from "geth version" ("Version: 1.17.10-stable").
geth_version() {
	{ "$1" version 2>/dev/null || true; } | awk '$1 == "Version:" { split($2, v, "-"); print v[1]; exit }'
}

ensure_redis() {
	if [[ -n ${KEYWATCH_REDIS_SERVER:-} ]]; then
		[[ -x $KEYWATCH_REDIS_SERVER ]] || die "KEYWATCH_REDIS_SERVER=$KEYWATCH_REDIS_SERVER is not executable"
		log "redis-server: $(version_of "$KEYWATCH_REDIS_SERVER" --version) from KEYWATCH_REDIS_SERVER ($KEYWATCH_REDIS_SERVER)"
		return
	fi
	if command -v redis-server >/dev/null 2>&1; then
		log "redis-server: $(version_of redis-server --version) present ($(command -v redis-server))"
		return
	fi
	command -v apt-get >/dev/null 2>&1 || die "redis-server is missing and there is no apt-get: install redis-server (6.0 or later) by hand"
	log "redis-server: installing with apt-get"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
	command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after apt-get install"
	log "redis-server: $(version_of redis-server --version) installed ($(command -v redis-server))"
}

ensure_geth() {
	ensure_pinned geth github.com/ethereum/go-ethereum/cmd/geth "$GETH_VERSION" geth_version
}

# --- btcd (Bitcoin chain tests) -------------------------------------------
# btcd is the module root github.com/btcsuite/btcd; btcctl is its cmd/btcctl.
# Versions are read from the build info: btcctl v0.24.2 still prints 0.23.1
# for --version.
ensure_btcd() {
	if [[ ${KEYWATCH_SKIP_BTCD:-0} == 1 ]]; then
		log "btcd: skipped (KEYWATCH_SKIP_BTCD=1)"
		return
	fi
	ensure_pinned btcd github.com/btcsuite/btcd "$BTCD_VERSION" module_version
	ensure_pinned btcctl github.com/btcsuite/btcd/cmd/btcctl "$BTCD_VERSION" module_version
}
# ---------------------------------------------------------------------------

# --- chromium (operator console browser test) -----------------------------
ensure_chromium() {
	if [[ ${KEYWATCH_SKIP_CHROMIUM:-0} == 1 ]]; then
		log "chromium: skipped (KEYWATCH_SKIP_CHROMIUM=1)"
		return
	fi
	if [[ -n ${KEYWATCH_CHROMIUM:-} ]]; then
		[[ -x $KEYWATCH_CHROMIUM ]] || die "KEYWATCH_CHROMIUM=$KEYWATCH_CHROMIUM is not executable"
		log "chromium: from KEYWATCH_CHROMIUM ($KEYWATCH_CHROMIUM)"
		return
	fi
	local name
	for name in chromium chromium-browser google-chrome; do
		if command -v "$name" >/dev/null 2>&1; then
			log "chromium: $(version_of "$name" --version) present ($(command -v "$name"))"
			return
		fi
	done
	command -v apt-get >/dev/null 2>&1 || die "chromium is missing and there is no apt-get: install Chromium by hand or set KEYWATCH_SKIP_CHROMIUM=1"
	log "chromium: installing with apt-get (Debian's chromium package)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
	command -v chromium >/dev/null 2>&1 || die "chromium still not on PATH after apt-get install"
	log "chromium: $(version_of chromium --version) installed ($(command -v chromium))"
}
# ---------------------------------------------------------------------------

# With arguments, only the named programs: `scripts/deps.sh btcd` is what
# `make demo` runs (the demo needs btcd, not redis-server or geth).
main() {
	if [[ $# -eq 0 ]]; then
		set -- redis geth btcd chromium
	fi
	local what
	for what in "$@"; do
		case $what in
		redis) ensure_redis ;;
		geth) ensure_geth ;;
		btcd) ensure_btcd ;;
		chromium) ensure_chromium ;;
		*) die "unknown program '$what' (want redis, geth, btcd or chromium)" ;;
		esac
	done
	log "done: binaries in $BIN_DIR"
}

main "$@"
