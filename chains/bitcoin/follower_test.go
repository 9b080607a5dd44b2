package bitcoin_test

import (
	"github.com/keywatch/keywatch/chains/bitcoin"
	"github.com/keywatch/keywatch/watchers"
)

// The source is what a watchers.Follower reads; the chain package itself
// does not import watchers (the model flows one way).
var (
	_ watchers.Source        = (*bitcoin.Source)(nil)
	_ watchers.HeadNotifier  = (*bitcoin.Source)(nil)
	_ watchers.Rewinder      = (*bitcoin.Source)(nil)
	_ watchers.PendingSource = (*bitcoin.Source)(nil)
	_ watchers.Resetter      = (*bitcoin.Source)(nil)
)
