// Package ofac reads the US Treasury's sanctions publications (the SDN
// advanced XML, the legacy sdn.csv with its sdn_comments.csv overflow, and
// the per-asset plain address lists derived from them) and normalises their
// digital currency addresses into keywatch list rows: chain, address, label,
// source.
package ofac

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keywatch/keywatch/policies/lists"
)

// Address is one sanctioned address as it will be written to a list.
type Address struct {
	Chain   string
	Address string // as published
	Label   string // who it belongs to: "Lazarus Group (SDN 27307; DPRK3)"
	Source  string // where it was read: "OFAC SDN 2025-11-19 (ETH)"

	// Assets are the OFAC asset codes the address was published under
	// ("ETH", "USDT", ...); Refs the SDN entries (FixedRef / ent_num) that
	// list it.
	Assets []string
	Refs   []string
	Family lists.Family
}

// Import is the result of reading one or more OFAC files.
type Import struct {
	// Published is the date of issue the source carries (the SDN advanced
	// XML's DateOfIssue); zero when the format has none.
	Published time.Time
	Addresses []Address
	// Warnings are problems that did not stop the import (an address left
	// out because the file that completes it was not given, say).
	Warnings []string
}

// CountByAsset counts distinct addresses per OFAC asset code.
func (im *Import) CountByAsset() map[string]int {
	out := map[string]int{}
	for _, a := range im.Addresses {
		for _, as := range a.Assets {
			out[as]++
		}
	}
	return out
}

// Header is the first row of the CSV keywatch list files use.
var Header = []string{"chain", "address", "label", "source"}

// WriteCSV writes the addresses as a keywatch list (header chain, address,
// label, source), sorted by chain and address so that two releases diff
// cleanly.
func (im *Import) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Header); err != nil {
		return err
	}
	for _, a := range im.Addresses {
		if err := cw.Write([]string{a.Chain, a.Address, a.Label, a.Source}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ChainOf maps an OFAC asset code and the address's form to the chain column
// keywatch lists use: Ethereum and the EVM assets to their EVM chain, XBT to
// bitcoin, USDT and USDC by the address's form (0x: ethereum, T…: tron,
// Bitcoin form: bitcoin, where Omni Layer USDT lives), and
// every other asset to its own lowercase code (kept, not matched, unless
// keywatch watches such a chain).
func ChainOf(asset, addr string) string {
	fam, _ := lists.Classify(addr, "")
	switch strings.ToUpper(asset) {
	case "ETH":
		return "ethereum"
	case "ETC":
		return "etc"
	case "ARB":
		return "arbitrum"
	case "BSC":
		return "bsc"
	case "BNB":
		if fam == lists.EVM {
			return "bsc" // BNB Smart Chain; bnb1… addresses are the Beacon Chain
		}
	case "XBT":
		if fam == lists.Tron {
			// OFAC publishes one Tron-form address under XBT: it is a Tron address.
			return "tron"
		}
		return "bitcoin"
	case "TRX":
		return "tron"
	case "USDT", "USDC":
		switch fam {
		case lists.EVM:
			return "ethereum"
		case lists.Tron:
			return "tron"
		case lists.Bitcoin:
			return "bitcoin" // Omni Layer USDT lives on Bitcoin addresses
		}
	}
	return strings.ToLower(asset)
}

// collector merges addresses read from any format: one row per address (per
// chain, for addresses of other forms than EVM), with the labels and assets
// of every entry that lists it.
type collector struct {
	byKey map[string]*Address
	order []string
}

func newCollector() *collector { return &collector{byKey: map[string]*Address{}} }

// add records an address published under an OFAC asset code by the entry
// ref (with its label); an address in no form keywatch knows for its chain is
// an error.
func (c *collector) add(asset, addr, ref, label string) error {
	chain := ChainOf(asset, addr)
	fam, err := lists.Classify(addr, chain)
	if err != nil {
		return err
	}
	// An EVM address serves every EVM chain: one row, whatever EVM assets
	// list it (on chain ethereum when Ethereum is among them). Addresses of
	// other forms are rows per chain: a legacy Bitcoin Cash address looks
	// like a Bitcoin one, and is not.
	k := lists.Key(fam, addr)
	if fam != lists.EVM {
		k = chain + "|" + k
	}
	a, ok := c.byKey[k]
	if !ok {
		a = &Address{Chain: chain, Address: addr, Family: fam}
		c.byKey[k] = a
		c.order = append(c.order, k)
	} else if chain == "ethereum" {
		a.Chain = chain
	}
	if !slices.Contains(a.Assets, asset) {
		a.Assets = append(a.Assets, asset)
	}
	if ref != "" && !slices.Contains(a.Refs, ref) {
		a.Refs = append(a.Refs, ref)
		if label != "" {
			if a.Label != "" {
				a.Label += " | "
			}
			a.Label += label
		}
	} else if ref == "" && a.Label == "" {
		a.Label = label
	}
	return nil
}

// result sorts the addresses and stamps their source with their assets.
func (c *collector) result(sourcePrefix string, published time.Time) *Import {
	im := &Import{Published: published}
	for _, k := range c.order {
		a := *c.byKey[k]
		sort.Strings(a.Assets)
		a.Source = fmt.Sprintf("%s (%s)", sourcePrefix, strings.Join(a.Assets, ", "))
		im.Addresses = append(im.Addresses, a)
	}
	sort.Slice(im.Addresses, func(i, j int) bool {
		x, y := im.Addresses[i], im.Addresses[j]
		if x.Chain != y.Chain {
			return x.Chain < y.Chain
		}
		return strings.ToLower(x.Address) < strings.ToLower(y.Address)
	})
	return im
}

// open opens a file and undoes bzip2 or gzip compression, recognised by
// their magic bytes whatever the file is called. The returned offset
// function reports how many bytes of the file itself were consumed (for
// errors in compressed files).
func open(path string) (io.Reader, func() int64, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	cr := &countingReader{r: f}
	br := bufio.NewReaderSize(cr, 1<<16)
	magic, _ := br.Peek(3)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, nil, fmt.Errorf("gzip: %w", err)
		}
		r = gz
	}
	compressed := r != io.Reader(br)
	offset := func() int64 {
		if !compressed {
			return -1
		}
		return cr.n - int64(br.Buffered())
	}
	return r, offset, f.Close, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
