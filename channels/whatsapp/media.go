package whatsapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// mediaInfo is the answer to GET /{version}/{media-id}.
type mediaInfo struct {
	URL      string     `json:"url"`
	MIMEType string     `json:"mime_type"`
	SHA256   string     `json:"sha256"`
	FileSize flexString `json:"file_size"`
	ID       string     `json:"id"`
}

// Media downloads a customer's attachment by the media id an inbound
// message carried (channels.Media.ID): it asks the Graph API for the
// short-lived URL, then fetches that URL with the same token. The body is
// capped at Options.MaxMediaBytes (a larger file is errs.TooLarge, before
// or while reading) and, when WhatsApp gave a hex SHA-256, checked against
// it at the end (errs.Invalid on mismatch). The wait for the download to
// start is bounded by Options.Timeout, the transfer by ctx. The caller
// closes the reader.
//
// Errors carry the *channels.SendError classification as their cause:
// errs.Unavailable when a retry may help, errs.Unauthorized for refused
// credentials, errs.NotFound for an unknown or expired media id.
func (a *Adapter) Media(ctx context.Context, acct channels.Account, mediaID string) (io.ReadCloser, string, error) {
	const op = "whatsapp.Media"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return nil, "", &errs.Error{Op: op, Code: errs.Unavailable, Msg: "account credentials are unusable", Err: err}
	}
	if !isGraphID(mediaID) {
		return nil, "", errs.E(op, errs.Invalid, "media id must be a numeric Graph id")
	}
	data, se := a.call(ctx, &creds, http.MethodGet, creds.endpoint(mediaID), nil)
	if se != nil {
		return nil, "", mediaFailure(op, se)
	}
	var info mediaInfo
	if err := json.Unmarshal(data, &info); err != nil || info.URL == "" {
		return nil, "", errs.E(op, errs.Unavailable, "WhatsApp returned no download URL for media %s", mediaID)
	}
	if size, err := strconv.ParseInt(string(info.FileSize), 10, 64); err == nil && size > a.maxMedia {
		return nil, "", errs.E(op, errs.TooLarge, "media %s is %d bytes, over the %d-byte limit", mediaID, size, a.maxMedia)
	}
	if !tokenSafe(info.URL, creds.BaseURL) {
		return nil, "", errs.E(op, errs.Unavailable, "media %s: download URL is neither https nor on the Graph API host; the token is not sent there", mediaID)
	}
	// The adapter's timeout bounds the wait for the answer; the body
	// streams for as long as the caller's context allows.
	dctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(a.timeout, cancel)
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, info.URL, nil)
	if err != nil {
		timer.Stop()
		cancel()
		return nil, "", errs.E(op, errs.Unavailable, "media %s: unusable download URL", mediaID)
	}
	req.Header.Set("Authorization", "Bearer "+creds.AccessToken)
	resp, err := a.client.Do(req)
	timer.Stop()
	if err != nil {
		cancel()
		if ctx.Err() == nil && dctx.Err() != nil {
			err = context.DeadlineExceeded
		}
		return nil, "", mediaFailure(op, networkFailure(ctx, &creds, err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		resp.Body.Close()
		cancel()
		return nil, "", mediaFailure(op, a.apiFailure(&creds, resp, body))
	}
	if resp.ContentLength > a.maxMedia {
		resp.Body.Close()
		cancel()
		return nil, "", errs.E(op, errs.TooLarge, "media %s is %d bytes, over the %d-byte limit", mediaID, resp.ContentLength, a.maxMedia)
	}
	mime := info.MIMEType
	if mime == "" {
		mime = resp.Header.Get("Content-Type")
	}
	r := &mediaReader{rc: resp.Body, cancel: cancel, remaining: a.maxMedia, limit: a.maxMedia, id: mediaID}
	if sum, err := hex.DecodeString(info.SHA256); err == nil && len(sum) == sha256.Size {
		r.want, r.hash = sum, sha256.New()
	}
	return r, mime, nil
}

// mediaFailure turns a classified Graph failure into the error Media
// returns.
func mediaFailure(op string, se *channels.SendError) error {
	code := errs.Internal
	var ae *APIError
	switch {
	case se.Auth:
		code = errs.Unauthorized
	case se.Retry:
		code = errs.Unavailable
	case errors.As(se, &ae) && (ae.HTTPStatus == http.StatusNotFound || ae.Code == 100):
		code = errs.NotFound
	}
	return &errs.Error{Op: op, Code: code, Msg: "media download failed", Err: se}
}

// tokenSafe says whether the bearer token may be sent to a download URL:
// over https, or to the configured Graph API origin itself.
func tokenSafe(raw, base string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	b, err := url.Parse(base)
	return err == nil && u.Scheme == b.Scheme && strings.EqualFold(u.Host, b.Host)
}

// mediaReader caps a download and checks its checksum at the end.
type mediaReader struct {
	rc        io.ReadCloser
	cancel    context.CancelFunc
	remaining int64
	limit     int64
	id        string
	hash      hash.Hash
	want      []byte
}

// Read reads at most limit bytes; one more is errs.TooLarge, a wrong
// checksum at the end errs.Invalid.
func (r *mediaReader) Read(p []byte) (int, error) {
	const op = "whatsapp.Media"
	if r.remaining <= 0 {
		var one [1]byte
		n, err := r.rc.Read(one[:])
		if n > 0 {
			return 0, errs.E(op, errs.TooLarge, "media %s is over the %d-byte limit", r.id, r.limit)
		}
		if err == io.EOF {
			return 0, r.finish()
		}
		return 0, err
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.rc.Read(p)
	r.remaining -= int64(n)
	if r.hash != nil {
		r.hash.Write(p[:n])
	}
	if err == io.EOF {
		err = r.finish()
	}
	return n, err
}

// finish checks the checksum once the body is complete.
func (r *mediaReader) finish() error {
	if r.hash != nil && !bytes.Equal(r.hash.Sum(nil), r.want) {
		return errs.E("whatsapp.Media", errs.Invalid, "media %s does not match the SHA-256 WhatsApp announced", r.id)
	}
	return io.EOF
}

// Close closes the download.
func (r *mediaReader) Close() error {
	err := r.rc.Close()
	r.cancel()
	return err
}
