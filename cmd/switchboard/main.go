// Command switchboard is the Switchboard server and its operator tools:
// serve (default), migrate, bench (load generator), kb (matcher eval and
// bench), credentials (key rotation) and version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/switchboard-acd/switchboard/internal/app"
	"github.com/switchboard-acd/switchboard/internal/config"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/migrations"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "migrate":
		return migrate(args, stdout, stderr)
	case "bench":
		return bench(args, stdout, stderr)
	case "kb":
		return kbCmd(args, stdout, stderr)
	case "credentials":
		return credentialsCmd(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "switchboard", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: switchboard [serve|migrate|bench|kb|credentials|version] [flags]\nrun 'switchboard COMMAND -h' for a command's flags")
		return nil
	}
	return fmt.Errorf("unknown command %q (serve, migrate, bench, kb, credentials, version)", cmd)
}

func loadConfig(name string, args []string, stderr io.Writer) (config.Config, bool, error) {
	cfg := config.Default()
	fs := flag.NewFlagSet("switchboard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Register(fs)
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, false, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, *check, nil
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func serve(args []string, stdout, stderr io.Writer) error {
	cfg, check, err := loadConfig("serve", args, stderr)
	if err != nil {
		return err
	}
	if check {
		fmt.Fprintln(stdout, "configuration is valid")
		return nil
	}
	log := newLogger(cfg.LogLevel, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		_ = a.Stop(context.Background())
		return err
	}
	if cfg.DebugAddr != "" {
		go func() {
			// net/http/pprof registers on the default mux.
			if err := http.ListenAndServe(cfg.DebugAddr, nil); err != nil {
				log.Warn("debug server", "err", err)
			}
		}()
	}
	printWelcome(stdout, a)
	log.Info("switchboard started", "addr", a.Addr(), "node", a.Cfg.NodeID, "database", a.DB.Dialect,
		"redis", redisKind(cfg.RedisURL), "version", version)
	<-ctx.Done()
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := a.Stop(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func redisKind(url string) string {
	if url == "" {
		return "in-process"
	}
	return "server"
}

func printWelcome(w io.Writer, a *app.App) {
	base := a.Cfg.PublicURL
	if base == "" {
		addr := a.Cfg.HTTPAddr
		if strings.HasPrefix(addr, ":") {
			addr = "localhost" + addr
		}
		base = "http://" + addr
	}
	fmt.Fprintf(w, "\nSwitchboard is running.\n  Agent console:  %s/\n  Customer chat:  %s/chat?key=%s\n", base, base, app.DemoChatKey)
	if d := a.Seeded; d != nil {
		fmt.Fprintf(w, "\nDemo tenant %q created. Sign in with (shown only now):\n", d.Tenant)
		for _, c := range d.Credentials {
			fmt.Fprintf(w, "  %-11s %-10s password %s\n", c.Role, c.Username, c.Password)
		}
		fmt.Fprintf(w, "  web-chat account %s, signing secret %s\n", d.ChatKey, d.ChatSecret)
	}
	fmt.Fprintln(w)
}

func migrate(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("migrate", args, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	d, err := db.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	defer d.Close()
	applied, err := migrations.Apply(ctx, d)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: applied %d migration(s) %v\n", d.Dialect, len(applied), applied)
	return nil
}
