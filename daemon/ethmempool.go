package daemon

import (
	"log/slog"
	"strings"

	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/watchers"
)

// ethereumWatched is what an EVM chain's watcher follows: the block decoder
// and, when the chain has a ws(s) node, the node's mempool, so that
// transfers are pending from the moment the mempool shows them. An
// http(s)-only chain has no mempool feed and its transfers are pending from
// their first block.
func ethereumWatched(ch config.Chain, src *ethereum.Source, client ethereum.Client, opts Options, log *slog.Logger) watchers.Source {
	mc, ok := client.(ethereum.MempoolClient)
	if !ok || !hasWebSocket(ch.Endpoints()) {
		return src
	}
	return ethereum.NewMempoolSource(src, mc, ethereum.MempoolOptions{Logger: log, Now: opts.Now})
}

// hasWebSocket reports whether any of the node URLs is ws:// or wss://.
func hasWebSocket(urls []string) bool {
	for _, u := range urls {
		u = strings.ToLower(u)
		if strings.HasPrefix(u, "ws://") || strings.HasPrefix(u, "wss://") {
			return true
		}
	}
	return false
}
