package safequeue

// Decoding the service's JSON field by field, so that a field of the wrong
// type is an error naming it (results[3].nonce: want a non-negative
// integer, got true). Fields the poller does not read are ignored: the
// service adds fields over time.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
)

// parse reads a response body in one pass, numbers kept as written
// (json.Number), for the readers below.
func parse(body []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, errors.New("not JSON")
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("not JSON (more than one value)")
	}
	return v, nil
}

// object reads the fields of one JSON object; the first problem is kept.
type object struct {
	path   string
	fields map[string]any
	err    error
}

// newObject reads v as a JSON object named path ("" for the document).
func newObject(path string, v any) *object {
	o := &object{path: path}
	if m, ok := v.(map[string]any); ok {
		o.fields = m
	} else {
		o.fail("", "want an object, got %s", kindOf(v))
	}
	return o
}

func (o *object) name(field string) string {
	switch {
	case o.path == "":
		return field
	case field == "":
		return o.path
	}
	return o.path + "." + field
}

func (o *object) fail(field, format string, args ...any) {
	if o.err == nil {
		o.err = fmt.Errorf("%s: %s", o.name(field), fmt.Sprintf(format, args...))
	}
}

// value is a field's value, nil when it is absent or null. A required one
// that is absent or null is an error.
func (o *object) value(field string, required bool) any {
	v, ok := o.fields[field]
	if ok && v != nil {
		return v
	}
	if required && o.fields != nil {
		if ok {
			o.fail(field, "must not be null")
		} else {
			o.fail(field, "missing")
		}
	}
	return nil
}

// quantity reads a non-negative integer of at most bits bits, as a JSON
// number or a string of decimal digits (the service sends uint256 values as
// strings, and nonce and the gas fields as numbers in v1, strings in v2).
func (o *object) quantity(field string, required bool, bits int) *big.Int {
	v := o.value(field, required)
	if v == nil {
		return nil
	}
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = t
	}
	n, ok := new(big.Int), false
	if s != "" && len(s) <= 80 && strings.TrimLeft(s, "0123456789") == "" {
		_, ok = n.SetString(s, 10)
	}
	if !ok {
		o.fail(field, "want a non-negative integer, got %s", abbreviate(v))
		return nil
	}
	if n.BitLen() > bits {
		o.fail(field, "%s is over %d bits", abbreviate(v), bits)
		return nil
	}
	return n
}

// uint64 reads a quantity that fits in 64 bits.
func (o *object) uint64(field string, required bool) (uint64, bool) {
	n := o.quantity(field, required, 64)
	if n == nil {
		return 0, false
	}
	return n.Uint64(), true
}

func (o *object) str(field string, required bool) (string, bool) {
	v := o.value(field, required)
	if v == nil {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		o.fail(field, "want a string, got %s", kindOf(v))
		return "", false
	}
	return s, true
}

func (o *object) address(field string, required bool) (common.Address, bool) {
	s, ok := o.str(field, required)
	if !ok {
		return common.Address{}, false
	}
	a, ok := parseAddress(s)
	if !ok {
		o.fail(field, "%s is not an address", abbreviate(s))
	}
	return a, ok
}

func parseAddress(s string) (common.Address, bool) {
	if !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
		return common.Address{}, false
	}
	return common.HexToAddress(s), true
}

func (o *object) hash(field string, required bool) (common.Hash, bool) {
	s, ok := o.str(field, required)
	if !ok {
		return common.Hash{}, false
	}
	b, err := hexutil.Decode(s)
	if err != nil || len(b) != common.HashLength {
		o.fail(field, "%s is not a 32-byte 0x hex hash", abbreviate(s))
		return common.Hash{}, false
	}
	return common.BytesToHash(b), true
}

// hexBytes reads 0x hex ("0x" for none).
func (o *object) hexBytes(field string, required bool) []byte {
	s, ok := o.str(field, required)
	if !ok {
		return nil
	}
	if s == "0x" {
		return []byte{}
	}
	b, err := hexutil.Decode(s)
	if err != nil {
		o.fail(field, "%s is not 0x hex bytes", abbreviate(s))
		return nil
	}
	return b
}

func (o *object) boolean(field string, required bool) (bool, bool) {
	v := o.value(field, required)
	if v == nil {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		o.fail(field, "want true or false, got %s", abbreviate(v))
	}
	return b, ok
}

// array reads a JSON array (nil for an absent or null field).
func (o *object) array(field string, required bool) []any {
	v := o.value(field, required)
	if v == nil {
		return nil
	}
	items, ok := v.([]any)
	if !ok {
		o.fail(field, "want an array, got %s", kindOf(v))
		return nil
	}
	if items == nil {
		items = []any{}
	}
	return items
}

// kindOf names the JSON type of v, for errors.
func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

// abbreviate writes v as JSON, kept short whatever the service sent.
func abbreviate(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return kindOf(v)
	}
	const most = 40
	if len(b) > most {
		return string(b[:most]) + "…"
	}
	return string(b)
}

// page is one page of a paginated listing: {"count", "next", "previous",
// "results"}.
type page struct {
	count   uint64
	next    string // "" on the last page
	results []any
}

// document reads a response body as a JSON object.
func document(body []byte) (*object, error) {
	v, err := parse(body)
	if err != nil {
		return nil, err
	}
	return newObject("", v), nil
}

func decodePage(body []byte) (page, error) {
	o, err := document(body)
	if err != nil {
		return page{}, err
	}
	var p page
	p.count, _ = o.uint64("count", true)
	p.next, _ = o.str("next", false)
	o.str("previous", false)
	p.results = o.array("results", true)
	if o.err == nil && p.results == nil {
		o.fail("results", "missing")
	}
	return p, o.err
}

// decodeTx reads one result of the multisig-transactions listing, as
// SafeMultisigTransactionResponseSerializer writes it.
func decodeTx(path string, raw any) (Tx, error) {
	o := newObject(path, raw)
	var tx Tx
	tx.Safe, _ = o.address("safe", true)
	tx.Payload.To, _ = o.address("to", true)
	tx.Payload.Value = o.quantity("value", true, 256)
	tx.Payload.Data = o.hexBytes("data", false)
	if op, ok := o.uint64("operation", true); ok {
		if op > uint64(safe.DelegateCall) {
			o.fail("operation", "%d is neither 0 (call) nor 1 (delegatecall)", op)
		}
		tx.Payload.Operation = safe.Operation(op)
	}
	tx.Payload.GasToken, _ = o.address("gasToken", false)
	tx.Payload.SafeTxGas = o.quantity("safeTxGas", true, 256)
	tx.Payload.BaseGas = o.quantity("baseGas", true, 256)
	tx.Payload.GasPrice = o.quantity("gasPrice", true, 256)
	tx.Payload.RefundReceiver, _ = o.address("refundReceiver", false)
	tx.Nonce, _ = o.uint64("nonce", true)
	tx.Payload.Nonce = new(big.Int).SetUint64(tx.Nonce)
	tx.Hash, _ = o.hash("safeTxHash", true)
	tx.Executed, _ = o.boolean("isExecuted", true)
	if h, ok := o.hash("transactionHash", false); ok {
		tx.TxHash = &h
	}
	if b, ok := o.uint64("blockNumber", false); ok {
		tx.Block = &b
	}
	if p, ok := o.address("proposer", false); ok {
		tx.Proposer = &p
	}
	tx.Required, _ = o.uint64("confirmationsRequired", false)
	if raw := o.value("dataDecoded", false); raw != nil {
		d := newObject(o.name("dataDecoded"), raw)
		tx.Method, _ = d.str("method", false)
		if o.err == nil {
			o.err = d.err
		}
	}
	for i, c := range o.array("confirmations", false) {
		co := newObject(fmt.Sprintf("%s[%d]", o.name("confirmations"), i), c)
		var cf Confirmation
		cf.Owner, _ = co.address("owner", true)
		cf.Signature = co.hexBytes("signature", false)
		cf.Type, _ = co.str("signatureType", false)
		if co.err != nil {
			if o.err == nil {
				o.err = co.err
			}
			break
		}
		tx.Confirmations = append(tx.Confirmations, cf)
	}
	return tx, o.err
}

// decodeInfo reads GET /api/v1/safes/{address}/ (SafeInfoResponseSerializer:
// nonce is a string in the current service, a number in older ones).
func decodeInfo(body []byte) (Info, error) {
	o, err := document(body)
	if err != nil {
		return Info{}, err
	}
	var info Info
	info.Address, _ = o.address("address", true)
	info.Nonce, _ = o.uint64("nonce", true)
	info.Threshold, _ = o.uint64("threshold", true)
	for i, raw := range o.array("owners", false) {
		s, _ := raw.(string)
		a, ok := parseAddress(s)
		if !ok {
			o.fail(fmt.Sprintf("owners[%d]", i), "%s is not an address", abbreviate(raw))
			break
		}
		info.Owners = append(info.Owners, a)
	}
	info.Version, _ = o.str("version", false)
	return info, o.err
}
