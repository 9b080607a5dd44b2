package chains

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Amount is an exact decimal quantity of an asset: Units / 10^Decimals. Its
// JSON form is a decimal string in asset units ("1.5" ETH), never a float.
type Amount struct {
	Units    *big.Int // smallest units (wei, satoshi, token base units)
	Decimals int      // the asset's decimals
}

// NewAmount wraps a raw integer quantity.
func NewAmount(units *big.Int, decimals int) Amount {
	if units == nil {
		units = new(big.Int)
	}
	return Amount{Units: new(big.Int).Set(units), Decimals: decimals}
}

// ParseAmount reads a non-negative decimal string such as "12.345".
func ParseAmount(s string) (Amount, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Amount{}, fmt.Errorf("amount is empty")
	}
	if strings.HasPrefix(s, "-") {
		return Amount{}, fmt.Errorf("amount %q is negative", s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	digits := whole + frac
	for _, r := range digits {
		if r < '0' || r > '9' {
			return Amount{}, fmt.Errorf("amount %q is not a decimal number", s)
		}
	}
	u, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return Amount{}, fmt.Errorf("amount %q is not a decimal number", s)
	}
	return Amount{Units: u, Decimals: len(frac)}, nil
}

// IsZero reports whether the amount is zero (or unset).
func (a Amount) IsZero() bool { return a.Units == nil || a.Units.Sign() == 0 }

// Rat returns the amount as an exact rational in asset units.
func (a Amount) Rat() *big.Rat {
	if a.Units == nil {
		return new(big.Rat)
	}
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(a.Decimals)), nil)
	return new(big.Rat).SetFrac(a.Units, den)
}

// Float64 returns the nearest float64 in asset units (for USD estimates).
func (a Amount) Float64() float64 {
	f, _ := a.Rat().Float64()
	return f
}

// Cmp compares two amounts exactly, whatever their decimals.
func (a Amount) Cmp(b Amount) int { return a.Rat().Cmp(b.Rat()) }

// String prints the amount in asset units without trailing zeros.
func (a Amount) String() string {
	if a.Units == nil {
		return "0"
	}
	s := a.Units.String()
	if a.Decimals <= 0 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s) <= a.Decimals {
		s = strings.Repeat("0", a.Decimals-len(s)+1) + s
	}
	whole, frac := s[:len(s)-a.Decimals], strings.TrimRight(s[len(s)-a.Decimals:], "0")
	if neg {
		whole = "-" + whole
	}
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// MarshalJSON writes the decimal string.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON reads a decimal string (a bare JSON number is accepted too).
func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n json.Number
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("amount: want a decimal string: %w", err)
		}
		s = n.String()
	}
	v, err := ParseAmount(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
