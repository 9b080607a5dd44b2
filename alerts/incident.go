package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
)

// Member is one alert of an incident.
type Member struct {
	Alert alertmodel.Alert `json:"alert"`
	// Sent is the status last delivered for it ("" when none was).
	Sent alertmodel.Status `json:"sent,omitempty"`
	// Silenced is the silence that muted it at the last notification.
	Silenced string `json:"silenced,omitempty"`
}

// muted reports whether the member stays out of notifications: silenced
// before it was ever sent firing. (One sent firing is still sent, so that
// its resolution reaches whoever heard of it.)
func (m *Member) muted() bool {
	return m.Silenced != "" && m.Sent != alertmodel.Firing
}

// Incident is what one sink made of a group of alerts: the alerts of one
// policy on one wallet that arrived within the group window, sent together
// and resolved together.
type Incident struct {
	ID       string             `json:"id"` // the first alert's key
	Group    string             `json:"group"`
	Opened   time.Time          `json:"opened"`
	Notified bool               `json:"notified"` // something went out
	LastSent time.Time          `json:"last_sent"`
	Order    []string           `json:"order"` // member keys in arrival order
	Members  map[string]*Member `json:"members"`
	// RepeatFailures counts failed repeats; RetryAt delays the next try.
	RepeatFailures int       `json:"repeat_failures,omitempty"`
	RetryAt        time.Time `json:"retry_at"`
}

func (inc *Incident) allResolved() bool {
	for _, m := range inc.Members {
		if m.Alert.Status != alertmodel.Resolved {
			return false
		}
	}
	return true
}

func (inc *Incident) memberAlert(key string) alertmodel.Alert {
	if m, ok := inc.Members[key]; ok {
		return m.Alert
	}
	return alertmodel.Alert{ID: key}
}

// Incidents reads the open incidents sink keeps in st, oldest first.
func Incidents(ctx context.Context, st store.Store, sink string) ([]Incident, error) {
	all, err := st.HGetAll(ctx, incidentsKey(sink))
	if err != nil {
		return nil, err
	}
	out := make([]Incident, 0, len(all))
	for id, b := range all {
		inc, err := incidentRecord(st, sink, id).Decode(b)
		if err != nil {
			return nil, err
		}
		out = append(out, inc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Opened.Before(out[j].Opened) })
	return out, nil
}

// incidentRecord is the codec of incident id of sink, a field of the hash
// at incidentsKey(sink): "incident <id> of sink <sink> is corrupt: ...".
func incidentRecord(st store.Store, sink, id string) store.Records[Incident] {
	return store.NewRecords[Incident](st, fmt.Sprintf("incident %s of sink %s", id, sink))
}

// incidentsKey is the hash of sink's open incidents, by id.
func incidentsKey(sink string) string { return "alerts:sink:" + sink + ":incidents" }

// doneFor is how long a closed incident's alerts are remembered, so a late
// redelivery sends nothing.
const doneFor = 30 * 24 * time.Hour

// incidentState is a sink's open incidents, indexed in memory for the
// dispatcher and written through to the store, where the next run, or
// another instance taking the consumer over, finds them. Alerts of closed
// incidents are remembered as done for doneFor.
type incidentState struct {
	st   store.Store
	sink string
	log  *slog.Logger

	byID    map[string]*Incident
	byAlert map[string]string // member key -> incident id
	newest  map[string]string // group key -> its newest incident's id
	// version is the state version this dispatcher last wrote or read: when
	// the store holds another, another instance changed the state.
	version string
	nonce   string
	writes  int
}

func newIncidentState(st store.Store, sink string, log *slog.Logger) *incidentState {
	return &incidentState{st: st, sink: sink, log: log, nonce: fmt.Sprintf("%x", rand.Uint64()),
		byID: map[string]*Incident{}, byAlert: map[string]string{}, newest: map[string]string{}}
}

func (s *incidentState) key() string             { return incidentsKey(s.sink) }
func (s *incidentState) doneKey(k string) string { return "alerts:sink:" + s.sink + ":done:" + k }
func (s *incidentState) versionKey() string      { return "alerts:sink:" + s.sink + ":version" }

// load reads the incidents another run (or instance) left. A corrupt
// incident is dropped (and logged), not the whole state.
func (s *incidentState) load(ctx context.Context) error {
	all, err := s.st.HGetAll(ctx, s.key())
	if err != nil {
		return err
	}
	s.byID, s.byAlert, s.newest = map[string]*Incident{}, map[string]string{}, map[string]string{}
	for id, b := range all {
		inc, err := incidentRecord(s.st, s.sink, id).Decode(b)
		if err != nil {
			s.log.Error("sink state of an incident is corrupt; dropping it", "incident", id, "err", err)
			continue
		}
		if inc.Members == nil {
			inc.Members = map[string]*Member{}
		}
		s.byID[id] = &inc
		if n, ok := s.newest[inc.Group]; !ok || s.byID[n].Opened.Before(inc.Opened) {
			s.newest[inc.Group] = id
		}
		for k := range inc.Members {
			s.byAlert[k] = id
		}
	}
	return nil
}

// stored is the state version in the store ("" when none was written).
func (s *incidentState) stored(ctx context.Context) (string, error) {
	v, err := s.st.Get(ctx, s.versionKey())
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// save writes the incident.
func (s *incidentState) save(ctx context.Context, inc *Incident) error {
	if err := incidentRecord(s.st, s.sink, inc.ID).HPut(ctx, s.key(), inc.ID, *inc); err != nil {
		return err
	}
	return s.bump(ctx)
}

// keep writes the incident, or closes it once every alert resolved.
func (s *incidentState) keep(ctx context.Context, inc *Incident) error {
	if inc.allResolved() {
		return s.close(ctx, inc)
	}
	return s.save(ctx, inc)
}

// bump records that this dispatcher changed the state.
func (s *incidentState) bump(ctx context.Context) error {
	s.writes++
	s.version = fmt.Sprintf("%s:%d", s.nonce, s.writes)
	return s.st.Set(ctx, s.versionKey(), []byte(s.version), 0)
}

// done reports whether the alert's incident was closed before.
func (s *incidentState) done(ctx context.Context, key string) (bool, error) {
	_, err := s.st.Get(ctx, s.doneKey(key))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// close forgets a settled incident and remembers its alerts as done.
func (s *incidentState) close(ctx context.Context, inc *Incident) error {
	for k := range inc.Members {
		if err := s.st.Set(ctx, s.doneKey(k), []byte(inc.ID), doneFor); err != nil {
			return err
		}
		delete(s.byAlert, k)
	}
	return s.remove(ctx, inc)
}

// remove forgets the incident, without remembering its alerts.
func (s *incidentState) remove(ctx context.Context, inc *Incident) error {
	delete(s.byID, inc.ID)
	if err := s.st.HDel(ctx, s.key(), inc.ID); err != nil {
		return err
	}
	return s.bump(ctx)
}

// drop removes a member that was dead-lettered and never delivered.
func (s *incidentState) drop(inc *Incident, key string) {
	m, ok := inc.Members[key]
	if !ok || m.Sent != "" {
		return
	}
	delete(inc.Members, key)
	delete(s.byAlert, key)
	for i, k := range inc.Order {
		if k == key {
			inc.Order = append(inc.Order[:i:i], inc.Order[i+1:]...)
			break
		}
	}
}
