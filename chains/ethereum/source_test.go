package ethereum_test

import (
	"context"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
)

// countingClient counts the RPC calls the source makes.
type countingClient struct {
	kwe.Client
	receipts, logs atomic.Int32
}

func (c *countingClient) TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	c.receipts.Add(1)
	return c.Client.TransactionReceipt(ctx, h)
}

func (c *countingClient) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	c.logs.Add(1)
	// setApprovalForAll is fetched from any contract, by owner topic.
	anyContract := len(q.Topics) == 2 && len(q.Topics[0]) == 1 && q.Topics[0][0] == kwe.TopicApprovalForAll && len(q.Topics[1]) > 0
	if q.BlockHash == nil || len(q.Topics) == 0 || (len(q.Addresses) == 0 && !anyContract) {
		panic("logs must be fetched by block hash with address and topic filters")
	}
	return c.Client.FilterLogs(ctx, q)
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func lower(a common.Address) string { return strings.ToLower(a.Hex()) }

// blockEvents decodes the block holding receipt r.
func blockEvents(t *testing.T, src *kwe.Source, c *simchain.Chain, r *types.Receipt) []chains.Event {
	t.Helper()
	ctx := context.Background()
	b := must[chains.Block](t)(src.BlockAt(ctx, r.BlockNumber.Uint64()))
	return must[[]chains.Event](t)(src.Events(ctx, b))
}

func find(evs []chains.Event, id string) *chains.Event {
	for i := range evs {
		if evs[i].ID == id {
			return &evs[i]
		}
	}
	return nil
}

func TestSourceDecodesNativeTokenAndApprovalEvents(t *testing.T) {
	ctx := context.Background()
	mixers := must[types.GenesisAlloc](t)(contracts.MixerAlloc())
	c := simchain.New(map[string]int64{"hot": 100, "employee": 10, "outsider": 10, "issuer": 1}, mixers)
	defer c.Close()
	token := must[common.Address](t)(c.Deploy(ctx, "issuer", contracts.NameTestToken, "USD Coin", "USDC", uint8(6)))
	must[*types.Receipt](t)(c.Call(ctx, "issuer", token, contracts.NameTestToken, "mint", simchain.Addr("hot"), big.NewInt(5_000_000_000)))

	client := &countingClient{Client: c.Client}
	src := kwe.NewSource(client, kwe.Options{
		Chain: "eth", NativeSymbol: "ETH", NativeUSD: 3000,
		Wallets: []kwe.Wallet{
			{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"},
			{Name: "employee", Address: simchain.Addr("employee"), Role: "employee-key", Owner: "kim@firm.example"},
		},
		Tokens: []kwe.Token{{Symbol: "USDC", Address: token, Decimals: 6, USD: 1}},
	})
	hot, employee, outsider, vendor := simchain.Addr("hot"), simchain.Addr("employee"), simchain.Addr("outsider"), simchain.Addr("vendor")

	t.Run("native out", func(t *testing.T) {
		r := must[*types.Receipt](t)(c.Send(ctx, "hot", &vendor, simchain.Ether(2), nil))
		evs := blockEvents(t, src, c, r)
		if len(evs) != 1 {
			t.Fatalf("got %d events, want 1: %+v", len(evs), evs)
		}
		e := evs[0]
		want := chains.Event{ID: "eth:" + r.TxHash.Hex() + ":native", Chain: "eth", Tx: r.TxHash.Hex(), Block: r.BlockNumber.Uint64(),
			Kind: chains.KindTransfer, Direction: chains.Out, Wallet: "hot", WalletRole: "hot",
			From: lower(hot), To: lower(vendor), Counterparty: lower(vendor), Initiator: lower(hot), Asset: "ETH", USD: 6000}
		if e.ID != want.ID || e.Tx != want.Tx || e.Block != want.Block || e.Kind != want.Kind || e.Direction != want.Direction ||
			e.Wallet != want.Wallet || e.WalletRole != want.WalletRole || e.From != want.From || e.To != want.To ||
			e.Counterparty != want.Counterparty || e.Initiator != want.Initiator || e.Asset != want.Asset || e.USD != want.USD || e.Token != "" {
			t.Fatalf("event\n got %+v\nwant %+v", e, want)
		}
		if e.Amount.String() != "2" || e.BlockHash != r.BlockHash.Hex() || e.Time.IsZero() {
			t.Fatalf("amount %s, block hash %s, time %v", e.Amount, e.BlockHash, e.Time)
		}
	})

	t.Run("native in and between watched wallets", func(t *testing.T) {
		r := must[*types.Receipt](t)(c.Send(ctx, "outsider", &hot, simchain.Ether(1), nil))
		evs := blockEvents(t, src, c, r)
		if len(evs) != 1 || evs[0].Direction != chains.In || evs[0].Counterparty != lower(outsider) || evs[0].Wallet != "hot" {
			t.Fatalf("inflow: %+v", evs)
		}
		r = must[*types.Receipt](t)(c.Send(ctx, "hot", &employee, simchain.Ether(1), nil))
		evs = blockEvents(t, src, c, r)
		id := "eth:" + r.TxHash.Hex() + ":native"
		out, in := find(evs, id), find(evs, id+":in")
		if len(evs) != 2 || out == nil || in == nil || out.Wallet != "hot" || in.Wallet != "employee" || in.Owner != "kim@firm.example" {
			t.Fatalf("internal transfer: %+v", evs)
		}
	})

	t.Run("failed transaction moves nothing", func(t *testing.T) {
		pool := contracts.TornadoPool1ETH
		pa := must[*contracts.Artifact](t)(contracts.Load(contracts.NameTornadoPool))
		data := must[[]byte](t)(pa.Pack("deposit", common.HexToHash("0x01")))
		// Half an ether: the pool reverts. A fixed gas limit gets it mined.
		tip := must[*big.Int](t)(c.Client.SuggestGasTipCap(ctx))
		tx := types.MustSignNewTx(simchain.Key("hot"), types.LatestSignerForChainID(simchain.ChainID), &types.DynamicFeeTx{
			ChainID: simchain.ChainID, Nonce: must[uint64](t)(c.Client.PendingNonceAt(ctx, hot)), To: &pool,
			Value: new(big.Int).Div(simchain.Ether(1), big.NewInt(2)), Gas: 200_000,
			GasFeeCap: new(big.Int).Add(tip, big.NewInt(100_000_000_000)), GasTipCap: tip, Data: data,
		})
		if err := c.Client.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		c.Backend.Commit()
		r := must[*types.Receipt](t)(c.Client.TransactionReceipt(ctx, tx.Hash()))
		if r.Status != types.ReceiptStatusFailed {
			t.Fatalf("the deposit of 0.5 ETH should fail")
		}
		if evs := blockEvents(t, src, c, r); len(evs) != 0 {
			t.Fatalf("a failed transaction produced events: %+v", evs)
		}
	})

	t.Run("ERC-20 transfer out and approval", func(t *testing.T) {
		r := must[*types.Receipt](t)(c.Call(ctx, "hot", token, contracts.NameTestToken, "transfer", vendor, big.NewInt(1_500_250_000)))
		evs := blockEvents(t, src, c, r)
		if len(evs) != 1 {
			t.Fatalf("got %+v", evs)
		}
		e := evs[0]
		if e.ID != "eth:"+r.TxHash.Hex()+":0" || e.Asset != "USDC" || e.Token != lower(token) || e.Amount.String() != "1500.25" ||
			e.USD != 1500.25 || e.Direction != chains.Out || e.Counterparty != lower(vendor) || e.Initiator != lower(hot) {
			t.Fatalf("token transfer: %+v", e)
		}
		r = must[*types.Receipt](t)(c.Call(ctx, "hot", token, contracts.NameTestToken, "approve", outsider, big.NewInt(2_000_000_000)))
		evs = blockEvents(t, src, c, r)
		if len(evs) != 1 || evs[0].Kind != chains.KindApproval || evs[0].Counterparty != lower(outsider) || evs[0].Amount.String() != "2000" {
			t.Fatalf("approval: %+v", evs)
		}
	})

	t.Run("transferFrom: the initiator differs from the sender", func(t *testing.T) {
		r := must[*types.Receipt](t)(c.Call(ctx, "outsider", token, contracts.NameTestToken, "transferFrom", hot, outsider, big.NewInt(1_000_000)))
		evs := blockEvents(t, src, c, r)
		if len(evs) != 1 || evs[0].From != lower(hot) || evs[0].Initiator != lower(outsider) || evs[0].Direction != chains.Out {
			t.Fatalf("transferFrom: %+v", evs)
		}
	})

	t.Run("token transfer into a watched wallet", func(t *testing.T) {
		r := must[*types.Receipt](t)(c.Call(ctx, "outsider", token, contracts.NameTestToken, "transfer", employee, big.NewInt(1)))
		evs := blockEvents(t, src, c, r)
		if len(evs) != 1 || evs[0].Direction != chains.In || evs[0].Wallet != "employee" || evs[0].Amount.String() != "0.000001" {
			t.Fatalf("token inflow: %+v", evs)
		}
	})

	t.Run("unwatched activity costs no receipt", func(t *testing.T) {
		before := client.receipts.Load()
		r := must[*types.Receipt](t)(c.Send(ctx, "outsider", &vendor, simchain.Ether(1), nil))
		if evs := blockEvents(t, src, c, r); len(evs) != 0 {
			t.Fatalf("unwatched transfer produced %+v", evs)
		}
		if got := client.receipts.Load() - before; got != 0 {
			t.Fatalf("fetched %d receipts for a block that touches no watched wallet", got)
		}
	})
}

func TestSourceReportsMissingBlock(t *testing.T) {
	c := simchain.New(map[string]int64{"hot": 1}, nil)
	defer c.Close()
	src := kwe.NewSource(c.Client, kwe.Options{Chain: "eth"})
	if _, err := src.BlockAt(context.Background(), 1000); err != chains.ErrNoBlock {
		t.Fatalf("BlockAt beyond the head: got %v, want ErrNoBlock", err)
	}
}

// TestRouterDepositNeedsThePoolsDeposit: a router deposit's counterparty is
// the pool the router passed the funds to, but the pool is read from the
// call data, which the sender writes. It is taken only when that pool
// logged a Tornado Cash Deposit in the transaction; otherwise the
// counterparty stays the address actually paid, so an insider cannot make
// an outflow to an accomplice look like a payment to a known address.
func TestRouterDepositNeedsThePoolsDeposit(t *testing.T) {
	ctx := context.Background()
	mixers := must[types.GenesisAlloc](t)(contracts.MixerAlloc())
	c := simchain.New(map[string]int64{"hot": 100}, mixers)
	defer c.Close()
	src := kwe.NewSource(c.Client, kwe.Options{Chain: "eth", NativeSymbol: "ETH",
		Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}}})
	router := must[*contracts.Artifact](t)(contracts.Load(contracts.NameTornadoRouter))
	exchange, accomplice := simchain.Addr("exchange"), simchain.Addr("accomplice")
	routerAddr := contracts.TornadoRouter
	tests := []struct {
		name            string
		to              common.Address
		pool            common.Address
		wantCounterpart common.Address
		wantVia         string
	}{
		{"a deposit through the router", routerAddr, contracts.TornadoPool1ETH, contracts.TornadoPool1ETH, lower(routerAddr)},
		{"deposit call data sent to an accomplice", accomplice, exchange, accomplice, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := must[[]byte](t)(router.Pack("deposit", tt.pool, common.BigToHash(big.NewInt(int64(i+1))), []byte("note")))
			r := must[*types.Receipt](t)(c.Send(ctx, "hot", &tt.to, simchain.Ether(1), data))
			evs := blockEvents(t, src, c, r)
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1: %+v", len(evs), evs)
			}
			if e := evs[0]; e.Counterparty != lower(tt.wantCounterpart) || e.Detail[chains.DetailVia] != tt.wantVia || e.To != lower(tt.to) {
				t.Errorf("to %s, counterparty %s, via %q; want to %s, counterparty %s, via %q",
					e.To, e.Counterparty, e.Detail[chains.DetailVia], lower(tt.to), lower(tt.wantCounterpart), tt.wantVia)
			}
		})
	}
}

// manyFollowed is a followed set of n addresses, the last of them the one
// that moves.
type manyFollowed []string

func (m manyFollowed) Addresses(context.Context, string, time.Time) ([]string, error) { return m, nil }

// topicCounter records the longest topic list of the log queries.
type topicCounter struct {
	kwe.Client
	queries, longest atomic.Int32
}

func (c *topicCounter) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	c.queries.Add(1)
	for _, ts := range q.Topics {
		if n := int32(len(ts)); n > c.longest.Load() {
			c.longest.Store(n)
		}
	}
	return c.Client.FilterLogs(ctx, q)
}

// TestManyFollowedAddressesAreQueriedInParts: a theft fanned out to 1,200
// addresses, all followed. The log filters are split so no topic list is
// longer than 500, and the token movement of the last followed address is
// still found.
func TestManyFollowedAddressesAreQueriedInParts(t *testing.T) {
	ctx := context.Background()
	c := simchain.New(map[string]int64{"hot": 10, "mule": 10, "issuer": 1}, nil)
	defer c.Close()
	token := must[common.Address](t)(c.Deploy(ctx, "issuer", contracts.NameTestToken, "USD Coin", "USDC", uint8(6)))
	must[*types.Receipt](t)(c.Call(ctx, "issuer", token, contracts.NameTestToken, "mint", simchain.Addr("mule"), big.NewInt(5_000_000)))
	var followed manyFollowed
	for i := range 1199 {
		followed = append(followed, common.BigToAddress(big.NewInt(int64(0x100000+i))).Hex())
	}
	followed = append(followed, simchain.Addr("mule").Hex())
	client := &topicCounter{Client: c.Client}
	src := kwe.NewSource(client, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Followed: followed,
		Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}},
		Tokens:  []kwe.Token{{Symbol: "USDC", Address: token, Decimals: 6, USD: 1}}})
	r := must[*types.Receipt](t)(c.Call(ctx, "mule", token, contracts.NameTestToken, "transfer", simchain.Addr("vendor"), big.NewInt(1_000_000)))
	evs := blockEvents(t, src, c, r)
	if len(evs) != 1 || evs[0].Wallet != lower(simchain.Addr("mule")) || evs[0].WalletRole != chains.RoleFollowed || evs[0].Amount.String() != "1" {
		t.Fatalf("events %+v, want the followed mule's 1 USDC outflow", evs)
	}
	// 1,201 senders (hot and the followed) in 3 parts, the recipients and
	// approvals-for-all of the one watched wallet in 1 each.
	if q, l := client.queries.Load(), client.longest.Load(); q != 5 || l > 500 {
		t.Fatalf("%d log queries, longest topic list %d; want 5 queries of at most 500", q, l)
	}
}
