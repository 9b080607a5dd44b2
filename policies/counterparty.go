package policies

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/store"
)

// newCounterparty fires on a movement to an address the wallet never sent
// to before that is not in the address book. What each wallet has sent to is
// kept in the store (a hash per wallet: counterparty -> first event), so
// instances agree and a restart forgets nothing. Parameters: lists
// (address_book). Default: outflows.
type newCounterparty struct{ book []string }

func buildNewCounterparty(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "lists")
	return &newCounterparty{book: b.listNames(path, p, []string{"address_book"}, "of known counterparties")}
}

func seenKey(ev *chains.Event) string { return "seen:" + ev.Chain + ":" + ev.Wallet }

func (d *newCounterparty) Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error) {
	cp := chains.NormaliseAddress(ev.Counterparty)
	if cp == "" {
		return Finding{}, nil
	}
	if _, ok := in.WalletAt(ev.Chain, cp); ok {
		return Finding{}, nil // a movement between the firm's own wallets
	}
	if _, ok, err := lookup(ev, in, d.book); err != nil || ok {
		return Finding{}, err
	}
	if in.Store == nil {
		return Finding{}, errNoStore
	}
	first, err := in.Store.HGet(ctx, seenKey(ev), cp)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if Screening(ctx) {
			break // judged as new, not remembered: the withdrawal has not happened
		}
		if err := in.Store.HSet(ctx, seenKey(ev), cp, []byte(ev.ID)); err != nil {
			return Finding{}, fmt.Errorf("remember counterparty: %w", err)
		}
	case err != nil:
		return Finding{}, fmt.Errorf("read seen counterparties: %w", err)
	case string(first) != ev.ID:
		return Finding{}, nil // seen before, with another event
	}
	dir := "sent to"
	if ev.Direction == chains.In {
		dir = "received from"
	}
	return Finding{Hit: true, Reasons: []string{fmt.Sprintf("%s never %s %s before, and it is not on %s",
		ev.Wallet, dir, ev.Counterparty, strings.Join(d.book, " or "))}}, nil
}

// Retract forgets a counterparty first seen in a retracted event.
func (d *newCounterparty) Retract(ctx context.Context, ev *chains.Event, in *Input) error {
	if in.Store == nil || ev.Counterparty == "" {
		return nil
	}
	cp := chains.NormaliseAddress(ev.Counterparty)
	first, err := in.Store.HGet(ctx, seenKey(ev), cp)
	if errors.Is(err, store.ErrNotFound) || (err == nil && string(first) != ev.ID) {
		return nil
	}
	if err != nil {
		return err
	}
	return in.Store.HDel(ctx, seenKey(ev), cp)
}
