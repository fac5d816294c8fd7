// Package wxcrypt is WXBizMsgCrypt, the message encryption WeChat Official
// Accounts ("safe mode"), the Open Platform and WeCom callbacks share: the
// SHA-1 signatures over sorted strings and the AES-256-CBC envelope that
// carries the receiver's id (app id or corp id) after the message. Both the
// WeChat and the WeCom adapters verify and decrypt through it, so a fix to
// the scheme lands once.
package wxcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Sizes of the scheme.
const (
	// KeyLen is the length of an EncodingAESKey: 43 base64 characters that
	// decode (with one "=" appended) to a 32-byte AES-256 key.
	KeyLen = 43
	// blockSize is the PKCS#7 block of the scheme: 32, not AES's 16, so a
	// pad is 1..32 bytes.
	blockSize = 32
	// randomLen and lenLen are the random prefix and the big-endian
	// message length that open every plaintext.
	randomLen = 16
	lenLen    = 4
)

// WXBizMsgCrypt error numbers, kept in error details as "wx_code" so logs
// match the providers' documentation.
const (
	codeSignature  = -40001
	codeAESKey     = -40004
	codeReceiverID = -40005
	codeDecrypt    = -40007
	codeBuffer     = -40008
	codeBase64     = -40010
)

// Signature is the scheme's signature: the lowercase hex SHA-1 of token,
// timestamp, nonce and any further strings (the Encrypt element, an
// echostr), sorted lexicographically and concatenated. The plain-mode
// signature of WeChat is Signature(token, timestamp, nonce); msg_signature
// adds the ciphertext.
func Signature(token, timestamp, nonce string, more ...string) string {
	parts := make([]string, 0, 3+len(more))
	parts = append(parts, token, timestamp, nonce)
	parts = append(parts, more...)
	sort.Strings(parts)
	h := sha1.New()
	for _, p := range parts {
		io.WriteString(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Verify reports whether signature is Signature(token, timestamp, nonce,
// more...), comparing in constant time so a forger learns nothing from
// timing. Hex case is ignored.
func Verify(signature, token, timestamp, nonce string, more ...string) bool {
	want := Signature(token, timestamp, nonce, more...)
	got := strings.ToLower(signature)
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// Crypter verifies, decrypts and encrypts the messages of one receiver
// (one Official Account app id, one WeCom corp id). It is safe for
// concurrent use.
type Crypter struct {
	token      string
	receiverID string
	key        []byte
	block      cipher.Block
	// random fills the 16-byte prefix of Encrypt; tests fix it to
	// reproduce the official vectors.
	random io.Reader
}

// New prepares a Crypter. encodingAESKey is the 43-character key from the
// provider's console; receiverID is the app id (Official Account) or the
// corp id (WeCom) that every plaintext must end with. A key of another
// length, or one that is not base64, is errs.Invalid.
func New(token, encodingAESKey, receiverID string) (*Crypter, error) {
	const op = "wxcrypt.New"
	key, err := DecodeKey(encodingAESKey)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, "aes key: %v", err).With("wx_code", codeAESKey)
	}
	return &Crypter{token: token, receiverID: receiverID, key: key, block: block, random: rand.Reader}, nil
}

// DecodeKey turns an EncodingAESKey into the 32-byte AES key, rejecting
// keys that are not 43 base64 characters: credentials are checked when an
// account is saved, not when the first message fails.
func DecodeKey(encodingAESKey string) ([]byte, error) {
	const op = "wxcrypt.DecodeKey"
	if len(encodingAESKey) != KeyLen {
		return nil, errs.E(op, errs.Invalid, "encoding_aes_key: must be %d characters, got %d", KeyLen, len(encodingAESKey)).With("wx_code", codeAESKey)
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errs.E(op, errs.Invalid, "encoding_aes_key: not base64 of 32 bytes").With("wx_code", codeAESKey)
	}
	return key, nil
}

// ReceiverID is the app id or corp id this Crypter checks and writes.
func (c *Crypter) ReceiverID() string { return c.receiverID }

// VerifyURL answers WeCom's URL verification (GET with msg_signature,
// timestamp, nonce and an encrypted echostr): it checks the signature over
// the echostr and returns the decrypted echostr, which is the response
// body the provider expects.
func (c *Crypter) VerifyURL(msgSignature, timestamp, nonce, echostr string) ([]byte, error) {
	b, err := c.Decrypt(msgSignature, timestamp, nonce, echostr)
	if err != nil {
		return nil, errs.Wrap("wxcrypt.VerifyURL", err)
	}
	return b, nil
}

// Decrypt checks msgSignature over (token, timestamp, nonce, encrypted)
// and returns the message inside encrypted. A wrong signature or a
// plaintext addressed to another receiver is errs.Unauthorized; bad base64,
// a ciphertext that is not whole AES blocks, bad padding or a length field
// that does not fit is errs.Invalid.
func (c *Crypter) Decrypt(msgSignature, timestamp, nonce, encrypted string) ([]byte, error) {
	const op = "wxcrypt.Decrypt"
	if !Verify(msgSignature, c.token, timestamp, nonce, encrypted) {
		return nil, errs.E(op, errs.Unauthorized, "bad msg_signature").With("wx_code", codeSignature)
	}
	msg, receiver, err := c.open(encrypted)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	if subtle.ConstantTimeCompare([]byte(receiver), []byte(c.receiverID)) != 1 {
		return nil, errs.E(op, errs.Unauthorized, "message is for another receiver id").With("wx_code", codeReceiverID)
	}
	return msg, nil
}

// open decrypts and unpacks a ciphertext without checking its signature
// or receiver.
func (c *Crypter) open(encrypted string) (msg []byte, receiverID string, err error) {
	const op = "wxcrypt.open"
	ct, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return nil, "", errs.E(op, errs.Invalid, "encrypt: not base64").With("wx_code", codeBase64)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, "", errs.E(op, errs.Invalid, "encrypt: %d bytes is not whole AES blocks", len(ct)).With("wx_code", codeDecrypt)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(pt, ct)

	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > blockSize || pad > len(pt) {
		return nil, "", errs.E(op, errs.Invalid, "encrypt: bad padding").With("wx_code", codeBuffer)
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, "", errs.E(op, errs.Invalid, "encrypt: bad padding").With("wx_code", codeBuffer)
		}
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < randomLen+lenLen {
		return nil, "", errs.E(op, errs.Invalid, "encrypt: plaintext too short").With("wx_code", codeBuffer)
	}
	n := binary.BigEndian.Uint32(pt[randomLen : randomLen+lenLen])
	rest := pt[randomLen+lenLen:]
	if uint64(n) > uint64(len(rest)) {
		return nil, "", errs.E(op, errs.Invalid, "encrypt: message length %d beyond the plaintext", n).With("wx_code", codeBuffer)
	}
	return rest[:n], string(rest[n:]), nil
}

// Encrypt seals msg for the provider (an encrypted passive reply, a fake
// provider in tests) and signs it: encrypted is the base64 Encrypt element,
// msgSignature the signature over (token, timestamp, nonce, encrypted).
func (c *Crypter) Encrypt(msg []byte, timestamp, nonce string) (encrypted, msgSignature string, err error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return "", "", errs.E("wxcrypt.Encrypt", errs.TooLarge, "message of %d bytes does not fit the 4-byte length", len(msg))
	}
	var random [randomLen]byte
	if _, err := io.ReadFull(c.random, random[:]); err != nil {
		return "", "", errs.Wrap("wxcrypt.Encrypt", err)
	}
	encrypted = c.seal(random, msg)
	return encrypted, Signature(c.token, timestamp, nonce, encrypted), nil
}

// seal builds random || len || msg || receiverID, pads it to 32 bytes and
// encrypts it.
func (c *Crypter) seal(random [randomLen]byte, msg []byte) string {
	var buf bytes.Buffer
	n := randomLen + lenLen + len(msg) + len(c.receiverID)
	pad := blockSize - n%blockSize
	buf.Grow(n + pad)
	buf.Write(random[:])
	var l [lenLen]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(msg)))
	buf.Write(l[:])
	buf.Write(msg)
	buf.WriteString(c.receiverID)
	buf.Write(bytes.Repeat([]byte{byte(pad)}, pad))
	pt := buf.Bytes()
	cipher.NewCBCEncrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(pt, pt)
	return base64.StdEncoding.EncodeToString(pt)
}
