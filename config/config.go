// Package config reads keywatch's YAML configuration strictly: unknown keys
// are errors, every problem is reported (not only the first) with file, line
// and field, and secrets come from the environment and are never printed.
//
// The config package checks what it can see on its own (required fields,
// addresses, chain references). Packages that build from the configuration
// (policies, alerts) check their own parts and report through Config.Errorf,
// so their messages carry the same file and line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	// Instance names this process in heartbeats and logs (default: host name).
	Instance string   `yaml:"instance"`
	Store    Store    `yaml:"store"`
	NATS     NATS     `yaml:"nats"`
	API      API      `yaml:"api"`
	Holds    Holds    `yaml:"holds"`
	Chains   []Chain  `yaml:"chains"`
	Wallets  []Wallet `yaml:"wallets"`
	// Lists maps a list name to its files (plain or CSV). Relative paths are
	// resolved against the configuration file's folder.
	Lists map[string][]string `yaml:"lists"`
	// ListRefresh says how list files are watched for changes and for age.
	ListRefresh ListRefresh `yaml:"list_refresh"`
	// Intents names CSV files of approved withdrawals, registered at start
	// and on reload (see package intents).
	Intents  []string `yaml:"intents"`
	Policies []Policy `yaml:"policies"`
	Alerts   Alerts   `yaml:"alerts"`

	file string
	dir  string
	pos  map[string]yaml.Node
}

// Load reads and checks a configuration file. On failure the error is an
// Errors value listing every problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read configuration: %v", err)}}
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse reads a configuration from data; file names it in errors, and
// lookupEnv resolves *_env secrets.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	c := &Config{file: file, dir: filepath.Dir(file)}
	d := &decoder{file: file, pos: map[string]yaml.Node{}}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "configuration is empty"}}
		}
		return nil, Errors{yamlSyntaxError(file, err)}
	}
	d.decode(&root, reflectValue(c), "")
	c.pos = d.pos
	errs := append(d.errs, c.validate(lookupEnv)...)
	sortErrors(errs) // decoding and validation errors interleave by line
	if len(errs) > 0 {
		return c, errs
	}
	return c, nil
}

// File is the path the configuration was read from.
func (c *Config) File() string { return c.file }

// Path resolves a path named in the configuration against its folder.
// Absolute paths are kept; a relative path that exists relative to the
// working directory but not to the configuration's folder is taken from the
// working directory.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	rel := filepath.Join(c.dir, p)
	if _, err := os.Stat(rel); err == nil {
		return rel
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return rel
}

// Errorf makes an Error for the field at path (as in "policies[2].lists[0]"),
// with the line and column where that field was written.
func (c *Config) Errorf(path, format string, args ...any) *Error {
	e := &Error{File: c.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	e.Line, e.Column = c.Position(path)
	return e
}

// Position is the line and column where the field at path (or, when it was
// not written, its nearest written parent) is in the file; 0, 0 when none is.
func (c *Config) Position(path string) (line, column int) {
	for p := path; p != ""; p = parent(p) {
		if n, ok := c.pos[p]; ok {
			return n.Line, n.Column
		}
	}
	return 0, 0
}

// isSet reports whether the field at path was written with a value (a key
// left empty, or ~, counts as absent and takes the default).
func (c *Config) isSet(path string) bool {
	n, ok := c.pos[path]
	return ok && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func parent(p string) string {
	if i := strings.LastIndexAny(p, ".["); i > 0 {
		return p[:i]
	}
	return ""
}

// Chain returns the chain named name.
func (c *Config) Chain(name string) (Chain, bool) {
	for _, ch := range c.Chains {
		if ch.Name == name {
			return ch, true
		}
	}
	return Chain{}, false
}

// Wallet returns the wallet named name.
func (c *Config) Wallet(name string) (Wallet, bool) {
	for _, w := range c.Wallets {
		if w.Name == name {
			return w, true
		}
	}
	return Wallet{}, false
}

// Explorers maps each chain with an explorer template to it.
func (c *Config) Explorers() map[string]string {
	m := map[string]string{}
	for _, ch := range c.Chains {
		if ch.Explorer != "" {
			m[ch.Name] = ch.Explorer
		}
	}
	return m
}

// LogValue keeps secrets out of logs should a Config ever be logged.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("file", c.file), slog.Int("chains", len(c.Chains)),
		slog.Int("wallets", len(c.Wallets)), slog.Int("policies", len(c.Policies)))
}
