package main

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/alerts/silences"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/store/memory"
)

func silencesAPI(t *testing.T) string {
	t.Helper()
	auth, err := api.NewAuthenticator([]config.Token{
		{Name: "olga", SHA256: api.HashToken("olga-token"), Roles: []string{"operator"}},
		{Name: "victor", SHA256: api.HashToken("victor-token"), Roles: []string{"viewer"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(auth, nil)
	silences.New(silences.Options{Store: memory.New(), Known: silences.Known{Wallets: []string{"treasury-hot"}}}).Register(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestSilencesCommand(t *testing.T) {
	url := silencesAPI(t)
	t.Setenv("KEYWATCH_API", url)
	t.Setenv("KEYWATCH_TOKEN", "")
	if code, _, errs := runCmd(t, "silences", "list"); code != 1 || !strings.Contains(errs, "set KEYWATCH_TOKEN") {
		t.Fatalf("without a token: exit %d, %q", code, errs)
	}
	t.Setenv("KEYWATCH_TOKEN", "victor-token")
	if code, _, errs := runCmd(t, "silences", "add", "-wallet", "treasury-hot", "-for", "2h", "-comment", "x"); code != 1 || !strings.Contains(errs, "403 Forbidden: token victor lacks the operator role") {
		t.Fatalf("a viewer adding: exit %d, %q", code, errs)
	}
	t.Setenv("KEYWATCH_TOKEN", "olga-token")
	code, out, errs := runCmd(t, "silences", "add", "-wallet", "treasury-hot", "-policy", "big-outflow", "-for", "2h", "-comment", "moving funds to cold storage")
	m := regexp.MustCompile(`^silence (sil-[0-9a-f]{16}) created by olga: mutes wallet=treasury-hot policy=big-outflow until \S+Z\n$`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("add: exit %d, %q %q", code, out, errs)
	}
	id := m[1]
	if code, _, errs := runCmd(t, "silences", "add", "-wallet", "nobody", "-for", "2h", "-comment", "x"); code != 1 || !strings.Contains(errs, `-wallet: "nobody" is not known`) {
		t.Fatalf("unknown wallet: exit %d, %q", code, errs)
	}
	if code, _, errs := runCmd(t, "silences", "add", "-wallet", "treasury-hot", "-comment", "x"); code != 1 || !strings.Contains(errs, "-for: required") {
		t.Fatalf("no duration: exit %d, %q", code, errs)
	}
	code, out, _ = runCmd(t, "silences", "list", "-api", url)
	if code != 0 || !strings.Contains(out, "ID") || !regexp.MustCompile(id+`\s+active\s+wallet=treasury-hot policy=big-outflow\s+\S+\s+olga\s+moving funds to cold storage`).MatchString(out) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	code, out, errs = runCmd(t, "silences", "expire", id)
	if code != 0 || out != "silence "+id+" expired by olga; alerts matching wallet=treasury-hot policy=big-outflow are sent again\n" {
		t.Fatalf("expire: exit %d, %q %q", code, out, errs)
	}
	if code, out, _ := runCmd(t, "silences", "list"); code != 0 || out != "no silences\n" {
		t.Fatalf("list after expiry: %q", out)
	}
	if code, out, _ := runCmd(t, "silences", "list", "-all"); code != 0 || !strings.Contains(out, "expired by olga") {
		t.Fatalf("list -all: %q", out)
	}
	if code, _, errs := runCmd(t, "silences", "expire", id); code != 1 || !strings.Contains(errs, "409 Conflict") {
		t.Fatalf("expire twice: exit %d, %q", code, errs)
	}
	if code, _, _ := runCmd(t, "silences", "mute"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
}
