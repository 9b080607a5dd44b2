package ethereum_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/store/memory"
)

// approvalPolicy is the approval detector over an address book that holds
// the vendor, for the wallet "hot".
func approvalPolicy(t *testing.T) *policies.Engine {
	t.Helper()
	dir := t.TempDir()
	book := filepath.Join(dir, "address-book.txt")
	if err := os.WriteFile(book, []byte(simchain.Addr("vendor").Hex()+" Acme Hosting (vendor)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`store: {memory: true}
nats: {embedded: true, data_dir: %s}
chains:
  - {name: eth, kind: ethereum, rpc: [ws://127.0.0.1:8546]}
wallets:
  - {name: hot, chain: eth, address: "%s", role: hot}
lists:
  address_book: [%s]
policies:
  - {name: unknown-spender, detector: approval, severity: high, actions: [page]}
`, dir, simchain.Addr("hot").Hex(), book)
	cfg, err := config.Parse(filepath.Join(dir, "keywatch.yaml"), []byte(doc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ls, err := lists.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set, err := policies.Build(cfg, ls)
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	return policies.New(set, policies.Options{Store: st})
}

// TestApprovalsOnAnyContract: every allowance the watched wallet grants, on
// a token keywatch is not configured for, an ERC-721 and an ERC-1155
// collection and Permit2 at its real address, is one approval event with the
// standard, the spender and (Permit2) the token and expiration; the approval
// detector fires for a spender not in the address book, and neither for one
// in it nor for a revocation.
func TestApprovalsOnAnyContract(t *testing.T) {
	ctx := context.Background()
	alloc := must[types.GenesisAlloc](t)(contracts.Permit2Alloc())
	c := simchain.New(map[string]int64{"hot": 100, "relayer": 10, "outsider": 10, "issuer": 10}, alloc)
	defer c.Close()
	pepe := must[common.Address](t)(c.Deploy(ctx, "issuer", contracts.NameTestToken, "Pepe", "PEPE", uint8(18)))
	usdc := must[common.Address](t)(c.Deploy(ctx, "issuer", contracts.NameTestToken, "USD Coin", "USDC", uint8(6)))
	apes := must[common.Address](t)(c.Deploy(ctx, "issuer", contracts.NameTestNFT, "Test Apes", "TAPE"))
	items := must[common.Address](t)(c.Deploy(ctx, "issuer", contracts.NameTestMultiToken))
	// A copy of the Permit2 code at another address: its events are not
	// Permit2's.
	fake := must[common.Address](t)(c.Deploy(ctx, "issuer", contracts.NamePermit2))
	must[*types.Receipt](t)(c.Call(ctx, "issuer", apes, contracts.NameTestNFT, "mint", simchain.Addr("hot"), big.NewInt(7)))

	src := kwe.NewSource(c.Client, kwe.Options{
		Chain: "eth", NativeSymbol: "ETH", NativeUSD: 3000,
		Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}},
		Tokens:  []kwe.Token{{Symbol: "USDC", Address: usdc, Decimals: 6, USD: 1}},
	})
	engine := approvalPolicy(t)
	hot, vendor, stranger, relayer := simchain.Addr("hot"), simchain.Addr("vendor"), simchain.Addr("stranger"), simchain.Addr("relayer")
	zero := common.Address{}
	maxUint256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	maxUint160 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1))
	const until = 4_000_000_000 // 2096-10-02T07:06:40Z
	permit2 := must[*contracts.Artifact](t)(contracts.Load(contracts.NamePermit2))
	permit := func(p contracts.PermitSingle) func() (*types.Receipt, error) {
		return func() (*types.Receipt, error) {
			sig, err := p.Sign(simchain.Key("hot"), simchain.ChainID)
			if err != nil {
				return nil, err
			}
			data, err := permit2.Pack("permit", hot, p.Arg(), sig)
			if err != nil {
				return nil, err
			}
			to := contracts.Permit2
			return c.Send(ctx, "relayer", &to, nil, data) // anyone may send a signed permit
		}
	}
	call := func(from string, contract common.Address, artifact, method string, args ...any) func() (*types.Receipt, error) {
		return func() (*types.Receipt, error) { return c.Call(ctx, from, contract, artifact, method, args...) }
	}
	// common fields of the wallet's approvals.
	detail := func(std string, contract, spender common.Address, unlimited, revoked bool, more ...string) map[string]string {
		d := map[string]string{"standard": std, "contract": lower(contract), "spender": lower(spender),
			"unlimited": fmt.Sprint(unlimited), "revoked": fmt.Sprint(revoked)}
		for i := 0; i+1 < len(more); i += 2 {
			d[more[i]] = more[i+1]
		}
		return d
	}

	tests := []struct {
		name      string
		send      func() (*types.Receipt, error)
		none      bool // no event
		initiator common.Address
		spender   common.Address
		asset     string
		token     common.Address
		amount    string
		usd       float64
		detail    map[string]string
		alert     string // the reason; "" when the detector must not fire
	}{
		{
			name:      "ERC-20 approve on a token that is not configured",
			send:      call("hot", pepe, contracts.NameTestToken, "approve", stranger, big.NewInt(5_000_000)),
			initiator: hot, spender: stranger, asset: lower(pepe), token: pepe, amount: "5000000",
			detail: detail("erc20", pepe, stranger, false, false, "event", "Approval"),
			alert:  "hot granted an allowance of 5000000 base units of " + lower(pepe) + " (ERC-20 approve) to " + lower(stranger) + ", which is not on address_book",
		},
		{
			name:      "unlimited ERC-20 approve of a configured token to the vendor",
			send:      call("hot", usdc, contracts.NameTestToken, "approve", vendor, maxUint256),
			initiator: hot, spender: vendor, asset: "USDC", token: usdc, amount: "115792089237316195423570985008687907853269984665640564039457584007913129.639935",
			usd:    1.157920892373162e71,
			detail: detail("erc20", usdc, vendor, true, false, "event", "Approval"),
		},
		{
			name:      "ERC-20 allowance set back to 0",
			send:      call("hot", pepe, contracts.NameTestToken, "approve", stranger, big.NewInt(0)),
			initiator: hot, spender: stranger, asset: lower(pepe), token: pepe, amount: "0",
			detail: detail("erc20", pepe, stranger, false, true, "event", "Approval"),
		},
		{
			name: "someone else's approve",
			send: call("outsider", pepe, contracts.NameTestToken, "approve", stranger, big.NewInt(1)),
			none: true,
		},
		{
			name:      "ERC-721 approve",
			send:      call("hot", apes, contracts.NameTestNFT, "approve", stranger, big.NewInt(7)),
			initiator: hot, spender: stranger, asset: lower(apes), token: apes, amount: "1",
			detail: detail("erc721", apes, stranger, false, false, "event", "Approval", "token_id", "7"),
			alert:  "hot granted token 7 of " + lower(apes) + " (ERC-721 approve) to " + lower(stranger) + ", which is not on address_book",
		},
		{
			name:      "ERC-721 approval cleared",
			send:      call("hot", apes, contracts.NameTestNFT, "approve", zero, big.NewInt(7)),
			initiator: hot, spender: zero, asset: lower(apes), token: apes, amount: "0",
			detail: detail("erc721", apes, zero, false, true, "event", "Approval", "token_id", "7"),
		},
		{
			name:      "ERC-721 setApprovalForAll",
			send:      call("hot", apes, contracts.NameTestNFT, "setApprovalForAll", stranger, true),
			initiator: hot, spender: stranger, asset: lower(apes), token: apes, amount: "0",
			detail: detail("erc721", apes, stranger, true, false, "event", "ApprovalForAll", "approved_for_all", "true"),
			alert:  "hot granted every token of " + lower(apes) + " (ERC-721 setApprovalForAll) to " + lower(stranger) + ", which is not on address_book",
		},
		{
			name:      "ERC-1155 setApprovalForAll",
			send:      call("hot", items, contracts.NameTestMultiToken, "setApprovalForAll", stranger, true),
			initiator: hot, spender: stranger, asset: lower(items), token: items, amount: "0",
			detail: detail("erc1155", items, stranger, true, false, "event", "ApprovalForAll", "approved_for_all", "true"),
			alert:  "hot granted every token of " + lower(items) + " (ERC-1155 setApprovalForAll) to " + lower(stranger) + ", which is not on address_book",
		},
		{
			name:      "ERC-1155 setApprovalForAll to the vendor",
			send:      call("hot", items, contracts.NameTestMultiToken, "setApprovalForAll", vendor, true),
			initiator: hot, spender: vendor, asset: lower(items), token: items, amount: "0",
			detail: detail("erc1155", items, vendor, true, false, "event", "ApprovalForAll", "approved_for_all", "true"),
		},
		{
			name:      "ERC-1155 setApprovalForAll revoked",
			send:      call("hot", items, contracts.NameTestMultiToken, "setApprovalForAll", stranger, false),
			initiator: hot, spender: stranger, asset: lower(items), token: items, amount: "0",
			detail: detail("erc1155", items, stranger, false, true, "event", "ApprovalForAll", "approved_for_all", "false"),
		},
		{
			name:      "Permit2 approve of a configured token",
			send:      call("hot", contracts.Permit2, contracts.NamePermit2, "approve", usdc, stranger, big.NewInt(1_000_000_000), big.NewInt(until)),
			initiator: hot, spender: stranger, asset: "USDC", token: usdc, amount: "1000", usd: 1000,
			detail: detail("permit2", contracts.Permit2, stranger, false, false, "event", "Approval", "token", lower(usdc), "expiration", "4000000000"),
			alert:  "hot granted a Permit2 allowance of 1000 USDC until 2096-10-02T07:06:40Z (Permit2 approve) to " + lower(stranger) + ", which is not on address_book",
		},
		{
			name:      "Permit2 permit signed by the wallet, sent by a relayer",
			send:      permit(contracts.PermitSingle{Token: pepe, Amount: maxUint160, Expiration: until, Nonce: 0, Spender: stranger, SigDeadline: big.NewInt(until)}),
			initiator: relayer, spender: stranger, asset: lower(pepe), token: pepe, amount: maxUint160.String(),
			detail: detail("permit2", contracts.Permit2, stranger, true, false, "event", "Permit", "token", lower(pepe), "expiration", "4000000000", "nonce", "0"),
			alert: "hot granted an unlimited Permit2 allowance of " + lower(pepe) + " until 2096-10-02T07:06:40Z (Permit2 permit signed by the wallet, sent by " + lower(relayer) +
				") to " + lower(stranger) + ", which is not on address_book",
		},
		{
			name:      "Permit2 allowance for the rest of the block",
			send:      call("hot", contracts.Permit2, contracts.NamePermit2, "approve", pepe, stranger, big.NewInt(9), big.NewInt(0)),
			initiator: hot, spender: stranger, asset: lower(pepe), token: pepe, amount: "9",
			detail: detail("permit2", contracts.Permit2, stranger, false, false, "event", "Approval", "token", lower(pepe), "expiration", "0"),
			alert:  "hot granted a Permit2 allowance of 9 base units of " + lower(pepe) + " for the rest of its block (Permit2 approve) to " + lower(stranger) + ", which is not on address_book",
		},
		{
			name:      "Permit2 allowance to the vendor",
			send:      call("hot", contracts.Permit2, contracts.NamePermit2, "approve", usdc, vendor, maxUint160, big.NewInt(until)),
			initiator: hot, spender: vendor, asset: "USDC", token: usdc, amount: "1461501637330902918203684832716283019655932.542975", usd: 1.461501637330903e42,
			detail: detail("permit2", contracts.Permit2, vendor, true, false, "event", "Approval", "token", lower(usdc), "expiration", "4000000000"),
		},
		{
			name:      "Permit2 allowance set to 0",
			send:      call("hot", contracts.Permit2, contracts.NamePermit2, "approve", usdc, stranger, big.NewInt(0), big.NewInt(until)),
			initiator: hot, spender: stranger, asset: "USDC", token: usdc, amount: "0",
			detail: detail("permit2", contracts.Permit2, stranger, false, true, "event", "Approval", "token", lower(usdc), "expiration", "4000000000"),
		},
		{
			name:      "Permit2 allowance already expired",
			send:      call("hot", contracts.Permit2, contracts.NamePermit2, "approve", usdc, stranger, big.NewInt(5_000_000), big.NewInt(1)),
			initiator: hot, spender: stranger, asset: "USDC", token: usdc, amount: "5", usd: 5,
			detail: detail("permit2", contracts.Permit2, stranger, false, true, "event", "Approval", "token", lower(usdc), "expiration", "1"),
		},
		{
			name: "Permit2's events logged by another contract",
			send: call("hot", fake, contracts.NamePermit2, "approve", usdc, stranger, big.NewInt(1_000_000), big.NewInt(until)),
			none: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.send()
			if err != nil {
				t.Fatal(err)
			}
			evs := blockEvents(t, src, c, r)
			if tt.none {
				if len(evs) != 0 {
					t.Fatalf("got %+v, want no event", evs)
				}
				return
			}
			if len(evs) != 1 || len(r.Logs) != 1 {
				t.Fatalf("got %d events of %d logs, want 1: %+v", len(evs), len(r.Logs), evs)
			}
			e := evs[0]
			got := fmt.Sprintf("%s %s %s %s wallet=%s/%s from=%s to=%s counterparty=%s initiator=%s asset=%s token=%s amount=%s usd=%g",
				e.ID, e.Kind, e.Direction, e.BlockHash, e.Wallet, e.WalletRole, e.From, e.To, e.Counterparty, e.Initiator, e.Asset, e.Token, e.Amount, e.USD)
			want := fmt.Sprintf("%s %s %s %s wallet=%s/%s from=%s to=%s counterparty=%s initiator=%s asset=%s token=%s amount=%s usd=%g",
				chains.EventID("eth", r.TxHash.Hex(), r.Logs[0].Index), chains.KindApproval, chains.Out, r.BlockHash.Hex(), "hot", "hot",
				lower(hot), lower(tt.spender), lower(tt.spender), lower(tt.initiator), tt.asset, lower(tt.token), tt.amount, tt.usd)
			if got != want {
				t.Errorf("event\n got %s\nwant %s", got, want)
			}
			if !maps.Equal(e.Detail, tt.detail) {
				t.Errorf("detail\n got %v\nwant %v", e.Detail, tt.detail)
			}
			e.Status = chains.StatusConfirmed
			as, err := engine.Evaluate(ctx, &e)
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, a := range as {
				reasons = append(reasons, a.Policy+": "+strings.Join(a.Reasons, " | "))
			}
			wantAlert := ""
			if tt.alert != "" {
				wantAlert = "unknown-spender: " + tt.alert
			}
			if g := strings.Join(reasons, "\n"); g != wantAlert {
				t.Errorf("alerts\n got %q\nwant %q", g, wantAlert)
			}
		})
	}
}

// flakyCaller fails eth_call while fail is set, and counts the calls.
type flakyCaller struct {
	simulated.Client
	fail  atomic.Bool
	calls atomic.Int32
}

func (c *flakyCaller) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	c.calls.Add(1)
	if c.fail.Load() {
		return nil, errors.New("connection refused")
	}
	return c.Client.CallContract(ctx, msg, block)
}

// TestCollectionStandardIsAskedOnce: the ERC-165 question is asked once per
// collection; while the node fails it, the event still comes, with standard
// unknown, and the question is asked again.
func TestCollectionStandardIsAskedOnce(t *testing.T) {
	ctx := context.Background()
	c := simchain.New(map[string]int64{"hot": 10, "issuer": 10}, nil)
	defer c.Close()
	items := must[common.Address](t)(c.Deploy(ctx, "issuer", contracts.NameTestMultiToken))
	client := &flakyCaller{Client: c.Client}
	src := kwe.NewSource(client, kwe.Options{Chain: "eth", Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}}})
	operators := []string{"operator-1", "operator-2", "operator-3"}
	for i, tt := range []struct {
		fail      bool
		want      string
		wantCalls int32
	}{
		{fail: true, want: "unknown", wantCalls: 2},
		{want: "erc1155", wantCalls: 2},
		{want: "erc1155", wantCalls: 0},
	} {
		client.fail.Store(tt.fail)
		client.calls.Store(0)
		r := must[*types.Receipt](t)(c.Call(ctx, "hot", items, contracts.NameTestMultiToken, "setApprovalForAll", simchain.Addr(operators[i]), true))
		evs := blockEvents(t, src, c, r)
		if len(evs) != 1 {
			t.Fatalf("approval %d (node failing: %v): %d events, want 1", i+1, tt.fail, len(evs))
		}
		if got, calls := evs[0].Detail["standard"], client.calls.Load(); got != tt.want || calls != tt.wantCalls {
			t.Fatalf("approval %d (node failing: %v): standard %q after %d calls, want %q after %d", i+1, tt.fail, got, calls, tt.want, tt.wantCalls)
		}
	}
}
