package testenv

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
)

// AlertStream reads keywatch's alert stream from the start, as any sink
// would, and keeps every message for assertions.
type AlertStream struct {
	mu   sync.Mutex
	msgs []StreamedAlert
}

// StreamedAlert is one message of the alert stream.
type StreamedAlert struct {
	Subject string
	MsgID   string // the Nats-Msg-Id header
	Alert   alertmodel.Alert
	// Received is when the message reached this reader.
	Received time.Time
}

// ReadAlerts subscribes to the alert stream on the NATS server at url,
// waiting for the stream to exist, until the test ends.
func ReadAlerts(t testing.TB, url string) *AlertStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var cons jetstream.Consumer
	WaitFor(t, 0, func() bool {
		cons, err = js.OrderedConsumer(context.Background(), alerts.StreamName, jetstream.OrderedConsumerConfig{})
		return err == nil
	}, "the alert stream to exist")
	s := &AlertStream{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		received := time.Now()
		var a alertmodel.Alert
		if err := json.Unmarshal(m.Data(), &a); err != nil {
			t.Errorf("alert on %s is not JSON: %v", m.Subject(), err)
			return
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, StreamedAlert{Subject: m.Subject(), MsgID: m.Headers().Get("Nats-Msg-Id"), Alert: a, Received: received})
		s.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return s
}

// All returns the messages received so far, in stream order.
func (s *AlertStream) All() []StreamedAlert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StreamedAlert(nil), s.msgs...)
}

// Has reports whether an alert of policy with the given event status arrived
// for transaction tx (compared case-insensitively).
func (s *AlertStream) Has(tx, policy, eventStatus string) bool {
	for _, m := range s.All() {
		if strings.EqualFold(m.Alert.Event.Tx, tx) && m.Alert.Policy == policy && string(m.Alert.Event.Status) == eventStatus {
			return true
		}
	}
	return false
}

// ForTx returns the message ids of every alert about transaction tx.
func (s *AlertStream) ForTx(tx string) []string {
	var out []string
	for _, m := range s.All() {
		if strings.EqualFold(m.Alert.Event.Tx, tx) {
			out = append(out, m.MsgID)
		}
	}
	return out
}

// MsgIDCounts counts each Nats-Msg-Id in the stream: JetStream keeps one
// message per id inside its duplicate window, so a count above one means an
// alert was published twice.
func (s *AlertStream) MsgIDCounts() map[string]int {
	out := map[string]int{}
	for _, m := range s.All() {
		out[m.MsgID]++
	}
	return out
}
