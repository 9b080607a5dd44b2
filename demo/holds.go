package demo

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/holds"
)

// The demo operators' tokens: configs/demo.yaml holds their sha256. They
// are for the demo only; a real configuration has no token in any file.
var demoOperators = []struct{ name, token string }{
	{"ana", "demo-ana-7f3c91d2e4b8"},
	{"ben", "demo-ben-2a6e58c0f1d9"},
}

// holdScene shows the hold the mixer deposit (tx) caused, as an operator
// sees it through the API, and says where to approve it.
func (s *story) holdScene(n int, tx common.Hash) error {
	s.scene(n, "The stolen funds reached the mixer: keywatch held the wallet they came from before the alert went out;\n   the hold waits for two treasury operators.")
	c, err := api.NewClient(s.api, demoOperators[0].token)
	if err != nil {
		return err
	}
	var list struct {
		Holds []holds.Hold `json:"holds"`
	}
	if err := c.Do(s.ctx, "GET", "/v1/holds?"+url.Values{"status": {"held"}}.Encode(), nil, &list); err != nil {
		return fmt.Errorf("list holds: %w", err)
	}
	var h *holds.Hold
	for i := range list.Holds {
		for _, a := range list.Holds[i].Alerts {
			if strings.EqualFold(a.Event.Tx, tx.Hex()) {
				h = &list.Holds[i]
			}
		}
	}
	if h == nil {
		return fmt.Errorf("no hold for the mixer deposit %s among %d held holds", tx.Hex(), len(list.Holds))
	}
	s.out.printf("   HOLD %s: %s, %d of %d approvals, expires %s\n", h.ID, h.Status, len(h.Approvals), h.ApprovalsRequired, h.ExpiresAt.Format("2006-01-02 15:04 MST"))
	if len(h.Owners) > 0 {
		s.out.printf("        frozen keys: %s (owner %s, who may not approve)\n", strings.Join(h.Wallets, ", "), strings.Join(h.Owners, ", "))
	} else {
		s.out.printf("        frozen keys: %s\n", strings.Join(h.Wallets, ", "))
	}
	for _, r := range h.Reasons {
		s.out.printf("        - %s\n", r)
	}
	s.out.printf("   Operator console: %s/\n", s.api)
	s.out.printf("   Demo operators (approver role; demo-only tokens):\n")
	for _, op := range demoOperators {
		s.out.printf("        %-4s %s\n", op.name, op.token)
	}
	s.out.printf("   Or from a shell: KEYWATCH_TOKEN=%s keywatch holds approve %s -api %s\n", demoOperators[0].token, h.ID, s.api)
	return nil
}
