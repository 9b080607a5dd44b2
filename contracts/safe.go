package contracts

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The real Safe contracts, as their npm packages publish them compiled
// (@gnosis.pm/safe-contracts 1.3.0, @safe-global/safe-contracts 1.4.1), and
// the addresses of Safe's own library deployments
// (@safe-global/safe-deployments). safe/extract.sh writes them; see
// README.md beside this file.
//
//go:embed safe/1.3.0/*.json safe/1.4.1/*.json safe/deployments.json
var safeFiles embed.FS

// SafeRelease names the contracts of one Safe release in the embedded
// artifacts.
type SafeRelease struct {
	// Version is the release, as the singleton's VERSION() says it.
	Version string
	// Package and PackageVersion are the npm package the artifacts come from.
	Package, PackageVersion string
	// Singleton, SingletonL2 and ProxyFactory are contract names for
	// LoadSafe (the L2 singleton also logs every execution's parameters).
	Singleton, SingletonL2, ProxyFactory string
}

// Safe libraries of every release, for LoadSafe.
const (
	SafeMultiSend         = "MultiSend"
	SafeMultiSendCallOnly = "MultiSendCallOnly"
	SafeSignMessageLib    = "SignMessageLib"
)

// SafeReleases are the embedded Safe releases, oldest first.
func SafeReleases() []SafeRelease {
	return []SafeRelease{
		{Version: "1.3.0", Package: "@gnosis.pm/safe-contracts", PackageVersion: "1.3.0",
			Singleton: "GnosisSafe", SingletonL2: "GnosisSafeL2", ProxyFactory: "GnosisSafeProxyFactory"},
		{Version: "1.4.1", Package: "@safe-global/safe-contracts", PackageVersion: "1.4.1",
			Singleton: "Safe", SingletonL2: "SafeL2", ProxyFactory: "SafeProxyFactory"},
	}
}

// safeArtifactFile is the JSON layout extract.js writes.
type safeArtifactFile struct {
	Contract         string          `json:"contract"`
	Package          string          `json:"package"`
	PackageVersion   string          `json:"package_version"`
	Source           string          `json:"source"`
	ABI              json.RawMessage `json:"abi"`
	Bytecode         string          `json:"bytecode"`
	DeployedBytecode string          `json:"deployed_bytecode"`
}

// LoadSafe parses the embedded artifact of the named contract of a Safe
// release ("1.3.0", "1.4.1"): the package's own compiled bytecode.
func LoadSafe(release, name string) (*Artifact, error) {
	raw, err := safeFiles.ReadFile(path.Join("safe", release, name+".json"))
	if err != nil {
		var known []string
		for _, r := range SafeReleases() {
			known = append(known, r.Version)
		}
		return nil, fmt.Errorf("contracts: no Safe %s artifact %q (releases: %s)", release, name, strings.Join(known, ", "))
	}
	var f safeArtifactFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("contracts: Safe %s %s: decoding artifact: %w", release, name, err)
	}
	if f.Contract != name || f.PackageVersion != release {
		return nil, fmt.Errorf("contracts: Safe %s %s: artifact is %s of %s@%s", release, name, f.Contract, f.Package, f.PackageVersion)
	}
	parsed, err := abi.JSON(bytes.NewReader(f.ABI))
	if err != nil {
		return nil, fmt.Errorf("contracts: Safe %s %s: parsing ABI: %w", release, name, err)
	}
	code, err := hexutil.Decode(f.Bytecode)
	if err != nil {
		return nil, fmt.Errorf("contracts: Safe %s %s: decoding bytecode: %w", release, name, err)
	}
	runtime, err := hexutil.Decode(f.DeployedBytecode)
	if err != nil {
		return nil, fmt.Errorf("contracts: Safe %s %s: decoding deployed bytecode: %w", release, name, err)
	}
	return &Artifact{Name: name, ABI: parsed, Bytecode: code, DeployedBytecode: runtime}, nil
}

// SafeDeployment is one of Safe's own deployments of a library, as
// @safe-global/safe-deployments lists it.
type SafeDeployment struct {
	Version  string         `json:"version"`
	Contract string         `json:"contract"`
	Kind     string         `json:"deployment"` // canonical or eip155
	Address  common.Address `json:"address"`
	CodeHash common.Hash    `json:"code_hash"`
}

// SafeDeployments returns the library deployments recorded from
// @safe-global/safe-deployments, and that package's version.
func SafeDeployments() ([]SafeDeployment, string, error) {
	raw, err := safeFiles.ReadFile("safe/deployments.json")
	if err != nil {
		return nil, "", fmt.Errorf("contracts: %w", err)
	}
	var f struct {
		Package        string           `json:"package"`
		PackageVersion string           `json:"package_version"`
		Deployments    []SafeDeployment `json:"deployments"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, "", fmt.Errorf("contracts: safe/deployments.json: %w", err)
	}
	return slices.Clip(f.Deployments), f.PackageVersion, nil
}
