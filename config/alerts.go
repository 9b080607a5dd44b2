package config

import (
	"fmt"
	"time"
)

// Alerts configures where alerts go after NATS, and how keywatch watches
// itself.
type Alerts struct {
	Sinks     []Sink    `yaml:"sinks"`
	Heartbeat Heartbeat `yaml:"heartbeat"`
	Silences  Silences  `yaml:"silences"`
}

// Heartbeat configures the dead man's switch: every instance publishes a
// heartbeat on <prefix>.heartbeat.<instance>; every other instance, and
// `keywatch watchdog`, pages when one stops.
type Heartbeat struct {
	// Interval between heartbeats (default 5s).
	Interval Duration `yaml:"interval"`
	// Timeout after which a silent instance pages (default 30s).
	Timeout Duration `yaml:"timeout"`
	// Expect names instances that must be heard from: one that never
	// published a heartbeat pages too (default: only instances seen once).
	Expect []string `yaml:"expect"`
}

// Silences bounds the silences operators may create.
type Silences struct {
	// MaxDuration is the longest silence accepted (default 168h).
	MaxDuration Duration `yaml:"max_duration"`
}

// validate fills in the defaults and checks the heartbeat, the silences and
// the sinks; known holds the chains, wallets and policies sinks may match.
func (a *Alerts) validate(v *checker, known names) {
	a.Heartbeat.validate(v)
	a.Silences.validate(v)
	validateSinks(v, a.Sinks, known)
}

// validate defaults a beat to every 5s and the timeout to 30s, and checks
// them and the expected instances' names.
func (hb *Heartbeat) validate(v *checker) {
	if hb.Interval == 0 {
		hb.Interval = Duration(5 * time.Second)
	}
	if hb.Timeout == 0 {
		hb.Timeout = Duration(30 * time.Second)
	}

	if hb.Interval < Duration(100*time.Millisecond) {
		v.add("alerts.heartbeat.interval", "must be at least 100ms")
	}
	if hb.Timeout < 2*hb.Interval {
		v.add("alerts.heartbeat.timeout", "must be at least twice the interval (%s), or every missed beat pages", hb.Interval)
	}
	for i, name := range hb.Expect {
		if !nameRe.MatchString(name) {
			v.add(fmt.Sprintf("alerts.heartbeat.expect[%d]", i), "%q is not an instance name (lowercase letters, digits, - and _)", name)
		}
	}
}

// validate defaults the longest silence to 168h and checks it.
func (s *Silences) validate(v *checker) {
	if s.MaxDuration == 0 {
		s.MaxDuration = Duration(7 * 24 * time.Hour)
	}
	if s.MaxDuration < 0 {
		v.add("alerts.silences.max_duration", "must be positive")
	}
}
