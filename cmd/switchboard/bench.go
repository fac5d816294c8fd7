package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/app"
	"github.com/switchboard-acd/switchboard/internal/loadgen"
)

const benchUsage = `usage: switchboard bench [flags]
       switchboard bench acd [flags]   (the routing engine alone; see bench acd -h)
       switchboard bench webhook [flags]   (WhatsApp webhook ingest; see bench webhook -h)

Load-tests a running Switchboard server on this machine over real
WebSockets, from its own process, and prints throughput and p50/p95/p99
latency. Only 127.0.0.1, ::1 and localhost are accepted as targets.

Load mode (default): creates -agents bench agents (bench-<run>-<i>, skills in
every group, max_sessions = ceil(customers/agents)+1) through the admin API,
connects -customers web-chat customers, hands each off to an agent, then has
every customer send messages for -warmup plus -duration while the agents
answer each one. Reports messages sent, acked, received by agents, lost
(acked but not received within 5s after the end), duplicates, throughput and
latency for send→ack, customer→agent and agent→customer. At the end every
bench session is closed and wrapped up and the agents go offline; the
accounts remain (offline) because the API cannot delete agents.

Idle mode (-idle N): only opens N idle web-chat connections, holds them for
-duration and reports the server's resident memory (process_resident_memory_bytes
from /metrics) before and after, and per connection. One process can hold at
most about 20,000 file descriptors on a default limit: use -idle 15000 or
fewer per process and start several processes with -conn-offset 0, 15000,
30000, ... (the offset spreads them over local source addresses 127.0.0.x so
that they do not run out of ephemeral ports). The server's own open-file
limit caps the total.

The whole run is bounded by -warmup + -duration + 60s (idle mode:
-duration + 60s + 4ms per connection, for opening them); the first Ctrl-C
stops the load and still cleans up, a second one exits at once.

Flags:
`

// bench runs the load generator (see benchUsage). It is its own process
// against a server started separately, so that the figures include the
// network path and the bench does not compete with the server's runtime.
func bench(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "acd" {
		return benchACD(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "webhook" {
		return benchWebhook(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("switchboard bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	var cfg loadgen.Config
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the server (must be on this machine)")
	fs.StringVar(&cfg.Tenant, "tenant", app.DemoTenant, "tenant to run in")
	fs.StringVar(&cfg.AdminUser, "admin-user", "admin", "admin account that creates the bench agents")
	// The environment fallback is applied after parsing, so that -h never
	// prints a password as the flag's default.
	fs.StringVar(&cfg.AdminPassword, "admin-password", "", "admin password (default $SWITCHBOARD_DEMO_PASSWORD)")
	fs.StringVar(&cfg.ChatKey, "chat-key", app.DemoChatKey, "public key of the web-chat account customers use")
	fs.StringVar(&cfg.HandoffWord, "handoff-word", "agent", "a word the server's bot hands off on (see -handoff-words of serve)")
	fs.IntVar(&cfg.Customers, "customers", 200, "concurrent customers")
	fs.IntVar(&cfg.Agents, "agents", 20, "bench agents to create")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measured phase (idle mode: hold time)")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "load before measuring starts")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total customer messages per second to aim at; 0: as fast as the windows allow")
	fs.IntVar(&cfg.Window, "window", 1, "messages in flight per customer (until the reply arrives, or the agent gets it with -reply=false)")
	fs.BoolVar(&cfg.Reply, "reply", true, "agents answer every message; measures agent→customer too")
	fs.IntVar(&cfg.Idle, "idle", 0, "idle mode: open this many idle customer connections only (≤ 15000 per process)")
	fs.IntVar(&cfg.ConnOffset, "conn-offset", 0, "idle mode: first global connection index of this process, when several run together")
	asJSON := fs.Bool("json", false, "also print the result as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = os.Getenv("SWITCHBOARD_DEMO_PASSWORD")
	}
	cfg.Progress = stderr
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer stopProfile()

	// The first interrupt stops the load and still cleans up (closes the
	// sessions, signs the agents out); a second one kills the process.
	ctx, stop := interruptible()
	defer stop()

	var res interface{ WriteText(io.Writer) }
	if cfg.Idle > 0 {
		var r *loadgen.IdleResult
		r, err = loadgen.RunIdle(ctx, cfg)
		if r != nil {
			res = r
		}
	} else {
		var r *loadgen.Result
		r, err = loadgen.Run(ctx, cfg)
		if r != nil {
			res = r
		}
	}
	if res != nil {
		fmt.Fprintln(stdout)
		res.WriteText(stdout)
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil && err == nil {
				err = jerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

const benchACDUsage = `usage: switchboard bench acd [flags]

Measures the routing engine alone: drives the Redis routing state
(acd/acdredis) directly from this process, with no HTTP, WebSocket or
database, and checks on every assignment that no session is assigned twice
or outside its group and no agent exceeds their capacity; at the end, that
every session was assigned or still waits and every agent is free again.

Set-up: -groups groups with -strategy, -agents agents with -skills distinct
groups each (spread evenly) and -max-sessions capacity, all ready, under a
fresh key prefix that is deleted at the end.

First the ceiling: a 5-command Lua script by EVALSHA, unpipelined, from
-workers clients for -ceiling; the matches/s are reported as a ratio of it.

Throughput mode (default): -workers goroutines each enqueue a session into
a random group and release every assignment at once, so each match costs
one enqueue and one release script; matches/s over -duration after -warmup.

Latency mode (-rate N): sessions arrive at N per second over -workers
goroutines; agents release after -hold. Reports enqueue→assign latency
(p50/p90/p99/p99.9/max) and the rate achieved.

Prints a summary and then the result as one JSON line. Compare -pipeline-conns
0 (every script call its own round trip) with 4 (the server's default).

Flags:
`

// benchACD runs the routing-engine bench (see benchACDUsage).
func benchACD(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard bench acd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchACDUsage)
		fs.PrintDefaults()
	}
	cfg := loadgen.DefaultACDConfig()
	fs.StringVar(&cfg.RedisURL, "redis", cfg.RedisURL, `Redis URL, or "embedded" for an in-process miniredis`)
	fs.StringVar(&cfg.Prefix, "prefix", "", "key prefix (default: a fresh random one)")
	fs.StringVar(&cfg.Tenant, "tenant", cfg.Tenant, "routing tenant")
	fs.IntVar(&cfg.Agents, "agents", cfg.Agents, "agents")
	fs.IntVar(&cfg.Groups, "groups", cfg.Groups, "skill groups")
	fs.IntVar(&cfg.Skills, "skills", cfg.Skills, "groups per agent")
	fs.IntVar(&cfg.MaxSessions, "max-sessions", cfg.MaxSessions, "capacity of each agent")
	strategy := fs.String("strategy", string(cfg.Strategy), "strategy of every group: longest_idle, round_robin, least_busy, weighted, sticky, skills")
	fs.IntVar(&cfg.PipelineConns, "pipeline-conns", cfg.PipelineConns, "connections carrying batched script calls; 0: unbatched")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "goroutines issuing calls (and ceiling clients)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured phase")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "load before measuring starts")
	fs.Float64Var(&cfg.Rate, "rate", 0, "latency mode: sessions arriving per second; 0: throughput mode")
	fs.DurationVar(&cfg.Hold, "hold", 0, "latency mode: how long an agent keeps a session before releasing it")
	fs.DurationVar(&cfg.Ceiling, "ceiling", cfg.Ceiling, "how long to measure the EVALSHA ceiling; 0 skips it")
	cpuProfile := fs.String("cpuprofile", "", "write the bench's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench acd: unexpected arguments %q", fs.Args())
	}
	cfg.Strategy = acd.Strategy(*strategy)
	cfg.Progress = stderr
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return fmt.Errorf("bench acd: %w", err)
	}
	defer stopProfile()

	// The first interrupt ends the load early (assigned sessions are still
	// released and checked); a second one kills the process.
	ctx, stop := interruptible()
	defer stop()

	res, err := loadgen.RunACD(ctx, cfg)
	if res.Mode != "" {
		fmt.Fprintln(stdout)
		res.WriteText(stdout)
		enc := json.NewEncoder(stdout) // one line
		enc.SetEscapeHTML(false)
		if jerr := enc.Encode(res); jerr != nil && err == nil {
			err = jerr
		}
	}
	if err != nil {
		return fmt.Errorf("bench acd: %w", err)
	}
	return nil
}

const benchWebhookUsage = `usage: switchboard bench webhook [flags]

Load-tests the WhatsApp webhook ingest of a running server on this machine
(POST /webhooks/{public_key}, answered once the message is durable in the
server's inbound log; the server takes it into its conversation right
after). Only 127.0.0.1, ::1 and localhost are accepted as targets.

Set-up: starts a fake WhatsApp Cloud API (Graph API) on 127.0.0.1 inside
this process, signs in as the admin and creates -accounts WhatsApp accounts
whose base_url points at it (named bench-webhook-<run>-<i>), each checked
with Meta's subscription handshake.

Load: -customers distinct wa_ids write; every POST carries one text message
(-text) with a unique wamid, signed with the account's app secret
(X-Hub-Signature-256). Closed loop (default): -concurrency workers post
again as soon as answered. Open loop (-rate N): N POSTs per second, at most
-concurrency in flight. A share -dup-ratio of the POSTs re-posts a message
already accepted, as Meta does when it retries.

Reports accepted (durable) POSTs/s, POST latency p50/p90/p99/p99.9/max,
answers other than 200 by status, the messages taken into their
conversations per second in the same window (the server's
switchboard_inbound_messages_total) and the inbound backlog the load left,
the CPU of the bench, the server (-server-pid, or the process found
listening on the port), PostgreSQL and Redis, and the bot's answers the
fake received. After the load it waits, within -drain, for the inbound
backlog to reach 0 and then for the outbox to send the answers. Checks,
from the server's /metrics read after that wait, that
switchboard_inbound_messages_total{channel="whatsapp"} moved by exactly the
200s (outcome stored) and the accepted re-posts (outcome duplicate); run it
against a server that takes no other WhatsApp traffic. Then it deletes the
accounts, or disables them while their bot sessions are still open.

Flags:
`

// benchWebhook runs the WhatsApp webhook ingest bench (see
// benchWebhookUsage).
func benchWebhook(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard bench webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchWebhookUsage)
		fs.PrintDefaults()
	}
	cfg := loadgen.DefaultWebhookConfig()
	cfg.Tenant = app.DemoTenant
	fs.StringVar(&cfg.URL, "url", cfg.URL, "base URL of the server (must be on this machine)")
	fs.StringVar(&cfg.Tenant, "tenant", cfg.Tenant, "tenant to run in")
	fs.StringVar(&cfg.AdminUser, "admin-user", cfg.AdminUser, "admin account that creates the bench's WhatsApp accounts")
	// The environment fallback is applied after parsing, so that -h never
	// prints a password as the flag's default.
	fs.StringVar(&cfg.AdminPassword, "admin-password", "", "admin password (default $SWITCHBOARD_DEMO_PASSWORD)")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "distinct WhatsApp users (wa_ids) writing")
	fs.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "WhatsApp accounts (business numbers) the customers are spread over")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: POSTs per second; 0: closed loop")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "workers (POSTs in flight); 0: 64 in the closed loop, 512 in the open loop")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured phase")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "load before measuring starts")
	fs.Float64Var(&cfg.DupRatio, "dup-ratio", cfg.DupRatio, "share of POSTs that re-post an accepted message")
	fs.StringVar(&cfg.Text, "text", cfg.Text, "text of every message (the default is answered by the demo knowledge base)")
	fs.Float64Var(&cfg.SendRate, "send-rate", cfg.SendRate, "rate_per_sec of the bench accounts' outbox (at most 1000); 0: the channel's default (80/s)")
	fs.DurationVar(&cfg.GraphLatency, "graph-latency", 0, "delay of every answer of the fake Graph API")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "how long to wait after the load, in all, for the inbound backlog to be taken in and then for the outbox to send the answers (a closed loop can leave a long backlog)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process id for its CPU; 0: the process listening on the port; -1: none")
	asJSON := fs.Bool("json", false, "also print the result as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write the bench's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench webhook: unexpected arguments %q", fs.Args())
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = os.Getenv("SWITCHBOARD_DEMO_PASSWORD")
	}
	cfg.Progress = stderr
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return fmt.Errorf("bench webhook: %w", err)
	}
	defer stopProfile()

	// The first interrupt ends the load early (POSTs in flight finish, the
	// checks and the clean-up still run); a second one kills the process.
	ctx, stop := interruptible()
	defer stop()

	res, err := loadgen.RunWebhook(ctx, cfg)
	if res != nil {
		fmt.Fprintln(stdout)
		res.WriteText(stdout)
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil && err == nil {
				err = jerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("bench webhook: %w", err)
	}
	return nil
}

// startCPUProfile writes the process's CPU profile to path until the
// returned function is called; an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// interruptible is the context of a bench run: the first interrupt ends it
// (the load stops, checks and clean-up still run); once it has ended, the
// default signal handling is back, so a second interrupt kills the process.
func interruptible() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	return ctx, stop
}
