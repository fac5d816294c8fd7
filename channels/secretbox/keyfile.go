package secretbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// KeyFileName is the file in the data directory that keeps a generated key
// when none is configured.
const KeyFileName = "credentials.key"

// Source says where a keyring came from; a node logs a warning for every
// source but SourceConfig.
type Source string

// The sources of Load.
const (
	// SourceConfig: the keyring spec was configured.
	SourceConfig Source = "config"
	// SourceFile: read from the key file a node generated earlier.
	SourceFile Source = "file"
	// SourceGenerated: no key anywhere; one was generated and written to
	// the key file.
	SourceGenerated Source = "generated"
)

// Load returns the keyring of a node: the configured spec when there is
// one (ParseKeyring), else the key kept in file, generated on first use.
// The file holds one "id:base64" line, is created with mode 0600 and is
// refused when other users may read it. Creation is atomic (a complete
// file appears under its name or none does), so nodes starting together on
// one data directory end up with the same key.
//
// A generated key suits the embedded single-node default: nodes with data
// directories of their own generate different keys and cannot read each
// other's credentials, so production configures the key.
func Load(spec, file string) (*Keyring, Source, error) {
	const op = "secretbox.Load"
	if strings.TrimSpace(spec) != "" {
		kr, err := ParseKeyring(spec)
		return kr, SourceConfig, err
	}
	if file == "" {
		return nil, "", errs.E(op, errs.Invalid, "no credentials key configured and no file to keep a generated one in")
	}
	kr, err := readKeyFile(file)
	if err == nil {
		return kr, SourceFile, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	kr, created, err := createKeyFile(file)
	if err != nil {
		return nil, "", err
	}
	if !created {
		return kr, SourceFile, nil
	}
	return kr, SourceGenerated, nil
}

// readKeyFile parses the key file; a missing file is fs.ErrNotExist.
func readKeyFile(file string) (*Keyring, error) {
	const op = "secretbox.Load"
	fi, err := os.Stat(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, errs.Wrap(op, err)
	}
	// Windows reports synthetic permission bits; elsewhere a key readable
	// by other users is as good as published.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, errs.E(op, errs.Invalid, "%s: mode %04o lets other users read the key; make it 0600", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	kr, err := ParseKeyring(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, &errs.Error{Op: op, Code: errs.Invalid, Msg: fmt.Sprintf("%s: %s", file, errs.MessageOf(err)), Err: err}
	}
	return kr, nil
}

// createKeyFile writes a new key under a temporary name and links it to
// file, which fails if another node got there first; the key in file is
// returned either way, created telling whether it is ours.
func createKeyFile(file string) (kr *Keyring, created bool, err error) {
	const op = "secretbox.Load"
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, false, errs.Wrap(op, err)
	}
	k, err := GenerateKey()
	if err != nil {
		return nil, false, err
	}
	tmp, err := os.CreateTemp(dir, KeyFileName+".tmp-*")
	if err != nil {
		return nil, false, errs.Wrap(op, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; Chmod guards against an
	// unusual umask or platform.
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return nil, false, errs.Wrap(op, err)
	}
	if _, err := tmp.WriteString(k.String() + "\n"); err != nil {
		tmp.Close()
		return nil, false, errs.Wrap(op, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, errs.Wrap(op, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, errs.Wrap(op, err)
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			kr, err := readKeyFile(file)
			return kr, false, err
		}
		return nil, false, errs.Wrap(op, err)
	}
	kr, err = NewKeyring(k)
	return kr, true, err
}
