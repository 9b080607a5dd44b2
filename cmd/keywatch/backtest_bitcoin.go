package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/keywatch/keywatch/backtest"
	"github.com/keywatch/keywatch/chains/bitcoin"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/watchers"
)

// senderNotRecorded is the detail of an inflow whose spent output is in no
// recorded block.
const senderNotRecorded = "unknown: the spent output is not in the recorded blocks"

// bitcoinReplay prepares the replay of a bitcoin chain, from its node or
// from recorded raw blocks, and says on stderr what the replay cannot know.
// done releases what it opened; code is the exit code when it failed.
func bitcoinReplay(ctx context.Context, cfg *config.Config, ch config.Chain, replay *backtest.Replay, files []string,
	from, to blockFlag, log *slog.Logger, stderr io.Writer) (src watchers.Source, rng backtest.Range, done func(), code int) {
	opts, err := daemon.BitcoinWatch(cfg, ch)
	if err != nil {
		fmt.Fprintln(stderr, "keywatch backtest:", err)
		return nil, rng, nil, 1
	}
	opts.Store, opts.Followed, opts.Logger = replay.Store(), replay.Hops(), log
	var node bitcoin.Node
	var rec *bitcoin.Recorded
	if len(files) > 0 {
		if rec, err = bitcoin.OpenRecorded(opts.Network, files...); err != nil {
			fmt.Fprintln(stderr, "keywatch backtest:", err)
			return nil, rng, nil, 1
		}
		for _, s := range rec.Skipped() {
			fmt.Fprintf(stderr, "passed over %s: %s\n", s.Path, s.Reason)
		}
		hs := rec.Heights()
		fmt.Fprintf(stderr, "recorded: %d blocks from %d files, heights %s (%d other files passed over)\n", len(hs), rec.Files(), spans(hs), len(rec.Skipped()))
		node, opts.UnknownSender = rec, senderNotRecorded
		rng.Heights = hs
		rng.From, rng.To = hs[0], hs[len(hs)-1]
	} else {
		if len(ch.Endpoints()) == 0 {
			fmt.Fprintf(stderr, "keywatch backtest: chain %s has no rpc URL; give -files PATH to replay recorded blocks\n", ch.Name)
			return nil, rng, nil, 2
		}
		if !from.set {
			fmt.Fprintln(stderr, "keywatch backtest: -from N is required when replaying from the node")
			return nil, rng, nil, 2
		}
		cc, _, err := daemon.BitcoinNode(cfg, ch)
		if err != nil {
			fmt.Fprintln(stderr, "keywatch backtest:", err)
			return nil, rng, nil, 1
		}
		cc.Logger = log.With("chain", ch.Name)
		client, err := bitcoin.NewClient(cc)
		if err != nil {
			fmt.Fprintf(stderr, "keywatch backtest: chain %s: %v\n", ch.Name, err)
			return nil, rng, nil, 1
		}
		done = client.Close
		if err := bitcoin.CheckNetwork(ctx, client, ch.Network); err != nil {
			fmt.Fprintf(stderr, "keywatch backtest: chain %s: %v\n", ch.Name, err)
			return nil, rng, done, 1
		}
		rng.To = ^uint64(0)
		if !to.set {
			head, err := client.BlockCount(ctx)
			if err != nil {
				fmt.Fprintf(stderr, "keywatch backtest: chain %s: head: %v\n", ch.Name, err)
				return nil, rng, done, 1
			}
			rng.To = uint64(head)
		}
		node = client
	}
	if from.set {
		rng.From = from.n
	}
	if to.set {
		rng.To = to.n
	}
	start := rng.From
	if rec != nil {
		n, ok := rec.NextHeight(rng.From)
		if !ok || n > rng.To {
			fmt.Fprintf(stderr, "keywatch backtest: no recorded block within %d..%d (recorded: %s)\n", rng.From, rng.To, spans(rec.Heights()))
			return nil, rng, done, 1
		}
		start = n
	}
	if rng.To >= rng.From {
		coinWarnings(stderr, opts.Wallets, rec, start, rng.To)
	}
	s, err := bitcoin.NewSource(node, opts)
	if err != nil {
		fmt.Fprintf(stderr, "keywatch backtest: chain %s: %v\n", ch.Name, err)
		return nil, rng, done, 1
	}
	return s, rng, done, 0
}

// coinWarnings says which coins of the watched wallets the replay cannot
// know: those received before the first replayed block when the wallet has
// no birthday before it (or, from files, before the first recorded block),
// and those created or spent in blocks the files lack.
func coinWarnings(stderr io.Writer, wallets []bitcoin.Wallet, rec *bitcoin.Recorded, start, to uint64) {
	scanFrom := start
	for _, w := range wallets {
		switch {
		case w.Birthday == 0 && start > 1:
			fmt.Fprintf(stderr, "warning: wallet %s has no birthday: coins it received before block %d are unknown to the replay: spending them is not seen (change from such a spend shows as an inflow), and drain judges against the coins seen since (set birthday: to its first funding height)\n", w.Name, start)
		case w.Birthday == 0:
		case w.Birthday >= start:
		case rec != nil && w.Birthday < rec.Heights()[0]:
			first := rec.Heights()[0]
			fmt.Fprintf(stderr, "warning: wallet %s: its birthday, block %d, is before the first recorded block %d: coins it received before block %d are unknown to the replay\n", w.Name, w.Birthday, first, first)
			scanFrom = min(scanFrom, first)
		default:
			scanFrom = min(scanFrom, w.Birthday)
		}
	}
	if rec == nil {
		return
	}
	prev, ok := rec.NextHeight(scanFrom)
	for ok && prev < to {
		next, found := rec.NextHeight(prev + 1)
		if !found || next > to {
			break
		}
		if next > prev+1 {
			fmt.Fprintf(stderr, "warning: blocks %s are not in the files: coins of watched wallets and followed addresses created or spent there are unknown to the replay\n", span(prev+1, next-1))
		}
		prev = next
	}
	fmt.Fprintln(stderr, "note: the senders of inflows are looked up in the recorded blocks only; an inflow whose spent output is not recorded says so in detail.sender")
}

// spans writes sorted heights as ranges: "0..255, 277647, 574200".
func spans(hs []uint64) string {
	out := ""
	for i := 0; i < len(hs); {
		j := i
		for j+1 < len(hs) && hs[j+1] == hs[j]+1 {
			j++
		}
		if out != "" {
			out += ", "
		}
		out += span(hs[i], hs[j])
		i = j + 1
	}
	return out
}

func span(a, b uint64) string {
	if a == b {
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("%d..%d", a, b)
}
