package config

import (
	"net/url"
	"regexp"
	"time"
)

var subjectRe = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// NATS says where alerts are published.
type NATS struct {
	URL           string `yaml:"url"`
	Embedded      bool   `yaml:"embedded"`
	DataDir       string `yaml:"data_dir"`
	SubjectPrefix string `yaml:"subject_prefix"`
	// CredsFile is a NATS credentials file (JWT + nkey seed), when the server
	// requires one.
	CredsFile string `yaml:"creds_file"`
	// DuplicateWindow is how long JetStream remembers message ids (default 24h).
	DuplicateWindow Duration `yaml:"duplicate_window"`
	// MaxAge bounds how long alerts are kept in the stream (default 720h).
	MaxAge Duration `yaml:"max_age"`
}

// validate fills in the defaults (subject prefix "keywatch", the local URL
// for an embedded server, the stream's duplicate window and maximum age) and
// checks the server's URL and the subject prefix.
func (n *NATS) validate(v *checker) {
	if n.SubjectPrefix == "" {
		n.SubjectPrefix = "keywatch"
	}
	if n.URL == "" && n.Embedded {
		n.URL = "nats://127.0.0.1:4222"
	}
	if n.DuplicateWindow == 0 {
		n.DuplicateWindow = Duration(24 * time.Hour)
	}
	if n.MaxAge == 0 {
		n.MaxAge = Duration(30 * 24 * time.Hour)
	}

	if !n.Embedded && n.URL == "" {
		v.add("nats.url", "required (or embedded: true to run NATS in-process)")
	}
	if n.URL != "" {
		if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			v.add("nats.url", "want a nats:// or tls:// URL with a host")
		} else if _, has := u.User.Password(); has {
			v.add("nats.url", "the URL carries a password: use creds_file instead")
		}
	}
	if n.Embedded && n.DataDir == "" {
		v.add("nats.data_dir", "required with embedded: true (JetStream keeps alerts on disk there)")
	}
	if !subjectRe.MatchString(n.SubjectPrefix) {
		v.add("nats.subject_prefix", "%q is not a NATS subject prefix (letters, digits, - and _, separated by dots)", n.SubjectPrefix)
	}
}
