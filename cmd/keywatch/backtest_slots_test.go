package main

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// TestBacktestRecordedFilesLeaveSlotsUnchecked: recorded responses hold no
// state and no traces, so a replay from them reads no storage slot and no
// internal movement, and says so.
func TestBacktestRecordedFilesLeaveSlotsUnchecked(t *testing.T) {
	dir := testenv.Data(t, "eth_fixtures/ethereum-etl")
	cfg := writeConfig(t, `store: {memory: true}
nats: {url: "nats://127.0.0.1:4222"}
chains:
  - {name: eth, kind: ethereum, rpc: [https://eth.example.net]}
wallets:
  - {name: desk, chain: eth, address: "0x1b63142628311395ceafeea5667e7c9026c862ca", role: hot}
  - {name: vault-proxy, chain: eth, address: "0x3333333333333333333333333333333333333333", role: contract}
policies:
  - {name: admin-change, detector: admin-change, severity: critical}
`)
	code, out, errs := runCmd(t, "backtest", "-config", cfg, "-chain", "eth", "-files", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	for _, want := range []string{
		"not checked: the storage slots of 1 Safe and contract wallets (recorded responses hold no state)",
		"not checked: internal value movements (recorded responses hold no traces; traces: auto is read as off for this replay)",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errs)
		}
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("alerts: %s", out)
	}
}

// TestBacktestGethSlotChange: replayed from geth --dev, whose debug API
// names the transaction, a proxy upgrade is two admin-change alerts: the
// Upgraded log and the implementation slot's change, both on the upgrade's
// transaction and signed by the admin key.
func TestBacktestGethSlotChange(t *testing.T) {
	ctx := context.Background()
	g := testenv.Geth(t, testenv.GethDevPeriod(0))
	admin := simchain.Addr("admin")
	if err := g.Fund(ctx, admin, simchain.Ether(10)); err != nil {
		t.Fatal(err)
	}
	ec, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	mined := func(tx *types.Transaction, err error) *testenv.Receipt {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		r, err := g.WaitForReceipt(ctx, tx.Hash())
		if err != nil || r.Status != 1 {
			t.Fatalf("tx %s: %+v %v", tx.Hash().Hex(), r, err)
		}
		return r
	}
	deploy := func(name string, args ...any) common.Address {
		t.Helper()
		a, tx, err := contracts.Deploy(ctx, ec, simchain.Key("admin"), simchain.ChainID, name, args...)
		mined(tx, err)
		return a
	}
	impl, v2 := deploy(contracts.NameVault), deploy(contracts.NameVaultV2)
	proxy := deploy(contracts.NameUpgradeableProxy, impl, admin)
	proxyArt, err := contracts.Load(contracts.NameUpgradeableProxy)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proxyArt.Pack("upgradeTo", v2)
	if err != nil {
		t.Fatal(err)
	}
	r := mined(contracts.Transact(ctx, ec, simchain.Key("admin"), simchain.ChainID, &proxy, new(big.Int), data))
	cfg := writeConfig(t, fmt.Sprintf(`store: {memory: true}
nats: {url: "nats://127.0.0.1:4222"}
chains:
  - {name: dev, kind: ethereum, rpc: [%q], chain_id: 1337}
wallets:
  - {name: vault-proxy, chain: dev, address: %q, role: contract}
policies:
  - {name: admin-change, detector: admin-change, severity: critical}
`, g.HTTPURL, proxy.Hex()))
	code, out, errs := runCmd(t, "backtest", "-config", cfg, "-chain", "dev", "-from", fmt.Sprint(uint64(r.BlockNumber)), "-to", fmt.Sprint(uint64(r.BlockNumber)))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	lower := func(a common.Address) string { return strings.ToLower(a.Hex()) }
	var got []string
	for _, a := range alertLines(t, out) {
		e := a.Event
		got = append(got, fmt.Sprintf("%s %s %s %s %s", a.ID, e.Tx, e.Initiator, e.Detail["change"], e.Counterparty))
	}
	want := []string{
		fmt.Sprintf("dev:%s:0:admin-change %s %s  %s", r.TxHash.Hex(), r.TxHash.Hex(), lower(admin), lower(v2)),
		fmt.Sprintf("dev:%s:slot:%s:%s:admin-change %s %s slot %s", r.TxHash.Hex(), lower(proxy), ethereum.SlotImplementation.Hex(), r.TxHash.Hex(), lower(admin), lower(v2)),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
