package alerts

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SinkMetrics are the sinks' Prometheus series.
type SinkMetrics struct {
	alerts        *prometheus.CounterVec
	notifications *prometheus.CounterVec
	duration      *prometheus.HistogramVec
}

// NewSinkMetrics registers the sink series on reg.
func NewSinkMetrics(reg prometheus.Registerer) *SinkMetrics {
	m := &SinkMetrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_sink_alerts_total",
			Help: "Alert messages a sink handled, by result: delivered, unchanged (already sent), filtered (not routed here), silenced, dead_lettered."}, []string{"sink", "result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_sink_notifications_total",
			Help: "Notification attempts, by outcome: sent, retry, refused."}, []string{"sink", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "keywatch_sink_notify_seconds",
			Help: "Time one notification attempt took.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.alerts, m.notifications, m.duration)
	}
	return m
}

func (m *SinkMetrics) alert(sink, result string, n int) {
	if m != nil && n > 0 {
		m.alerts.WithLabelValues(sink, result).Add(float64(n))
	}
}

func (m *SinkMetrics) notification(sink, outcome string, d time.Duration) {
	if m != nil {
		m.notifications.WithLabelValues(sink, outcome).Inc()
		m.duration.WithLabelValues(sink).Observe(d.Seconds())
	}
}
