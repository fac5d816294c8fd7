package wechat

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
)

// APIError is an answer of the WeChat API with a non-zero errcode, kept as
// the cause of a *channels.SendError for whoever needs more than the
// classification (the rid in errmsg identifies the call for WeChat
// support).
type APIError struct {
	// Path is the API path called (without the access token).
	Path string
	// HTTPStatus is the response status (WeChat answers errors with 200).
	HTTPStatus int
	Code       int
	Msg        string
}

// Error renders the path, code and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("wechat api %s: errcode %d: %s", e.Path, e.Code, e.Msg)
}

// WeChat errcodes the adapter acts on (global return codes of the
// Official Account platform).
const (
	codeBusy            = -1    // system busy: try again
	codeInvalidCred     = 40001 // access token invalid or not the latest
	codeInvalidToken    = 40014 // access token malformed
	codeTokenExpired    = 42001 // access token expired
	codeInvalidOpenID   = 40003 // not a follower of this account
	codeInvalidGrant    = 40002 // token request malformed
	codeInvalidAppID    = 40013 // app id unknown
	codeInvalidSecret   = 40125 // app secret wrong
	codeIPNotAllowed    = 40164 // our IP is not in the account's allow-list
	codeDailyQuota      = 45009 // the API's daily call quota is used up
	codeMinuteQuota     = 45011 // the API's per-minute quota is used up
	codeWindowClosed    = 45015 // the 48-hour window is closed (or the customer unfollowed)
	codeWindowQuota     = 45047 // the window's message allowance is used up
	codeNeedSubscribe   = 43004 // the customer does not follow the account
	codeAPIUnauthorized = 48001 // the account may not use this API
)

// Error codes of failures that are not WeChat's own.
const (
	codeNetwork         = "network"
	codeCanceled        = "canceled"
	codeInvalidMessage  = "invalid_message"
	codeInvalidResponse = "invalid_response"
	codeCredentials     = "credentials"
	codeTokenCache      = "token_cache"
)

// isTokenRefused reports the errcodes that mean "get a new token".
func isTokenRefused(code int) bool {
	return code == codeInvalidCred || code == codeInvalidToken || code == codeTokenExpired
}

// beijing is WeChat's time zone: daily quotas reset at its midnight.
var beijing = time.FixedZone("CST", 8*3600)

// failure classifies an API error for the outbox.
func (a *Adapter) failure(e *APIError) *channels.SendError {
	se := &channels.SendError{Code: strconv.Itoa(e.Code), Msg: e.Msg, Err: e}
	switch e.Code {
	case codeWindowClosed, codeNeedSubscribe:
		se.WindowClosed = true
		se.Msg = "the customer-service window is closed (no message from the customer in 48 hours, or they unfollowed): " + e.Msg
	case codeWindowQuota:
		se.Msg = "the window's message allowance is used up; nothing more can be sent until the customer writes again: " + e.Msg
	case codeBusy:
		se.Retry = true
	case codeMinuteQuota:
		se.Retry, se.RetryAfter = true, time.Minute
	case codeDailyQuota:
		// The quota resets at midnight in Beijing (or when an operator
		// clears it); nothing sooner can succeed.
		now := a.clock.Now().In(beijing)
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, beijing)
		se.Retry, se.RetryAfter = true, midnight.Sub(now)
	case codeInvalidCred, codeInvalidToken, codeTokenExpired,
		codeInvalidAppID, codeInvalidSecret, codeIPNotAllowed, codeInvalidGrant:
		se.Auth, se.Retry = true, true
	case codeInvalidOpenID:
		se.Msg = "the recipient is not a follower of this account (invalid openid): " + e.Msg
	case codeAPIUnauthorized:
		se.Msg = "the account is not allowed to use this API (verify the account or check its type): " + e.Msg
	default:
		if e.HTTPStatus == http.StatusTooManyRequests || e.HTTPStatus >= 500 {
			se.Retry = true
		}
	}
	return se
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
// errcode is returned as *APIError; other failures as *channels.SendError.
// Errors never contain the URL's query: it holds the access token.
func (a *Adapter) roundTrip(ctx context.Context, creds *Credentials, method, path string, q url.Values, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, creds.apiURL(path, q), rd)
	if err != nil {
		return &channels.SendError{Code: codeCredentials, Msg: "cannot build a request to " + path, Err: errors.New("bad base_url")}
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
			return &channels.SendError{Code: codeCanceled, Retry: true, Err: err}
		}
		return &channels.SendError{Code: codeNetwork, Retry: true, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return &channels.SendError{Code: codeNetwork, Retry: true, Err: fmt.Errorf("%s %s: reading the answer: %w", method, path, err)}
	}
	var e struct {
		Code *int   `json:"errcode"`
		Msg  string `json:"errmsg"`
	}
	if jerr := json.Unmarshal(raw, &e); jerr != nil {
		se := &channels.SendError{Code: codeInvalidResponse, Msg: fmt.Sprintf("%s: http %d, not JSON", path, resp.StatusCode)}
		if resp.StatusCode == http.StatusOK {
			return se
		}
		se.Code = "http_" + strconv.Itoa(resp.StatusCode)
		se.Retry = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return se
	}
	if e.Code != nil && *e.Code != 0 {
		return &APIError{Path: path, HTTPStatus: resp.StatusCode, Code: *e.Code, Msg: e.Msg}
	}
	if resp.StatusCode != http.StatusOK {
		return &channels.SendError{Code: "http_" + strconv.Itoa(resp.StatusCode), Retry: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
			Msg: path + ": unexpected status"}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return &channels.SendError{Code: codeInvalidResponse, Msg: path + ": answer does not match the API"}
		}
	}
	return nil
}

// stableTokenAnswer is the answer of /cgi-bin/stable_token.
type stableTokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// fetchToken asks the stable_token endpoint for the account's token.
// stable_token is the one for a cluster: unlike /cgi-bin/token it hands
// out the same token while it is valid instead of replacing it on every
// call (so another system fetching for the same app does not knock ours
// out), and the secret travels in the body, not in a URL. force takes a
// new token even though the current one is still valid; WeChat allows
// that 20 times a day.
func (a *Adapter) fetchToken(ctx context.Context, creds *Credentials, force bool) (string, time.Duration, error) {
	body, _ := json.Marshal(map[string]any{
		"grant_type": "client_credential", "appid": creds.AppID, "secret": creds.AppSecret, "force_refresh": force,
	})
	var ans stableTokenAnswer
	if err := a.roundTrip(ctx, creds, http.MethodPost, "/cgi-bin/stable_token", nil, body, &ans); err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			return "", 0, a.failure(ae)
		}
		return "", 0, err
	}
	if ans.AccessToken == "" || ans.ExpiresIn <= 0 {
		return "", 0, &channels.SendError{Code: codeInvalidResponse, Retry: true, Msg: "stable_token: no token in the answer"}
	}
	a.log.Info("wechat access token fetched", "app_id", creds.AppID, "force_refresh", force, "expires_in", ans.ExpiresIn)
	return ans.AccessToken, time.Duration(ans.ExpiresIn) * time.Second, nil
}

// token returns the account's access token from the cluster cache.
// refused is a token the API has just refused ("" on a first try): if
// stable_token hands out that same token again, WeChat considers it valid
// but the API did not, so a forced refresh is the way out.
func (a *Adapter) token(ctx context.Context, creds *Credentials, refused string) (string, error) {
	tok, err := a.tokens.Token(ctx, creds.tokenKey(), func(ctx context.Context) (string, time.Duration, error) {
		tok, ttl, err := a.fetchToken(ctx, creds, false)
		if err == nil && refused != "" && tok == refused {
			a.log.Warn("wechat handed out the token it refused; forcing a refresh", "app_id", creds.AppID)
			return a.fetchToken(ctx, creds, true)
		}
		return tok, ttl, err
	})
	if err != nil {
		var se *channels.SendError
		if errors.As(err, &se) {
			return "", se
		}
		if ctx.Err() != nil {
			return "", &channels.SendError{Code: codeCanceled, Retry: true, Err: err}
		}
		return "", &channels.SendError{Code: codeTokenCache, Retry: true, Msg: "access token unavailable", Err: err}
	}
	return tok, nil
}

// call runs one API call with the account's access token. A refused token
// (40001, 40014, 42001) is dropped from the cluster cache and the call made
// once more, at once, with a fresh one. Failures are classified
// *channels.SendError values.
func (a *Adapter) call(ctx context.Context, creds *Credentials, method, path string, q url.Values, body []byte, out any) *channels.SendError {
	tok, err := a.token(ctx, creds, "")
	for attempt := 0; ; attempt++ {
		if err != nil {
			return asSendError(err)
		}
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("access_token", tok)
		err = a.roundTrip(ctx, creds, method, path, qq, body, out)
		if err == nil {
			return nil
		}
		var ae *APIError
		if !errors.As(err, &ae) {
			return asSendError(err)
		}
		if !isTokenRefused(ae.Code) || attempt > 0 {
			return a.failure(ae)
		}
		a.log.Info("wechat refused the access token; refreshing", "app_id", creds.AppID, "errcode", ae.Code)
		if ierr := a.tokens.Invalidate(ctx, creds.tokenKey(), tok); ierr != nil {
			return &channels.SendError{Code: codeTokenCache, Retry: true, Msg: "access token refused and could not be dropped", Err: ierr}
		}
		tok, err = a.token(ctx, creds, tok)
	}
}

// asSendError returns err as the *channels.SendError it is or wraps.
func asSendError(err error) *channels.SendError {
	var se *channels.SendError
	if errors.As(err, &se) {
		return se
	}
	return &channels.SendError{Code: codeNetwork, Retry: true, Err: err}
}
