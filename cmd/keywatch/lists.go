package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/policies/lists/ofac"
)

const listsUsage = `Usage:
  keywatch lists import -format ofac-xml|ofac-csv|plain [-stamp] FILE...

Formats:
  ofac-xml   the OFAC SDN advanced XML (sdn_advanced.xml; .bz2 or .gz accepted as is)
  ofac-csv   the legacy sdn.csv together with sdn_comments.csv (remarks cut at
             1,000 characters continue there); the files are told apart by their columns
  plain      per-asset lists sanctioned_addresses_<ASSET>.txt, one address a line

Writes CSV (chain,address,label,source) to stdout, nothing on any error.
`

func cmdLists(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, listsUsage)
		return 2
	}
	switch args[0] {
	case "import":
		return cmdListsImport(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, listsUsage)
		return 0
	}
	fmt.Fprintf(stderr, "keywatch lists: unknown command %q\n\n%s", args[0], listsUsage)
	return 2
}

func cmdListsImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keywatch lists import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "ofac-xml, ofac-csv or plain (required)")
	stamp := fs.Bool("stamp", false, "start the output with a '# published: DATE' comment (the file's date of issue, else the input files' newest modification time); keywatch measures the list's age from it")
	fs.Usage = func() { fmt.Fprint(stderr, listsUsage+"\nFlags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	files := fs.Args()
	if len(files) == 0 {
		fmt.Fprintln(stderr, "keywatch lists import: name at least one FILE")
		return 2
	}
	var (
		im  *ofac.Import
		err error
	)
	switch *format {
	case "ofac-xml":
		if len(files) != 1 {
			fmt.Fprintln(stderr, "keywatch lists import: -format ofac-xml reads one file (one SDN release); import releases separately")
			return 2
		}
		im, err = ofac.ReadXMLFile(files[0])
	case "ofac-csv":
		im, err = ofac.ReadLegacyCSVFiles(files...)
	case "plain":
		im, err = ofac.ReadPlainFiles(files...)
	case "":
		fmt.Fprintln(stderr, "keywatch lists import: -format is required (ofac-xml, ofac-csv or plain)")
		return 2
	default:
		fmt.Fprintf(stderr, "keywatch lists import: unknown -format %q (want ofac-xml, ofac-csv or plain)\n", *format)
		return 2
	}
	if err != nil {
		// Several problems come joined, one a line.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, line)
		}
		fmt.Fprintln(stderr, "keywatch lists import: nothing written")
		return 1
	}
	for _, w := range im.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	// Everything goes to a buffer first, so that a failure writes nothing.
	var buf bytes.Buffer
	if *stamp {
		published, how := im.Published, "date of issue"
		if published.IsZero() {
			published, how = newestModTime(files), "newest modification time of the input files"
		}
		fmt.Fprintf(&buf, "%s %s\n", lists.PublishedComment, published.UTC().Format(time.RFC3339))
		fmt.Fprintf(stderr, "stamped published %s (%s)\n", published.UTC().Format(time.RFC3339), how)
	}
	if err := im.WriteCSV(&buf); err != nil {
		fmt.Fprintln(stderr, "keywatch lists import:", err)
		return 1
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		fmt.Fprintln(stderr, "keywatch lists import: write:", err)
		return 1
	}
	fmt.Fprintf(stderr, "imported %d addresses (%s) from %s\n", len(im.Addresses), assetCounts(im), strings.Join(files, ", "))
	return 0
}

func assetCounts(im *ofac.Import) string {
	c := im.CountByAsset()
	assets := make([]string, 0, len(c))
	for a := range c {
		assets = append(assets, a)
	}
	sort.Slice(assets, func(i, j int) bool {
		if c[assets[i]] != c[assets[j]] {
			return c[assets[i]] > c[assets[j]]
		}
		return assets[i] < assets[j]
	})
	parts := make([]string, len(assets))
	for i, a := range assets {
		parts[i] = fmt.Sprintf("%s %d", a, c[a])
	}
	return strings.Join(parts, ", ")
}

func newestModTime(files []string) time.Time {
	var t time.Time
	for _, f := range files {
		st, err := os.Stat(f)
		if err == nil && st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t
}
