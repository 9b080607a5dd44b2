package api

import (
	"net/url"
	"strconv"
)

// QueryInt reads the whole-number query parameter name: def when absent, a
// *RequestError (400 naming the parameter) when it is not a whole number
// from min to max.
func QueryInt(q url.Values, name string, def, min, max int64) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		return 0, BadField(name, "want a whole number from %d to %d", min, max)
	}
	return n, nil
}
