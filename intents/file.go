package intents

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/config"
)

// Load reads the intents files the configuration names (intents:), CSV with
// a header row: id, wallet, to, asset, amount, and optionally expires_at
// (RFC 3339) and requested_by. Every problem is reported with file and line.
func Load(cfg *config.Config) ([]Intent, error) {
	wallets := map[string]config.Wallet{}
	for _, w := range cfg.Wallets {
		wallets[w.Name] = w
	}
	byName := map[string]config.Chain{}
	for _, ch := range cfg.Chains {
		byName[ch.Name] = ch
	}
	var out []Intent
	var errs config.Errors
	ids := map[string]string{}
	for i, f := range cfg.Intents {
		path := cfg.Path(f)
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, cfg.Errorf(fmt.Sprintf("intents[%d]", i), "cannot read intents file: %v", err))
			continue
		}
		ins, ferrs := parse(path, data, wallets, byName)
		errs = append(errs, ferrs...)
		for _, in := range ins {
			if prev, dup := ids[in.ID]; dup {
				errs = append(errs, &config.Error{File: path, Msg: fmt.Sprintf("intent id %q is used twice (also %s)", in.ID, prev)})
				continue
			}
			ids[in.ID] = path
			out = append(out, in)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

var required = []string{"id", "wallet", "to", "asset", "amount"}

func parse(path string, data []byte, wallets map[string]config.Wallet, chainsByName map[string]config.Chain) ([]Intent, config.Errors) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, config.Errors{{File: path, Msg: "CSV: " + err.Error()}}
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	var errs config.Errors
	for _, c := range required {
		if _, ok := col[c]; !ok {
			line, _ := r.FieldPos(0)
			errs = append(errs, &config.Error{File: path, Line: line, Msg: fmt.Sprintf("CSV header lacks the %s column (want %s, and optionally expires_at and requested_by)", c, strings.Join(required, ", "))})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var out []Intent
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				errs = append(errs, &config.Error{File: path, Line: pe.Line, Column: pe.Column, Msg: "CSV: " + pe.Err.Error()})
				continue
			}
			errs = append(errs, &config.Error{File: path, Msg: "CSV: " + err.Error()})
			break
		}
		line, _ := r.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		bad := func(field, format string, args ...any) {
			errs = append(errs, &config.Error{File: path, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
		}
		in := Intent{ID: get("id"), Wallet: get("wallet"), To: get("to"), Asset: get("asset"), RequestedBy: get("requested_by"), Source: "file"}
		n := len(errs)
		switch {
		case in.ID == "":
			bad("id", "required")
		case !validID(in.ID):
			bad("id", "%q may not contain ':' or a line break", in.ID)
		}
		w, ok := wallets[in.Wallet]
		if !ok {
			bad("wallet", "no wallet named %q in the configuration", in.Wallet)
		} else if to, err := Destination(in.To, chainsByName[w.Chain]); err != nil {
			bad("to", "%v", err)
		} else {
			in.To = to
		}
		in.Chain = w.Chain
		if in.Asset == "" {
			bad("asset", "required")
		}
		a, err := chains.ParseAmount(get("amount"))
		if err != nil {
			bad("amount", "%v", err)
		} else if a.IsZero() {
			bad("amount", "must be positive")
		}
		in.Amount = a
		if v := get("expires_at"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad("expires_at", "%q: want an RFC 3339 time such as 2026-03-02T18:00:00Z", v)
			}
			in.ExpiresAt = t
		}
		if len(errs) == n {
			out = append(out, in)
		}
	}
	return out, errs
}

// Destination checks an intent's destination against its wallet's chain and
// writes it as that chain's events carry it: a Bitcoin address in the form
// of the chain's network (as the watcher renders outputs), an EVM address as
// written (the registry lowercases it). Intents files and `keywatch intents
// add` both go through it.
func Destination(to string, ch config.Chain) (string, error) {
	if ch.Kind != "bitcoin" {
		return to, config.CheckEVMAddress(to)
	}
	net, err := btcaddr.Network(ch.Network)
	if err != nil {
		return to, err
	}
	script, err := btcaddr.ParseAddress(to, net)
	if err != nil {
		return to, err
	}
	return btcaddr.AddressOf(script, net), nil
}
