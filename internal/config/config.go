// Package config is the one description of how a Switchboard node is set
// up: every setting with its default, its flag and SWITCHBOARD_* variable,
// and validation whose messages name the field. Only cmd/switchboard loads
// it; packages receive the values they need.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/channels/secretbox"
	apperrs "github.com/switchboard-acd/switchboard/internal/errs"
)

// Config is a node's configuration.
type Config struct {
	// HTTPAddr is where the HTTP API, console and WebSockets listen.
	HTTPAddr string
	// DataDir holds the embedded SQLite database (and later the KB index).
	DataDir string
	// DatabaseURL selects PostgreSQL (postgres://...); empty means the
	// embedded SQLite file in DataDir.
	DatabaseURL string
	// RedisURL selects a Redis server (redis://...); empty means an
	// in-process Redis (single node only).
	RedisURL string
	// RedisPrefix starts every Redis key, so several installations can share
	// one Redis.
	RedisPrefix string
	// NodeID names this node in presence and pub/sub; default: a random id.
	NodeID string
	// PublicURL is the address printed for people (console and chat URLs);
	// default derived from HTTPAddr.
	PublicURL string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// Seed creates the demo tenant on first start when the database is empty.
	Seed bool
	// SecretKey signs visitor tokens. Empty: generated once and stored in the
	// database so every node shares it.
	SecretKey string
	// CredentialsKey encrypts channel-account credentials at rest
	// (channels/secretbox): base64 of 32 bytes, or comma-separated
	// "id:base64" keys for rotation, the first sealing new values and all
	// opening old ones. Empty: a key generated once and kept in
	// DataDir/credentials.key, which suits one node; nodes that share a
	// database must share the key, so production sets it. It is never
	// stored in the database.
	CredentialsKey string

	// HandoffWords make the bot hand off to a person (case-insensitive,
	// contained in the message).
	HandoffWords []string
	// IdleTimeout ends an active session whose customer has been silent this long.
	IdleTimeout time.Duration
	// WrapupTimeout closes a session left in wrap-up this long.
	WrapupTimeout time.Duration
	// ReopenWindow: a customer who writes again within it goes back to the
	// last agent first.
	ReopenWindow time.Duration
	// TokenTTL is how long an agent login lasts.
	TokenTTL time.Duration
	// ReconcileInterval is how often a node checks the routing state in
	// Redis against the database and repairs drift (DESIGN D3).
	ReconcileInterval time.Duration
	// AgentGrace is how long an agent's console may stay disconnected
	// before their sessions go back to the queue and they go offline.
	AgentGrace time.Duration
	// MaxBodyBytes caps HTTP request bodies (413 beyond).
	MaxBodyBytes int
	// InboundWorkers is how many provider messages a node takes into
	// their conversations at once, from the inbound log (each customer's
	// in order). On two cores 4 drain a backlog fastest (more only contend
	// for the database) and leave the most to accepting webhooks during a
	// burst; the log holds the rest.
	InboundWorkers int
	// ShutdownGrace bounds a graceful shutdown.
	ShutdownGrace time.Duration
	// DebugAddr, when set, serves Go's pprof profiles there (keep it on
	// localhost or a private network).
	DebugAddr string

	envErrs []error // malformed environment variables, reported by Validate
}

// Default returns the defaults.
func Default() Config {
	return Config{
		HTTPAddr:          ":8080",
		DataDir:           "./data",
		RedisPrefix:       "sb",
		LogLevel:          "info",
		Seed:              true,
		HandoffWords:      []string{"人工", "转人工", "客服", "agent", "human", "person", "operator"},
		IdleTimeout:       10 * time.Minute,
		WrapupTimeout:     2 * time.Minute,
		ReopenWindow:      30 * time.Minute,
		TokenTTL:          12 * time.Hour,
		ReconcileInterval: 15 * time.Second,
		AgentGrace:        60 * time.Second,
		MaxBodyBytes:      1 << 20,
		InboundWorkers:    4,
		ShutdownGrace:     15 * time.Second,
	}
}

// Register binds c's fields to flags on fs. A SWITCHBOARD_* variable that is
// set replaces the default; a flag on the command line wins over both.
// Malformed variables are reported by Validate through the returned errors
// collected in envErrs.
func (c *Config) Register(fs *flag.FlagSet) {
	str := func(p *string, name, env, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" ("+env+")")
	}
	dur := func(p *time.Duration, name, env, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s: %w", env, err))
			} else {
				*p = d
			}
		}
		fs.DurationVar(p, name, *p, usage+" ("+env+")")
	}
	str(&c.HTTPAddr, "http-addr", "SWITCHBOARD_HTTP_ADDR", "listen address")
	str(&c.DataDir, "data-dir", "SWITCHBOARD_DATA_DIR", "data directory for the embedded database")
	str(&c.DatabaseURL, "database-url", "SWITCHBOARD_DATABASE_URL", "PostgreSQL URL; empty: embedded SQLite")
	str(&c.RedisURL, "redis-url", "SWITCHBOARD_REDIS_URL", "Redis URL; empty: in-process Redis")
	str(&c.RedisPrefix, "redis-prefix", "SWITCHBOARD_REDIS_PREFIX", "prefix of every Redis key")
	str(&c.NodeID, "node-id", "SWITCHBOARD_NODE_ID", "this node's id; default random")
	str(&c.PublicURL, "public-url", "SWITCHBOARD_PUBLIC_URL", "public base URL printed at start")
	str(&c.LogLevel, "log-level", "SWITCHBOARD_LOG_LEVEL", "debug, info, warn or error")
	str(&c.DebugAddr, "debug-addr", "SWITCHBOARD_DEBUG_ADDR", "address for pprof profiles; empty: off")
	str(&c.SecretKey, "secret-key", "SWITCHBOARD_SECRET_KEY", "key signing visitor tokens; default: generated and stored")
	// Registered without a default, so that -h never prints the key.
	if v, ok := os.LookupEnv("SWITCHBOARD_CREDENTIALS_KEY"); ok {
		c.CredentialsKey = v
	}
	fs.Func("credentials-key", "base64 AES-256 key, or comma-separated id:base64 keys (first current), encrypting channel credentials; default: generated into the data dir (SWITCHBOARD_CREDENTIALS_KEY)", func(v string) error {
		c.CredentialsKey = v
		return nil
	})
	if v, ok := os.LookupEnv("SWITCHBOARD_HANDOFF_WORDS"); ok {
		c.HandoffWords = splitList(v)
	}
	fs.Func("handoff-words", "comma-separated words that ask for a person (SWITCHBOARD_HANDOFF_WORDS)", func(v string) error {
		c.HandoffWords = splitList(v)
		return nil
	})
	if v, ok := os.LookupEnv("SWITCHBOARD_SEED"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("SWITCHBOARD_SEED: %w", err))
		}
		c.Seed = b
	}
	fs.BoolVar(&c.Seed, "seed", c.Seed, "create the demo tenant on first start (SWITCHBOARD_SEED)")
	dur(&c.IdleTimeout, "idle-timeout", "SWITCHBOARD_IDLE_TIMEOUT", "customer idle timeout of an active session")
	dur(&c.WrapupTimeout, "wrapup-timeout", "SWITCHBOARD_WRAPUP_TIMEOUT", "wrap-up time limit")
	dur(&c.ReopenWindow, "reopen-window", "SWITCHBOARD_REOPEN_WINDOW", "return to the last agent within this window")
	dur(&c.TokenTTL, "token-ttl", "SWITCHBOARD_TOKEN_TTL", "agent login lifetime")
	dur(&c.ReconcileInterval, "reconcile-interval", "SWITCHBOARD_RECONCILE_INTERVAL", "how often routing state is checked against the database")
	dur(&c.AgentGrace, "agent-grace", "SWITCHBOARD_AGENT_GRACE", "how long an agent's console may stay disconnected before their sessions are requeued")
	dur(&c.ShutdownGrace, "shutdown-grace", "SWITCHBOARD_SHUTDOWN_GRACE", "graceful shutdown limit")
	num := func(p *int, name, env, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s: %w", env, err))
			}
			*p = n
		}
		fs.IntVar(p, name, *p, usage+" ("+env+")")
	}
	num(&c.MaxBodyBytes, "max-body-bytes", "SWITCHBOARD_MAX_BODY_BYTES", "largest accepted request body")
	num(&c.InboundWorkers, "inbound-workers", "SWITCHBOARD_INBOUND_WORKERS", "provider messages a node takes into their conversations at once")
}

func splitList(v string) []string {
	var out []string
	for _, w := range strings.Split(v, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// Validate checks every field and returns all problems at once, each naming
// its field.
func (c *Config) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	bad := func(field, msg string) { errs = append(errs, fmt.Errorf("%s: %s", field, msg)) }
	if c.HTTPAddr == "" {
		bad("http_addr", "must not be empty")
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		bad("data_dir", "must be set when database_url is empty")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("database_url", "must be a postgres:// URL")
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		bad("redis_url", "must be a redis:// or rediss:// URL")
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{} ") {
		bad("redis_prefix", "must be non-empty without braces or spaces")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be debug, info, warn or error")
	}
	if len(c.HandoffWords) == 0 {
		bad("handoff_words", "must name at least one word")
	}
	for field, d := range map[string]time.Duration{
		"idle_timeout": c.IdleTimeout, "wrapup_timeout": c.WrapupTimeout, "token_ttl": c.TokenTTL, "shutdown_grace": c.ShutdownGrace,
		"reconcile_interval": c.ReconcileInterval, "agent_grace": c.AgentGrace,
	} {
		if d <= 0 {
			bad(field, "must be > 0")
		}
	}
	if c.ReopenWindow < 0 {
		bad("reopen_window", "must be >= 0")
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes", "must be >= 1024")
	}
	if c.InboundWorkers < 1 || c.InboundWorkers > 1024 {
		bad("inbound_workers", "must be between 1 and 1024")
	}
	if c.SecretKey != "" && len(c.SecretKey) < 16 {
		bad("secret_key", "must be at least 16 characters")
	}
	if strings.TrimSpace(c.CredentialsKey) != "" {
		if _, err := secretbox.ParseKeyring(c.CredentialsKey); err != nil {
			bad("credentials_key", apperrs.MessageOf(err))
		}
	} else if c.DataDir == "" {
		bad("credentials_key", "must be set when data_dir is empty (there is nowhere to keep a generated key)")
	}
	return errors.Join(errs...)
}
