// Package safequeue judges a Safe's multisig transactions before any owner
// executes them: it polls the queue of each watched Safe in a Safe
// Transaction Service (service.go), recomputes each transaction's EIP-712
// safeTxHash from its payload with the Safe's version and nonce as the chain
// answers them (node.go), recovers the owners whose signatures it carries,
// and hands the result on as an event of kind execution and status
// proposed. When the chain uses the transaction's nonce the event is
// delivered again, confirmed when the Safe executed this transaction,
// retracted when another one took the nonce.
//
// What was delivered is kept in the store (one record per Safe), so a
// restart delivers nothing twice. A response that is not what the service's
// API documents is an error: nothing is judged from it, and the poll is
// retried with backoff.
package safequeue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/internal/backoff"
	"github.com/keywatch/keywatch/store"
)

// DeliverFunc hands events to the policy engine, as the chain followers'
// does. Delivery must be idempotent: after a crash the last events may be
// delivered again.
type DeliverFunc func(ctx context.Context, events []chains.Event) error

// Safe is a watched Safe.
type Safe struct {
	Name    string
	Address common.Address
	Role    string
	Owner   string
}

// Key is a watched key (an employee-key wallet): when it signs a queued
// transaction, the event carries its owner.
type Key struct {
	Name    string
	Address common.Address
	Owner   string
}

// Failure says that a Safe's queue could not be read for a while (Over
// false), or can be read again (Over true).
type Failure struct {
	Safe    string // the wallet's name
	Address common.Address
	Since   time.Time // when the failures began
	Err     string    // the last error (URLs redacted)
	Over    bool
}

// Options configure a Poller.
type Options struct {
	Chain string
	Safes []Safe
	Keys  []Key
	// NativeSymbol and NativeUSD price the value a transaction sends.
	NativeSymbol string
	NativeUSD    float64
	// Confirmations is the depth at which the chain's nonce is read to
	// settle a transaction (confirmed or retracted).
	Confirmations uint64
	// Interval is the time between polls of one Safe (default 15s). After
	// a failure the Safe is polled again after RetryAfter (default 1s),
	// doubling up to MaxBackoff (default 5m).
	Interval   time.Duration
	RetryAfter time.Duration
	MaxBackoff time.Duration
	// FailingAfter is how long a Safe's queue may stay unreadable before
	// Failing is called (default 5m).
	FailingAfter time.Duration
	Failing      func(ctx context.Context, f Failure) error // may be nil
	// Active, when set, says whether this instance should poll now (it holds
	// the chain's lease); polling pauses while it says no.
	Active  func() bool
	Store   store.Store
	Deliver DeliverFunc
	Logger  *slog.Logger
	Now     func() time.Time
}

// Poller polls the queues of a chain's watched Safes.
type Poller struct {
	svc    *Service
	chain  chainReader
	opts   Options
	log    *slog.Logger
	states store.Records[tracked]
	keys   map[common.Address]Key

	chainID *big.Int             // read once from the node
	failing map[string]*failure  // by Safe address, while its polls fail
	unclear map[string]bool      // tracked transactions already warned about
	claims  map[string]claimSeen // what the service last claimed, by Safe, for warnings
}

type failure struct {
	since   time.Time
	alarmed bool
}

type claimSeen struct{ nonce, version string }

// New makes a Poller reading the queue from svc and the Safes' state from
// node.
func New(svc *Service, node Node, opts Options) (*Poller, error) {
	if opts.Chain == "" || opts.Store == nil || opts.Deliver == nil || svc == nil || node == nil {
		return nil, errors.New("safequeue: Chain, Store, Deliver, the service and the node are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.FailingAfter <= 0 {
		opts.FailingAfter = 5 * time.Minute
	}
	if opts.NativeSymbol == "" {
		opts.NativeSymbol = "ETH"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Poller{svc: svc, chain: chainReader{node: node}, opts: opts,
		log:    opts.Logger.With("chain", opts.Chain, "part", "safe-queue"),
		states: store.NewRecords[tracked](opts.Store, "Safe queue state of chain "+opts.Chain),
		keys:   map[common.Address]Key{}, failing: map[string]*failure{}, unclear: map[string]bool{}, claims: map[string]claimSeen{}}
	for _, k := range opts.Keys {
		p.keys[k.Address] = k
	}
	return p, nil
}

// Run polls every Safe until ctx ends. A Safe whose poll fails is retried
// with backoff, and the others go on at their pace.
func (p *Poller) Run(ctx context.Context) error {
	type schedule struct {
		due   time.Time
		retry *backoff.Exponential
	}
	sched := make([]schedule, len(p.opts.Safes))
	for i := range sched {
		sched[i].retry = backoff.New(p.opts.RetryAfter, p.opts.MaxBackoff)
	}
	p.log.Info("polling the Safe queue", "service", p.svc.String(), "safes", len(p.opts.Safes), "interval", p.opts.Interval)
	for {
		if p.opts.Active != nil && !p.opts.Active() {
			if err := backoff.Sleep(ctx, p.opts.Interval); err != nil {
				return nil
			}
			continue
		}
		next := time.Now().Add(p.opts.Interval)
		for i, s := range p.opts.Safes {
			if time.Now().Before(sched[i].due) {
				next = earliest(next, sched[i].due)
				continue
			}
			err := p.Poll(ctx, s)
			if ctx.Err() != nil {
				return nil
			}
			wait := p.opts.Interval
			if err != nil {
				wait = sched[i].retry.Next()
				p.log.Warn("Safe queue poll failed; nothing judged from it, retrying", "wallet", s.Name, "safe", s.Address.Hex(), "err", err, "retry_in", wait)
			} else {
				sched[i].retry.Reset()
			}
			sched[i].due = time.Now().Add(wait)
			next = earliest(next, sched[i].due)
		}
		if err := backoff.Sleep(ctx, time.Until(next)); err != nil {
			return nil
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Step polls every Safe once and returns their errors joined.
func (p *Poller) Step(ctx context.Context) error {
	var errs []error
	for _, s := range p.opts.Safes {
		if err := p.Poll(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("Safe %s (%s): %w", s.Name, s.Address.Hex(), err))
		}
	}
	return errors.Join(errs...)
}

// Poll reads one Safe's queue, delivers its new transactions as proposed
// and settles those whose nonce the chain used. It keeps track of how long
// the Safe's polls have been failing (see Options.Failing).
func (p *Poller) Poll(ctx context.Context, s Safe) error {
	err := p.poll(ctx, s)
	if ctx.Err() != nil {
		return err
	}
	p.watchFailures(ctx, s, err)
	return err
}

// chainState is what one poll reads from the chain.
type chainState struct {
	chainID *big.Int
	nonce   uint64 // the Safe's nonce at the head: lower nonces are used
	settled uint64 // the Safe's nonce at confirmation depth
	version string
}

func (p *Poller) read(ctx context.Context, s Safe) (chainState, error) {
	var c chainState
	if p.chainID == nil {
		id, err := p.chain.node.ChainID(ctx)
		if err != nil {
			return c, fmt.Errorf("read chain id: %w", err)
		}
		p.chainID = id
	}
	c.chainID = p.chainID
	head, err := p.chain.node.BlockNumber(ctx)
	if err != nil {
		return c, fmt.Errorf("read head: %w", err)
	}
	if c.version, err = p.chain.version(ctx, s.Address); err != nil {
		return c, err
	}
	if _, err := safe.ParseVersion(c.version); err != nil {
		return c, fmt.Errorf("%w: %v", ErrNotSafe, err)
	}
	at := new(big.Int).SetUint64(head)
	if c.nonce, err = p.chain.nonce(ctx, s.Address, at); err != nil {
		return c, err
	}
	c.settled = c.nonce
	if p.opts.Confirmations > 0 {
		depth := uint64(0)
		if head > p.opts.Confirmations {
			depth = head - p.opts.Confirmations
		}
		// A Safe created after that block answers nothing there: it had
		// used no nonce yet.
		if c.settled, err = p.chain.nonce(ctx, s.Address, new(big.Int).SetUint64(depth)); errors.Is(err, ErrNotSafe) {
			c.settled, err = 0, nil
		}
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

func (p *Poller) poll(ctx context.Context, s Safe) error {
	c, err := p.read(ctx, s)
	if err != nil {
		return err
	}
	key := stateKey(p.opts.Chain, s.Address)
	delivered, err := p.states.HGetAll(ctx, key)
	if err != nil {
		return err
	}
	info, err := p.svc.Info(ctx, s.Address)
	if err != nil {
		return err
	}
	p.compare(s, c, info)
	txs, err := p.svc.Queue(ctx, s.Address, c.nonce)
	if err != nil {
		return err
	}
	// Judge everything first: a transaction that cannot be judged fails the
	// poll before anything of it is delivered. One delivered before, shown
	// with the same hash and the same confirmations, is not judged again.
	var judged []judgement
	for _, tx := range txs {
		if tx.Nonce < c.nonce {
			return fmt.Errorf("%w: the queue from nonce %d lists a transaction of nonce %d", ErrMalformed, c.nonce, tx.Nonce)
		}
		computed, err := safe.Hash(c.chainID, s.Address, c.version, tx.Payload)
		if err != nil {
			return fmt.Errorf("hash nonce %d: %w", tx.Nonce, err)
		}
		prev, seen := delivered[computed.Hex()]
		if seen && prev.ServiceHash == tx.Hash.Hex() && prev.Confirmations == fingerprint(tx.Confirmations) {
			continue
		}
		j, err := p.judge(ctx, s, c, info, tx, computed)
		if err != nil {
			return err
		}
		if seen {
			j.t.Event.Time = prev.Event.Time
		}
		judged = append(judged, j)
	}
	for _, j := range judged {
		if err := p.opts.Deliver(ctx, []chains.Event{j.t.Event}); err != nil {
			return fmt.Errorf("deliver queued Safe transaction %s: %w", j.key, err)
		}
		delivered[j.key] = j.t
		if err := p.states.HPut(ctx, key, j.key, j.t); err != nil {
			return err
		}
		p.log.Info("queued Safe transaction judged", "wallet", s.Name, "nonce", j.t.Nonce, "safe_tx_hash", j.key,
			"service_safe_tx_hash", j.t.ServiceHash, "operation", j.t.Event.Operation, "target", j.t.Event.Target)
	}
	return p.settle(ctx, s, c, delivered, key)
}

// compare warns when the service's view of the Safe disagrees with the
// chain's (once per disagreement): the chain's is the one used.
func (p *Poller) compare(s Safe, c chainState, info Info) {
	seen := claimSeen{nonce: fmt.Sprint(info.Nonce), version: info.Version}
	if p.claims[s.Address.Hex()] == seen {
		return
	}
	p.claims[s.Address.Hex()] = seen
	if info.Nonce > c.nonce {
		p.log.Warn("the Safe Transaction Service says nonces were used that the chain has not used; the chain's nonce is used",
			"wallet", s.Name, "service_nonce", info.Nonce, "chain_nonce", c.nonce)
	}
	if info.Version != "" && info.Version != c.version {
		p.log.Warn("the Safe Transaction Service names another Safe version than the chain; the chain's is used",
			"wallet", s.Name, "service_version", info.Version, "chain_version", c.version)
	}
}

// tracked is one delivered transaction not settled yet. A Safe's are kept
// in one hash of the store (stateKey), by computed safeTxHash.
type tracked struct {
	Event       chains.Event `json:"event"` // as delivered
	Nonce       uint64       `json:"nonce"`
	ServiceHash string       `json:"service_safe_tx_hash"`
	Version     string       `json:"version"` // the Safe's version it was hashed with
	// Confirmations fingerprints the confirmations it was judged with: a
	// new one (another owner signing) is judged again.
	Confirmations string `json:"confirmations"`
}

// fingerprint identifies a list of confirmations.
func fingerprint(cs []Confirmation) string {
	var b []byte
	for _, c := range cs {
		b = append(b, c.Owner[:]...)
		b = append(b, crypto.Keccak256(c.Signature)...)
	}
	return crypto.Keccak256Hash(b).Hex()
}

func stateKey(chain string, addr common.Address) string {
	return "safequeue:" + chain + ":" + strings.ToLower(addr.Hex())
}

// judgement is a judged queued transaction, ready to deliver.
type judgement struct {
	key string // computed safeTxHash
	t   tracked
}

// judge builds the proposed event of a queued transaction.
func (p *Poller) judge(ctx context.Context, s Safe, c chainState, info Info, tx Tx, computed common.Hash) (judgement, error) {
	signers, bad, err := p.signers(ctx, s, computed, tx.Confirmations)
	if err != nil {
		return judgement{}, err
	}
	to := strings.ToLower(tx.Payload.To.Hex())
	value := tx.Payload.Value
	amount := chains.NewAmount(value, 18)
	nonce := tx.Nonce
	ev := chains.Event{
		ID:           chains.SafeTxEventID(p.opts.Chain, computed.Hex()),
		Chain:        p.opts.Chain,
		Time:         p.opts.Now().UTC(),
		Status:       chains.StatusProposed,
		Kind:         chains.KindExecution,
		Direction:    chains.Out,
		Wallet:       s.Name,
		WalletRole:   s.Role,
		Owner:        s.Owner,
		From:         strings.ToLower(s.Address.Hex()),
		To:           to,
		Counterparty: to,
		Asset:        p.opts.NativeSymbol,
		Amount:       amount,
		USD:          amount.Float64() * p.opts.NativeUSD,
		Operation:    tx.Payload.Operation.String(),
		Target:       to,
		Value:        value.String(),
		SafeNonce:    &nonce,
		Detail: map[string]string{
			chains.DetailSafeTxHash:         tx.Hash.Hex(),
			chains.DetailComputedSafeTxHash: computed.Hex(),
			chains.DetailSafeVersion:        c.version,
		},
	}
	if len(tx.Payload.Data) >= 4 {
		ev.Selector = fmt.Sprintf("0x%x", tx.Payload.Data[:4])
	}
	for _, a := range signers {
		ev.Signers = append(ev.Signers, strings.ToLower(a.Hex()))
		if k, ok := p.keys[a]; ok && k.Owner != "" && ev.Owner == s.Owner {
			ev.Owner = k.Owner
		}
	}
	required := tx.Required
	if required == 0 {
		required = info.Threshold
	}
	ev.Detail[chains.DetailConfirmations] = fmt.Sprintf("%d of %d", len(tx.Confirmations), required)
	if len(bad) > 0 {
		ev.Detail[chains.DetailBadConfirmations] = strings.Join(bad, "; ")
	}
	if tx.Proposer != nil {
		ev.Detail[chains.DetailProposer] = strings.ToLower(tx.Proposer.Hex())
	}
	if tx.Method != "" {
		ev.Detail[chains.DetailMethod] = tx.Method
	}
	return judgement{key: computed.Hex(), t: tracked{Event: ev, Nonce: tx.Nonce, ServiceHash: tx.Hash.Hex(), Version: c.version,
		Confirmations: fingerprint(tx.Confirmations)}}, nil
}

// signers returns the owners whose confirmations sign the computed hash,
// and the confirmations that do not (as evidence). A confirmation without a
// signature (taken from an on-chain approveHash) is checked on the chain.
// Approved-hash (v 1) and contract (v 0) signatures name their owner; the
// Safe checks them when it executes.
func (p *Poller) signers(ctx context.Context, s Safe, hash common.Hash, cs []Confirmation) ([]common.Address, []string, error) {
	var signers []common.Address
	var bad []string
	for _, c := range cs {
		owner := strings.ToLower(c.Owner.Hex())
		if len(c.Signature) == 0 {
			ok, err := p.chain.approved(ctx, s.Address, c.Owner, hash)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				bad = append(bad, owner+": no signature, and no approval of this hash on chain")
				continue
			}
			signers = append(signers, c.Owner)
			continue
		}
		got, err := safe.Signers(hash, c.Signature)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: unreadable signature (%v)", owner, err))
		case len(got) != 1:
			bad = append(bad, fmt.Sprintf("%s: the confirmation carries %d signatures", owner, len(got)))
		case got[0] != c.Owner:
			bad = append(bad, fmt.Sprintf("%s: signature recovers to %s", owner, strings.ToLower(got[0].Hex())))
		default:
			signers = append(signers, c.Owner)
		}
	}
	return signers, bad, nil
}

// settle delivers the tracked transactions whose nonce the chain used at
// confirmation depth: confirmed when the Safe executed this transaction,
// retracted when another one took the nonce. Which one took it is proven by
// the chain: the service names the executing transaction, and its receipt
// must show the Safe logging that transaction's safeTxHash, which commits
// to the nonce. Until a proof is found, the transaction stays proposed.
func (p *Poller) settle(ctx context.Context, s Safe, c chainState, delivered map[string]tracked, key string) error {
	keys := make([]string, 0, len(delivered))
	for k, t := range delivered {
		if t.Nonce < c.settled {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := delivered[keys[i]], delivered[keys[j]]
		if a.Nonce != b.Nonce {
			return a.Nonce < b.Nonce
		}
		return keys[i] < keys[j]
	})
	atNonce := map[uint64][]Tx{} // the service's transactions of each used nonce
	for _, k := range keys {
		t := delivered[k]
		txs, ok := atNonce[t.Nonce]
		if !ok {
			var err error
			if txs, err = p.svc.AtNonce(ctx, s.Address, t.Nonce); err != nil {
				return err
			}
			for _, tx := range txs {
				if tx.Nonce != t.Nonce {
					return fmt.Errorf("%w: the listing of nonce %d holds a transaction of nonce %d", ErrMalformed, t.Nonce, tx.Nonce)
				}
			}
			atNonce[t.Nonce] = txs
		}
		taker, ex, err := p.taker(ctx, s, c, t, txs)
		if err != nil {
			return err
		}
		if taker == "" {
			if !p.unclear[k] {
				p.unclear[k] = true
				p.log.Warn("the chain used a queued transaction's nonce, but the service shows no execution the chain confirms; it stays proposed",
					"wallet", s.Name, "nonce", t.Nonce, "safe_tx_hash", k)
			}
			continue
		}
		ev := t.Event
		detail := make(map[string]string, len(ev.Detail)+1)
		for dk, dv := range ev.Detail {
			detail[dk] = dv
		}
		if taker == k {
			ev.Status = chains.StatusConfirmed
			ev.Tx, ev.Block, ev.BlockHash = ex.tx.Hex(), ex.block, ex.blockID.Hex()
			detail[chains.DetailExecution] = "success"
			if !ex.success {
				detail[chains.DetailExecution] = "failure"
			}
		} else {
			ev.Status = chains.StatusRetracted
			detail[chains.DetailRetracted] = fmt.Sprintf("nonce %d was taken by Safe transaction %s (tx %s)", t.Nonce, taker, ex.tx.Hex())
		}
		ev.Detail = detail
		if err := p.opts.Deliver(ctx, []chains.Event{ev}); err != nil {
			return fmt.Errorf("deliver %s Safe transaction %s: %w", ev.Status, k, err)
		}
		if err := p.opts.Store.HDel(ctx, key, k); err != nil {
			return fmt.Errorf("write Safe queue state of chain %s: %w", p.opts.Chain, err)
		}
		delete(delivered, k)
		delete(p.unclear, k)
		p.log.Info("queued Safe transaction settled", "wallet", s.Name, "nonce", t.Nonce, "safe_tx_hash", k, "status", ev.Status, "tx", ex.tx.Hex())
	}
	return nil
}

// proof is an execution the chain confirmed.
type proof struct {
	execution
	tx common.Hash
}

// taker finds the transaction that used t's nonce: the computed safeTxHash
// of a transaction the service shows executed at that nonce whose receipt
// logs it. "" when none is proven.
func (p *Poller) taker(ctx context.Context, s Safe, c chainState, t tracked, txs []Tx) (string, proof, error) {
	versions := []string{t.Version}
	if c.version != t.Version {
		versions = append(versions, c.version)
	}
	for _, tx := range txs {
		if !tx.Executed || tx.TxHash == nil {
			continue
		}
		execs, err := p.chain.executions(ctx, s.Address, *tx.TxHash)
		if errors.Is(err, ethereum.NotFound) {
			continue // the service names a transaction the chain does not have
		}
		if err != nil {
			return "", proof{}, err
		}
		for _, v := range versions {
			h, err := safe.Hash(c.chainID, s.Address, v, tx.Payload)
			if err != nil {
				continue
			}
			for _, e := range execs {
				if e.hash == h {
					return h.Hex(), proof{execution: e, tx: *tx.TxHash}, nil
				}
			}
		}
	}
	return "", proof{}, nil
}

// watchFailures calls Failing when a Safe's polls have failed for
// FailingAfter, and again when one succeeds after that.
func (p *Poller) watchFailures(ctx context.Context, s Safe, err error) {
	id := s.Address.Hex()
	f := p.failing[id]
	now := p.opts.Now()
	if err == nil {
		if f != nil && f.alarmed && p.opts.Failing != nil {
			if aerr := p.opts.Failing(ctx, Failure{Safe: s.Name, Address: s.Address, Since: f.since, Over: true}); aerr != nil {
				p.log.Error("cannot raise the end of a Safe queue failure", "wallet", s.Name, "err", aerr)
				return // try again at the next success
			}
		}
		delete(p.failing, id)
		return
	}
	if f == nil {
		f = &failure{since: now}
		p.failing[id] = f
	}
	if f.alarmed || now.Sub(f.since) < p.opts.FailingAfter || p.opts.Failing == nil {
		return
	}
	if aerr := p.opts.Failing(ctx, Failure{Safe: s.Name, Address: s.Address, Since: f.since, Err: err.Error()}); aerr != nil {
		p.log.Error("cannot raise a Safe queue failure", "wallet", s.Name, "err", aerr)
		return
	}
	f.alarmed = true
}
