// Package safeservice is a Safe Transaction Service over httptest for
// tests, serving the JSON the real one
// serves (safe-global/safe-transaction-service, history/views.py and
// serializers.py): v1 multisig-transactions with its filters (nonce,
// nonce__gte, trusted, executed), ordering and limit/offset pagination with absolute
// next and previous links, camelCase fields, and safes/{address}/ info.
// Addresses in paths must be checksummed, as the real service demands.
package safeservice

import (
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
)

type Server struct {
	t      testing.TB
	srv    *httptest.Server
	prefix string // path of the base URL

	mu       sync.Mutex
	records  map[common.Address][]map[string]any
	info     map[common.Address]map[string]any
	requests []*url.URL
	// override, when set, answers a request instead (return false to let
	// the service answer).
	override func(w http.ResponseWriter, r *http.Request) bool
}

func New(t testing.TB, prefix string) *Server {
	f := &Server{t: t, prefix: prefix, records: map[common.Address][]map[string]any{}, info: map[common.Address]map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL keywatch is configured with.
func (f *Server) URL() string { return f.srv.URL + f.prefix }

func (f *Server) SetOverride(fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override = fn
}

// listings are the multisig-transactions requests served so far.
func (f *Server) Listings() []*url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*url.URL
	for _, u := range f.requests {
		if strings.HasSuffix(u.Path, "/multisig-transactions/") {
			out = append(out, u)
		}
	}
	return out
}

func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL)
	override := f.override
	f.mu.Unlock()
	if override != nil && override(w, r) {
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, f.prefix+"/api/v1/safes/")
	if !ok || r.Method != http.MethodGet {
		WriteJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	addr, endpoint, _ := strings.Cut(rest, "/")
	if !common.IsHexAddress(addr) || common.HexToAddress(addr).Hex() != addr {
		WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{"code": 1, "message": "Checksum address validation failed", "arguments": []string{addr}})
		return
	}
	a := common.HexToAddress(addr)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch endpoint {
	case "":
		info, ok := f.info[a]
		if !ok {
			WriteJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
			return
		}
		WriteJSON(w, http.StatusOK, info)
	case "multisig-transactions/":
		f.list(w, r, a)
	default:
		WriteJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
	}
}

// list is SafeMultisigTransactionListView.get: filters, ordering, then
// DRF's LimitOffsetPagination (default limit 100, max 200).
func (f *Server) list(w http.ResponseWriter, r *http.Request, a common.Address) {
	q := r.URL.Query()
	var rows []map[string]any
	onlyTrusted := q.Get("trusted") != "false" && q.Get("trusted") != "False"
	for _, rec := range f.records[a] {
		if onlyTrusted && rec["trusted"] != true {
			continue
		}
		if s := q.Get("nonce__gte"); s != "" {
			n, _ := strconv.ParseUint(s, 10, 64)
			if recNonce(rec) < n {
				continue
			}
		}
		if s := q.Get("nonce"); s != "" {
			n, _ := strconv.ParseUint(s, 10, 64)
			if recNonce(rec) != n {
				continue
			}
		}
		if s := q.Get("executed"); s != "" && (rec["isExecuted"] == true) != (s == "true" || s == "True") {
			continue
		}
		rows = append(rows, rec)
	}
	asc := q.Get("ordering") == "nonce"
	sort.SliceStable(rows, func(i, j int) bool {
		if asc {
			return recNonce(rows[i]) < recNonce(rows[j])
		}
		return recNonce(rows[i]) > recNonce(rows[j])
	})
	limit, offset := 100, 0
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		limit = min(n, 200)
	}
	if n, err := strconv.Atoi(q.Get("offset")); err == nil && n > 0 {
		offset = n
	}
	end := min(offset+limit, len(rows))
	page := []map[string]any{}
	if offset < len(rows) {
		page = rows[offset:end]
	}
	link := func(off int) any {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		v := r.URL.Query()
		v.Set("limit", strconv.Itoa(limit))
		if off > 0 {
			v.Set("offset", strconv.Itoa(off))
		} else {
			v.Del("offset")
		}
		u.RawQuery = v.Encode()
		return u.String()
	}
	var next, prev any
	if end < len(rows) {
		next = link(end)
	}
	if offset > 0 {
		prev = link(max(offset-limit, 0))
	}
	nonces := map[uint64]bool{}
	for _, rec := range f.records[a] {
		nonces[recNonce(rec)] = true
	}
	WriteJSON(w, http.StatusOK, map[string]any{"count": len(rows), "next": next, "previous": prev, "results": page, "countUniqueNonce": len(nonces)})
}

func recNonce(rec map[string]any) uint64 {
	switch n := rec["nonce"].(type) {
	case float64:
		return uint64(n)
	case int:
		return uint64(n)
	case uint64:
		return n
	case json.Number:
		v, _ := strconv.ParseUint(n.String(), 10, 64)
		return v
	case string:
		v, _ := strconv.ParseUint(n, 10, 64)
		return v
	}
	return 0
}

// add puts records (as the serializer writes them) in a Safe's history.
func (f *Server) Add(a common.Address, recs ...map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[a] = append(f.records[a], recs...)
}

// setInfo is what GET /api/v1/safes/{address}/ answers.
func (f *Server) SetInfo(a common.Address, nonce uint64, threshold int, owners []common.Address, version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	os := make([]string, len(owners))
	for i, o := range owners {
		os[i] = o.Hex()
	}
	zero := common.Address{}.Hex()
	f.info[a] = map[string]any{"address": a.Hex(), "nonce": strconv.FormatUint(nonce, 10), "threshold": threshold, "owners": os,
		"masterCopy": "0xd9Db270c1B5E3Bd161E8c8503c55cEABeE709552", "modules": []string{}, "fallbackHandler": "0xf48f2B2d2a534e402487b3ee7C18c33Aec0Fe5e4",
		"guard": zero, "moduleGuard": zero, "version": version}
}

// markExecuted records, as the service's indexer does, that the record with
// safeTxHash hash was executed by transaction tx in block.
func (f *Server) MarkExecuted(a common.Address, hash common.Hash, tx common.Hash, block uint64, executor common.Address) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rec := range f.records[a] {
		if rec["safeTxHash"] == hash.Hex() {
			rec["isExecuted"], rec["isSuccessful"] = true, true
			rec["transactionHash"], rec["blockNumber"] = tx.Hex(), block
			rec["executor"], rec["executionDate"] = executor.Hex(), "2026-03-02T10:31:00Z"
			return
		}
	}
	f.t.Fatalf("no record %s", hash.Hex())
}

// proposal is a multisig transaction as an owner proposes it.
type Proposal struct {
	To      common.Address
	Value   *big.Int
	Data    []byte
	Op      safe.Operation
	Nonce   uint64
	Signers []*ecdsa.PrivateKey // EOA signatures over the true safeTxHash
	// shown, when set, is the safeTxHash the service shows instead of the
	// true one (a tampered service or front end).
	Shown       *common.Hash
	DataDecoded any
	Untrusted   bool
}

// record is the proposal as SafeMultisigTransactionResponseSerializer (v1)
// writes it, not yet executed, and its true safeTxHash.
func Record(t testing.TB, safeAddr common.Address, chainID *big.Int, version string, p Proposal) (map[string]any, common.Hash) {
	t.Helper()
	if p.Value == nil {
		p.Value = new(big.Int)
	}
	tx := safe.Tx{To: p.To, Value: p.Value, Data: p.Data, Operation: p.Op, SafeTxGas: new(big.Int), BaseGas: new(big.Int),
		GasPrice: new(big.Int), Nonce: new(big.Int).SetUint64(p.Nonce)}
	hash, err := safe.Hash(chainID, safeAddr, version, tx)
	if err != nil {
		t.Fatal(err)
	}
	shown := hash
	if p.Shown != nil {
		shown = *p.Shown
	}
	var confirmations []map[string]any
	var sigs []byte
	for _, k := range p.Signers {
		sig, err := crypto.Sign(hash[:], k)
		if err != nil {
			t.Fatal(err)
		}
		sig[64] += 27
		sigs = append(sigs, sig...)
		confirmations = append(confirmations, map[string]any{
			"owner": crypto.PubkeyToAddress(k.PublicKey).Hex(), "submissionDate": "2026-03-02T10:00:00.123456Z",
			"transactionHash": nil, "signature": hexutil.Encode(sig), "signatureType": "EOA",
		})
	}
	var data any
	if len(p.Data) > 0 {
		data = hexutil.Encode(p.Data)
	}
	var proposer any
	if len(p.Signers) > 0 {
		proposer = crypto.PubkeyToAddress(p.Signers[0].PublicKey).Hex()
	}
	var signatures any
	if len(sigs) > 0 {
		signatures = hexutil.Encode(sigs)
	}
	zero := common.Address{}.Hex()
	return map[string]any{
		"safe": safeAddr.Hex(), "to": p.To.Hex(), "value": p.Value.String(), "data": data, "operation": int(p.Op),
		"gasToken": zero, "safeTxGas": 0, "baseGas": 0, "gasPrice": "0", "refundReceiver": zero, "nonce": p.Nonce,
		"executionDate": nil, "submissionDate": "2026-03-02T10:00:00.123456Z", "modified": "2026-03-02T10:00:00.123456Z",
		"blockNumber": nil, "transactionHash": nil, "safeTxHash": shown.Hex(), "proposer": proposer, "proposedByDelegate": nil,
		"executor": nil, "isExecuted": false, "isSuccessful": nil, "ethGasPrice": nil, "maxFeePerGas": nil, "maxPriorityFeePerGas": nil,
		"gasUsed": nil, "fee": nil, "origin": "{}", "dataDecoded": p.DataDecoded, "confirmationsRequired": 3,
		"confirmations": confirmations, "trusted": !p.Untrusted, "signatures": signatures,
	}, hash
}

// multiSendDecoded is dataDecoded as the service writes it for a MultiSend
// delegatecall.
func MultiSendDecoded(inner common.Address) any {
	return map[string]any{"method": "multiSend", "parameters": []any{map[string]any{
		"name": "transactions", "type": "bytes", "value": "0x00",
		"valueDecoded": []any{map[string]any{"operation": 0, "to": inner.Hex(), "value": "0", "data": nil, "dataDecoded": nil}},
	}}}
}

// Update changes a Safe's records in place (a service that changes what it
// shows).
func (f *Server) Update(a common.Address, fn func(recs []map[string]any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.records[a])
}
