package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// metrics exposes the jobs to Prometheus. Counts are read at each scrape
// from the totals the state keeps per job in the same transaction as the
// accounts (state.Totals), so a scrape costs the same for 10 accounts as
// for 100,000; events are counted as they happen.
type metrics struct {
	mgr *migrate.Manager
	reg *prometheus.Registry

	events *prometheus.CounterVec
	errors *prometheus.CounterVec

	mu   sync.Mutex
	prev map[string]sample // per job: the last scrape, for throughput
}

type sample struct {
	imported, bytes int64
	at              time.Time
	rate, byteRate  float64
}

var (
	descAccounts = prometheus.NewDesc("banjia_accounts", "Accounts by job and state.", []string{"job", "state"}, nil)
	descJob      = prometheus.NewDesc("banjia_job_state", "1 for the job's current state.", []string{"job", "state"}, nil)
	descCopied   = prometheus.NewDesc("banjia_messages_copied_total", "Messages copied (or found already on the target).", []string{"job"}, nil)
	descBytes    = prometheus.NewDesc("banjia_bytes_copied_total", "Bytes copied.", []string{"job"}, nil)
	descFailed   = prometheus.NewDesc("banjia_messages_failed_total", "Messages that failed, with a reason.", []string{"job"}, nil)
	descToImport = prometheus.NewDesc("banjia_messages_to_import", "Messages in scope on the sources.", []string{"job"}, nil)
	descRate     = prometheus.NewDesc("banjia_throughput_messages_per_second", "Messages copied per second since the previous scrape.", []string{"job"}, nil)
	descByteRate = prometheus.NewDesc("banjia_throughput_bytes_per_second", "Bytes copied per second since the previous scrape.", []string{"job"}, nil)
)

func newMetrics(s *Server) *metrics {
	return newMetricsOf(s.m, shardLabel(s.store))
}

// newMetricsOf collects the jobs of mgr's state file; shard, when set,
// labels every series (shard="3"), so that Prometheus sums the shards of
// one job (docs/scale-out.md).
func newMetricsOf(mgr *migrate.Manager, shard string) *metrics {
	m := &metrics{mgr: mgr, reg: prometheus.NewRegistry(), prev: map[string]sample{},
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "banjia_events_total", Help: "Audit events by kind."}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "banjia_errors_total", Help: "Errors by class: account (an account failed), warning, notify (a notification mail failed)."}, []string{"class"}),
	}
	for _, c := range []string{"account", "warning", "notify"} {
		m.errors.WithLabelValues(c)
	}
	var reg prometheus.Registerer = m.reg
	if shard != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"shard": shard}, m.reg)
	}
	reg.MustRegister(m, m.events, m.errors, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) event(e *state.Event) {
	m.events.WithLabelValues(e.Kind).Inc()
	switch {
	case e.Kind == "account.failed":
		m.errors.WithLabelValues("account").Inc()
	case e.Kind == "warning":
		m.errors.WithLabelValues("warning").Inc()
	}
}

// NotifyError counts a notification attempt that failed; a mail given up
// goes to the event log too, where the admin looks (搬家查询).
func (s *Server) NotifyError(err error) {
	s.metrics.errors.WithLabelValues("notify").Inc()
	s.cfg.Log.Warn("notification", "err", err)
	var de *notify.DeliveryError
	if errors.As(err, &de) && de.Final {
		s.m.EventOf(string(state.Engine), "", "", "notify.failed", wording.New("ev.notify.failed", "subject", de.Subject,
			"to", strings.Join(de.To, ", "), "attempt", strconv.Itoa(de.Attempt)).With("err", notifyWhy(de.Err)))
	}
}

// notifyWhy is a delivery's failure in the reader's language where the
// notifier coded it, the SMTP server's own words after it as they were.
func notifyWhy(e *notify.Error) wording.Reason {
	switch {
	case e == nil:
		return wording.Reason{}
	case !e.Why.Coded() || e.Why.String() != e.Reason:
		return wording.Plain(e.Error())
	case e.Err == nil:
		return e.Why
	}
	return wording.New("check.reason", "err", e.Err.Error()).Because(e.Why)
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccounts, descJob, descCopied, descBytes, descFailed, descToImport, descRate, descByteRate} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	sts, err := m.mgr.Summaries()
	if err != nil {
		return
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range sts {
		id := st.Job.ID
		n, c := st.Totals.N, st.Totals.Counts
		for _, s := range state.States {
			ch <- prometheus.MustNewConstMetric(descAccounts, prometheus.GaugeValue, float64(n[s]), id, string(s))
		}
		for _, s := range []state.JobState{state.JobCreated, state.JobRunning, state.JobPaused, state.JobCompleted, state.JobEnded} {
			v := 0.0
			if st.Job.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descJob, prometheus.GaugeValue, v, id, string(s))
		}
		ch <- prometheus.MustNewConstMetric(descCopied, prometheus.CounterValue, float64(c.Imported), id)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(c.Bytes), id)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(c.Failed), id)
		ch <- prometheus.MustNewConstMetric(descToImport, prometheus.GaugeValue, float64(c.ToImport), id)
		p, ok := m.prev[id]
		cur := sample{imported: c.Imported, bytes: c.Bytes, at: now}
		if ok {
			if dt := now.Sub(p.at).Seconds(); dt >= 1 {
				cur.rate = float64(max(c.Imported-p.imported, 0)) / dt
				cur.byteRate = float64(max(c.Bytes-p.bytes, 0)) / dt
			} else {
				// Scrapes closer than a second keep the last figure.
				cur = p
			}
		}
		m.prev[id] = cur
		ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, cur.rate, id)
		ch <- prometheus.MustNewConstMetric(descByteRate, prometheus.GaugeValue, cur.byteRate, id)
	}
}
