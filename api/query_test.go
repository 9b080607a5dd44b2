package api_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/keywatch/keywatch/api"
)

func TestQueryInt(t *testing.T) {
	cases := []struct {
		query string
		want  int64
		bad   bool
	}{
		{"", 100, false},
		{"limit=1", 1, false},
		{"limit=1000", 1000, false},
		{"limit=0", 0, true},
		{"limit=1001", 0, true},
		{"limit=-5", 0, true},
		{"limit=ten", 0, true},
		{"limit=1.5", 0, true},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		n, err := api.QueryInt(q, "limit", 100, 1, 1000)
		var re *api.RequestError
		switch {
		case c.bad && (!errors.As(err, &re) || re.Status != 400 || re.Field != "limit" || re.Msg != "want a whole number from 1 to 1000"):
			t.Errorf("%q: %v, want a 400 naming limit", c.query, err)
		case !c.bad && (err != nil || n != c.want):
			t.Errorf("%q: %d, %v; want %d", c.query, n, err, c.want)
		}
	}
}
