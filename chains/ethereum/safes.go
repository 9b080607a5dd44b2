package ethereum

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
)

// This file decodes the logs of watched Safes (wallets[].account: safe):
// each execTransaction and execTransactionFromModule is an event of kind
// execution, each owner, threshold, module, guard, fallback-handler and
// singleton change an admin event whose detail.change says which.
//
// What a multisig execution ran is read, in this order, from:
//   - the transaction's input, when the transaction called the Safe itself;
//   - the SafeMultiSigTransaction (SafeModuleTransaction) log that L2
//     singletons write before each execution;
//   - the node's call traces, when another contract called the Safe (a
//     relayer, a parent Safe, a module): the block's callTracer or
//     trace_block answer, read once for the block's internal movements too
//     (tracesafecalls.go), or Options.SafeCalls when set.
// Each candidate is checked against the safeTxHash the Safe logged
// (computed with safe.Hash over the Safe's version and the chain id, both
// read once); a module execution is matched by its module. An execution no
// candidate explains is still an event, with no operation and
// detail.unresolved saying why: the delegatecall detector judges it as a
// possible delegatecall (fail closed).

// SafeCalls finds the calls made to an address inside a transaction, from
// call traces. The Source reads them from the block's own trace
// (Options.Traces); a SafeCalls set in Options replaces that reader.
type SafeCalls interface {
	// CallsTo returns, in the order they were made, the caller and input of
	// each CALL (not DELEGATECALL or STATICCALL) to addr inside transaction
	// tx of block, the outermost call included.
	CallsTo(ctx context.Context, block, tx common.Hash, addr common.Address) ([]TracedCall, error)
}

// TracedCall is one call a trace shows.
type TracedCall struct {
	From  common.Address
	Input []byte
}

// codeReader reads an account's code.
type codeReader interface {
	CodeAt(ctx context.Context, account common.Address, block *big.Int) ([]byte, error)
}

// CodeAt returns the code at an address.
func (p *Pool) CodeAt(ctx context.Context, a common.Address, block *big.Int) ([]byte, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) ([]byte, error) { return c.CodeAt(ctx, a, block) })
}

// safeWatch is what a Source knows of its Safes: their addresses, and the
// chain id and each Safe's version, read once.
type safeWatch struct {
	addrs []common.Address
	is    map[common.Address]bool

	mu       sync.Mutex
	chainID  *big.Int
	versions map[common.Address]string
}

func newSafeWatch(wallets []Wallet) *safeWatch {
	w := &safeWatch{is: map[common.Address]bool{}, versions: map[common.Address]string{}}
	for _, wl := range wallets {
		if wl.Safe && !w.is[wl.Address] {
			w.is[wl.Address] = true
			w.addrs = append(w.addrs, wl.Address)
		}
	}
	return w
}

// safeTopics are the topics of every Safe log the decoder reads.
var safeTopics = func() map[common.Hash]bool {
	m := map[common.Hash]bool{}
	for _, t := range safe.Topics() {
		m[t] = true
	}
	return m
}()

// isSafeLog reports whether l is a log of a watched Safe that the Safe
// decoder reads.
func (s *Source) isSafeLog(l types.Log) bool {
	return s.safes.is[l.Address] && len(l.Topics) > 0 && safeTopics[l.Topics[0]]
}

// safeQueries are the log filters of the watched Safes in block hash.
func (s *Source) safeQueries(hash common.Hash) []ethereum.FilterQuery {
	var out []ethereum.FilterQuery
	addrs := s.safes.addrs
	for len(addrs) > 0 {
		n := min(len(addrs), maxTopicsPerQuery)
		out = append(out, ethereum.FilterQuery{BlockHash: &hash, Addresses: addrs[:n], Topics: [][]common.Hash{safe.Topics()}})
		addrs = addrs[n:]
	}
	return out
}

// ErrNotSafe is returned by CheckSafe when the node's answer shows the
// address is not a Safe keywatch reads.
var ErrNotSafe = errors.New("not a Safe")

// SafeInfo is what CheckSafe read.
type SafeInfo struct {
	Version string
	Owners  []common.Address
}

// CheckSafe checks that addr holds a Safe of a version keywatch reads
// (1.1.1 to 1.4.1) with owners: it has code, VERSION() answers a supported
// version and getOwners() a non-empty list. An answer that says otherwise
// is an ErrNotSafe naming what is wrong; a node that does not answer is
// another error (worth retrying).
func CheckSafe(ctx context.Context, client any, addr common.Address) (SafeInfo, error) {
	cc, ok := client.(contractCaller)
	if !ok {
		return SafeInfo{}, errors.New("the node client cannot call contracts")
	}
	if cr, ok := client.(codeReader); ok {
		code, err := cr.CodeAt(ctx, addr, nil)
		if err != nil {
			return SafeInfo{}, fmt.Errorf("read code of %s: %w", lower(addr), err)
		}
		if len(code) == 0 {
			return SafeInfo{}, fmt.Errorf("%w: %s has no contract code (an externally owned account, or nothing deployed there yet)", ErrNotSafe, lower(addr))
		}
	}
	version, err := readVersion(ctx, cc, addr, nil)
	if err != nil {
		return SafeInfo{}, err
	}
	out, err := cc.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: safe.SelectorGetOwners}, nil)
	if err != nil {
		return SafeInfo{}, answered(err, fmt.Sprintf("getOwners() of %s", lower(addr)))
	}
	owners, err := safe.DecodeOwners(out)
	if err != nil {
		return SafeInfo{}, fmt.Errorf("%w: %s: %v", ErrNotSafe, lower(addr), err)
	}
	if len(owners) == 0 {
		return SafeInfo{}, fmt.Errorf("%w: %s: getOwners() lists no owner", ErrNotSafe, lower(addr))
	}
	return SafeInfo{Version: version, Owners: owners}, nil
}

// readVersion calls VERSION() of the Safe at addr, at block (nil: the
// latest), and checks keywatch reads that version.
func readVersion(ctx context.Context, cc contractCaller, addr common.Address, block *big.Int) (string, error) {
	out, err := cc.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: safe.SelectorVersion}, block)
	if err != nil {
		return "", answered(err, fmt.Sprintf("VERSION() of %s", lower(addr)))
	}
	if len(out) == 0 {
		return "", fmt.Errorf("%w: %s: VERSION() returned nothing (no code, or a contract without it)", ErrNotSafe, lower(addr))
	}
	v, err := safe.DecodeVersion(out)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrNotSafe, lower(addr), err)
	}
	if !safe.Supported(v) {
		return "", fmt.Errorf("%w: %s: VERSION() is %q; keywatch reads Safes 1.1.1 to 1.4.1", ErrNotSafe, lower(addr), v)
	}
	return v, nil
}

// answered wraps a failed call: one the node answered (a revert) shows the
// contract is not a Safe; any other is the node's failure.
func answered(err error, what string) error {
	var re rpc.Error
	if errors.As(err, &re) {
		return fmt.Errorf("%w: %s failed: %v", ErrNotSafe, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// safeParams returns the chain id and the Safe's version, each read once.
// The version is read at the block before the one decoded (a delegatecall
// that rewrote the singleton in this block leaves that state unchanged),
// then at the block itself (a Safe created in it). A version that cannot be
// read is no reason to stop reading the chain (a Safe taken over answers
// no VERSION() any more): versionErr says why, and the logged safeTxHash
// decides between the two EIP-712 domains instead. err is for the chain id,
// which only a failing node withholds.
func (s *Source) safeParams(ctx context.Context, addr common.Address, block uint64) (id *big.Int, version, versionErr string, err error) {
	s.safes.mu.Lock()
	id, version = s.safes.chainID, s.safes.versions[addr]
	s.safes.mu.Unlock()
	if id == nil {
		if id, err = s.client.ChainID(ctx); err != nil {
			return nil, "", "", fmt.Errorf("read chain id: %w", err)
		}
		s.safes.mu.Lock()
		s.safes.chainID = id
		s.safes.mu.Unlock()
	}
	if version != "" {
		return id, version, "", nil
	}
	cc, ok := s.client.(contractCaller)
	if !ok {
		return id, "", "the node client cannot call contracts", nil
	}
	var verr error
	for _, at := range []*big.Int{new(big.Int).SetUint64(max(block, 1) - 1), new(big.Int).SetUint64(block)} {
		if version, verr = readVersion(ctx, cc, addr, at); verr == nil {
			break
		}
	}
	if verr != nil {
		return id, "", verr.Error(), nil
	}
	s.safes.mu.Lock()
	s.safes.versions[addr] = version
	s.safes.mu.Unlock()
	return id, version, "", nil
}

// domains are the versions whose EIP-712 domains a safeTxHash is checked
// against: the Safe's, or when it is unknown one of each form (1.3.0 on
// with the chain id, before without).
func domains(version string) []string {
	if version != "" {
		return []string{version}
	}
	return []string{"1.3.0", "1.1.1"}
}

// safeLog is one decoded log of a watched Safe.
type safeLog struct {
	log    types.Log
	change *safe.Change
	exec   *safe.Execution
	l2     *safe.Params
}

// safeEvents decodes the watched Safes' logs among logs (the block's
// filtered logs); senders holds each transaction's sender.
func (s *Source) safeEvents(ctx context.Context, base chains.Event, block *types.Block, logs []types.Log, senders map[common.Hash]common.Address) ([]chains.Event, error) {
	byTx := map[common.Hash][]safeLog{}
	var order []common.Hash
	execsInBlock := map[common.Address]int{}
	for _, l := range logs {
		if l.Removed || !s.isSafeLog(l) {
			continue
		}
		sl := safeLog{log: l}
		if c, ok := safe.DecodeChange(&l); ok {
			sl.change = &c
		} else if e, ok := safe.DecodeExecution(&l); ok {
			sl.exec = &e
			if !e.FromModule {
				execsInBlock[l.Address]++
			}
		} else if p, ok := safe.DecodeL2Log(&l); ok {
			sl.l2 = &p
		} else {
			continue // a known topic in a shape no Safe version logs
		}
		if _, seen := byTx[l.TxHash]; !seen {
			order = append(order, l.TxHash)
		}
		byTx[l.TxHash] = append(byTx[l.TxHash], sl)
	}
	if len(order) == 0 {
		return nil, nil
	}
	r := &safeBlock{s: s, block: block, execs: execsInBlock, nonces: map[common.Address]*big.Int{}}
	var out []chains.Event
	for _, txHash := range order {
		sls := byTx[txHash]
		sort.Slice(sls, func(i, j int) bool { return sls[i].log.Index < sls[j].log.Index })
		evs, err := r.tx(ctx, base, block.Transaction(txHash), txHash, senders[txHash], sls)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// safeBlock decodes the Safe logs of one block.
type safeBlock struct {
	s     *Source
	block *types.Block
	execs map[common.Address]int // multisig executions of each Safe in the block
	// nonces: each Safe's nonce at the end of the block before (nil: not
	// read, or could not be).
	nonces map[common.Address]*big.Int
}

// candidate is a possible source of an execution's parameters.
type candidate struct {
	params safe.Params
	from   common.Address // the caller (module executions)
	source string         // input, l2-event or traces
	used   bool
	// unverified says why the candidate was taken without matching the
	// logged safeTxHash.
	unverified string
}

// tx decodes the Safe logs of one transaction.
func (r *safeBlock) tx(ctx context.Context, base chains.Event, tx *types.Transaction, txHash common.Hash, sender common.Address, sls []safeLog) ([]chains.Event, error) {
	s := r.s
	base.Tx = txHash.Hex()
	base.Initiator = lower(sender)
	// Candidates for each Safe: the transaction's own input, then the L2
	// logs in their order.
	cands := map[common.Address][]*candidate{}
	if tx != nil && tx.To() != nil && s.safes.is[*tx.To()] {
		if p, err := safe.DecodeCall(tx.Data()); err == nil {
			cands[*tx.To()] = append(cands[*tx.To()], &candidate{params: p, from: sender, source: "input"})
		}
	}
	for _, sl := range sls {
		if sl.l2 != nil {
			cands[sl.log.Address] = append(cands[sl.log.Address], &candidate{params: *sl.l2, from: sl.l2.Module, source: "l2-event"})
		}
	}
	traced := map[common.Address]bool{}
	multisig := map[common.Address]int{} // multisig executions of each Safe in this transaction
	for _, sl := range sls {
		if sl.exec != nil && !sl.exec.FromModule {
			multisig[sl.log.Address]++
		}
	}
	var out []chains.Event
	execEvents := map[uint]int{} // log index -> index in out
	for _, sl := range sls {
		if sl.exec == nil {
			continue
		}
		addr := sl.log.Address
		chainID, version, versionErr, err := s.safeParams(ctx, addr, r.block.NumberU64())
		if err != nil {
			return nil, fmt.Errorf("safe %s in tx %s: %w", lower(addr), txHash.Hex(), err)
		}
		alone := multisig[addr] == 1
		c, nonce, why := r.match(ctx, chainID, version, addr, *sl.exec, cands[addr], alone)
		if c == nil && !traced[addr] {
			traced[addr] = true
			calls, whyNot, err := s.safeCallsIn(ctx, r.block, txHash, addr) // tracesafecalls.go
			if err != nil {
				return nil, fmt.Errorf("traced calls to safe %s in tx %s: %w", lower(addr), txHash.Hex(), err)
			}
			for _, tc := range calls {
				if p, err := safe.DecodeCall(tc.Input); err == nil {
					cands[addr] = append(cands[addr], &candidate{params: p, from: tc.From, source: "traces"})
				}
			}
			c, nonce, why = r.match(ctx, chainID, version, addr, *sl.exec, cands[addr], alone)
			if c == nil && why == "" {
				why = whyNot
			}
		}
		ev := s.executionEvent(base, sl, version, c, nonce, why)
		if versionErr != "" {
			ev.Detail["version_error"] = versionErr
		}
		execEvents[sl.log.Index] = len(out)
		out = append(out, ev)
	}
	for _, sl := range sls {
		if sl.change == nil {
			continue
		}
		// The change ran inside the next execution the same Safe logged:
		// its signers authorised it.
		var exec *chains.Event
		for _, x := range sls {
			if x.exec != nil && x.log.Address == sl.log.Address && x.log.Index > sl.log.Index {
				exec = &out[execEvents[x.log.Index]]
				break
			}
		}
		out = append(out, s.safeAdminEvent(base, sl, exec))
	}
	return out, nil
}

// match finds the candidate that explains an execution log, and the
// multisig transaction's nonce (nil when it cannot be told). why says what
// is missing when none does. alone says the execution is the Safe's only
// multisig execution in its transaction: then the transaction's own input
// is taken when the nonce to check it with cannot be read (state the node
// no longer keeps), marked unverified, rather than leaving it unresolved.
func (r *safeBlock) match(ctx context.Context, chainID *big.Int, version string, addr common.Address, e safe.Execution, cands []*candidate, alone bool) (*candidate, *big.Int, string) {
	if e.FromModule {
		for _, c := range cands {
			if !c.used && c.params.FromModule && c.from == e.Module {
				c.used = true
				return c, nil, ""
			}
		}
		return nil, nil, ""
	}
	var noNonce []*candidate
	for _, c := range cands {
		if c.used || c.params.FromModule {
			continue
		}
		if c.params.NonceKnown {
			for _, v := range domains(version) {
				if h, err := safe.Hash(chainID, addr, v, c.params.Tx); err == nil && h == e.TxHash {
					c.used = true
					return c, c.params.Tx.Nonce, ""
				}
			}
			continue
		}
		noNonce = append(noNonce, c)
	}
	if len(noNonce) == 0 {
		return nil, nil, ""
	}
	// The input carries no nonce: the execution's is the Safe's nonce
	// before the block plus the multisig executions before it in the block.
	start, err := r.nonceBefore(ctx, addr)
	if err != nil {
		why := fmt.Sprintf("the Safe's nonce before block %d cannot be read (%v), so its input cannot be checked against the logged safeTxHash", r.block.NumberU64(), err)
		for _, c := range noNonce {
			if alone && c.source == "input" {
				c.used = true
				c.unverified = why
				return c, nil, ""
			}
		}
		return nil, nil, why
	}
	for _, c := range noNonce {
		for i := 0; i <= r.execs[addr]; i++ {
			tx := c.params.Tx
			tx.Nonce = new(big.Int).Add(start, big.NewInt(int64(i)))
			for _, v := range domains(version) {
				if h, err := safe.Hash(chainID, addr, v, tx); err == nil && h == e.TxHash {
					c.used = true
					c.params.Tx = tx
					return c, tx.Nonce, ""
				}
			}
		}
	}
	return nil, nil, ""
}

// nonceBefore reads the Safe's nonce at the end of the block before.
func (r *safeBlock) nonceBefore(ctx context.Context, addr common.Address) (*big.Int, error) {
	if n := r.nonces[addr]; n != nil {
		return n, nil
	}
	cc, ok := r.s.client.(contractCaller)
	if !ok {
		return nil, errors.New("the node client cannot call contracts")
	}
	if r.block.NumberU64() == 0 {
		return new(big.Int), nil
	}
	out, err := cc.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: safe.SelectorNonce}, new(big.Int).SetUint64(r.block.NumberU64()-1))
	if err != nil {
		return nil, err
	}
	n, err := safe.DecodeNonce(out)
	if err != nil {
		return nil, err
	}
	r.nonces[addr] = n
	return n, nil
}

// executionEvent makes the execution event of one execution log; c is the
// candidate that explains it (nil when none does, why saying why).
func (s *Source) executionEvent(base chains.Event, sl safeLog, version string, c *candidate, nonce *big.Int, why string) chains.Event {
	addr, e := sl.log.Address, sl.exec
	ev := base
	ev.ID = chains.EventID(s.opts.Chain, base.Tx, sl.log.Index)
	ev.Kind = chains.KindExecution
	ev.From = lower(addr)
	ev.Asset = s.opts.NativeSymbol
	ev.Amount = chains.NewAmount(new(big.Int), 18)
	ev.Detail = map[string]string{
		"event":    e.Event,
		"contract": lower(addr),
		"success":  fmt.Sprint(e.Success),
	}
	if version != "" {
		ev.Detail["version"] = version
	}
	if e.FromModule {
		ev.Module = lower(e.Module)
	} else {
		ev.Detail["safe_tx_hash"] = e.TxHash.Hex()
	}
	w := s.wallets[addr]
	ev = s.attribute(ev, w, chains.Out, common.Address{})
	ev.Counterparty = ""
	if c == nil {
		if why == "" {
			why = "no transaction input, L2 event or traced call matches it"
		}
		ev.Detail["unresolved"] = why
		return ev
	}
	tx := c.params.Tx
	ev.Detail["source"] = c.source
	if c.unverified != "" {
		ev.Detail["unverified"] = c.unverified
	}
	ev.Operation = tx.Operation.String()
	ev.Target, ev.To, ev.Counterparty = lower(tx.To), lower(tx.To), lower(tx.To)
	value := tx.Value
	if value == nil {
		value = new(big.Int)
	}
	ev.Value = value.String()
	ev.Amount = chains.NewAmount(value, 18)
	ev.USD = ev.Amount.Float64() * s.opts.NativeUSD
	if len(tx.Data) >= 4 {
		ev.Selector = "0x" + hex.EncodeToString(tx.Data[:4])
	}
	if nonce != nil && nonce.IsUint64() {
		n := nonce.Uint64()
		ev.SafeNonce = &n
	}
	if !e.FromModule {
		signers, err := safe.Signers(e.TxHash, c.params.Signatures)
		if err != nil {
			ev.Detail["signers_error"] = err.Error()
		}
		for _, a := range signers {
			ev.Signers = append(ev.Signers, lower(a))
		}
		s.attributeSigners(&ev)
	}
	return ev
}

// attributeSigners gives an execution whose signers include a watched
// employee key that key's owner (so off-hours and rules judge the person
// who signed), and names the watched signers in detail.signer_wallets.
func (s *Source) attributeSigners(ev *chains.Event) {
	var names []string
	owner := ""
	for _, a := range ev.Signers {
		w, ok := s.wallets[common.HexToAddress(a)]
		if !ok {
			continue
		}
		names = append(names, w.Name)
		if owner == "" && w.Role == "employee-key" && w.Owner != "" {
			owner = w.Owner
		}
	}
	if owner != "" {
		ev.Owner = owner
	}
	if len(names) > 0 {
		ev.Detail["signer_wallets"] = strings.Join(names, ",")
	}
}

// safeAdminEvent makes the admin event of one change log; exec is the
// execution that made the change, when the Safe logged one after it.
func (s *Source) safeAdminEvent(base chains.Event, sl safeLog, exec *chains.Event) chains.Event {
	addr, c := sl.log.Address, sl.change
	ev := base
	ev.ID = chains.EventID(s.opts.Chain, base.Tx, sl.log.Index)
	ev.Kind = chains.KindAdmin
	ev.From = lower(addr)
	ev.Amount = chains.NewAmount(new(big.Int), 0)
	ev.Detail = map[string]string{
		chains.DetailChange: c.Change,
		"event":             c.Event,
		"contract":          lower(addr),
		c.Arg:               c.Value,
	}
	gains := addr
	if c.Arg != "threshold" {
		gains = common.HexToAddress(c.Value)
	}
	ev = s.attribute(ev, s.wallets[addr], chains.Out, gains)
	ev.To = lower(gains)
	if exec != nil {
		ev.Signers, ev.Module, ev.SafeNonce = exec.Signers, exec.Module, exec.SafeNonce
		if exec.Owner != "" {
			ev.Owner = exec.Owner
		}
		if n := exec.Detail["signer_wallets"]; n != "" {
			ev.Detail["signer_wallets"] = n
		}
	}
	return ev
}
