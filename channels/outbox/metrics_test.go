package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
)

// gathered flattens a registry into "name{label=value,...}" → value.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName() + "{"
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += ","
				}
				key += l.GetName() + "=" + l.GetValue()
			}
			key += "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "wa", channels.WhatsApp, fast)
		reg := prometheus.NewRegistry()
		m, err := outbox.NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := outbox.NewMetrics(reg); err == nil {
			t.Error("registering the metrics twice succeeded")
		}
		wa := newFakeSender(clock.Real{})
		wa.failFirst("A/0001", &channels.SendError{Code: "130429", Retry: true})
		wa.failFirst("B/0001", &channels.SendError{Code: "131026"})
		o := e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, nil)
		o.Metrics = m
		w := start(t, o)
		now := time.Now()
		e.queue(t, item("wa", "A", 1, now), item("wa", "B", 1, now))
		w.Notify()
		waitFor(t, 5*time.Second, "A sent and B dead", func() bool {
			s := e.states(t)
			return s[outbox.StateSent] == 1 && s[outbox.StateDead] == 1
		})
		wantCounts := map[string]float64{
			"switchboard_outbox_sent_total{channel=whatsapp}":                         1,
			"switchboard_outbox_retries_total{channel=whatsapp,code=130429}":          1,
			"switchboard_outbox_dead_total{channel=whatsapp,reason=permanent}":        1,
			"switchboard_outbox_send_duration_seconds{channel=whatsapp,result=ok}":    1,
			"switchboard_outbox_send_duration_seconds{channel=whatsapp,result=error}": 2,
		}
		// The counters move after the outcome is committed: wait for them.
		var got map[string]float64
		waitFor(t, 5*time.Second, "the counters", func() bool {
			got = gathered(t, reg)
			for k, want := range wantCounts {
				if got[k] != want {
					return false
				}
			}
			return true
		})
		for k, want := range wantCounts {
			if got[k] != want {
				t.Errorf("%s = %g, want %g", k, got[k], want)
			}
		}

		// The backlog gauges come from the database at scrape time. (The
		// worker stops first: it would give up wb's rows, wb does not exist.)
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.queue(t, item("wb", "C", 1, now.Add(-time.Minute)), item("wb", "C", 2, now))
		creg := prometheus.NewRegistry()
		creg.MustRegister(outbox.NewCollector(e.store, clock.NewFake(now), nil))
		got = gathered(t, creg)
		for k, want := range map[string]float64{
			"switchboard_outbox_pending{account=wb,tenant=t1}":                    2,
			"switchboard_outbox_oldest_pending_age_seconds{account=wb,tenant=t1}": 60,
			"switchboard_outbox_dead{account=wa,tenant=t1}":                       1,
			"switchboard_outbox_pending{account=wa,tenant=t1}":                    0,
		} {
			if v, ok := got[k]; !ok || v < want-0.001 || v > want+0.001 {
				t.Errorf("%s = %g (present %v), want %g", k, v, ok, want)
			}
		}
	})
}
