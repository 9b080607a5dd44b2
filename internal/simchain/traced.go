package simchain

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/eth/tracers"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	// The native tracers (callTracer, prestateTracer, ...) register
	// themselves when imported.
	_ "github.com/ethereum/go-ethereum/eth/tracers/native"
)

// Backend is what a Chain runs on: go-ethereum's simulated backend, or the
// traced chain of NewTraced. Both seal blocks on Commit and make reorgs with
// Fork.
type Backend interface {
	Commit() common.Hash
	Rollback()
	Fork(parent common.Hash) error
	AdjustTime(adjustment time.Duration) error
	Close() error
	Client() simulated.Client
}

var _ Backend = (*simulated.Backend)(nil)

// NewTraced is New on a chain that also serves the debug tracing API geth
// serves (debug_traceBlockByHash, debug_traceTransaction, with callTracer
// and the other native tracers). go-ethereum's simulated backend registers
// the eth and filter APIs but not the tracers (geth registers them in
// cmd/utils), so this builds the same node, with the same genesis rules, and
// registers them too. Its client is an *ethclient.Client, so raw JSON-RPC
// calls reach the node through its Client method.
func NewTraced(funds map[string]int64, extra types.GenesisAlloc) (*Chain, error) {
	alloc := types.GenesisAlloc{}
	maps.Copy(alloc, extra)
	for name, eth := range funds {
		alloc[Addr(name)] = types.Account{Balance: Ether(eth)}
	}
	b, err := newTracedBackend(alloc)
	if err != nil {
		return nil, err
	}
	return &Chain{Backend: b, Client: b.client}, nil
}

// tracedBackend is go-ethereum's simulated backend (ethclient/simulated)
// with the tracers API registered.
type tracedBackend struct {
	node   *node.Node
	beacon *catalyst.SimulatedBeacon
	client *ethclient.Client
}

// newTracedBackend follows simulated.NewBackend: an in-memory node on every
// fork from genesis, the system contracts those forks call in the genesis,
// full sync, no log index; then the filter and tracer APIs, and the
// simulated beacon that seals blocks on Commit.
func newTracedBackend(alloc types.GenesisAlloc) (*tracedBackend, error) {
	nodeConf := node.DefaultConfig
	nodeConf.DataDir = ""
	nodeConf.P2P = p2p.Config{NoDiscovery: true}
	genesisAlloc := core.SystemContractAllocs()
	maps.Copy(genesisAlloc, alloc)
	ethConf := ethconfig.Defaults
	ethConf.Genesis = &core.Genesis{Config: params.AllDevChainProtocolChanges, GasLimit: ethconfig.Defaults.Miner.GasCeil, Alloc: genesisAlloc}
	ethConf.SyncMode = ethconfig.FullSync
	ethConf.TxPool.NoLocals = true
	ethConf.LogNoHistory = true

	stack, err := node.New(&nodeConf)
	if err != nil {
		return nil, fmt.Errorf("traced chain: node: %w", err)
	}
	backend, err := eth.New(stack, &ethConf)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("traced chain: eth service: %w", err)
	}
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filters.NewFilterSystem(backend.APIBackend, filters.Config{}))}})
	stack.RegisterAPIs(tracers.APIs(backend.APIBackend))
	if err := stack.Start(); err != nil {
		stack.Close()
		return nil, fmt.Errorf("traced chain: start: %w", err)
	}
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, backend)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("traced chain: beacon: %w", err)
	}
	if err := beacon.Fork(backend.BlockChain().GetCanonicalHash(0)); err != nil {
		beacon.Stop()
		stack.Close()
		return nil, fmt.Errorf("traced chain: %w", err)
	}
	return &tracedBackend{node: stack, beacon: beacon, client: ethclient.NewClient(stack.Attach())}, nil
}

func (b *tracedBackend) Commit() common.Hash              { return b.beacon.Commit() }
func (b *tracedBackend) Rollback()                        { b.beacon.Rollback() }
func (b *tracedBackend) Fork(parent common.Hash) error    { return b.beacon.Fork(parent) }
func (b *tracedBackend) AdjustTime(d time.Duration) error { return b.beacon.AdjustTime(d) }
func (b *tracedBackend) Client() simulated.Client         { return b.client }

// Close stops the chain; it can be called more than once.
func (b *tracedBackend) Close() error {
	var err error
	if b.client != nil {
		b.client.Close()
		b.client = nil
	}
	if b.beacon != nil {
		err = b.beacon.Stop()
		b.beacon = nil
	}
	if b.node != nil {
		err = errors.Join(err, b.node.Close())
		b.node = nil
	}
	return err
}
