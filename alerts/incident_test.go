package alerts

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
)

// A corrupt incident record: Incidents reports it, naming it; a sink
// starting over the state drops it and keeps the others.
func TestACorruptIncidentIsReportedAndDroppedOnLoad(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s := newIncidentState(st, "chat", slog.New(slog.DiscardHandler))
	good := incidentOf(member("0x01", alertmodel.Firing, alertmodel.Firing))
	if err := s.save(ctx, good); err != nil {
		t.Fatal(err)
	}
	if err := st.HSet(ctx, incidentsKey("chat"), "eth:0x02:3:mixer-counterparty", []byte(`{"id": "eth:0x02`)); err != nil {
		t.Fatal(err)
	}
	_, err := Incidents(ctx, st, "chat")
	if !errors.Is(err, store.ErrCorrupt) || !strings.HasPrefix(err.Error(), "incident eth:0x02:3:mixer-counterparty of sink chat is corrupt") {
		t.Fatalf("Incidents over a corrupt record: %v; want it corrupt, naming the incident", err)
	}
	next := newIncidentState(st, "chat", slog.New(slog.DiscardHandler))
	if err := next.load(ctx); err != nil {
		t.Fatal(err)
	}
	if len(next.byID) != 1 || next.byID[good.ID] == nil || next.byAlert[good.Order[0]] != good.ID || next.newest[good.Group] != good.ID {
		t.Fatalf("loaded %v (alerts %v, newest %v); want only %s", next.byID, next.byAlert, next.newest, good.ID)
	}
}
