package ethereum_test

import (
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/watchers"
)

// The source is what a watchers.Follower reads; the chain package itself
// does not import watchers (the model flows one way).
var (
	_ watchers.Source    = (*ethereum.Source)(nil)
	_ watchers.Rescanner = (*ethereum.Source)(nil)

	// On a ws(s) node the mempool too.
	_ watchers.Source          = (*ethereum.MempoolSource)(nil)
	_ watchers.Rescanner       = (*ethereum.MempoolSource)(nil)
	_ watchers.HeadNotifier    = (*ethereum.MempoolSource)(nil)
	_ watchers.PendingSource   = (*ethereum.MempoolSource)(nil)
	_ watchers.PendingRecaller = (*ethereum.MempoolSource)(nil)
	_ ethereum.MempoolClient   = (*ethereum.Pool)(nil)
)
