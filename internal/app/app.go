// Package app assembles a Switchboard node from its configuration: it opens
// the database and Redis, applies migrations, seeds the demo tenant, wires
// the domain services to their adapters and runs the HTTP server, timers
// and pub/sub until stopped. cmd/switchboard and the end-to-end tests start
// nodes through it.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/acd/acdredis"
	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/channels/webchat"
	"github.com/switchboard-acd/switchboard/console"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/config"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/realtime"
	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/kbindex"
	"github.com/switchboard-acd/switchboard/kb/kbsql"
	"github.com/switchboard-acd/switchboard/migrations"
	"github.com/switchboard-acd/switchboard/session"
	"github.com/switchboard-acd/switchboard/session/sessionsql"
)

// App is one running node.
type App struct {
	Cfg    config.Config
	Log    *slog.Logger
	DB     *db.DB
	Redis  *rdb.Client
	Bus    *realtime.Bus
	Engine *session.Engine
	Agents *agents.Service
	Server *console.Server
	Queue  acd.Queue
	KB     *kb.Service // the knowledge-base editing service (console /api/v1/kb)
	// KBLibrary holds this node's compiled knowledge bases (bot, assist).
	KBLibrary *kb.Library
	kbSync    *kbSync
	Seeded    *Demo
	agentDB   agents.Store

	reconciler *reconciler
	channels   *channelRuntime
	accounts   *channelsql.Store

	stopTimers context.CancelFunc
	wg         sync.WaitGroup
	ln         net.Listener
	stopOnce   sync.Once
	stopErr    error
}

// New builds a node: connections, migrations, seed, wiring. Nothing listens
// until Start.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	a := &App{Cfg: cfg, Log: log}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.DB, err = db.Open(ctx, cfg.DatabaseURL, cfg.DataDir); err != nil {
		return nil, err
	}
	applied, err := migrations.Apply(ctx, a.DB)
	if err != nil {
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("migrations applied", "versions", applied, "dialect", a.DB.Dialect)
	}
	if a.Redis, err = rdb.Open(ctx, cfg.RedisURL, cfg.RedisPrefix); err != nil {
		return nil, err
	}
	if cfg.NodeID == "" {
		cfg.NodeID = randomHex(6)
		a.Cfg.NodeID = cfg.NodeID
	}
	secret := cfg.SecretKey
	if secret == "" {
		if secret, err = sharedSecret(ctx, a.DB); err != nil {
			return nil, err
		}
	}

	clk := clock.Real{}
	a.agentDB = agentsql.New(a.DB)
	// Channel credentials are sealed with a key from the configuration,
	// else one generated into the data directory (fine for one node: nodes
	// sharing a database must share the key).
	keyFile := ""
	if cfg.DataDir != "" {
		keyFile = filepath.Join(cfg.DataDir, secretbox.KeyFileName)
	}
	credKeys, keySource, err := secretbox.Load(cfg.CredentialsKey, keyFile)
	if err != nil {
		return nil, fmt.Errorf("credentials key: %w", err)
	}
	if keySource != secretbox.SourceConfig {
		log.Warn("channel credentials are encrypted with a key kept in the data directory; in production configure --credentials-key (SWITCHBOARD_CREDENTIALS_KEY), the same on every node",
			"file", keyFile, "generated", keySource == secretbox.SourceGenerated, "key_id", credKeys.CurrentID())
	}
	accounts := channelsql.New(a.DB, channelsql.WithKeys(credKeys))
	a.accounts = accounts
	a.Agents = agents.NewService(a.agentDB, clk, agents.ServiceOptions{TokenTTL: cfg.TokenTTL})
	a.Queue = acdredis.New(a.Redis)
	a.Bus = realtime.NewBus(a.Redis, cfg.NodeID, log)
	dir := newDirectory(a.agentDB, accounts)
	fanout := &session.Notifiers{}
	kbStore := kbsql.New(a.DB)
	indexDir := ""
	if cfg.DataDir != "" {
		// Per node: nodes may share a data directory, indexes are private.
		indexDir = filepath.Join(cfg.DataDir, "kb-index", cfg.NodeID)
	}
	a.KBLibrary = kb.NewLibrary(kbStore, kbindex.Build, kb.LibraryOptions{Dir: indexDir, HandoffWords: cfg.HandoffWords}, log)
	a.kbSync = &kbSync{rdb: a.Redis, lib: a.KBLibrary, log: log}
	a.KB = kb.NewService(kbStore, clk, a.kbSync)
	bot := kb.NewBot(a.KBLibrary, kbStore, kbMemory{a.Redis}, clk, log)
	a.Engine = session.NewEngine(sessionsql.New(a.DB), a.Queue, dir, bot, fanout, clk, session.Options{
		IdleTimeout: cfg.IdleTimeout, WrapupTimeout: cfg.WrapupTimeout, ReopenWindow: cfg.ReopenWindow,
		MaxBotMisses: -1, // the bot hands off after the tenant's own count (kb.Settings.MaxMisses)
	}, log)
	chat := webchat.NewService(accounts, a.Engine, a.Bus, webchat.NewSigner([]byte(secret)), dir, clk, log)
	metrics := console.NewMetrics()
	a.Engine.OnRouted = func(_, took time.Duration) { metrics.Routing.Observe(took.Seconds()) }
	local, remote := metrics.Deliveries.WithLabelValues("local"), metrics.Deliveries.WithLabelValues("remote")
	a.Bus.OnDeliver = func(isLocal bool) {
		if isLocal {
			local.Inc()
		} else {
			remote.Inc()
		}
	}
	metrics.Registry.MustRegister(newStateCollector(a.agentDB, a.Engine.Store(), a.Queue))
	prov := newProviders(a, clk, log)
	contacts := session.NewContacts(a.Engine.Store(), clk, log)
	if a.channels, err = newChannelRuntime(a, prov, accounts, identityFacts{contacts}, fallbackPhones{a.Engine.Store()}, metrics.Registry, clk, log); err != nil {
		return nil, fmt.Errorf("channels: %w", err)
	}
	a.Server = console.New(console.Deps{
		Agents: a.Agents, AgentStore: a.agentDB, Accounts: accounts, Engine: a.Engine, Queue: a.Queue,
		Bus: a.Bus, WebChat: chat, Metrics: metrics, Log: log, Ready: a.ready, MaxBodyBytes: cfg.MaxBodyBytes,
		DrainPeriod: min(cfg.ShutdownGrace/3, 5*time.Second),
		AgentGrace:  cfg.AgentGrace,
		KB:          a.KB,
		Assist:      a.KBLibrary,
		// Provider credential checks by channel type: each provider
		// package's ValidateCredentials.
		ChannelAccounts: channels.NewAccountService(accounts, dir, prov.validators(), clk),
		Webhooks:        a.channels.ingest,
		PublicURL:       cfg.PublicURL,
		OnGroupChanged: func(ctx context.Context, tenantID, groupID string) error {
			dir.forgetGroup(tenantID, groupID)
			g, err := dir.Group(ctx, tenantID, groupID)
			if err != nil {
				return err
			}
			return a.Queue.Configure(ctx, g)
		},
	})
	// The customer side first: a fast agent's reply should rarely overtake
	// the echo of the message it answers (clients order by seq anyway).
	*fanout = session.Notifiers{chat.Notifier(), a.Server.Notifier(),
		newWeComStates(prov.wecom, accounts, a.Engine.Store(), log)}

	if cfg.Seed {
		if a.Seeded, err = seedDemo(ctx, a.agentDB, a.Agents, accounts); err != nil {
			return nil, fmt.Errorf("seed demo tenant: %w", err)
		}
		if a.Seeded != nil {
			if err := seedDemoKB(ctx, a.KB); err != nil {
				return nil, fmt.Errorf("seed demo knowledge base: %w", err)
			}
		}
	}
	a.reconciler = newReconciler(a)
	if err := a.reconciler.run(ctx, true); err != nil {
		return nil, fmt.Errorf("rebuild routing: %w", err)
	}
	return a, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sharedSecret returns the cluster's visitor-token key, creating it once.
func sharedSecret(ctx context.Context, d *db.DB) (string, error) {
	_, err := d.ExecContext(ctx, d.Rebind(`INSERT INTO server_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`),
		"visitor_token_key", randomHex(32))
	if err != nil {
		return "", fmt.Errorf("create secret key: %w", err)
	}
	var v string
	if err := d.GetContext(ctx, &v, d.Rebind(`SELECT value FROM server_settings WHERE key = ?`), "visitor_token_key"); err != nil {
		return "", fmt.Errorf("read secret key: %w", err)
	}
	return v, nil
}

// Reconcile runs one routing reconcile pass now (DESIGN D3): a rebuild
// for a tenant whose routing state Redis lost, else a drift repair.
func (a *App) Reconcile(ctx context.Context) error { return a.reconciler.run(ctx, false) }

// RoutingRepairs reports the repairs the reconciler made so far, by kind.
func (a *App) RoutingRepairs() map[string]int {
	a.reconciler.mu.Lock()
	defer a.reconciler.mu.Unlock()
	out := make(map[string]int, len(a.reconciler.repairs))
	for k, v := range a.reconciler.repairs {
		out[k] = v
	}
	return out
}

// purgeTokens deletes expired login tokens every interval; any node may
// do it, the deletes are idempotent.
func (a *App) purgeTokens(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.agentDB.TokenDeleteExpired(ctx, time.Now().UTC()); err != nil {
				a.Log.Warn("purge expired tokens", "err", err)
			} else if n > 0 {
				a.Log.Info("purged expired tokens", "count", n)
			}
		}
	}
}

func (a *App) ready(ctx context.Context) error {
	if err := a.DB.PingContext(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Start subscribes to this node's pub/sub channel, starts the timers and
// begins serving HTTP on cfg.HTTPAddr. It returns once the listener is open.
func (a *App) Start(ctx context.Context) error {
	if err := a.Bus.Start(ctx); err != nil {
		return err
	}
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopTimers = cancel
	a.wg.Add(5)
	go func() { defer a.wg.Done(); a.warmKB(tctx) }()
	go func() { defer a.wg.Done(); a.kbSync.run(tctx, 30*time.Second) }()
	go func() { defer a.wg.Done(); a.Engine.RunTimers(tctx, time.Second) }()
	go func() { defer a.wg.Done(); a.purgeTokens(tctx, time.Hour) }()
	go func() { defer a.wg.Done(); a.reconciler.loop(tctx, a.Cfg.ReconcileInterval) }()
	if err := a.channels.worker.Start(tctx); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	a.channels.ingest.Start()
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.pullLoop(tctx, a.accounts, pullInterval) }()
	ln, err := net.Listen("tcp", a.Cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.Cfg.HTTPAddr, err)
	}
	a.ln = ln
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.Server.App().Listener(ln); err != nil {
			a.Log.Error("http server", "err", err)
		}
	}()
	return nil
}

// warmKB builds every tenant's knowledge base at start (DESIGN D9: the
// index is derived and rebuilt), so the first customer does not wait.
func (a *App) warmKB(ctx context.Context) {
	ts, err := a.agentDB.TenantList(ctx)
	if err != nil {
		a.Log.Warn("kb warm-up: list tenants", "err", err)
		return
	}
	for _, t := range ts {
		snap, err := a.KBLibrary.Acquire(ctx, t.ID)
		if err != nil {
			a.Log.Warn("kb warm-up", "tenant", t.ID, "err", err)
			continue
		}
		snap.Release()
	}
}

// Addr is the listening address once started.
func (a *App) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Stop shuts the node down in order: stop accepting HTTP and close
// connections (clients reconnect to other nodes and resume), stop timers,
// leave pub/sub (withdrawing presence), then close Redis and the database.
func (a *App) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() { a.stopErr = a.stop(ctx) })
	return a.stopErr
}

func (a *App) stop(ctx context.Context) error {
	var errsOut []error
	if a.Server != nil && a.ln != nil {
		errsOut = append(errsOut, a.Server.Shutdown(ctx))
		// Shutdown does nothing if Serve has not started yet; closing the
		// listener ends it either way.
		if err := a.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errsOut = append(errsOut, err)
		}
	}
	if a.stopTimers != nil {
		a.stopTimers()
	}
	if a.channels != nil {
		// Inbound first: taking a message in may queue an answer.
		errsOut = append(errsOut, a.channels.ingest.Stop(ctx))
		errsOut = append(errsOut, a.channels.worker.Stop(ctx))
	}
	if a.Bus != nil {
		errsOut = append(errsOut, a.Bus.Stop(ctx))
	}
	a.wg.Wait()
	a.close()
	return errors.Join(errsOut...)
}

func (a *App) close() {
	if a.KBLibrary != nil {
		a.KBLibrary.Close()
	}
	if q, ok := a.Queue.(*acdredis.Queue); ok {
		q.Close()
	}
	if a.Redis != nil {
		a.Redis.Close()
	}
	if a.DB != nil {
		a.DB.Close()
	}
}
