package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/migrations"
)

const credentialsUsage = `usage: switchboard credentials rekey [flags]

Re-seals every channel account's credentials with the current credentials
key (the first of --credentials-key / SWITCHBOARD_CREDENTIALS_KEY), so that
older keys can then be removed from the configuration. Run it once, on any
node, after adding the new key first in every node's configuration. The
database and key flags are those of serve.
`

// credentialsCmd runs the credentials maintenance commands.
func credentialsCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rekey" {
		fmt.Fprint(stderr, credentialsUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return fmt.Errorf("credentials: want the subcommand rekey")
	}
	cfg, _, err := loadConfig("credentials rekey", args[1:], stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	d, err := db.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := migrations.Apply(ctx, d); err != nil {
		return err
	}
	keyFile := ""
	if cfg.DataDir != "" {
		keyFile = filepath.Join(cfg.DataDir, secretbox.KeyFileName)
	}
	keys, source, err := secretbox.Load(cfg.CredentialsKey, keyFile)
	if err != nil {
		return fmt.Errorf("credentials key: %w", err)
	}
	n, err := channelsql.New(d, channelsql.WithKeys(keys)).CredentialsRekey(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-sealed the credentials of %d account(s) with key %s (%s)\n", n, keys.CurrentID(), source)
	return nil
}
