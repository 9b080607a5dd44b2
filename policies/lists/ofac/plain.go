package ofac

import (
	"bufio"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// plainNameRe is the name of the per-asset lists derived from the SDN file
// (github.com/0xB10C/ofac-sanctioned-digital-currency-addresses and forks):
// sanctioned_addresses_<ASSET>.txt.
var plainNameRe = regexp.MustCompile(`(?i)^sanctioned_addresses_([A-Z0-9]+)\.txt$`)

// AssetOfPlainFile returns the asset a plain list's file name declares.
func AssetOfPlainFile(path string) (string, error) {
	m := plainNameRe.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return "", fmt.Errorf("%s: cannot tell the asset from the file name: want sanctioned_addresses_<ASSET>.txt (ETH, XBT, USDT, ...)", path)
	}
	return strings.ToUpper(m[1]), nil
}

// ReadPlainFiles reads per-asset plain lists: one address per line, the
// asset taken from each file's name (sanctioned_addresses_ETH.txt). The
// addresses are kept as published: the XBT list's one Tron-form address is
// listed under chain tron. Every line that is not an address is reported
// with its file and line.
func ReadPlainFiles(paths ...string) (*Import, error) {
	c := newCollector()
	var errs []error
	for _, p := range paths {
		if err := readPlain(c, p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c.result("OFAC SDN per-asset lists", time.Time{}), nil
}

func readPlain(c *collector, path string) error {
	asset, err := AssetOfPlainFile(path)
	if err != nil {
		return err
	}
	r, _, closeFn, err := open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer closeFn()
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t,;") {
			errs = append(errs, &PosError{File: path, Line: n, Msg: fmt.Sprintf("%q: want one address per line", line)})
			continue
		}
		if err := c.add(asset, line, "", "OFAC SDN digital currency address"); err != nil {
			errs = append(errs, &PosError{File: path, Line: n, Msg: err.Error(), Err: err})
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &PosError{File: path, Msg: "cannot read: " + err.Error(), Err: err})
	}
	return errors.Join(errs...)
}
