package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/store"
)

// Reload triggers: what asked for the policies and lists to be read again.
const (
	TriggerSignal     = "sighup"
	TriggerFileChange = "file-change"
)

// Store keys of the system alerts in force, so that a restart or another
// instance resolves what this one raised.
const (
	staleKey        = "lists:stale"         // hash: alert id -> firing alert
	reloadFailedKey = "lists:reload-failed" // the firing reload-failed alert
)

// listRefresh keeps the lists in force current and watches their age: a
// list file that changed triggers a reload, a reload that fails leaves the
// set in force and raises an alert, and a list file older than its maximum
// age raises an alert until a newer version is loaded.
type listRefresh struct {
	mu       sync.Mutex
	settings config.ListRefresh // of the configuration in force
	// failed holds the stamps of the list files when a reload failed: the
	// files are not tried again until one of them changes.
	failed []lists.Stamp

	reloads    *prometheus.CounterVec
	lastReload prometheus.Gauge
	checks     prometheus.Counter
}

func newListRefresh(settings config.ListRefresh, reg prometheus.Registerer) *listRefresh {
	r := &listRefresh{
		settings: settings,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keywatch_list_reloads_total",
			Help: "Reloads of policies and lists, by trigger (sighup, file-change) and result (ok, failed).",
		}, []string{"trigger", "result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keywatch_list_last_reload_timestamp_seconds",
			Help: "When the policies and lists in force were loaded.",
		}),
	}
	r.checks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "keywatch_list_checks_total",
		Help: "Checks of the list files for changes and age (every list_refresh.interval).",
	})
	reg.MustRegister(r.reloads, r.lastReload, r.checks)
	return r
}

func (r *listRefresh) current() config.ListRefresh {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settings
}

// listMetrics reports, at each scrape, the size and age of the lists in force.
type listMetrics struct {
	d                *Daemon
	entries, age, mx *prometheus.Desc
}

func (m *listMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.entries
	ch <- m.age
	ch <- m.mx
}

func (m *listMetrics) Collect(ch chan<- prometheus.Metric) {
	set := m.d.Engine.Set()
	settings := m.d.refresh.current()
	now := m.d.opts.Now()
	ls := set.Input().Lists
	for _, name := range ls.Names() {
		l, _ := ls.Get(name)
		ch <- prometheus.MustNewConstMetric(m.entries, prometheus.GaugeValue, float64(l.Len()), name)
		if oldest, ok := oldestDate(l); ok {
			ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, now.Sub(oldest).Seconds(), name)
		}
		ch <- prometheus.MustNewConstMetric(m.mx, prometheus.GaugeValue, settings.MaxAgeOf(name).Seconds(), name)
	}
}

func oldestDate(l *lists.List) (time.Time, bool) {
	var t time.Time
	for _, s := range l.Stamps {
		if d := s.Date(); !d.IsZero() && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	return t, !t.IsZero()
}

func (d *Daemon) registerListMetrics() {
	d.reg.MustRegister(&listMetrics{d: d,
		entries: prometheus.NewDesc("keywatch_list_entries", "Addresses on each list in force.", []string{"list"}, nil),
		age:     prometheus.NewDesc("keywatch_list_age_seconds", "Age of each list in force: of its oldest file, from its '# published:' date or else its modification time.", []string{"list"}, nil),
		mx:      prometheus.NewDesc("keywatch_list_max_age_seconds", "Configured maximum age of each list (0: no limit).", []string{"list"}, nil),
	})
}

// Reload rereads the configuration file's lists and policies (on SIGHUP).
// On any error the policies and lists in force stay, the log says why and a
// reload-failed system alert is raised. Changes to chains, wallets, store or
// NATS need a restart.
func (d *Daemon) Reload(ctx context.Context) error { return d.reload(ctx, TriggerSignal) }

func (d *Daemon) reload(ctx context.Context, trigger string) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	now := d.opts.Now()
	old := d.Engine.Set()
	cfg, set, err := Load(d.cfg.File())
	if err == nil {
		// Approved withdrawals of the intents files, registered before the
		// new policies judge anything (registering is idempotent).
		if ierr := d.registerIntents(ctx, cfg); ierr != nil {
			err = fmt.Errorf("intents: %w", ierr)
		}
	}
	if err != nil {
		d.refresh.reloads.WithLabelValues(trigger, "failed").Inc()
		d.refresh.mu.Lock()
		d.refresh.failed = statAll(old)
		d.refresh.mu.Unlock()
		d.log.Error("reload refused; the policies and lists in force stay", "trigger", trigger, "err", err)
		if aerr := d.raiseReloadFailed(ctx, trigger, err, now); aerr != nil {
			d.log.Error("cannot raise the reload-failed alert", "err", aerr)
		}
		d.auditReload(ctx, map[string]any{"trigger": trigger, "file": d.cfg.File(), "applied": false, "error": err.Error()})
		return fmt.Errorf("reload refused, previous policies and lists stay in force:\n%w", err)
	}
	d.Engine.Reload(set)
	d.refresh.reloads.WithLabelValues(trigger, "ok").Inc()
	d.refresh.lastReload.Set(float64(now.Unix()))
	d.refresh.mu.Lock()
	d.refresh.settings = cfg.ListRefresh
	d.refresh.failed = nil
	d.refresh.mu.Unlock()
	d.logLists(old, set, trigger)
	d.log.Info("policies and lists reloaded", "trigger", trigger, "policies", len(cfg.Policies), "lists", len(cfg.Lists))
	if err := d.resolveReloadFailed(ctx, now); err != nil {
		d.log.Error("cannot resolve the reload-failed alert", "err", err)
	}
	d.auditReload(ctx, map[string]any{"trigger": trigger, "file": d.cfg.File(), "applied": true,
		"policies": len(cfg.Policies), "lists": describeLists(set)})
	return nil
}

// auditReload records a reload, applied or refused, in the audit log. The
// reload stands either way; a failure to record it is logged.
func (d *Daemon) auditReload(ctx context.Context, details map[string]any) {
	if err := d.Audit.Record(ctx, audit.ActionConfigReload, "keywatch", details); err != nil {
		d.log.Error("cannot record the reload in the audit log", "err", err)
	}
}

// describeLists names each list in force with its files' digests.
func describeLists(set *policies.Set) map[string][]string {
	ls := set.Input().Lists
	out := map[string][]string{}
	for _, name := range ls.Names() {
		l, _ := ls.Get(name)
		out[name] = describeStamps(l.Stamps)
	}
	return out
}

// logLists writes one audit line per list whose content changed: its size,
// what was added and removed, and each file's digest and date.
func (d *Daemon) logLists(old, set *policies.Set, trigger string) {
	ls := set.Input().Lists
	names := ls.Names()
	sort.Strings(names)
	for _, name := range names {
		l, _ := ls.Get(name)
		var prev *lists.List
		if old != nil {
			prev, _ = old.Input().Lists.Get(name)
		}
		if prev != nil && sameFiles(prev.Stamps, l.Stamps) {
			continue
		}
		added, removed := l.Diff(prev)
		d.log.Info("list loaded", "trigger", trigger, "list", name, "entries", l.Len(),
			"added", added, "removed", removed, "files", describeStamps(l.Stamps))
	}
}

func sameFiles(a, b []lists.Stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || a[i].SHA256 != b[i].SHA256 {
			return false
		}
	}
	return true
}

// describeStamps names each file with its digest and date, for audit lines.
func describeStamps(ss []lists.Stamp) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		sum := s.SHA256
		if len(sum) > 16 {
			sum = sum[:16]
		}
		out[i] = fmt.Sprintf("%s sha256:%s dated %s (%s)", s.Path, sum, s.Date().UTC().Format(time.RFC3339), s.DatedBy())
	}
	return out
}

// statAll stamps the files of every list in a set as they are now.
func statAll(set *policies.Set) []lists.Stamp {
	var out []lists.Stamp
	ls := set.Input().Lists
	names := ls.Names()
	sort.Strings(names)
	for _, name := range names {
		l, _ := ls.Get(name)
		for _, f := range l.Files {
			s, err := lists.StatFile(f)
			if err != nil {
				s = lists.Stamp{Path: f} // gone or unreadable: a version of its own
			}
			out = append(out, s)
		}
	}
	return out
}

// listsChanged reports whether any list file differs from the version in force
// (and from the version a failed reload last tried).
func (d *Daemon) listsChanged() (bool, string) {
	set := d.Engine.Set()
	now := statAll(set)
	d.refresh.mu.Lock()
	failed := d.refresh.failed
	d.refresh.mu.Unlock()
	if failed != nil {
		if sameVersions(now, failed) {
			return false, ""
		}
		return true, "a list file changed since the failed reload"
	}
	var loaded []lists.Stamp
	ls := set.Input().Lists
	names := ls.Names()
	sort.Strings(names)
	for _, name := range names {
		l, _ := ls.Get(name)
		loaded = append(loaded, l.Stamps...)
	}
	if len(loaded) != len(now) {
		return true, "the list files differ"
	}
	for i := range now {
		if !now[i].SameVersion(loaded[i]) {
			return true, "list file " + now[i].Path + " changed"
		}
	}
	return false, ""
}

func sameVersions(a, b []lists.Stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].SameVersion(b[i]) {
			return false
		}
	}
	return true
}

// refreshLists runs until ctx ends: every interval it reloads when a list
// file changed and checks the lists' ages.
func (d *Daemon) refreshLists(ctx context.Context, interval time.Duration) error {
	if err := d.checkListAges(ctx); err != nil {
		d.log.Error("cannot check list ages", "err", err)
	}
	if interval <= 0 {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if changed, why := d.listsChanged(); changed {
			d.log.Info("list files changed; reloading", "reason", why)
			_ = d.reload(ctx, TriggerFileChange) // logged and alerted inside
		}
		if err := d.checkListAges(ctx); err != nil {
			d.log.Error("cannot check list ages", "err", err)
		}
		d.refresh.checks.Inc()
	}
}

// checkListAges raises a list-stale alert for each list file in force that
// is older than its list's maximum age, and resolves those raised earlier
// whose file has since been replaced by a fresh one (or is no longer used).
func (d *Daemon) checkListAges(ctx context.Context) error {
	now := d.opts.Now()
	settings := d.refresh.current()
	stale := map[string]alertmodel.Alert{}
	ls := d.Engine.Set().Input().Lists
	for _, name := range ls.Names() {
		maxAge := settings.MaxAgeOf(name)
		if maxAge <= 0 {
			continue
		}
		l, _ := ls.Get(name)
		for _, s := range l.Stamps {
			date := s.Date()
			if date.IsZero() || now.Sub(date) <= maxAge {
				continue
			}
			a := staleListAlert(name, s, maxAge, now)
			stale[a.ID] = a
		}
	}
	// Each alert is decoded only when it is resolved.
	firing, err := d.Store.HGetAll(ctx, staleKey)
	if err != nil {
		return fmt.Errorf("read stale-list alerts: %w", err)
	}
	var out []alertmodel.Alert
	ids := make([]string, 0, len(stale))
	for id := range stale {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if _, ok := firing[id]; ok {
			continue
		}
		a := stale[id]
		if err := d.staleListRecord(id).HPut(ctx, staleKey, id, a); err != nil {
			return err
		}
		d.log.Warn("list is older than its maximum age", "alert", id, "reasons", a.Reasons)
		out = append(out, a)
	}
	for id, b := range firing {
		if _, ok := stale[id]; ok {
			continue
		}
		a, err := d.staleListRecord(id).Decode(b)
		if err != nil {
			return err
		}
		out = append(out, a.Resolved("the list file in force is now within its maximum age (a newer version was loaded, or the file is no longer used)", now))
		if err := d.Store.HDel(ctx, staleKey, id); err != nil {
			return fmt.Errorf("clear stale-list alert: %w", err)
		}
		d.log.Info("stale list resolved", "alert", id)
	}
	if len(out) == 0 {
		return nil
	}
	return d.publish(ctx, out...)
}

// staleListRecord is the codec of stale-list alert id, in the hash at
// staleKey.
func (d *Daemon) staleListRecord(id string) store.Records[alertmodel.Alert] {
	return store.NewRecords[alertmodel.Alert](d.Store, "stale-list alert "+id)
}

// reloadFailedRecord is the codec of the alert at reloadFailedKey.
func (d *Daemon) reloadFailedRecord() store.Records[alertmodel.Alert] {
	return store.NewRecords[alertmodel.Alert](d.Store, "reload-failed alert")
}

// staleListAlert is the system alert about one list file that is too old.
// Its id names the list, the file and the file's date, so that a later
// stale version of the same file is a new incident.
func staleListAlert(list string, s lists.Stamp, maxAge time.Duration, now time.Time) alertmodel.Alert {
	date := s.Date().UTC()
	subject := fmt.Sprintf("%s:%s@%s", list, filepath.Base(s.Path), date.Format(time.RFC3339))
	reasons := []string{fmt.Sprintf("list %s: file %s is dated %s (%s), %s old: older than the maximum age of %s",
		list, s.Path, date.Format(time.RFC3339), s.DatedBy(), roundAge(now.Sub(date)), maxAge)}
	return alertmodel.System(alertmodel.KindListStale, subject, alertmodel.High, "", reasons, now)
}

func roundAge(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Minute).String()
}

// raiseReloadFailed raises the reload-failed alert, once per incident (until
// a reload succeeds).
func (d *Daemon) raiseReloadFailed(ctx context.Context, trigger string, cause error, now time.Time) error {
	problems := strings.Split(strings.TrimSpace(cause.Error()), "\n")
	reasons := append([]string{fmt.Sprintf("reload of %s (%s) refused: the policies and lists loaded before stay in force", d.cfg.File(), trigger)}, problems...)
	a := alertmodel.System(alertmodel.KindReloadFailed, now.UTC().Format(time.RFC3339), alertmodel.High, "", reasons, now)
	fresh, err := d.reloadFailedRecord().PutNew(ctx, reloadFailedKey, a, 0)
	if err != nil {
		return err
	}
	if !fresh {
		return nil // this incident was raised already
	}
	return d.publish(ctx, a)
}

func (d *Daemon) resolveReloadFailed(ctx context.Context, now time.Time) error {
	a, found, err := d.reloadFailedRecord().Get(ctx, reloadFailedKey)
	if err != nil || !found {
		return err
	}
	if err := d.publish(ctx, a.Resolved("a later reload succeeded", now)); err != nil {
		return err
	}
	return d.Store.Delete(ctx, reloadFailedKey)
}
