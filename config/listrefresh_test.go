package config_test

import (
	"testing"
	"time"

	"github.com/keywatch/keywatch/config"
)

func TestListRefresh(t *testing.T) {
	const lists = "lists:\n  sanctioned: [s.csv]\n  mixers: [m.csv]\n"
	tests := []struct {
		name, refresh string
		want          []string
		interval      time.Duration
		maxAge        map[string]time.Duration // expected MaxAgeOf
	}{
		{
			name: "defaults", refresh: "",
			interval: time.Minute, maxAge: map[string]time.Duration{"sanctioned": 0, "mixers": 0},
		},
		{
			name: "a global limit and one per list", refresh: "list_refresh:\n  interval: 30s\n  max_age: 720h\n  max_age_per_list: {sanctioned: 48h, mixers: 0s}\n",
			interval: 30 * time.Second, maxAge: map[string]time.Duration{"sanctioned": 48 * time.Hour, "mixers": 0, "other": 720 * time.Hour},
		},
		{
			name: "checks only on SIGHUP", refresh: "list_refresh:\n  interval: 0s\n",
			interval: 0,
		},
		{
			name: "mistakes", refresh: "list_refresh:\n  interval: 10ms\n  max_age: -1h\n  max_age_per_list:\n    sanctiond: 48h\n    mixers: -5m\n  max_ages: 1h\n",
			want: []string{
				`kw.yaml:28:13: list_refresh.interval: 10ms is too short: at least 100ms (0s checks only on SIGHUP)`,
				`kw.yaml:29:12: list_refresh.max_age: must not be negative`,
				`kw.yaml:31:16: list_refresh.max_age_per_list.sanctiond: no list named "sanctiond" under lists: (did you mean "sanctioned"?)`,
				`kw.yaml:32:13: list_refresh.max_age_per_list.mixers: must not be negative`,
				`kw.yaml:33:3: list_refresh.max_ages: unknown key "max_ages" (did you mean "max_age"?)`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("kw.yaml", []byte(base+lists+tc.refresh), noEnv)
			checkErrors(t, err, tc.want)
			if len(tc.want) > 0 {
				return
			}
			if got := cfg.ListRefresh.Interval.D(); got != tc.interval {
				t.Errorf("interval %s, want %s", got, tc.interval)
			}
			for name, want := range tc.maxAge {
				if got := cfg.ListRefresh.MaxAgeOf(name); got != want {
					t.Errorf("MaxAgeOf(%s) = %s, want %s", name, got, want)
				}
			}
		})
	}
}
