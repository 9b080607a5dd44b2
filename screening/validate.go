package screening

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/config"
)

var (
	requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._:@/-]{1,128}$`)
)

// validate checks a request and resolves its wallet and asset. Errors are
// *api.RequestError naming the field: 400 for a malformed value, 404 for a
// chain or wallet keywatch does not know.
func (s *Screener) validate(r Request) (*withdrawal, error) {
	w := &withdrawal{RequestID: strings.TrimSpace(r.RequestID), Chain: r.Chain, Wallet: r.Wallet, RequestedBy: strings.TrimSpace(r.RequestedBy)}
	switch {
	case w.RequestID == "":
		return nil, api.BadField("request_id", "required: the withdrawal system's id for this withdrawal")
	case !requestIDRe.MatchString(w.RequestID):
		return nil, api.BadField("request_id", "want 1 to 128 letters, digits or . _ : @ / -")
	case w.RequestedBy == "":
		return nil, api.BadField("requested_by", "required: who asked for this withdrawal (they may not approve its hold)")
	case len(w.RequestedBy) > 200:
		return nil, api.BadField("requested_by", "longer than 200 characters")
	case r.Chain == "":
		return nil, api.BadField("chain", "required")
	case r.Wallet == "":
		return nil, api.BadField("wallet", "required")
	}
	ch, ok := s.o.Config.Chain(r.Chain)
	if !ok {
		return nil, &api.RequestError{Status: http.StatusNotFound, Field: "chain", Msg: fmt.Sprintf("no chain named %q", r.Chain)}
	}
	wallet, ok := s.o.Config.Wallet(r.Wallet)
	if !ok {
		return nil, &api.RequestError{Status: http.StatusNotFound, Field: "wallet", Msg: fmt.Sprintf("no wallet named %q", r.Wallet)}
	}
	if wallet.Chain != ch.Name {
		return nil, &api.RequestError{Status: http.StatusNotFound, Field: "wallet", Msg: fmt.Sprintf("wallet %s is on chain %s, not %s", wallet.Name, wallet.Chain, ch.Name)}
	}
	w.role, w.owner, w.from = wallet.Role, wallet.Owner, strings.ToLower(wallet.Address)

	to := strings.TrimSpace(r.To)
	switch ch.Kind {
	case "bitcoin":
		// Any network's form of the address: lists match by output script.
		script, err := btcaddr.ScriptOf(to)
		if err != nil || strings.HasPrefix(to, "script:") {
			return nil, api.BadField("to", "%q is not a Bitcoin address", to)
		}
		// The approved intent names it as the chain's watcher writes
		// outputs, so that the outflow reconciles against it.
		if net, err := btcaddr.Network(ch.Network); err == nil {
			to = btcaddr.AddressOf(script, net)
		}
	default:
		if err := config.CheckEVMAddress(to); err != nil {
			return nil, api.BadField("to", "%v", err)
		}
		to = strings.ToLower(to)
	}
	w.To = to

	decimals, price, token, symbol, err := asset(ch, r.Asset)
	if err != nil {
		return nil, err
	}
	w.Asset, w.token = symbol, token
	amt, err := parseAmount(r.Amount, symbol, decimals)
	if err != nil {
		return nil, err
	}
	w.Amount = amt
	w.usd = usdValue(amt, price)
	return w, nil
}

// asset finds a chain's native coin or configured token by symbol.
func asset(ch config.Chain, sym string) (decimals int, price float64, token, symbol string, err error) {
	if sym == "" {
		return 0, 0, "", "", api.BadField("asset", "required")
	}
	native := ch.NativeSymbol
	nativeDecimals := 18
	if ch.Kind == "bitcoin" {
		nativeDecimals = 8
	}
	if strings.EqualFold(sym, native) {
		return nativeDecimals, ch.NativeUSD, "", native, nil
	}
	known := []string{native}
	for _, t := range ch.Tokens {
		if strings.EqualFold(sym, t.Symbol) {
			return t.Decimals, t.USD, strings.ToLower(t.Address), t.Symbol, nil
		}
		known = append(known, t.Symbol)
	}
	return 0, 0, "", "", api.BadField("asset", "%q is not an asset keywatch follows on chain %s (want %s)", sym, ch.Name, strings.Join(known, ", "))
}

// parseAmount reads a positive decimal string (or JSON number) with no more
// decimals than the asset has.
func parseAmount(raw json.RawMessage, symbol string, decimals int) (chains.Amount, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return chains.Amount{}, api.BadField("amount", "required: a decimal string such as \"1.5\"")
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return chains.Amount{}, api.BadField("amount", "want a decimal string such as \"1.5\"")
		}
	} else {
		s = string(raw)
	}
	s = strings.TrimSpace(s)
	if len(s) > 100 {
		return chains.Amount{}, api.BadField("amount", "too long")
	}
	if strings.HasPrefix(s, "-") {
		return chains.Amount{}, api.BadField("amount", "%s is negative: want a positive amount", s)
	}
	a, err := chains.ParseAmount(s)
	if err != nil || strings.Count(s, ".") > 1 || strings.HasSuffix(s, ".") || strings.HasPrefix(s, "+") {
		return chains.Amount{}, api.BadField("amount", "%s is not a decimal number (want digits with an optional decimal point, such as \"1.5\")", strconv.Quote(s))
	}
	if a.IsZero() {
		return chains.Amount{}, api.BadField("amount", "must be more than zero")
	}
	_, frac, _ := strings.Cut(s, ".")
	if frac = strings.TrimRight(frac, "0"); len(frac) > decimals {
		return chains.Amount{}, api.BadField("amount", "%s has %d decimals; %s has %d", s, len(frac), symbol, decimals)
	}
	return a, nil
}
