// Package logsink is the simplest alert sink: it writes each alert to the
// structured log.
package logsink

import (
	"context"
	"log/slog"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts/internal/sinkcfg"
	"github.com/keywatch/keywatch/config"
)

// Sink logs alerts.
type Sink struct{ log *slog.Logger }

// New makes a log sink writing to log.
func New(log *slog.Logger) *Sink { return &Sink{log: log} }

// Notify logs each alert: critical and high at error level, the rest at warn.
func (s *Sink) Notify(ctx context.Context, as ...*alertmodel.Alert) (bool, error) {
	for _, a := range as {
		level := slog.LevelWarn
		if a.Severity.AtLeast(alertmodel.High) {
			level = slog.LevelError
		}
		if a.Status == alertmodel.Resolved {
			level = slog.LevelInfo
		}
		s.log.Log(ctx, level, "alert",
			"id", a.ID, "policy", a.Policy, "severity", a.Severity, "status", a.Status,
			"event_status", a.Event.Status, "chain", a.Chain, "wallet", a.Wallet,
			"direction", a.Event.Direction, "amount", a.Event.Amount.String(), "asset", a.Event.Asset,
			"counterparty", a.Event.Counterparty, "tx", a.Event.Tx, "reasons", a.Reasons)
	}
	return false, nil
}

// CheckConfig reports the fields of log sink i that a log sink does not
// use.
func CheckConfig(cfg *config.Config, i int) config.Errors {
	return sinkcfg.Unused(cfg, i, "url", "url_env", "routing_key_env", "webhook_url_env", "secret_env")
}
