package ethereum_test

import (
	"context"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	kwe "github.com/keywatch/keywatch/chains/ethereum"
)

// hashOnlyNode is the eth namespace of a node whose newPendingTransactions
// takes no parameter and notifies hashes (as some non-geth nodes do), and
// whose eth_getTransactionByHash knows one transaction.
type hashOnlyNode struct {
	hashes chan common.Hash
	known  common.Hash
}

func (n *hashOnlyNode) NewPendingTransactions(ctx context.Context) (*rpc.Subscription, error) {
	notifier, ok := rpc.NotifierFromContext(ctx)
	if !ok {
		return nil, rpc.ErrNotificationsUnsupported
	}
	sub := notifier.CreateSubscription()
	go func() {
		for {
			select {
			case h := <-n.hashes:
				notifier.Notify(sub.ID, h)
			case <-sub.Err():
				return
			}
		}
	}()
	return sub, nil
}

func (n *hashOnlyNode) GetTransactionByHash(h common.Hash) (map[string]any, error) {
	if h != n.known {
		return nil, nil
	}
	return map[string]any{"hash": h, "from": common.HexToAddress("0xaa"), "to": common.HexToAddress("0xbb"),
		"nonce": hexutil.Uint64(3), "value": (*hexutil.Big)(big1e18()), "input": hexutil.Bytes{}, "blockNumber": nil}, nil
}

// The pool asks for whole transactions first and, when the node refuses the
// parameter, for hashes; a hash is then looked up with its sender, and a
// hash the node does not know is ethereum.NotFound.
func TestPoolSubscribesToHashesWhenTheNodeGivesNoTransactions(t *testing.T) {
	node := &hashOnlyNode{hashes: make(chan common.Hash, 1), known: common.HexToHash("0x01")}
	srv := rpc.NewServer()
	if err := srv.RegisterName("eth", node); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.WebsocketHandler([]string{"*"}))
	defer hs.Close()
	defer srv.Stop()
	p := kwe.NewPool([]string{"ws" + strings.TrimPrefix(hs.URL, "http")}, 5*time.Second, nil)
	defer p.Close()
	ctx := context.Background()

	notes := make(chan kwe.NodeTx, 1)
	sub, err := p.SubscribePendingTransactions(ctx, notes)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Unsubscribe()
	node.hashes <- node.known
	select {
	case n := <-notes:
		if n.Hash != node.known || n.Full {
			t.Fatalf("notification %+v, want the bare hash %s", n, node.known)
		}
	case err := <-sub.Err():
		t.Fatalf("subscription ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	tx, err := p.NodeTransaction(ctx, node.known)
	if err != nil {
		t.Fatal(err)
	}
	if !tx.Full || tx.From != common.HexToAddress("0xaa") || tx.Nonce != 3 || tx.Value.Cmp(big1e18()) != 0 || tx.Block != nil {
		t.Fatalf("look-up %+v, want the pending transaction with its sender, nonce and value", tx)
	}
	if _, err := p.NodeTransaction(ctx, common.HexToHash("0x02")); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("look-up of an unknown hash: %v, want ethereum.NotFound", err)
	}
}

func big1e18() *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil) }
