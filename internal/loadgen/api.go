package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// requestTimeout bounds one REST call. Calls also inherit the run's
// deadline; this only keeps one stuck request from eating all of it.
const requestTimeout = 15 * time.Second

// wsReadLimit is the largest frame the bench accepts. The library default
// (32 KiB) is below what a session.assigned frame with a long transcript can
// weigh, and a frame over the limit would close the connection and look
// like a server fault.
const wsReadLimit = 1 << 20

// CheckLocalURL parses the target URL and refuses anything but a server on
// this machine. The bench opens thousands of connections and creates
// accounts: pointed at a shared or production server by mistake it would be
// a denial of service and would leave litter in a real tenant.
func CheckLocalURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad -url %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bad -url %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("bad -url %q: no host", raw)
	}
	if !isLoopback(host) {
		return nil, fmt.Errorf("refusing to load-test %q: the bench only targets a server on this machine (127.0.0.1, ::1 or localhost)", host)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("bad -url %q: give the server's base URL without a path", raw)
	}
	u.Path, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// api talks REST and WebSocket to one server.
type api struct {
	base *url.URL
	hc   *http.Client

	// wsClients holds one HTTP client per local source address for
	// WebSocket dials (see wsClientFor); guarded by mu.
	mu        sync.Mutex
	wsClients map[string]*http.Client
}

func newAPI(base *url.URL) *api {
	tr := &http.Transport{
		Proxy: nil, // a local target must never go through a proxy from the environment
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		// Replies are sent concurrently by every bench agent; a small idle
		// pool would close and reopen TCP connections on every burst and
		// measure connection setup instead of the server.
		MaxIdleConns:        2048,
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     60 * time.Second,
	}
	return &api{base: base, hc: &http.Client{Transport: tr}, wsClients: map[string]*http.Client{}}
}

// apiError is a non-2xx answer, with the server's error code when it sent
// the standard error body.
type apiError struct {
	Method, Path string
	Status       int
	Code, Msg    string
}

func (e *apiError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Msg)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Msg)
}

// do sends one JSON request and decodes the JSON answer into out (if not
// nil). token, when set, is sent as a bearer token.
func (a *api) do(ctx context.Context, method, path, token string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base.String()+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Method: method, Path: path, Status: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			e.Code, e.Msg = eb.Error.Code, eb.Error.Message
		}
		if len(e.Msg) > 300 {
			e.Msg = e.Msg[:300] + "..."
		}
		return e
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
		}
	}
	return nil
}

// healthz checks that a Switchboard server answers, so that a wrong port
// fails with one clear message instead of a cascade of dial errors.
func (a *api) healthz(ctx context.Context) error {
	if err := a.do(ctx, http.MethodGet, "/healthz", "", nil, nil); err != nil {
		return fmt.Errorf("server at %s is not reachable: %w", a.base, err)
	}
	return nil
}

func (a *api) login(ctx context.Context, tenant, user, password string) (token, agentID string, err error) {
	var out struct {
		Token string `json:"token"`
		Agent struct {
			ID string `json:"id"`
		} `json:"agent"`
	}
	err = a.do(ctx, http.MethodPost, "/api/v1/auth/login", "",
		map[string]string{"tenant": tenant, "username": user, "password": password}, &out)
	if err == nil && out.Token == "" {
		err = errors.New("login answered without a token")
	}
	return out.Token, out.Agent.ID, err
}

type group struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (a *api) groups(ctx context.Context, token string) ([]group, error) {
	var out struct {
		Groups []group `json:"groups"`
	}
	err := a.do(ctx, http.MethodGet, "/api/v1/groups", token, nil, &out)
	return out.Groups, err
}

type reasonNode struct {
	Code     string       `json:"code"`
	Children []reasonNode `json:"children"`
}

// firstLeaf returns the depth-first first leaf code, "" for an empty tree.
// Wrap-up accepts leaf codes only.
func firstLeaf(nodes []reasonNode) string {
	for _, n := range nodes {
		if len(n.Children) == 0 {
			return n.Code
		}
		if c := firstLeaf(n.Children); c != "" {
			return c
		}
	}
	return ""
}

// reasonLeaf returns the reason code the bench wraps sessions up with.
func (a *api) reasonLeaf(ctx context.Context, token string) (string, error) {
	var out struct {
		Nodes []reasonNode `json:"nodes"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/v1/reason-tree", token, nil, &out); err != nil {
		return "", err
	}
	return firstLeaf(out.Nodes), nil
}

type skill struct {
	GroupID     string `json:"group_id"`
	Proficiency int    `json:"proficiency"`
}

type newAgent struct {
	Username    string  `json:"username"`
	DisplayName string  `json:"display_name"`
	Password    string  `json:"password"`
	Role        string  `json:"role"`
	MaxSessions int     `json:"max_sessions"`
	Skills      []skill `json:"skills"`
}

func (a *api) createAgent(ctx context.Context, adminToken string, in newAgent) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := a.do(ctx, http.MethodPost, "/api/v1/agents", adminToken, in, &out)
	return out.ID, err
}

func (a *api) setState(ctx context.Context, token, state string) error {
	return a.do(ctx, http.MethodPut, "/api/v1/me/state", token, map[string]string{"state": state}, nil)
}

func (a *api) logout(ctx context.Context, token string) error {
	return a.do(ctx, http.MethodPost, "/api/v1/auth/logout", token, nil, nil)
}

func (a *api) reply(ctx context.Context, token, sessionID, text, clientMsgID string) error {
	return a.do(ctx, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(sessionID)+"/messages", token,
		map[string]string{"text": text, "client_msg_id": clientMsgID}, nil)
}

func (a *api) closeSession(ctx context.Context, token, sessionID string) error {
	return a.do(ctx, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(sessionID)+"/close", token, nil, nil)
}

func (a *api) wrapup(ctx context.Context, token, sessionID string, codes []string) error {
	return a.do(ctx, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(sessionID)+"/wrapup", token,
		map[string][]string{"reason_codes": codes}, nil)
}

func (a *api) visitor(ctx context.Context, chatKey string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := a.do(ctx, http.MethodPost, "/api/v1/webchat/"+url.PathEscape(chatKey)+"/visitor", "", struct{}{}, &out)
	if err == nil && out.Token == "" {
		err = errors.New("visitor answered without a token")
	}
	return out.Token, err
}

// metrics scrapes /metrics and returns the samples by their full name with
// labels as printed, e.g. `switchboard_websocket_connections{kind="webchat"}`.
func (a *api) metrics(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base.String()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format far enough for gauges:
// "name{labels} value [timestamp]" lines; comments are skipped.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The name may hold spaces inside label values; the value follows
		// the closing brace, or the first space when there are no labels.
		nameEnd := strings.IndexByte(line, ' ')
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			nameEnd = i + 1
		}
		if nameEnd <= 0 || nameEnd >= len(line) {
			continue
		}
		fields := strings.Fields(line[nameEnd:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[line[:nameEnd]] = v
	}
	return out, sc.Err()
}

// wsURL turns a server path into a ws:// or wss:// URL with the token.
func (a *api) wsURL(path, token string) string {
	u := *a.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = path
	u.RawQuery = url.Values{"token": {token}}.Encode()
	return u.String()
}

// wsClientFor returns the HTTP client WebSocket dials use from local source
// address src ("" for the system's choice). Each source address needs its
// own transport because the local address is a property of the dialer.
func (a *api) wsClientFor(src string) *http.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.wsClients[src]; ok {
		return c
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext}}
	a.wsClients[src] = c
	return c
}

// dialWS opens a WebSocket to path with token, from source address src.
func (a *api) dialWS(ctx context.Context, path, token, src string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, a.wsURL(path, token), &websocket.DialOptions{HTTPClient: a.wsClientFor(src)})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %d %s: %w", path, resp.StatusCode, http.StatusText(resp.StatusCode), err)
		}
		return nil, fmt.Errorf("dial %s: %w", path, err)
	}
	c.SetReadLimit(wsReadLimit)
	return c, nil
}
