// Package lists loads the address lists policies match against (sanctions,
// mixers, the address book): plain text or CSV files, validated line by line.
package lists

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/config"
)

// Family is the address form an entry belongs to. An entry serves every
// watched chain of its family.
type Family string

const (
	EVM     Family = "evm"     // 0x + 40 hex: every EVM chain
	Bitcoin Family = "bitcoin" // base58 P2PKH/P2SH or bech32/bech32m
	Tron    Family = "tron"    // T + base58 (kept as evidence; not watched)
	Other   Family = "other"   // a chain keywatch does not watch (kept, not matched)
)

// Entry is one address on a list, with the evidence shown in alerts.
type Entry struct {
	List    string
	Address string // as written in the file
	Family  Family
	Chain   string // the chain column, if any
	Label   string
	Source  string
	File    string
	Line    int
}

// Evidence describes the entry for an alert's reasons.
func (e Entry) Evidence() string {
	var parts []string
	if e.Label != "" {
		parts = append(parts, e.Label)
	}
	if e.Family == Bitcoin {
		// Matched by script: the event may show the address in another
		// network's form, so say which address was listed.
		parts = append(parts, "listed as "+e.Address)
	}
	if e.Source != "" {
		parts = append(parts, "source "+e.Source)
	}
	parts = append(parts, fmt.Sprintf("%s:%d", filepath.Base(e.File), e.Line))
	return strings.Join(parts, "; ")
}

// List is a named set of entries.
type List struct {
	Name  string
	Files []string
	// Stamps describe each file as it was when it was read, in the order of
	// Files: what the list refresh compares to notice a change, and what a
	// list's age is measured from.
	Stamps  []Stamp
	entries map[string]Entry // key: family + ":" + normalised address
}

// PublishedComment starts a comment line, before a list file's first entry,
// that dates the list's content ("# published: 2025-11-19T00:00:00Z" or
// "# published: 2025-11-19"). A list's age is measured from it when present,
// else from the file's modification time.
const PublishedComment = "# published:"

// Stamp is what is known of a list file's version.
type Stamp struct {
	Path      string
	ModTime   time.Time
	Size      int64
	Published time.Time // from a "# published:" comment; zero when none
	SHA256    string    // of the content read (hex); empty from StatFile
}

// Date is when the file's content dates from: its published date when it
// carries one, else its modification time.
func (s Stamp) Date() time.Time {
	if !s.Published.IsZero() {
		return s.Published
	}
	return s.ModTime
}

// DatedBy says which of the two Date is.
func (s Stamp) DatedBy() string {
	if !s.Published.IsZero() {
		return "published comment"
	}
	return "modification time"
}

// SameVersion reports whether two stamps describe the same file content
// (same modification time and size).
func (s Stamp) SameVersion(o Stamp) bool {
	return s.Path == o.Path && s.ModTime.Equal(o.ModTime) && s.Size == o.Size
}

// StatFile stamps a file without reading its entries.
func StatFile(path string) (Stamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Stamp{}, err
	}
	return Stamp{Path: path, ModTime: st.ModTime(), Size: st.Size()}, nil
}

// Len is the number of distinct addresses on the list.
func (l *List) Len() int { return len(l.entries) }

// Lookup finds an address of the given family on the list.
func (l *List) Lookup(f Family, addr string) (Entry, bool) {
	e, ok := l.entries[Key(f, addr)]
	return e, ok
}

// Entries returns every entry (in no particular order).
func (l *List) Entries() []Entry {
	out := make([]Entry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, e)
	}
	return out
}

// Key normalises an address of a family for lookups: EVM addresses are
// compared case-insensitively; a Bitcoin address is keyed by the output
// script it pays to, whatever network it is written for, so a list of
// mainnet addresses matches a regtest payment to the same script (and the
// "script:<hex>" form the Bitcoin watcher gives outputs without an address
// matches too).
func Key(f Family, addr string) string {
	a := strings.TrimSpace(addr)
	switch f {
	case EVM:
		a = strings.ToLower(a)
	case Bitcoin:
		if script, err := btcaddr.ScriptOf(a); err == nil {
			return string(f) + ":" + hex.EncodeToString(script)
		}
		if bech32Re.MatchString(a) {
			a = strings.ToLower(a)
		}
	}
	return string(f) + ":" + a
}

// LookupScript finds the Bitcoin address paying to an output script on the
// list.
func (l *List) LookupScript(script []byte) (Entry, bool) {
	e, ok := l.entries[string(Bitcoin)+":"+hex.EncodeToString(script)]
	return e, ok
}

// Set is every list the configuration names.
type Set struct {
	lists map[string]*List
}

// Get returns the named list.
func (s *Set) Get(name string) (*List, bool) {
	if s == nil {
		return nil, false
	}
	l, ok := s.lists[name]
	return l, ok
}

// Names lists the loaded list names.
func (s *Set) Names() []string {
	var out []string
	for n := range s.lists {
		out = append(out, n)
	}
	return out
}

// Load reads every list the configuration names. Errors name the list file
// and line (or, for a file that cannot be read, the configuration line that
// names it); all are collected.
func Load(cfg *config.Config) (*Set, error) {
	s := &Set{lists: map[string]*List{}}
	var errs config.Errors
	// Read the lists in the order the configuration names them, so that
	// errors are reported in a stable order.
	names := make([]string, 0, len(cfg.Lists))
	for name := range cfg.Lists {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		li, _ := cfg.Position("lists." + names[i])
		lj, _ := cfg.Position("lists." + names[j])
		if li != lj {
			return li < lj
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		files := cfg.Lists[name]
		l := &List{Name: name, entries: map[string]Entry{}}
		for i, f := range files {
			path := cfg.Path(f)
			l.Files = append(l.Files, path)
			// Stamp before reading: a change during the read shows as a
			// change at the next check, never as none.
			stamp, _ := StatFile(path)
			entries, published, sum, err := readFile(path)
			stamp.Path, stamp.Published, stamp.SHA256 = path, published, sum
			l.Stamps = append(l.Stamps, stamp)
			var fe config.Errors
			if errors.As(err, &fe) {
				errs = append(errs, fe...)
			} else if err != nil {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("lists.%s[%d]", name, i), "%v", err))
			}
			for _, e := range entries {
				e.List = name
				k := Key(e.Family, e.Address)
				if _, dup := l.entries[k]; !dup {
					l.entries[k] = e
				}
			}
		}
		s.lists[name] = l
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// ReadFile reads one list file: CSV (a .csv name, or a first line with an
// address column) or plain text (one address per line, # comments; text after
// the address on the same line becomes its label).
func ReadFile(path string) ([]Entry, error) {
	entries, _, _, err := readFile(path)
	return entries, err
}

func readFile(path string) (entries []Entry, published time.Time, sum string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, "", fmt.Errorf("cannot read list %s: %w", path, err)
	}
	h := sha256.Sum256(data)
	sum = hex.EncodeToString(h[:])
	// Spreadsheet programs start UTF-8 files with a byte-order mark.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	published, perr := readPublished(path, data)
	if isCSV(path, data) {
		entries, err = parseCSV(path, data)
	} else {
		entries, err = parsePlain(path, data)
	}
	if perr != nil {
		var errs config.Errors
		errors.As(err, &errs)
		err = append(config.Errors{perr}, errs...)
	}
	return entries, published, sum, err
}

// readPublished finds a "# published: DATE" comment among the comment lines
// that start the file.
func readPublished(path string, data []byte) (time.Time, *config.Error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			return time.Time{}, nil
		}
		v, ok := strings.CutPrefix(line, PublishedComment)
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		for _, layout := range []string{time.RFC3339, time.DateOnly} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, &config.Error{File: path, Line: n, Msg: fmt.Sprintf("%s %q: want a date such as 2025-11-19 or 2025-11-19T00:00:00Z", PublishedComment, v)}
	}
	return time.Time{}, nil
}

func isCSV(path string, data []byte) bool {
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return true
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, f := range strings.Split(line, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "address") {
				return true
			}
		}
		return false
	}
	return false
}

func parsePlain(path string, data []byte) ([]Entry, error) {
	var out []Entry
	var errs config.Errors
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		addr, label, _ := strings.Cut(line, " ")
		if a, l, ok := strings.Cut(line, "\t"); ok && len(a) < len(addr) {
			addr, label = a, l
		}
		fam, err := Classify(addr, "")
		if err != nil {
			errs = append(errs, &config.Error{File: path, Line: n, Msg: err.Error()})
			continue
		}
		out = append(out, Entry{Address: addr, Family: fam, Label: strings.TrimSpace(label), File: path, Line: n})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &config.Error{File: path, Msg: err.Error()})
	}
	if len(errs) > 0 {
		return out, errs
	}
	return out, nil
}

// labelColumns are tried in order when a CSV has no label column.
var labelColumns = []string{"label", "name", "sdn_name", "entity", "mixer"}

func parseCSV(path string, data []byte) ([]Entry, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, config.Errors{csvError(path, err)}
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	addrCol, ok := col["address"]
	if !ok {
		line, _ := r.FieldPos(0)
		return nil, config.Errors{{File: path, Line: line, Msg: fmt.Sprintf("CSV header has no address column (columns: %s)", strings.Join(header, ", "))}}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []Entry
	var errs config.Errors
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, csvError(path, err))
			if _, ok := err.(*csv.ParseError); ok {
				continue
			}
			break
		}
		line, _ := r.FieldPos(0)
		if addrCol >= len(rec) {
			errs = append(errs, &config.Error{File: path, Line: line, Field: "address", Msg: "row has no address column"})
			continue
		}
		addr := strings.TrimSpace(rec[addrCol])
		if addr == "" {
			errs = append(errs, &config.Error{File: path, Line: line, Field: "address", Msg: "empty address"})
			continue
		}
		chain := get(rec, "chain")
		fam, err := Classify(addr, chain)
		if err != nil {
			errs = append(errs, &config.Error{File: path, Line: line, Field: "address", Msg: err.Error()})
			continue
		}
		e := Entry{Address: addr, Family: fam, Chain: chain, Source: get(rec, "source"), File: path, Line: line}
		for _, c := range labelColumns {
			if v := get(rec, c); v != "" {
				e.Label = v
				break
			}
		}
		if e.Label != "" && get(rec, "label") == "" {
			// Compose evidence from the descriptive columns of richer files
			// such as the mixer list: "Tornado Cash 1 ETH pool_instance".
			if d := get(rec, "denomination"); d != "" {
				e.Label += " " + d + " " + get(rec, "asset")
			}
			if role := get(rec, "role"); role != "" {
				e.Label += " (" + role + ")"
			}
		}
		if e.Source == "" {
			e.Source = get(rec, "source_repo")
		}
		out = append(out, e)
	}
	if len(errs) > 0 {
		return out, errs
	}
	return out, nil
}

func csvError(path string, err error) *config.Error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &config.Error{File: path, Line: pe.Line, Column: pe.Column, Msg: "CSV: " + pe.Err.Error()}
	}
	return &config.Error{File: path, Msg: "CSV: " + err.Error()}
}

var (
	evmRe     = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
	base58Re  = regexp.MustCompile(`^[123mn2][1-9A-HJ-NP-Za-km-z]{25,34}$`)
	bech32Re  = regexp.MustCompile(`^(?i)(bc|tb|bcrt)1[02-9ac-hj-np-z]{6,87}$`)
	tronRe    = regexp.MustCompile(`^T[1-9A-HJ-NP-Za-km-z]{33}$`)
	evmChains = []string{"ethereum", "eth", "evm", "bsc", "polygon", "arbitrum", "optimism", "avalanche", "gnosis", "base", "goerli", "sepolia", "holesky", "etc", "arb", "matic"}
	btcChains = []string{"bitcoin", "btc", "xbt"}
	// tokenChains are tokens OFAC names like chains; they live on EVM chains,
	// on Tron and (Omni Layer USDT) on Bitcoin, so the address's form decides.
	tokenChains = []string{"usdt", "usdc"}
)

// Classify decides an address's family from its form, checked against the
// chain column when there is one. An address in no known form, or in a form
// that contradicts its chain column, is an error; rows whose chain column
// names a chain keywatch does not watch are kept as Other.
func Classify(addr, chain string) (Family, error) {
	c := strings.ToLower(strings.TrimSpace(chain))
	if i := strings.IndexAny(c, "( "); i > 0 {
		c = c[:i]
	}
	form := Other
	switch {
	case evmRe.MatchString(addr):
		form = EVM
	case bech32Re.MatchString(addr) && (addr == strings.ToLower(addr) || addr == strings.ToUpper(addr)):
		form = Bitcoin
	case tronRe.MatchString(addr):
		form = Tron
	case base58Re.MatchString(addr):
		form = Bitcoin
	}
	if form == Bitcoin {
		// The form looks right; the checksum says whether it is an address.
		if _, err := btcaddr.ScriptOf(addr); err != nil {
			return "", fmt.Errorf("%q is not a valid Bitcoin address (%s): a typo?", addr, cause(err))
		}
	}
	isEVMChain, isBTCChain := slices.Contains(evmChains, c), slices.Contains(btcChains, c)
	switch {
	case slices.Contains(tokenChains, c):
		if form == Other {
			return "", fmt.Errorf("%q is not an address of a chain keywatch knows for %s (want 0x and 40 hex digits, a Tron address or a Bitcoin address)", addr, chain)
		}
		return form, nil
	case c == "":
		if form == Other {
			return "", fmt.Errorf("%q is not an address (want 0x and 40 hex digits, a Bitcoin address, or a chain column naming its chain)", addr)
		}
		return form, nil
	case isEVMChain:
		if form != EVM {
			return "", fmt.Errorf("%q is not an EVM address (chain %s wants 0x and 40 hex digits)", addr, chain)
		}
		return EVM, nil
	case isBTCChain:
		if form == Tron {
			// OFAC's XBT list carries a Tron-form address: keep it, as published.
			return Tron, nil
		}
		if form != Bitcoin {
			return "", fmt.Errorf("%q is not a Bitcoin address (chain %s)", addr, chain)
		}
		return Bitcoin, nil
	case c == "tron" || c == "trx":
		return Tron, nil
	default:
		return Other, nil
	}
}

// cause is the innermost reason of an address error, without the address
// itself (which the caller's message already quotes).
func cause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// Diff counts the addresses on l that are not on old (added) and those on
// old that are not on l (removed). A nil old counts every address as added.
func (l *List) Diff(old *List) (added, removed int) {
	if old == nil {
		return len(l.entries), 0
	}
	for k := range l.entries {
		if _, ok := old.entries[k]; !ok {
			added++
		}
	}
	for k := range old.entries {
		if _, ok := l.entries[k]; !ok {
			removed++
		}
	}
	return added, removed
}
