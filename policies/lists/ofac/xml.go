package ofac

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// featurePrefix starts the names of the feature types that carry digital
// currency addresses ("Digital Currency Address - ETH"). Feature types are
// found by this name, never by their numeric ids, which OFAC may renumber.
const featurePrefix = "Digital Currency Address - "

// ReadXMLFile reads the SDN advanced XML (sdn_advanced.xml, or the same
// compressed with bzip2 or gzip) and returns its digital currency addresses.
// The document is read as a stream: the 120 MB of the whole SDN list are
// never held in memory, only the addresses and the names and programs of the
// entries that carry them. Errors name the file and the line (and, for a
// compressed file, the compressed byte offset) where reading stopped.
func ReadXMLFile(path string) (*Import, error) {
	r, offset, closeFn, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer closeFn()
	im, err := ReadXML(r)
	if err != nil {
		var pe *PosError
		if errors.As(err, &pe) {
			pe.File = path
			if off := offset(); off >= 0 {
				pe.Offset = off
			}
			return nil, pe
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

// PosError is a problem at a place in an input file.
type PosError struct {
	File   string
	Line   int   // 0 when unknown
	Offset int64 // byte offset in a compressed file; 0 when not compressed
	Msg    string
	Err    error
}

func (e *PosError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Offset > 0 {
		fmt.Fprintf(&b, " (compressed byte offset %d)", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

func (e *PosError) Unwrap() error { return e.Err }

// party is what is kept of one DistinctParty that lists addresses.
type party struct {
	fixedRef string
	profile  string
	name     string // the primary alias's Latin name
	addrs    []partyAddr
}

type partyAddr struct{ asset, addr string }

// xmlReader holds the parse state.
type xmlReader struct {
	d *xml.Decoder

	issued       [3]int            // year, month, day of DateOfIssue
	featureAsset map[string]string // FeatureType ID -> asset code, for digital currency types
	featureTypes int               // FeatureType entries seen
	programType  map[string]bool   // SanctionsType IDs named "Program"
	latinStatus  map[string]bool   // DocNameStatus IDs named "Primary Latin"
	listName     map[string]string // List ID -> name
	sawParties   bool
	sawEntries   bool

	parties  []*party
	byProf   map[string]*party
	programs map[string][]string // profile ID -> programs
	lists    map[string]string   // profile ID -> list name
}

// ReadXML reads an SDN advanced XML document from r.
func ReadXML(r io.Reader) (*Import, error) {
	x := &xmlReader{
		d:            xml.NewDecoder(r),
		featureAsset: map[string]string{},
		programType:  map[string]bool{},
		latinStatus:  map[string]bool{},
		listName:     map[string]string{},
		byProf:       map[string]*party{},
		programs:     map[string][]string{},
		lists:        map[string]string{},
	}
	if err := x.read(); err != nil {
		return nil, err
	}
	return x.result()
}

func (x *xmlReader) errAt(msg string, err error) *PosError {
	line, _ := x.d.InputPos()
	return &PosError{Line: line, Msg: msg, Err: err}
}

// token returns the next token, turning the decoder's errors into ones a
// user can act on.
func (x *xmlReader) token() (xml.Token, error) {
	t, err := x.d.Token()
	if err == nil {
		return t, nil
	}
	if err == io.EOF {
		return nil, err
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		msg := "not well-formed XML: " + se.Msg
		if strings.Contains(se.Msg, "unexpected EOF") {
			msg = truncated
		}
		return nil, &PosError{Line: se.Line, Msg: msg, Err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, x.errAt(truncated, err)
	}
	return nil, x.errAt("cannot read: "+err.Error(), err)
}

// truncated describes a document that ends before its root element does.
const truncated = "the file ends in the middle of the XML document (truncated download?)"

// inner returns the next token inside an element, where the end of the
// file means the document was cut short.
func (x *xmlReader) inner() (xml.Token, error) {
	t, err := x.token()
	if err == io.EOF {
		return nil, x.errAt(truncated, io.ErrUnexpectedEOF)
	}
	return t, err
}

// text reads the character data of the element just opened, up to its end.
func (x *xmlReader) text() (string, error) {
	var b strings.Builder
	depth := 1
	for depth > 0 {
		t, err := x.inner()
		if err != nil {
			return "", err
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 1 {
				b.Write(t)
			}
		}
	}
	return strings.TrimSpace(b.String()), nil
}

// skip skips the rest of the element just opened.
func (x *xmlReader) skip() error {
	for depth := 1; depth > 0; {
		t, err := x.inner()
		if err != nil {
			return err
		}
		switch t.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (x *xmlReader) read() error {
	// The root element must be Sanctions.
	var root *xml.StartElement
	text := false
	for root == nil {
		t, err := x.token()
		if err == io.EOF && text {
			return &PosError{Line: 1, Msg: "not an XML file: text but no XML element (is it JSON, CSV or a plain list?)"}
		}
		if err == io.EOF {
			return &PosError{Msg: "not an SDN advanced XML file: no XML element found (empty file?)"}
		}
		if err != nil {
			var pe *PosError
			if errors.As(err, &pe) && pe.Line <= 1 {
				pe.Msg = "not an XML file: " + pe.Msg
			}
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			root = &t
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				text = true
			}
		}
	}
	if root.Name.Local != "Sanctions" {
		return x.errAt(fmt.Sprintf("not an SDN advanced XML file: the root element is <%s>, want <Sanctions>", root.Name.Local), nil)
	}
	var path []string
	for {
		t, err := x.inner() // the end of the file before </Sanctions> is an error
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.EndElement:
			if len(path) == 0 {
				// </Sanctions>: the document is complete.
				return x.drain()
			}
			path = path[:len(path)-1]
		case xml.StartElement:
			handled, err := x.start(t, path)
			if err != nil {
				return err
			}
			if !handled {
				path = append(path, t.Name.Local)
			}
		}
	}
}

// drain checks that nothing but whitespace and comments follows the root.
func (x *xmlReader) drain() error {
	for {
		t, err := x.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, ok := t.(xml.StartElement); ok {
			return x.errAt("unexpected element after </Sanctions>", nil)
		}
	}
}

// start handles an opening tag below the root. It reports whether it
// consumed the element whole (up to its end tag).
func (x *xmlReader) start(se xml.StartElement, path []string) (bool, error) {
	name := se.Name.Local
	parent := ""
	if len(path) > 0 {
		parent = path[len(path)-1]
	}
	switch name {
	case "Locations", "IDRegDocuments", "ProfileRelationships", "SanctionsEntryLinks":
		return true, x.skip()
	case "DateOfIssue":
		if len(path) == 0 {
			return true, x.readDate()
		}
	case "FeatureType":
		if parent == "FeatureTypeValues" {
			id := attr(se, "ID")
			v, err := x.text()
			if err != nil {
				return true, err
			}
			x.featureTypes++
			if asset, ok := strings.CutPrefix(v, featurePrefix); ok {
				x.featureAsset[id] = strings.TrimSpace(asset)
			}
			return true, nil
		}
	case "SanctionsType", "DocNameStatus", "List":
		if strings.HasSuffix(parent, "Values") {
			id := attr(se, "ID")
			v, err := x.text()
			if err != nil {
				return true, err
			}
			switch {
			case name == "SanctionsType" && v == "Program":
				x.programType[id] = true
			case name == "DocNameStatus" && v == "Primary Latin":
				x.latinStatus[id] = true
			case name == "List":
				x.listName[id] = v
			}
			return true, nil
		}
	case "DistinctParty":
		if parent == "DistinctParties" {
			x.sawParties = true
			return true, x.readParty(se)
		}
	case "SanctionsEntry":
		if parent == "SanctionsEntries" {
			x.sawEntries = true
			return true, x.readEntry(se)
		}
	}
	return false, nil
}

func (x *xmlReader) readDate() error {
	for {
		t, err := x.inner()
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			v, err := x.text()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return x.errAt(fmt.Sprintf("DateOfIssue: %s %q is not a number", t.Name.Local, v), err)
			}
			switch t.Name.Local {
			case "Year":
				x.issued[0] = n
			case "Month":
				x.issued[1] = n
			case "Day":
				x.issued[2] = n
			}
		}
	}
}

// readParty reads one DistinctParty: its primary Latin name and its
// digital currency addresses.
func (x *xmlReader) readParty(se xml.StartElement) error {
	if x.featureTypes == 0 {
		return x.errAt("DistinctParty before the FeatureTypeValues that name its features: not an SDN advanced XML file", nil)
	}
	p := &party{fixedRef: attr(se, "FixedRef")}
	var (
		path         []string
		primaryAlias bool
		latinName    bool
		nameParts    []string
		firstName    string
		feature      string // asset of the digital currency feature being read
	)
	for {
		t, err := x.inner()
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.EndElement:
			if len(path) == 0 {
				if p.name == "" {
					p.name = firstName
				}
				if len(p.addrs) > 0 {
					x.parties = append(x.parties, p)
					x.byProf[p.profile] = p
				}
				return nil
			}
			switch t.Name.Local {
			case "Alias":
				primaryAlias = false
			case "DocumentedName":
				name := strings.Join(nameParts, " ")
				if primaryAlias {
					if latinName && p.name == "" {
						p.name = name
					}
					if firstName == "" {
						firstName = name
					}
				}
				latinName, nameParts = false, nil
			case "Feature":
				feature = ""
			}
			path = path[:len(path)-1]
		case xml.StartElement:
			switch t.Name.Local {
			case "Profile":
				p.profile = attr(t, "ID")
			case "Alias":
				primaryAlias = attr(t, "Primary") == "true"
			case "DocumentedName":
				latinName = x.latinStatus[attr(t, "DocNameStatusID")]
			case "NamePartValue":
				v, err := x.text()
				if err != nil {
					return err
				}
				nameParts = append(nameParts, v)
				continue
			case "Feature":
				feature = x.featureAsset[attr(t, "FeatureTypeID")]
			case "VersionDetail":
				if feature != "" {
					v, err := x.text()
					if err != nil {
						return err
					}
					if v == "" {
						return x.errAt(fmt.Sprintf("DistinctParty %s: empty %s%s address", p.fixedRef, featurePrefix, feature), nil)
					}
					p.addrs = append(p.addrs, partyAddr{asset: feature, addr: v})
					continue
				}
			}
			path = append(path, t.Name.Local)
		}
	}
}

// readEntry reads one SanctionsEntry: the programs of a profile.
func (x *xmlReader) readEntry(se xml.StartElement) error {
	prof := attr(se, "ProfileID")
	x.lists[prof] = x.listName[attr(se, "ListID")]
	_, wanted := x.byProf[prof]
	program := false
	for depth := 1; depth > 0; {
		t, err := x.inner()
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.EndElement:
			depth--
			if t.Name.Local == "SanctionsMeasure" {
				program = false
			}
		case xml.StartElement:
			switch t.Name.Local {
			case "SanctionsMeasure":
				program = x.programType[attr(t, "SanctionsTypeID")]
			case "Comment":
				if program && wanted {
					v, err := x.text()
					if err != nil {
						return err
					}
					if v != "" && !slices.Contains(x.programs[prof], v) {
						x.programs[prof] = append(x.programs[prof], v)
					}
					continue
				}
			}
			depth++
		}
	}
	return nil
}

func (x *xmlReader) result() (*Import, error) {
	if !x.sawParties {
		return nil, x.errAt("no DistinctParties: not an SDN advanced XML file", nil)
	}
	if len(x.featureAsset) == 0 {
		return nil, x.errAt(fmt.Sprintf("no feature type named %q… in FeatureTypeValues: has OFAC renamed them?", featurePrefix), nil)
	}
	if len(x.programType) == 0 || !x.sawEntries {
		return nil, x.errAt("no SanctionsEntries with programs: not a complete SDN advanced XML file", nil)
	}
	var published time.Time
	if x.issued[0] > 0 {
		published = time.Date(x.issued[0], time.Month(x.issued[1]), x.issued[2], 0, 0, 0, 0, time.UTC)
	}
	source := "OFAC SDN"
	if !published.IsZero() {
		source += " " + published.Format(time.DateOnly)
	}
	c := newCollector()
	var errs []error
	for _, p := range x.parties {
		progs := append([]string(nil), x.programs[p.profile]...)
		sort.Strings(progs)
		label := fmt.Sprintf("%s (SDN %s", p.name, p.fixedRef)
		if len(progs) > 0 {
			label += "; " + strings.Join(progs, ", ")
		}
		label += ")"
		if l := x.lists[p.profile]; l != "" && l != "SDN List" {
			label += " [" + l + "]"
		}
		for _, a := range p.addrs {
			if err := c.add(a.asset, a.addr, p.fixedRef, label); err != nil {
				errs = append(errs, fmt.Errorf("DistinctParty %s (%s), %s%s: %w", p.fixedRef, p.name, featurePrefix, a.asset, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, &PosError{Msg: "addresses keywatch cannot read:\n  " + joinErrs(errs, "\n  "), Err: errors.Join(errs...)}
	}
	return c.result(source, published), nil
}

func joinErrs(errs []error, sep string) string {
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = e.Error()
	}
	return strings.Join(s, sep)
}
