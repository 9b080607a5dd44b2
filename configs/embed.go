// Package configs holds keywatch's example and demo configuration and its
// small fact lists. The demo reads them from the binary, so `keywatch demo`
// needs no files on disk.
package configs

import "embed"

// Files holds demo.yaml (with the demo btcd's password file),
// keywatch.example.yaml, lists/ and intents/.
//
//go:embed demo.yaml demo-btcd.password keywatch.example.yaml lists/*.csv intents/*.csv
var Files embed.FS
