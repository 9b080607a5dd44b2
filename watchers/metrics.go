package watchers

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a follower's Prometheus series, and what it last knew of its
// chain for heartbeats (Status); nil disables them.
type Metrics struct {
	headHeight, processedHeight, lag *prometheus.GaugeVec
	eventsTotal, errorsTotal, reorgs *prometheus.CounterVec
	lastProgress, following          *prometheus.GaugeVec

	now    func() time.Time
	mu     sync.Mutex
	status map[string]*ChainStatus
}

// ChainStatus is what a watcher last knew about its chain. Zero times mean
// "not since the process started".
type ChainStatus struct {
	Chain     string
	Head      uint64 // newest block the node reported
	Processed uint64 // last block processed into events
	// HeadAdvancedAt is when the node last reported a higher head.
	HeadAdvancedAt time.Time
	// ProcessedAt is when processing last advanced or was caught up.
	ProcessedAt time.Time
	// LastOKAt is when the node last answered.
	LastOKAt time.Time
	// Errors counts failed passes since the last good one.
	Errors uint64
	// Standby says another instance holds the chain's lease and follows it:
	// FollowedBy names it. FollowingSince is when this instance last took
	// the chain over (zero: it has followed it since it started, or never).
	Standby        bool
	FollowedBy     string
	FollowingSince time.Time
}

// Lag is how many blocks processing is behind the head.
func (s ChainStatus) Lag() uint64 {
	if s.Head > s.Processed {
		return s.Head - s.Processed
	}
	return 0
}

// Status returns what each watcher last knew, by chain name.
func (m *Metrics) Status() []ChainStatus {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ChainStatus, 0, len(m.status))
	for _, s := range m.status {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Chain < out[j].Chain })
	return out
}

func (m *Metrics) track(chain string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chain(chain)
}

// chain returns the status of chain; m.mu is held.
func (m *Metrics) chain(chain string) *ChainStatus {
	s, ok := m.status[chain]
	if !ok {
		s = &ChainStatus{Chain: chain}
		m.status[chain] = s
	}
	return s
}

// NewMetrics registers the watcher series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		headHeight:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_head_height", Help: "Newest block the node reports."}, []string{"chain"}),
		processedHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_processed_height", Help: "Last block processed into events."}, []string{"chain"}),
		lag:             prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_lag_blocks", Help: "Blocks between the node's head and the last processed block."}, []string{"chain"}),
		lastProgress:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_last_progress_timestamp_seconds", Help: "When the watcher last completed a pass over the chain."}, []string{"chain"}),
		eventsTotal:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_chain_events_total", Help: "Events decoded from blocks."}, []string{"chain"}),
		errorsTotal:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_chain_errors_total", Help: "Failed passes (node or store errors), retried."}, []string{"chain"}),
		reorgs:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_chain_reorged_blocks_total", Help: "Processed blocks that left the chain."}, []string{"chain"}),
		following:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_following", Help: "1 while this instance follows the chain, 0 while it stands by for another instance that holds the chain's lease."}, []string{"chain"}),
	}
	if reg != nil {
		reg.MustRegister(m.headHeight, m.processedHeight, m.lag, m.lastProgress, m.eventsTotal, m.errorsTotal, m.reorgs, m.following)
	}
	m.now, m.status = time.Now, map[string]*ChainStatus{}
	return m
}

func (m *Metrics) head(chain string, h uint64) {
	if m == nil {
		return
	}
	m.headHeight.WithLabelValues(chain).Set(float64(h))
	m.mu.Lock()
	defer m.mu.Unlock()
	s, now := m.chain(chain), m.now()
	s.LastOKAt = now
	if h > s.Head || s.HeadAdvancedAt.IsZero() {
		s.HeadAdvancedAt = now
	}
	s.Head = h
}

func (m *Metrics) processed(chain string, h, head uint64) {
	if m == nil {
		return
	}
	m.processedHeight.WithLabelValues(chain).Set(float64(h))
	m.lag.WithLabelValues(chain).Set(float64(head) - float64(h))
	m.lastProgress.WithLabelValues(chain).SetToCurrentTime()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.chain(chain)
	if h != s.Processed || h >= head || s.ProcessedAt.IsZero() {
		s.ProcessedAt = m.now()
	}
	s.Processed, s.Errors = h, 0
}

// standby records that holder follows the chain instead of this instance.
func (m *Metrics) standby(chain, holder string) {
	if m == nil {
		return
	}
	m.following.WithLabelValues(chain).Set(0)
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.chain(chain)
	s.Standby, s.FollowedBy = true, holder
}

// lead records that this instance (again) follows the chain. What it knew
// of the chain before is stale; the monitor counts from now.
func (m *Metrics) lead(chain string) {
	if m == nil {
		return
	}
	m.following.WithLabelValues(chain).Set(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.chain(chain)
	*s = ChainStatus{Chain: chain, FollowingSince: m.now()}
}

// stopped records that this instance stopped following the chain without
// knowing who follows it now (its lease ran out or ctx ended). Its status is
// left as it was, so a chain nobody follows still looks stale and pages.
func (m *Metrics) stopped(chain string) {
	if m != nil {
		m.following.WithLabelValues(chain).Set(0)
	}
}

func (m *Metrics) events(chain string, n int) {
	if m != nil {
		m.eventsTotal.WithLabelValues(chain).Add(float64(n))
	}
}

func (m *Metrics) error(chain string) {
	if m == nil {
		return
	}
	m.errorsTotal.WithLabelValues(chain).Inc()
	m.mu.Lock()
	m.chain(chain).Errors++
	m.mu.Unlock()
}

func (m *Metrics) reorg(chain string) {
	if m != nil {
		m.reorgs.WithLabelValues(chain).Inc()
	}
}
