// Package secretbox seals secrets that Switchboard must store but never
// keep in the clear at rest: the provider credentials of channel accounts
// (app secrets, access tokens, AES keys). The database holds only sealed
// text; the key comes from the node's configuration (or, for the embedded
// default, a key file beside the database), so a copy of the database alone
// reveals nothing.
//
// Sealing is AES-256-GCM from the standard library. A sealed value reads
//
//	v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>
//
// The version lets the format change later; the key id says which key of
// the Keyring opens it, so keys can be rotated: a Keyring seals with its
// current key and opens with any of its keys. Every seal takes additional
// data (see Binding) that the ciphertext is authenticated against, so a
// value copied to another row (another tenant's account) does not open
// there.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// version is the format tag of sealed values written by this package.
const version = "v1"

// MaxKeyIDLen bounds a key id; ids are short names ("2026q1") or derived
// fingerprints.
const MaxKeyIDLen = 32

// The failures of Open, for errors.Is. They are wrapped in errs.Internal
// errors: a value that does not open is a configuration or data problem of
// the server, not the client's.
var (
	// ErrFormat: the value is not a sealed value of a known version.
	ErrFormat = errors.New("secretbox: malformed sealed value")
	// ErrUnknownKey: the value was sealed with a key the keyring lacks
	// (the key was rotated out, or this node has another key).
	ErrUnknownKey = errors.New("secretbox: sealed with a key not in the keyring")
	// ErrAuth: the key is known but the value does not authenticate: it
	// was altered, belongs to another row (additional data differ), or the
	// key under this id is not the one it was sealed with.
	ErrAuth = errors.New("secretbox: sealed value does not authenticate")
)

// Key is one AES-256 key and the id sealed values name it by.
type Key struct {
	ID     string
	Secret [KeySize]byte
}

// DerivedKeyID is the id of a key configured without one: a fingerprint
// of the key, so every node configured with the same key agrees on the id,
// and a node with another key reports ErrUnknownKey instead of a bare
// authentication failure. Eight hex digits of a domain-separated SHA-256
// reveal nothing usable about the key.
func DerivedKeyID(secret [KeySize]byte) string {
	h := sha256.New()
	h.Write([]byte("switchboard secretbox key id\x00"))
	h.Write(secret[:])
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// GenerateKey returns a random key with a derived id.
func GenerateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k.Secret[:]); err != nil {
		return Key{}, errs.Wrap("secretbox.GenerateKey", err)
	}
	k.ID = DerivedKeyID(k.Secret)
	return k, nil
}

// String renders the key as a keyring spec entry, "id:base64". It is the
// form ParseKeyring reads and the key file holds; it contains the secret.
func (k Key) String() string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret[:])
}

// validKeyID: 1..MaxKeyIDLen of [A-Za-z0-9_.-], never ':' or ',' which
// delimit the spec and the sealed format.
func validKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLen {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// Keyring seals with its current key and opens with any of its keys. It is
// immutable and safe for concurrent use.
type Keyring struct {
	current string
	ids     []string // current first, then the old keys in the order given
	aead    map[string]cipher.AEAD
}

// NewKeyring builds a keyring that seals with current and also opens
// values sealed with the old keys. Ids must be valid and distinct.
func NewKeyring(current Key, old ...Key) (*Keyring, error) {
	const op = "secretbox.NewKeyring"
	kr := &Keyring{current: current.ID, aead: map[string]cipher.AEAD{}}
	for _, k := range append([]Key{current}, old...) {
		if !validKeyID(k.ID) {
			return nil, errs.E(op, errs.Invalid, "key id %q: must be 1 to %d of A-Z a-z 0-9 _ . -", k.ID, MaxKeyIDLen)
		}
		if _, dup := kr.aead[k.ID]; dup {
			return nil, errs.E(op, errs.Invalid, "key id %q: given twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret[:])
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		g, err := cipher.NewGCM(block)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		kr.aead[k.ID] = g
		kr.ids = append(kr.ids, k.ID)
	}
	return kr, nil
}

// ParseKeyring reads a keyring spec: comma-separated keys, the first the
// current one, each "id:base64" or a bare base64 key whose id is derived
// (DerivedKeyID). A key is 32 bytes in standard or URL-safe base64, with or
// without padding. Messages never repeat key material.
func ParseKeyring(spec string) (*Keyring, error) {
	const op = "secretbox.ParseKeyring"
	var keys []Key
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, errs.E(op, errs.Invalid, "key %d: empty", i+1)
		}
		id, b64, hasID := strings.Cut(part, ":")
		if !hasID {
			id, b64 = "", part
		}
		raw, err := decodeKey(b64)
		if err != nil {
			return nil, errs.E(op, errs.Invalid, "key %d: %v", i+1, err)
		}
		var k Key
		copy(k.Secret[:], raw)
		k.ID = id
		if !hasID {
			k.ID = DerivedKeyID(k.Secret)
		} else if !validKeyID(id) {
			return nil, errs.E(op, errs.Invalid, "key %d: id must be 1 to %d of A-Z a-z 0-9 _ . -", i+1, MaxKeyIDLen)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errs.E(op, errs.Invalid, "no key")
	}
	kr, err := NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	return kr, nil
}

// decodeKey reads 32 bytes of base64 in any of the usual alphabets.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no key after the id")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != KeySize {
			return nil, fmt.Errorf("must be %d bytes in base64, got %d bytes", KeySize, len(b))
		}
		return b, nil
	}
	return nil, errors.New("not base64")
}

// CurrentID is the id of the key new values are sealed with.
func (k *Keyring) CurrentID() string { return k.current }

// IDs lists the ids of every key, the current one first.
func (k *Keyring) IDs() []string { return slices.Clone(k.ids) }

// Binding builds additional data from parts (a purpose, a tenant, a row
// id...), each length-prefixed, so ("ab", "c") and ("a", "bc") differ.
func Binding(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// header is the prefix of a value sealed with key id; it is authenticated
// too, so the version and id cannot be altered without detection.
func header(id string) string { return version + ":" + id + ":" }

// Seal encrypts plaintext with the current key, authenticated against ad
// (see Binding), with a fresh random nonce: sealing the same plaintext
// twice gives different values.
func (k *Keyring) Seal(plaintext, ad []byte) (string, error) {
	g := k.aead[k.current]
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", errs.Wrap("secretbox.Seal", err)
	}
	h := header(k.current)
	out := g.Seal(nonce, nonce, plaintext, additional(h, ad))
	return h + base64.StdEncoding.EncodeToString(out), nil
}

// additional is the data GCM authenticates besides the ciphertext: the
// header, then the caller's binding.
func additional(h string, ad []byte) []byte {
	b := make([]byte, 0, len(h)+len(ad))
	b = append(b, h...)
	return append(b, ad...)
}

// KeyID returns the id of the key a sealed value names, or ErrFormat.
func KeyID(sealed string) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

// split parses "v1:<id>:<base64>".
func split(sealed string) (id string, body []byte, err error) {
	const op = "secretbox.Open"
	ver, rest, ok := strings.Cut(sealed, ":")
	if !ok || ver != version {
		return "", nil, &errs.Error{Op: op, Code: errs.Internal, Msg: "not a " + version + " sealed value", Err: ErrFormat}
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok || !validKeyID(id) {
		return "", nil, &errs.Error{Op: op, Code: errs.Internal, Msg: "sealed value without a valid key id", Err: ErrFormat}
	}
	body, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, &errs.Error{Op: op, Code: errs.Internal, Msg: "sealed value is not base64", Err: ErrFormat}
	}
	return id, body, nil
}

// Open decrypts a value Seal returned, with the key it names, checking it
// against the same ad. Failures wrap ErrFormat, ErrUnknownKey or ErrAuth
// and name the key id, never the key.
func (k *Keyring) Open(sealed string, ad []byte) ([]byte, error) {
	const op = "secretbox.Open"
	id, body, err := split(sealed)
	if err != nil {
		return nil, err
	}
	g, ok := k.aead[id]
	if !ok {
		return nil, &errs.Error{Op: op, Code: errs.Internal, Err: ErrUnknownKey,
			Msg: fmt.Sprintf("sealed with key %q, which is not configured (keys: %s)", id, strings.Join(k.ids, ", "))}
	}
	if len(body) < g.NonceSize()+g.Overhead() {
		return nil, &errs.Error{Op: op, Code: errs.Internal, Msg: "sealed value too short", Err: ErrFormat}
	}
	nonce, ct := body[:g.NonceSize()], body[g.NonceSize():]
	pt, err := g.Open(nil, nonce, ct, additional(header(id), ad))
	if err != nil {
		return nil, &errs.Error{Op: op, Code: errs.Internal, Err: ErrAuth,
			Msg: fmt.Sprintf("sealed value does not authenticate with key %q (altered, copied from another row, or a different key under that id)", id)}
	}
	return pt, nil
}

// Current reports whether sealed names the current key: values that do
// not are re-sealed when keys rotate.
func (k *Keyring) Current(sealed string) bool {
	return strings.HasPrefix(sealed, header(k.current))
}
