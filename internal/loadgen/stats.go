package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Latency summarises one set of samples. Percentiles are exact
// (nearest-rank over the sorted samples), not bucketed: a run keeps at most
// a few million samples, which sort in well under a second, and exact
// figures make small runs comparable with large ones.
type Latency struct {
	Count  int     `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P95ms  float64 `json:"p95_ms"`
	P99ms  float64 `json:"p99_ms"`
	Maxms  float64 `json:"max_ms"`
	Meanms float64 `json:"mean_ms"`
}

// Summarize computes the nearest-rank percentiles of samples (which it
// sorts in place).
func Summarize(samples []time.Duration) Latency {
	n := len(samples)
	if n == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return Latency{
		Count:  n,
		P50ms:  ms(percentile(samples, 50)),
		P95ms:  ms(percentile(samples, 95)),
		P99ms:  ms(percentile(samples, 99)),
		Maxms:  ms(samples[n-1]),
		Meanms: ms(sum / time.Duration(n)),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted samples:
// the smallest sample with at least p% of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// MessageCounts are the customer→agent figures of the measured window.
type MessageCounts struct {
	// Sent: send frames written by customers.
	Sent int64 `json:"sent"`
	// Acked: sends the server acknowledged.
	Acked int64 `json:"acked"`
	// AckDuplicates: acks flagged duplicate (a resend after a reconnect).
	AckDuplicates int64 `json:"ack_duplicates"`
	// Unacked: sends neither acknowledged nor refused by the end.
	Unacked int64 `json:"unacked"`
	// Errors: sends the server refused with an error frame.
	Errors int64 `json:"errors"`
	// OtherErrors: error frames that named no message.
	OtherErrors int64 `json:"other_errors"`
	// ReceivedByAgents: distinct messages agents' consoles received.
	ReceivedByAgents int64 `json:"received_by_agents"`
	// Lost: acked but never received by an agent within the drain time.
	Lost int64 `json:"lost"`
	// Duplicates: extra message.created frames for a message already seen.
	Duplicates int64 `json:"duplicates"`
	// SlotTimeouts: messages that did not complete within the slot
	// timeout, so their customer went on without them.
	SlotTimeouts int64 `json:"slot_timeouts"`
}

// ReplyCounts are the agent→customer figures of the measured window.
type ReplyCounts struct {
	Sent       int64 `json:"sent"`
	Failed     int64 `json:"failed"`
	Received   int64 `json:"received"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
}

// SetupResult describes the ramp-up before the measured phase.
type SetupResult struct {
	Seconds            float64 `json:"seconds"`
	AgentsReady        int     `json:"agents_ready"`
	MaxSessions        int     `json:"max_sessions"`
	CustomersConnected int     `json:"customers_connected"`
	CustomersAssigned  int     `json:"customers_assigned"`
	// ForeignSessions were assigned to bench agents but belong to no
	// customer of this run (left over in the queue from earlier use).
	ForeignSessions int `json:"foreign_sessions"`
}

// CleanupResult describes the tear-down.
type CleanupResult struct {
	SessionsClosed int    `json:"sessions_closed"`
	SessionErrors  int    `json:"session_errors"`
	AgentsOffline  int    `json:"agents_offline"`
	AgentErrors    int    `json:"agent_errors"`
	FirstError     string `json:"first_error,omitempty"`
}

// Result is the outcome of a load run.
type Result struct {
	RunID       string  `json:"run_id"`
	URL         string  `json:"url"`
	Customers   int     `json:"customers"`
	Agents      int     `json:"agents"`
	WarmupSec   float64 `json:"warmup_sec"`
	DurationSec float64 `json:"duration_sec"`
	// RateTarget is the total send rate asked for (msgs/s), 0 for as fast
	// as the windows allow.
	RateTarget float64 `json:"rate_target"`
	Window     int     `json:"window"`
	Reply      bool    `json:"reply"`

	Setup    SetupResult   `json:"setup"`
	Messages MessageCounts `json:"messages"`
	Replies  ReplyCounts   `json:"replies"`
	// Throughput is distinct customer messages received by agents per
	// second of the measured window; ReplyThroughput the same for replies
	// received by customers.
	Throughput      float64 `json:"throughput_msg_s"`
	ReplyThroughput float64 `json:"reply_throughput_msg_s"`
	// SendRate is measured sends per second, to compare with RateTarget.
	SendRate float64 `json:"send_rate_msg_s"`

	Latency struct {
		Ack             Latency `json:"ack"`
		CustomerToAgent Latency `json:"customer_to_agent"`
		AgentToCustomer Latency `json:"agent_to_customer"`
		Handoff         Latency `json:"handoff_to_assigned"`
	} `json:"latency"`

	AgentReconnects    int64 `json:"agent_reconnects"`
	CustomerReconnects int64 `json:"customer_reconnects"`
	// SessionsRemoved counts session.removed frames for bench sessions
	// (requeued, transferred or closed under the bench's feet).
	SessionsRemoved int64 `json:"sessions_removed"`
	// OutOfOrder counts message frames a customer got with a seq below one
	// it had already seen (allowed by the protocol; a sign of reordering).
	OutOfOrder int64 `json:"out_of_order"`

	Cleanup  CleanupResult `json:"cleanup"`
	Warnings []string      `json:"warnings,omitempty"`
}

// WriteText prints the result for people.
func (r *Result) WriteText(w io.Writer) {
	rate := "unlimited"
	if r.RateTarget > 0 {
		rate = fmt.Sprintf("%g msg/s", r.RateTarget)
	}
	fmt.Fprintf(w, "switchboard bench  run %s  %s\n", r.RunID, r.URL)
	fmt.Fprintf(w, "setup       %d/%d agents ready (max %d sessions each), %d/%d customers connected, %d assigned, %.1fs",
		r.Setup.AgentsReady, r.Agents, r.Setup.MaxSessions, r.Setup.CustomersConnected, r.Customers, r.Setup.CustomersAssigned, r.Setup.Seconds)
	if r.Setup.ForeignSessions > 0 {
		fmt.Fprintf(w, ", %d foreign sessions", r.Setup.ForeignSessions)
	}
	fmt.Fprintln(w)
	replies := "off"
	if r.Reply {
		replies = "on"
	}
	fmt.Fprintf(w, "load        %.1fs measured after %.1fs warm-up, window %d, rate %s (achieved %.1f msg/s), replies %s\n",
		r.DurationSec, r.WarmupSec, r.Window, rate, r.SendRate, replies)
	m := r.Messages
	fmt.Fprintf(w, "messages    sent %d  acked %d  received by agents %d  lost %d  duplicates %d  unacked %d  errors %d  slot timeouts %d\n",
		m.Sent, m.Acked, m.ReceivedByAgents, m.Lost, m.Duplicates, m.Unacked, m.Errors+m.OtherErrors, m.SlotTimeouts)
	if r.Reply {
		p := r.Replies
		fmt.Fprintf(w, "replies     sent %d  received %d  lost %d  duplicates %d  failed %d\n", p.Sent, p.Received, p.Lost, p.Duplicates, p.Failed)
	}
	fmt.Fprintf(w, "throughput  %.1f msg/s customer→agent", r.Throughput)
	if r.Reply {
		fmt.Fprintf(w, ", %.1f msg/s agent→customer", r.ReplyThroughput)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency (ms)\tcount\tp50\tp95\tp99\tmax\tmean\t")
	row := func(name string, l Latency) {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, l.Count, l.P50ms, l.P95ms, l.P99ms, l.Maxms, l.Meanms)
	}
	row("send→ack", r.Latency.Ack)
	row("customer→agent", r.Latency.CustomerToAgent)
	if r.Reply {
		row("agent→customer", r.Latency.AgentToCustomer)
	}
	row("handoff→assigned", r.Latency.Handoff)
	_ = tw.Flush()
	if r.AgentReconnects+r.CustomerReconnects+r.SessionsRemoved+r.OutOfOrder > 0 {
		fmt.Fprintf(w, "events      agent reconnects %d  customer reconnects %d  sessions removed %d  out-of-order frames %d\n",
			r.AgentReconnects, r.CustomerReconnects, r.SessionsRemoved, r.OutOfOrder)
	}
	c := r.Cleanup
	fmt.Fprintf(w, "cleanup     %d sessions closed (%d errors), %d agents offline (%d errors)\n", c.SessionsClosed, c.SessionErrors, c.AgentsOffline, c.AgentErrors)
	if c.FirstError != "" {
		fmt.Fprintf(w, "            first error: %s\n", c.FirstError)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "warning     %s\n", s)
	}
}

// IdleResult is the outcome of an idle-connection run.
type IdleResult struct {
	URL        string  `json:"url"`
	Requested  int     `json:"requested"`
	ConnOffset int     `json:"conn_offset"`
	Opened     int     `json:"opened"`
	Failed     int     `json:"failed"`
	FirstError string  `json:"first_error,omitempty"`
	Dropped    int64   `json:"dropped"`
	OpenSec    float64 `json:"open_sec"`
	HoldSec    float64 `json:"hold_sec"`
	// SourceAddrs are the local addresses the connections came from.
	SourceAddrs []string `json:"source_addrs,omitempty"`
	// MemoryMeasured is false when the server's /metrics could not be read
	// every time; the RSS figures are then incomplete.
	MemoryMeasured bool `json:"memory_measured"`
	// Server RSS (process_resident_memory_bytes) before opening, once all
	// were open, and at the end of the hold.
	RSSBefore float64 `json:"server_rss_before_bytes"`
	RSSOpen   float64 `json:"server_rss_open_bytes"`
	RSSAfter  float64 `json:"server_rss_after_bytes"`
	// PerConnBytes is (RSSAfter-RSSBefore)/Opened: the server's resident
	// memory per idle web-chat connection, including the visitor's
	// contact and conversation caches.
	PerConnBytes float64 `json:"server_bytes_per_conn"`
	// Server-side web-chat connection gauge before and at the end.
	ServerConnsBefore float64 `json:"server_webchat_conns_before"`
	ServerConnsAfter  float64 `json:"server_webchat_conns_after"`
	// ClientRSS is this process's resident memory at the end of the hold.
	ClientRSS float64  `json:"client_rss_bytes"`
	Warnings  []string `json:"warnings,omitempty"`
}

// WriteText prints the idle result for people.
func (r *IdleResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "switchboard bench -idle  %s\n", r.URL)
	fmt.Fprintf(w, "connections %d/%d open (offset %d) in %.1fs, %d failed, %d dropped during %.0fs hold\n",
		r.Opened, r.Requested, r.ConnOffset, r.OpenSec, r.Failed, r.Dropped, r.HoldSec)
	if len(r.SourceAddrs) > 0 {
		fmt.Fprintf(w, "source      %s\n", strings.Join(r.SourceAddrs, ", "))
	}
	if r.MemoryMeasured {
		fmt.Fprintf(w, "server RSS  before %s  all open %s  after hold %s  → %s per connection\n",
			mib(r.RSSBefore), mib(r.RSSOpen), mib(r.RSSAfter), kib(r.PerConnBytes))
	} else {
		fmt.Fprintln(w, "server RSS  unavailable (see warnings)")
	}
	if r.MemoryMeasured {
		fmt.Fprintf(w, "server ws   web-chat connections %.0f → %.0f\n", r.ServerConnsBefore, r.ServerConnsAfter)
	}
	fmt.Fprintf(w, "client RSS  %s\n", mib(r.ClientRSS))
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error %s\n", r.FirstError)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "warning     %s\n", s)
	}
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/(1<<10)) }
