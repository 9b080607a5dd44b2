package ofac

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Legacy sdn.csv columns (the file has no header row).
const (
	colEntNum   = 0
	colName     = 1
	colProgram  = 3
	colRemarks  = 11
	sdnColumns  = 12
	commentCols = 2 // sdn_comments.csv: ent_num, remarks continued
)

// addrRe finds "Digital Currency Address - XBT 1abc…" in remarks; "alt."
// before it marks further addresses of the same asset.
var addrRe = regexp.MustCompile(`Digital Currency Address - ([A-Za-z0-9]+)\s+([^\s;]+)`)

type legacyRow struct {
	ent     string
	name    string
	program string
	remarks string
	file    string
	line    int
}

// ReadLegacyCSVFiles reads the legacy sdn.csv together with sdn_comments.csv.
// OFAC cuts the remarks column of sdn.csv at about 1,000 characters, often in
// the middle of an address, and continues it in sdn_comments.csv under the
// same ent_num; the two are joined before addresses are read. Each file is
// recognised by its columns (12 in sdn.csv, 2 in sdn_comments.csv), so the
// order of the paths does not matter. The comments file may be left out, at
// the price of the addresses in the cut-off part.
func ReadLegacyCSVFiles(paths ...string) (*Import, error) {
	var rows []legacyRow
	more := map[string]string{}
	sdnFiles, commentFiles := 0, 0
	for _, p := range paths {
		kind, err := readLegacyFile(p, &rows, more)
		if err != nil {
			return nil, err
		}
		if kind == sdnColumns {
			sdnFiles++
		} else {
			commentFiles++
		}
	}
	if sdnFiles == 0 {
		return nil, fmt.Errorf("%s: no sdn.csv among the files (sdn.csv has %d columns; these have %d, as sdn_comments.csv does)", strings.Join(paths, ", "), sdnColumns, commentCols)
	}
	c := newCollector()
	var errs []error
	var warnings []string
	var cutRows []string
	for _, r := range rows {
		remarks := r.remarks
		cont, continued := more[r.ent]
		cut := isCut(remarks)
		if continued {
			remarks += cont
		} else if cut {
			cutRows = append(cutRows, fmt.Sprintf("%s:%d (ent_num %s)", r.file, r.line, r.ent))
		}
		progs := strings.Split(r.program, "] [")
		for i := range progs {
			progs[i] = strings.Trim(strings.TrimSpace(progs[i]), "[]")
		}
		sort.Strings(progs)
		label := fmt.Sprintf("%s (SDN %s; %s)", r.name, r.ent, strings.Join(progs, ", "))
		dropped := ""
		for _, m := range addrRe.FindAllStringSubmatchIndex(remarks, -1) {
			asset, addr := strings.ToUpper(remarks[m[2]:m[3]]), remarks[m[4]:m[5]]
			if cut && !continued && m[5] == len(remarks) && !strings.HasSuffix(addr, ".") {
				// The address runs into the cut: what is left of it is a
				// prefix of the real one, and may well look like an address.
				dropped = fmt.Sprintf("; the last address %q (%s) is incomplete and left out", addr, asset)
				continue
			}
			addr = strings.TrimRight(addr, ".,")
			if err := c.add(asset, addr, r.ent, label); err != nil {
				errs = append(errs, &PosError{File: r.file, Line: r.line,
					Msg: fmt.Sprintf("ent_num %s (%s), Digital Currency Address - %s: %v", r.ent, r.name, asset, err), Err: err})
			}
		}
		if cut && !continued {
			warnings = append(warnings, fmt.Sprintf("%s:%d: ent_num %s (%s): remarks cut at %d characters and not continued in sdn_comments.csv: addresses after the cut are missing%s",
				r.file, r.line, r.ent, r.name, utf8.RuneCountInString(r.remarks), dropped))
		}
	}
	if commentFiles == 0 && len(cutRows) > 0 {
		return nil, fmt.Errorf("%d rows have remarks cut at 1,000 characters, continued in sdn_comments.csv: give that file too (%s)", len(cutRows), strings.Join(cutRows, ", "))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	im := c.result("OFAC SDN legacy CSV", time.Time{})
	im.Warnings = warnings
	return im, nil
}

// readLegacyFile reads one legacy file, appending sdn rows to rows or
// comment continuations to more, and reports which kind it was (by its
// number of columns).
func readLegacyFile(path string, rows *[]legacyRow, more map[string]string) (int, error) {
	r, _, closeFn, err := open(path)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	defer closeFn()
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	kind := 0
	var errs []error
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return 0, &PosError{File: path, Line: pe.Line, Msg: fmt.Sprintf("column %d: not valid CSV: %v", pe.Column, pe.Err), Err: err}
			}
			return 0, &PosError{File: path, Line: line, Msg: "cannot read: " + err.Error(), Err: err}
		}
		// OFAC's files end with a DOS end-of-file mark (0x1A) on a line of its own.
		if len(rec) == 1 && strings.Trim(rec[0], "\x1a \r\n") == "" {
			continue
		}
		if kind == 0 {
			switch len(rec) {
			case sdnColumns, commentCols:
				kind = len(rec)
			default:
				return 0, &PosError{File: path, Line: line, Msg: fmt.Sprintf("%d columns: want %d (sdn.csv) or %d (sdn_comments.csv)", len(rec), sdnColumns, commentCols)}
			}
		}
		if len(rec) != kind {
			errs = append(errs, &PosError{File: path, Line: line, Msg: fmt.Sprintf("%d columns where the file's first row has %d", len(rec), kind)})
			continue
		}
		ent := strings.TrimSpace(rec[colEntNum])
		if _, err := strconv.Atoi(ent); err != nil {
			errs = append(errs, &PosError{File: path, Line: line, Msg: fmt.Sprintf("ent_num %q is not a number", rec[colEntNum])})
			continue
		}
		if kind == commentCols {
			more[ent] += rec[1]
			continue
		}
		*rows = append(*rows, legacyRow{ent: ent, name: null(rec[colName]), program: null(rec[colProgram]), remarks: null(rec[colRemarks]), file: path, line: line})
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	if kind == 0 {
		return 0, &PosError{File: path, Msg: "empty file: want rows of sdn.csv or sdn_comments.csv"}
	}
	return kind, nil
}

// isCut reports whether sdn.csv remarks were (probably) cut off: OFAC cuts
// them at 1,000 characters and continues them in sdn_comments.csv.
func isCut(remarks string) bool {
	return utf8.RuneCountInString(remarks) >= 990
}

// null turns OFAC's "-0-" (no value) into "".
func null(s string) string {
	s = strings.TrimSpace(s)
	if s == "-0-" {
		return ""
	}
	return s
}
