package wecomkf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// API paths.
const (
	pathGetToken   = "/cgi-bin/gettoken"
	pathSyncMsg    = "/cgi-bin/kf/sync_msg"
	pathSendMsg    = "/cgi-bin/kf/send_msg"
	pathSendOnEvt  = "/cgi-bin/kf/send_msg_on_event"
	pathStateTrans = "/cgi-bin/kf/service_state/trans"
	pathStateGet   = "/cgi-bin/kf/service_state/get"
)

// APIError is an answer of the WeCom API with a non-zero errcode. It is
// the cause of the adapter's classified errors (a *channels.SendError for
// sends, an *errs.Error otherwise) for whoever needs the provider's own
// code and message (errmsg carries a hint id for WeCom support).
type APIError struct {
	// Path is the API path called (without the access token).
	Path string
	// HTTPStatus is the response status (WeCom answers errors with 200).
	HTTPStatus int
	Code       int
	Msg        string
}

// Error renders the path, code and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("wecom api %s: errcode %d: %s", e.Path, e.Code, e.Msg)
}

// Retryable implements channels.Retryable: whether a later call may
// succeed.
func (e *APIError) Retryable() bool { return classify(e.Code).retry }

// WeCom errcodes the adapter acts on (WeCom global return codes, kf part).
const (
	codeBusy           = -1    // system busy: try again
	codeInvalidSecret  = 40001 // secret wrong (gettoken) or credential refused
	codeInvalidCorpID  = 40013 // corp id unknown
	codeInvalidToken   = 40014 // access token invalid
	codeMissingToken   = 41001 // access token missing
	codeTokenExpired   = 42001 // access token expired
	codeFrequency      = 45009 // API call frequency exceeded
	codeConcurrency    = 45033 // too many concurrent calls
	codeAPIForbidden   = 48002 // the app may not call this API
	codeIPNotTrusted   = 60020 // our IP is not in the app's trusted IPs
	codeInvalidKfID    = 95000 // open_kfid malformed
	codeSendQuota      = 95001 // 5 messages per customer message used up
	codeSendTimeLimit  = 95002 // 48 hours since the customer's last message
	codeKfIDNotExist   = 95004 // open_kfid unknown
	codeInvalidMsgTok  = 95007 // sync_msg token invalid or expired
	codeKfInWeCom      = 95011 // the kf account is served in the WeCom client
	codeKfNotInWeCom   = 95012 // the kf account is not served in WeCom
	codeSessionEnded   = 95013 // the session has ended
	codeNotServicer    = 95014 // servicer_userid is not an active receptionist
	codeBadTransition  = 95016 // service_state transition not allowed
	codeAPIDisabled    = 95017 // the kf API switch is off for the app
	codeSessionInvalid = 95018 // the customer's service state does not allow API sends
)

// Failure codes of the adapter's own (not WeCom errcodes).
const (
	codeNetwork         = "network"
	codeCanceled        = "canceled"
	codeInvalidResponse = "invalid_response"
	codeCredentials     = "credentials"
	codeTokenCache      = "token_cache"
	codeInvalidMessage  = "invalid_message"
)

// verdict is what an errcode means to the callers.
type verdict struct {
	retry  bool          // a later call may succeed
	after  time.Duration // the wait to suggest, if any
	auth   bool          // the app's credentials or set-up were refused
	window bool          // the provider's sending rules forbid this send now
	class  errs.Code     // for the non-send calls
	why    string
}

// classify maps a WeCom errcode. The choices:
//   - -1 (busy), 45009 and 45033 (frequency, concurrency) are retryable;
//     45009 suggests a minute, since WeCom's limits are per minute.
//   - A refused access token (40001, 40014, 41001, 42001) is auth and
//     retryable: the call already retried once with a fresh token, a later
//     one may find the provider consistent again.
//   - App set-up problems (corp id, API not allowed, untrusted IP, API
//     switch off, open_kfid unknown or served in the WeCom client) are
//     auth and not retryable: an operator must fix the account.
//   - The sending rules (95001 five messages, 95002 48 hours, 95013 session
//     ended, 95018 service state 2/3/4) are WindowClosed: only the
//     customer writing again (or a state change) reopens the way.
//   - Everything else is the request's own fault and final.
func classify(code int) verdict {
	switch code {
	case codeBusy:
		return verdict{retry: true, class: errs.Unavailable, why: "WeCom is busy"}
	case codeFrequency:
		return verdict{retry: true, after: time.Minute, class: errs.RateLimited, why: "API call frequency exceeded"}
	case codeConcurrency:
		return verdict{retry: true, class: errs.RateLimited, why: "too many concurrent API calls"}
	case codeInvalidSecret, codeInvalidToken, codeMissingToken, codeTokenExpired:
		return verdict{retry: true, auth: true, class: errs.Unauthorized, why: "access token refused"}
	case codeInvalidCorpID:
		return verdict{auth: true, class: errs.Unauthorized, why: "corp id refused"}
	case codeAPIForbidden, codeAPIDisabled:
		return verdict{auth: true, class: errs.Forbidden, why: "the app may not call the customer-service API (use a self-built app set as able to call it, and turn the API on)"}
	case codeIPNotTrusted:
		return verdict{auth: true, class: errs.Forbidden, why: "this server's IP is not among the app's trusted IPs"}
	case codeInvalidKfID, codeKfIDNotExist:
		return verdict{auth: true, class: errs.Invalid, why: "open_kfid is not a customer-service account of this app"}
	case codeKfInWeCom, codeKfNotInWeCom:
		return verdict{auth: true, class: errs.Forbidden, why: "the customer-service account's reception mode does not allow API access"}
	case codeSendQuota:
		return verdict{window: true, class: errs.Conflict, why: "5 messages already sent since the customer's last message"}
	case codeSendTimeLimit:
		return verdict{window: true, class: errs.Conflict, why: "48 hours have passed since the customer's last message"}
	case codeSessionEnded:
		return verdict{window: true, class: errs.Conflict, why: "the customer's session has ended"}
	case codeSessionInvalid:
		return verdict{window: true, class: errs.Conflict, why: "the customer's service state does not allow API messages (queued, with a WeCom servicer, or ended)"}
	case codeBadTransition:
		return verdict{class: errs.Conflict, why: "service state transition not allowed"}
	case codeNotServicer:
		return verdict{class: errs.Invalid, why: "servicer_userid is not an active receptionist of this account"}
	case codeInvalidMsgTok:
		return verdict{class: errs.Invalid, why: "sync token invalid or expired"}
	}
	return verdict{class: errs.Invalid, why: "refused by WeCom"}
}

func isTokenRefused(code int) bool {
	return code == codeInvalidSecret || code == codeInvalidToken || code == codeMissingToken || code == codeTokenExpired
}

// callError is a failure that is not a WeCom errcode: the network, the
// token cache, an answer that is not the API's.
type callError struct {
	code  string
	retry bool
	auth  bool
	msg   string
	err   error
}

func (e *callError) Error() string {
	s := "wecom: " + e.code
	if e.msg != "" {
		s += ": " + e.msg
	}
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *callError) Unwrap() error   { return e.err }
func (e *callError) Retryable() bool { return e.retry }

// sendError classifies a failure for the outbox.
func sendError(err error) *channels.SendError {
	var se *channels.SendError
	var ae *APIError
	var ce *callError
	switch {
	case errors.As(err, &se):
		return se
	case errors.As(err, &ce):
		// Before *APIError: a callError may wrap one (gettoken's refusal)
		// and its own classification wins.
		return &channels.SendError{Code: ce.code, Msg: ce.msg, Retry: ce.retry, Auth: ce.auth, Err: ce.err}
	case errors.As(err, &ae):
		v := classify(ae.Code)
		return &channels.SendError{Code: strconv.Itoa(ae.Code), Msg: v.why + ": " + ae.Msg, Retry: v.retry, RetryAfter: v.after,
			WindowClosed: v.window, Auth: v.auth, Err: ae}
	}
	return &channels.SendError{Code: codeNetwork, Retry: true, Err: err}
}

// opError classifies a failure of a non-send call as an *errs.Error whose
// cause is the *APIError (with "errcode" in its details) or the transport
// failure; both implement channels.Retryable.
func opError(op string, err error) error {
	var ae *APIError
	var ce *callError
	switch {
	case errors.As(err, &ce):
		code := errs.Internal
		switch {
		case ce.auth:
			code = errs.Unauthorized
		case ce.retry:
			code = errs.Unavailable
		}
		return &errs.Error{Op: op, Code: code, Msg: ce.msg, Err: ce}
	case errors.As(err, &ae):
		v := classify(ae.Code)
		return (&errs.Error{Op: op, Code: v.class, Msg: v.why, Err: ae}).With("errcode", ae.Code)
	}
	return errs.Wrap(op, err)
}

// apiURL is the URL of path on the account's origin.
func (c *Credentials) apiURL(path string, q url.Values) string {
	u := c.BaseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// roundTrip performs one request and decodes a JSON answer into out. An
// errcode is returned as *APIError, other failures as *callError. Errors
// never contain the URL's query: it holds the access token or the secret.
func (a *Adapter) roundTrip(ctx context.Context, creds *Credentials, method, path string, q url.Values, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, creds.apiURL(path, q), rd)
	if err != nil {
		return &callError{code: codeCredentials, auth: true, msg: "cannot build a request to " + path + " (base_url?)"}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", method, path, ue.Err)
		}
		if ctx.Err() != nil {
			return &callError{code: codeCanceled, retry: true, err: err}
		}
		return &callError{code: codeNetwork, retry: true, err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return &callError{code: codeNetwork, retry: true, err: fmt.Errorf("%s %s: reading the answer: %w", method, path, err)}
	}
	var e struct {
		Code *int   `json:"errcode"`
		Msg  string `json:"errmsg"`
	}
	if jerr := json.Unmarshal(raw, &e); jerr != nil {
		ce := &callError{code: codeInvalidResponse, msg: fmt.Sprintf("%s: http %d, not JSON", path, resp.StatusCode)}
		if resp.StatusCode != http.StatusOK {
			ce.code = "http_" + strconv.Itoa(resp.StatusCode)
			ce.retry = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		}
		return ce
	}
	if e.Code != nil && *e.Code != 0 {
		return &APIError{Path: path, HTTPStatus: resp.StatusCode, Code: *e.Code, Msg: e.Msg}
	}
	if resp.StatusCode != http.StatusOK {
		return &callError{code: "http_" + strconv.Itoa(resp.StatusCode), retry: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
			msg: path + ": unexpected status"}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return &callError{code: codeInvalidResponse, msg: path + ": answer does not match the API", err: err}
		}
	}
	return nil
}

// fetchToken asks gettoken for the app's access token. A refusal of the
// corp id or secret is final (auth, not retryable) even though the same
// errcode on another API only means "refresh the token".
func (a *Adapter) fetchToken(ctx context.Context, creds *Credentials) (string, time.Duration, error) {
	var ans struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	q := url.Values{"corpid": {creds.CorpID}, "corpsecret": {creds.Secret}}
	if err := a.roundTrip(ctx, creds, http.MethodGet, pathGetToken, q, nil, &ans); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (isTokenRefused(ae.Code) || !classify(ae.Code).retry) {
			return "", 0, &callError{code: strconv.Itoa(ae.Code), auth: true, msg: "gettoken refused the corp id or secret: " + ae.Msg, err: ae}
		}
		return "", 0, err
	}
	if ans.AccessToken == "" || ans.ExpiresIn <= 0 {
		return "", 0, &callError{code: codeInvalidResponse, retry: true, msg: "gettoken: no token in the answer"}
	}
	a.log.InfoContext(ctx, "wecom access token fetched", "corp_id", creds.CorpID, "expires_in", ans.ExpiresIn)
	return ans.AccessToken, time.Duration(ans.ExpiresIn) * time.Second, nil
}

// token returns the app's access token from the cluster cache.
func (a *Adapter) token(ctx context.Context, creds *Credentials) (string, error) {
	tok, err := a.tokens.Token(ctx, creds.tokenKey(), func(ctx context.Context) (string, time.Duration, error) {
		return a.fetchToken(ctx, creds)
	})
	if err == nil {
		return tok, nil
	}
	var ae *APIError
	var ce *callError
	if errors.As(err, &ce) || errors.As(err, &ae) {
		return "", err
	}
	if ctx.Err() != nil {
		return "", &callError{code: codeCanceled, retry: true, err: err}
	}
	return "", &callError{code: codeTokenCache, retry: true, msg: "access token unavailable", err: err}
}

// call POSTs req as JSON to path with the app's access token and decodes
// the answer into out. A refused token (40001, 40014, 41001, 42001) is
// dropped from the cluster cache and the call made once more, at once,
// with a fresh one.
func (a *Adapter) call(ctx context.Context, creds *Credentials, path string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return &callError{code: codeInvalidMessage, msg: "encoding the request", err: err}
	}
	tok, err := a.token(ctx, creds)
	for attempt := 0; ; attempt++ {
		if err != nil {
			return err
		}
		err = a.roundTrip(ctx, creds, http.MethodPost, path, url.Values{"access_token": {tok}}, body, out)
		var ae *APIError
		if err == nil || !errors.As(err, &ae) || !isTokenRefused(ae.Code) || attempt > 0 {
			return err
		}
		a.log.InfoContext(ctx, "wecom refused the access token; refreshing", "corp_id", creds.CorpID, "errcode", ae.Code, "path", path)
		if ierr := a.tokens.Invalidate(ctx, creds.tokenKey(), tok); ierr != nil {
			return &callError{code: codeTokenCache, retry: true, msg: "access token refused and could not be dropped", err: ierr}
		}
		tok, err = a.token(ctx, creds)
	}
}
