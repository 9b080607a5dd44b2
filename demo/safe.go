package demo

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/safetest"
	"github.com/keywatch/keywatch/internal/simchain"
)

// The treasury Safe's scene plays the Bybit theft of 21 February 2025:
// the owners sign what their screen shows as a routine token transfer; it
// is a delegatecall to the attacker's contract, whose
// transfer(address,uint256) writes the attacker's contract into slot 0,
// the Safe's singleton, and logs nothing; then the attacker, no owner,
// empties the Safe through its new code by an internal call.

// safeWallet is the demo configuration's name of the treasury Safe.
const safeWallet = "treasury-safe"

// safeHolding is what the treasury Safe holds before the theft, in ether.
const safeHolding = 400

// safePolicies are the policies of demo.yaml the takeover raises (the
// delegatecall's first), and the sweep's.
var (
	safeTakeoverPolicies = []string{"safe-delegatecall", "admin-change"}
	safeSweepPolicies    = []string{"big-outflow"}
)

// safeLeg is the treasury Safe and the attacker's contract, deployed
// before keywatch starts (keywatch checks at start that a wallet marked
// account: safe is one).
type safeLeg struct {
	safe     *safetest.Safe
	attacker common.Address
	takeArt  *contracts.Artifact
}

// deploySafe deploys the real Safe 1.4.1 contracts (through the canonical
// deployment proxy, so MultiSend sits at its mainnet address), creates the
// treasury Safe (owners cfo, treasurer and dev-deployer, threshold 2) and
// funds it, and deploys the attacker's SlotZeroTakeover. The Safe's
// address must be the one demo.yaml watches.
func deploySafe(ctx context.Context, cfg *config.Config, chain *simchain.Chain) (*safeLeg, error) {
	c := safetest.Sim(chain)
	deployer := simchain.Key("safe-deployer")
	dep, err := safetest.Deploy(ctx, c, deployer, "1.4.1")
	if err != nil {
		return nil, fmt.Errorf("deploy Safe 1.4.1: %w", err)
	}
	owners := []common.Address{simchain.Addr("cfo"), simchain.Addr("treasurer"), simchain.Addr("dev-deployer")}
	s, err := dep.NewSafe(ctx, c, deployer, owners, 2, false, 1)
	if err != nil {
		return nil, fmt.Errorf("create the treasury Safe: %w", err)
	}
	want := ""
	for _, w := range cfg.Wallets {
		if w.Name == safeWallet {
			want = w.Address
		}
	}
	if !strings.EqualFold(want, s.Address.Hex()) {
		return nil, fmt.Errorf("the treasury Safe was created at %s, but demo.yaml watches %q as %s", s.Address.Hex(), want, safeWallet)
	}
	if _, err := c.Send(ctx, deployer, &s.Address, simchain.Ether(safeHolding), nil); err != nil {
		return nil, fmt.Errorf("fund the treasury Safe: %w", err)
	}
	art, err := contracts.Load(contracts.NameSlotZeroTakeover)
	if err != nil {
		return nil, err
	}
	code, err := art.DeployData()
	if err != nil {
		return nil, err
	}
	r, err := c.Send(ctx, simchain.Key("lazarus"), nil, nil, code)
	if err != nil {
		return nil, fmt.Errorf("deploy the attacker's contract: %w", err)
	}
	return &safeLeg{safe: s, attacker: r.ContractAddress, takeArt: art}, nil
}

// safeScene plays the takeover and the sweep.
func (s *story) safeScene(n int) error {
	leg := s.safe
	s.scene(n, fmt.Sprintf("The Bybit way: the treasury Safe (%d ETH, owners cfo, treasurer and dev-deployer, 2 of 3) is taken over.\n"+
		"   cfo and dev-deployer sign what their wallet screen shows as a routine transfer. It is a delegatecall to the\n"+
		"   attacker's contract %s, whose transfer(address,uint256) writes itself into slot 0, the Safe's\n"+
		"   singleton, and logs nothing. The attacker's own account sends it: any account may execute a signed Safe transaction.",
		safeHolding, strings.ToLower(leg.attacker.Hex())))
	transfer, err := leg.takeArt.Pack("transfer", leg.attacker, new(big.Int))
	if err != nil {
		return err
	}
	signers := []*ecdsa.PrivateKey{simchain.Key("cfo"), simchain.Key("dev-deployer")}
	r, err := leg.safe.Run(s.ctx, simchain.Key("lazarus"), leg.attacker, nil, transfer, safe.DelegateCall, signers...)
	if err != nil {
		return fmt.Errorf("the takeover: %w", err)
	}
	sealed := time.Now()
	s.out.printf("   tx %s in block %d\n", r.TxHash.Hex(), r.BlockNumber)
	for _, p := range safeTakeoverPolicies {
		if err := s.expect(r.TxHash, p, "pending"); err != nil {
			return err
		}
	}
	paged := s.p.arrival(r.TxHash.Hex(), safeTakeoverPolicies[0], "pending")
	s.out.printf("   keywatch paged on the delegatecall %s after its block, with the takeover's block %d not yet confirmed.\n",
		paged.Sub(sealed).Round(time.Millisecond), r.BlockNumber)

	s.out.printf("   Seconds later the attacker, no owner, calls the Safe, now running the attacker's code, to sweep it by an internal call:\n")
	sweep, err := leg.takeArt.Pack("sweepETH", simchain.Addr("lazarus-drop"))
	if err != nil {
		return err
	}
	swept, err := s.send("lazarus", &leg.safe.Address, nil, sweep)
	if err != nil {
		return err
	}
	if err := s.expectAll(swept, safeSweepPolicies); err != nil {
		return err
	}
	for _, p := range safeTakeoverPolicies {
		if err := s.expect(r.TxHash, p, "confirmed"); err != nil {
			return err
		}
	}
	s.out.printf("   The page on the delegatecall came before the sweep's block was confirmed; its hold froze %s.\n", safeWallet)
	return nil
}
