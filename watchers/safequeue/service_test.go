package safequeue_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/internal/safeservice"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/watchers/safequeue"
)

// TestServiceReadsBothVersionsOfFields: the v1 serializer sends nonce,
// safeTxGas and baseGas as numbers, the v2 one as strings, and the Safe
// info's nonce has been both: each is read the same.
func TestServiceReadsBothVersionsOfFields(t *testing.T) {
	ctx := context.Background()
	safeAddr := common.HexToAddress("0x1Db92e2EeBC8E0c075a02BeA49a2935BcD2dFCF4")
	srv := safeservice.New(t, "")
	v1, hash := safeservice.Record(t, safeAddr, simchain.ChainID, "1.3.0", safeservice.Proposal{To: attacker, Op: safe.DelegateCall, Nonce: 7,
		Data: common.FromHex("0xa9059cbb"), Signers: []*ecdsa.PrivateKey{owner1}, DataDecoded: map[string]any{"method": "transfer", "parameters": []any{}}})
	v2, _ := safeservice.Record(t, safeAddr, simchain.ChainID, "1.3.0", safeservice.Proposal{To: attacker, Nonce: 8})
	v2["nonce"], v2["safeTxGas"], v2["baseGas"] = "8", "0", "0"
	srv.Add(safeAddr, v1, v2)
	svc, err := safequeue.NewService(srv.URL(), safequeue.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	txs, err := svc.Queue(ctx, safeAddr, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(txs) != 2 || txs[0].Nonce != 7 || txs[1].Nonce != 8 || txs[1].Payload.SafeTxGas.Sign() != 0 {
		t.Fatalf("transactions %+v", txs)
	}
	a := txs[0]
	if a.Hash != hash || a.Payload.Operation != safe.DelegateCall || a.Payload.To != attacker || a.Method != "transfer" ||
		len(a.Confirmations) != 1 || a.Confirmations[0].Owner != addrOf(owner1) || a.Confirmations[0].Type != "EOA" || a.Required != 3 || a.Executed {
		t.Errorf("transaction %+v", a)
	}
	if got, err := safe.Hash(simchain.ChainID, safeAddr, "1.3.0", a.Payload); err != nil || got != hash {
		t.Errorf("payload hashes to %s (%v), want %s", got.Hex(), err, hash.Hex())
	}

	srv.SetInfo(safeAddr, 7, 2, []common.Address{addrOf(owner1), addrOf(owner2)}, "1.3.0+L2")
	info, err := svc.Info(ctx, safeAddr)
	if err != nil || info.Nonce != 7 || info.Threshold != 2 || len(info.Owners) != 2 || info.Version != "1.3.0+L2" {
		t.Fatalf("info %+v, %v", info, err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"address": "` + safeAddr.Hex() + `", "nonce": 7, "threshold": 2, "owners": [], "version": null}`, ""},
		{`{"address": "` + safeAddr.Hex() + `", "nonce": "7", "threshold": 2, "owners": ["0x12"]}`, `owners[0]: "0x12" is not an address`},
		{`{"address": "` + safeAddr.Hex() + `", "threshold": 2}`, "nonce: missing"},
		{`[1, 2]`, "want an object, got an array"},
	} {
		srv.SetOverride(func(w http.ResponseWriter, r *http.Request) bool {
			w.Write([]byte(tc.body))
			return true
		})
		_, err := svc.Info(ctx, safeAddr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case tc.want != "" && (!errors.Is(err, safequeue.ErrMalformed) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.body, err, tc.want)
		}
	}
}

// TestServiceRefusesABadBaseURL: the base URL is checked before any
// request.
func TestServiceRefusesABadBaseURL(t *testing.T) {
	for _, u := range []string{"safe.global", "ftp://safe.global", "https://user:pw@safe.global", "https://"} {
		if _, err := safequeue.NewService(u, safequeue.ServiceOptions{}); err == nil {
			t.Errorf("%s accepted", u)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("error %q shows the password", err)
		}
	}
}
