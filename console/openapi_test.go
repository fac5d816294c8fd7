package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/switchboard-acd/switchboard/internal/apptest"
)

// specPath is docs/openapi.yaml, seen from this package's directory.
const specPath = "../docs/openapi.yaml"

// The loaded API description, shared by every test of the package.
var (
	spec       *openapi3.T
	specRouter routers.Router
	specErr    error

	// seen records, per top-level test, the operations ("GET /api/v1/me")
	// the conformance hook validated and the statuses they answered.
	seenMu sync.Mutex
	seen   = map[string]map[string][]int{}
)

// TestMain loads docs/openapi.yaml and hooks every request made through
// apptest.Node.Do, so that every response of every test in the package —
// the end-to-end tests included — is validated against the description.
func TestMain(m *testing.M) {
	spec, specRouter, specErr = loadSpec()
	// kin-openapi decodes text/plain but not text/html (GET /chat).
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	apptest.Observer = conform
	os.Exit(m.Run())
}

func loadSpec() (*openapi3.T, routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", specPath, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", specPath, err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("router for %s: %w", specPath, err)
	}
	return doc, r, nil
}

// conform is the apptest.Observer: it checks one exchange against the spec.
//
//   - A request the spec has no operation for must be refused by the server
//     with 404 in the error shape (an unknown route).
//   - A request the spec refuses (bad body, bad parameter) must not be
//     accepted by the server: a 2xx/3xx answer to it is a mismatch. Requests
//     the spec allows may still be refused (semantic errors), so a spec-valid
//     request with a 4xx answer is fine. Security is not checked here: the
//     tests send bad tokens on purpose and the server answers 401 for them.
//   - Every response must be documented for its operation and status
//     (IncludeResponseStatus) and match the documented schema.
func conform(t testing.TB, req *http.Request, reqBody []byte, res apptest.Response) {
	t.Helper()
	if specErr != nil {
		t.Errorf("openapi: %v", specErr)
		return
	}
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	what := req.Method + " " + req.URL.RequestURI()

	route, params, err := specRouter.FindRoute(r)
	if err != nil {
		if res.Status != http.StatusNotFound {
			t.Errorf("openapi: %s is not in docs/openapi.yaml (%v) but the server answered %d %s", what, err, res.Status, res.Body)
			return
		}
		if err := validateJSON("Error", res.Body); err != nil {
			t.Errorf("openapi: %s: 404 body of an unknown route: %v", what, err)
		}
		return
	}
	record(t, req.Method+" "+route.Path, res.Status)

	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && res.Status < 400 {
		t.Errorf("openapi: %s: the server accepted (%d) a request docs/openapi.yaml refuses: %v\nrequest body: %s", what, res.Status, err, reqBody)
	}

	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.Status,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("openapi: %s: response %d does not match docs/openapi.yaml: %v\nbody: %s", what, res.Status, err, truncate(res.Body))
	}
}

func record(t testing.TB, op string, status int) {
	top, _, _ := strings.Cut(t.Name(), "/")
	seenMu.Lock()
	defer seenMu.Unlock()
	if seen[top] == nil {
		seen[top] = map[string][]int{}
	}
	seen[top][op] = append(seen[top][op], status)
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// validateJSON checks a JSON document against a component schema.
func validateJSON(schema string, body []byte) error {
	ref := spec.Components.Schemas[schema]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("no schema %s", schema)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %v: %s", err, body)
	}
	return ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors())
}

// TestOpenAPIDocumentValid checks that docs/openapi.yaml is a valid OpenAPI
// 3.1 document, and that the validator really enforces what the document
// relies on (3.1 type arrays, closed objects), so that the conformance hook
// cannot pass by accident.
func TestOpenAPIDocumentValid(t *testing.T) {
	if specErr != nil {
		t.Fatal(specErr)
	}
	if !spec.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.x", spec.OpenAPI)
	}
	if err := spec.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Every operation has an id, a description naming the role, and a
	// documented success status.
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			}
			if strings.HasPrefix(path, "/api/v1/") && !strings.Contains(op.Description, "Role:") {
				t.Errorf("%s: the description does not name the role", name)
			}
			ok := false
			for code := range op.Responses.Map() {
				ok = ok || strings.HasPrefix(code, "1") || strings.HasPrefix(code, "2")
			}
			if !ok {
				t.Errorf("%s: no success response", name)
			}
		}
	}
	// The error codes are those of internal/errs.
	codes := spec.Components.Schemas["ErrorCode"].Value.Enum
	want := []any{"invalid", "unauthorized", "forbidden", "not_found", "conflict", "duplicate", "too_large", "rate_limited", "unavailable", "internal"}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("ErrorCode enum = %v, want %v", codes, want)
	}

	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, tc := range []struct {
		schema, doc string
		ok          bool
	}{
		{"Error", `{"error":{"code":"conflict","message":"m","details":{"state":"wrapup","version":3}}}`, true},
		{"Error", `{"error":{"code":"nope","message":"m"}}`, false},
		{"Error", `{"error":{"code":"invalid"}}`, false},
		{"ReasonTree", `{"tenant_id":"t","version":2,"nodes":null,"mandatory":false,"created_by":"a","created_at":"` + now + `"}`, false},
		{"ReasonTree", `{"tenant_id":"t","version":2,"nodes":[{"code":"a","label":"A","children":[{"code":"b","label":"B"}]}],"mandatory":true,"created_by":"a","created_at":"` + now + `"}`, true},
		{"ReasonTree", `{"tenant_id":"t","version":2,"nodes":"x","mandatory":false,"created_by":"a","created_at":"` + now + `"}`, false},
		{"Agent", `{"tenant_id":"t","id":"i","username":"u","display_name":"U","role":"agent","max_sessions":3,"state":"ready","state_reason":"","state_since":"` + now + `","disabled":false,"skills":null,"created_at":"` + now + `"}`, false},
		{"Agent", `{"tenant_id":"t","id":"i","username":"u","display_name":"U","role":"agent","max_sessions":3,"state":"ready","state_reason":"","state_since":"yesterday","disabled":false,"skills":[],"created_at":"` + now + `"}`, false},
		{"Session", sessionDoc(now, ``), true},
		{"Session", sessionDoc(now, `,"contact":{"tenant_id":"t","id":"c","display_name":"C","vip_level":0,"created_at":"`+now+`"}`), false},
		{"Session", sessionDoc(now, `,"surprise":1`), false},
		{"SessionView", sessionDoc(now, `,"contact":{"tenant_id":"t","id":"c","display_name":"C","vip_level":0,"created_at":"`+now+`"}`), true},
		{"SessionView", sessionDoc(now, `,"surprise":1`), false},
		{"Overview", `{"groups":[],"agents":[],"sessions":{"active":2}}`, true},
		{"Overview", `{"groups":[],"agents":[],"sessions":{"sleeping":2}}`, false},
	} {
		err := validateJSON(tc.schema, []byte(tc.doc))
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: valid = %v, want %v (%v)", tc.schema, tc.doc, err == nil, tc.ok, err)
		}
	}
}

func sessionDoc(now, extra string) string {
	return `{"tenant_id":"t","id":"s","conversation_id":"c","contact_id":"k","account_id":"a","channel":"webchat",` +
		`"state":"active","agent_id":"x","group_id":"g","priority":0,"bot_misses":0,"version":3,"reason_codes":[],` +
		`"created_at":"` + now + `","queued_at":"` + now + `","last_contact_at":"` + now + `"` + extra + `}`
}

var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestOpenAPICoversRoutes checks that the spec and the Fiber app describe
// the same routes: every registered route is documented with its method and
// every documented operation is registered. The static UI served from "/"
// (middleware, not routes) and HEAD (registered with every GET) are left out.
func TestOpenAPICoversRoutes(t *testing.T) {
	if specErr != nil {
		t.Fatal(specErr)
	}
	n := apptest.Start(t, "embedded")
	// One request first: app.Stop right after app.Start hangs when the
	// listener goroutine has not begun serving yet (fasthttp's Shutdown is
	// a no-op before Serve, which then serves forever).
	if r := n.Do(t, "GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	app := map[string]bool{}
	for _, r := range n.App.Server.App().GetRoutes(true) { // true: without Use middleware
		if r.Method == http.MethodHead || r.Path == "/" {
			continue
		}
		app[r.Method+" "+fiberParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, r := range sortedKeys(app) {
		if !documented[r] {
			t.Errorf("route %s is registered but not in docs/openapi.yaml", r)
		}
	}
	for _, r := range sortedKeys(documented) {
		if !app[r] {
			t.Errorf("docs/openapi.yaml documents %s, which the server does not register", r)
		}
	}
	if len(app) < 40 {
		t.Errorf("only %d routes found; is GetRoutes still the route table?", len(app))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIWalk calls every documented operation at least once on each
// backend, through apptest.Node.Do, so the conformance hook validates a
// real answer of every operation (success and typical errors), then checks
// that nothing was left out.
func TestOpenAPIWalk(t *testing.T) {
	if specErr != nil {
		t.Fatal(specErr)
	}
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) { walk(t, apptest.Start(t, backend)) })
	}
	if t.Failed() {
		return
	}
	seenMu.Lock()
	got := seen[t.Name()]
	seenMu.Unlock()
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			statuses := got[name]
			if len(statuses) == 0 {
				t.Errorf("%s (%s) was never called", name, op.OperationID)
				continue
			}
			if _, upgrade := op.Responses.Map()["101"]; upgrade {
				continue // a WebSocket; only its refusals go through Do
			}
			if !slices.ContainsFunc(statuses, func(s int) bool { return s >= 200 && s < 300 }) {
				t.Errorf("%s (%s) never succeeded: statuses %v", name, op.OperationID, statuses)
			}
		}
	}
}

// want sends a request and requires a status; the hook validates the rest.
func want(t *testing.T, n *apptest.Node, status int, method, path, token string, body any) apptest.Response {
	t.Helper()
	r := n.Do(t, method, path, token, body)
	if r.Status != status {
		t.Fatalf("%s %s: got %d %s, want %d", method, path, r.Status, r.Body, status)
	}
	return r
}

func walk(t *testing.T, n *apptest.Node) {
	const v1 = "/api/v1"
	var ids struct {
		ID string `json:"id"`
	}
	id := func(r apptest.Response) string {
		t.Helper()
		ids.ID = ""
		r.JSON(t, &ids)
		if ids.ID == "" {
			t.Fatalf("no id in %s", r.Body)
		}
		return ids.ID
	}

	// Health, metrics, UI page, and the WebSockets refusing plain requests.
	want(t, n, 200, "GET", "/healthz", "", nil)
	want(t, n, 200, "GET", "/readyz", "", nil)
	want(t, n, 200, "GET", "/metrics", "", nil)
	want(t, n, 200, "GET", "/chat", "", nil)
	want(t, n, 400, "GET", v1+"/ws?token=x", "", nil)
	want(t, n, 400, "GET", "/webchat/ws?token=x", "", nil)

	// Sign-in.
	admin, sup, alice, bob := n.Login(t, "admin"), n.Login(t, "supervisor"), n.Login(t, "alice"), n.Login(t, "bob")
	want(t, n, 400, "POST", v1+"/auth/login", "", map[string]string{"username": "alice"})
	want(t, n, 401, "POST", v1+"/auth/login", "", map[string]string{"tenant": "demo", "username": "nobody", "password": "whatever-1"})

	// Reading the tenant's setup.
	aliceID := id(want(t, n, 200, "GET", v1+"/me", alice, nil))
	supID := id(want(t, n, 200, "GET", v1+"/me", sup, nil))
	want(t, n, 200, "GET", v1+"/me/sessions", alice, nil)
	want(t, n, 200, "GET", v1+"/groups", alice, nil)
	want(t, n, 200, "GET", v1+"/reason-tree", alice, nil)
	want(t, n, 200, "GET", v1+"/reason-tree/versions", admin, nil)
	want(t, n, 403, "GET", v1+"/reason-tree/versions", sup, nil)
	want(t, n, 200, "GET", v1+"/channel-accounts", admin, nil)
	want(t, n, 403, "GET", v1+"/channel-accounts", alice, nil)
	want(t, n, 200, "GET", v1+"/agents", sup, nil)
	want(t, n, 200, "GET", v1+"/agents/"+aliceID, sup, nil)
	want(t, n, 404, "GET", v1+"/agents/nobody", sup, nil)
	want(t, n, 200, "GET", v1+"/supervisor/overview", sup, nil)
	want(t, n, 403, "GET", v1+"/supervisor/overview", alice, nil)

	// Administration: a group, an agent in it, state changes.
	gid := id(want(t, n, 201, "POST", v1+"/groups", admin, map[string]any{"name": "Walk group", "max_queue": 5}))
	want(t, n, 409, "POST", v1+"/groups", admin, map[string]any{"name": "Walk group"})
	want(t, n, 400, "POST", v1+"/groups", admin, map[string]any{"strategy": "longest_idle"})
	want(t, n, 200, "PATCH", v1+"/groups/"+gid, admin, map[string]any{"sl_threshold_sec": 45})
	want(t, n, 400, "PATCH", v1+"/groups/"+gid, admin, map[string]any{"strategy": "random"})
	want(t, n, 404, "PATCH", v1+"/groups/nope", admin, map[string]any{"name": "x"})
	cid := id(want(t, n, 201, "POST", v1+"/agents", admin, map[string]any{"username": "walker", "password": "walker-pass-1",
		"display_name": "Walker", "skills": []map[string]any{{"group_id": gid, "proficiency": 2}}}))
	want(t, n, 409, "POST", v1+"/agents", admin, map[string]any{"username": "walker", "password": "walker-pass-1"})
	want(t, n, 400, "POST", v1+"/agents", admin, map[string]any{"username": "x", "password": "short"})
	want(t, n, 403, "POST", v1+"/agents", sup, map[string]any{"username": "walker2", "password": "walker-pass-1"})
	want(t, n, 200, "PATCH", v1+"/agents/"+cid, admin, map[string]any{"display_name": "Walker Two", "max_sessions": 2, "role": "supervisor",
		"skills": []map[string]any{{"group_id": gid, "proficiency": 5}, {"group_id": "support", "proficiency": 1}}})
	want(t, n, 400, "PATCH", v1+"/agents/"+cid, admin, map[string]any{"max_sessions": 99})
	want(t, n, 200, "PUT", v1+"/agents/"+cid+"/state", sup, map[string]any{"state": "not_ready", "reason": "training"})
	want(t, n, 404, "PUT", v1+"/agents/nope/state", sup, map[string]any{"state": "ready"})
	want(t, n, 200, "PATCH", v1+"/agents/"+cid, admin, map[string]any{"disabled": true, "password": "another-pass-2"})
	want(t, n, 200, "GET", v1+"/agents", sup, nil)
	want(t, n, 200, "GET", v1+"/supervisor/overview", sup, nil)

	// A conversation: the visitor writes, asks for a human, alice gets it.
	want(t, n, 200, "PUT", v1+"/me/state", alice, map[string]any{"state": "ready"})
	want(t, n, 200, "PUT", v1+"/me/state", bob, map[string]any{"state": "not_ready", "reason": "lunch"})
	vis := want(t, n, 200, "POST", v1+"/webchat/wc_demo/visitor", "", map[string]any{"name": "Walker Visitor"})
	var visitor struct {
		Token string `json:"token"`
	}
	vis.JSON(t, &visitor)
	vt := visitor.Token
	want(t, n, 200, "POST", v1+"/webchat/wc_demo/visitor", "", map[string]any{"visitor_token": vt})
	want(t, n, 201, "POST", v1+"/webchat/messages", vt, map[string]any{"cid": "w1", "text": "hello"})
	want(t, n, 200, "POST", v1+"/webchat/messages", vt, map[string]any{"cid": "w1", "text": "hello"})
	want(t, n, 400, "POST", v1+"/webchat/messages", vt, map[string]any{"text": "no cid"})
	want(t, n, 413, "POST", v1+"/webchat/messages", vt, map[string]any{"cid": "w-long", "text": strings.Repeat("x", 4001)})
	want(t, n, 201, "POST", v1+"/webchat/messages", vt, map[string]any{"cid": "w2", "text": "I want a human"})
	var sid string
	for deadline := time.Now().Add(10 * time.Second); sid == "" && time.Now().Before(deadline); {
		var mine struct {
			Sessions []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"sessions"`
		}
		want(t, n, 200, "GET", v1+"/me/sessions", alice, nil).JSON(t, &mine)
		for _, s := range mine.Sessions {
			if s.State == "active" {
				sid = s.ID
			}
		}
		if sid == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if sid == "" {
		t.Fatal("alice never got the session")
	}
	s := v1 + "/sessions/" + sid
	want(t, n, 200, "GET", v1+"/webchat/messages?after=0&limit=50", vt, nil)
	want(t, n, 400, "GET", v1+"/webchat/messages?limit=0", vt, nil)
	want(t, n, 204, "POST", v1+"/webchat/read", vt, map[string]any{"seq": 1})
	want(t, n, 200, "GET", v1+"/sessions?state=active,queued&limit=10", sup, nil)
	want(t, n, 200, "GET", v1+"/sessions?agent_id="+aliceID, admin, nil)
	want(t, n, 400, "GET", v1+"/sessions?state=sleeping", sup, nil)
	want(t, n, 403, "GET", v1+"/sessions", alice, nil)
	want(t, n, 200, "GET", s, alice, nil)
	want(t, n, 403, "GET", s, bob, nil)
	want(t, n, 200, "GET", s+"/messages?after=1&limit=100", alice, nil)
	want(t, n, 400, "GET", s+"/messages?limit=5000", alice, nil)
	mid := id(want(t, n, 201, "POST", s+"/messages", alice, map[string]any{"text": "Hi, Alice here.", "client_msg_id": "walk-1"}))
	want(t, n, 200, "POST", s+"/messages", alice, map[string]any{"text": "Hi, Alice here.", "client_msg_id": "walk-1"})
	want(t, n, 400, "POST", s+"/messages", alice, map[string]any{"text": "  "})
	want(t, n, 403, "POST", s+"/messages", bob, map[string]any{"text": "not mine"})
	want(t, n, 200, "POST", s+"/messages/"+mid+"/pin", alice, nil)
	want(t, n, 200, "DELETE", s+"/messages/"+mid+"/pin", alice, nil)
	want(t, n, 404, "POST", s+"/messages/nope/pin", alice, nil)
	want(t, n, 201, "POST", s+"/notes", alice, map[string]any{"body": "VIP, be nice"})
	want(t, n, 200, "GET", s+"/notes", sup, nil)
	want(t, n, 200, "GET", s+"/events", alice, nil)
	want(t, n, 200, "GET", v1+"/supervisor/overview", sup, nil)

	// Transfer to the supervisor, who closes and wraps up.
	want(t, n, 400, "POST", s+"/transfer", alice, map[string]any{"agent_id": supID, "group_id": "sales"})
	want(t, n, 409, "POST", s+"/transfer", alice, map[string]any{"agent_id": supID})
	want(t, n, 200, "PUT", v1+"/me/state", sup, map[string]any{"state": "ready"})
	want(t, n, 200, "POST", s+"/transfer", alice, map[string]any{"agent_id": supID})
	want(t, n, 403, "POST", s+"/accept", alice, nil)
	want(t, n, 409, "POST", s+"/accept", sup, nil)
	want(t, n, 409, "POST", s+"/decline", sup, nil)
	want(t, n, 403, "POST", s+"/close", alice, nil)
	want(t, n, 409, "POST", s+"/wrapup", sup, map[string]any{"reason_codes": []string{"other"}})
	want(t, n, 200, "POST", s+"/close", sup, nil)
	want(t, n, 409, "POST", s+"/close", sup, nil)
	want(t, n, 409, "POST", s+"/messages", sup, map[string]any{"text": "too late"})
	want(t, n, 400, "POST", s+"/wrapup", sup, map[string]any{"reason_codes": []string{"billing"}})
	want(t, n, 200, "POST", s+"/wrapup", sup, map[string]any{"reason_codes": []string{"tech.bug"}})
	want(t, n, 200, "GET", s, sup, nil)
	want(t, n, 200, "GET", s+"/events", sup, nil)
	want(t, n, 200, "GET", v1+"/sessions?state=closed", sup, nil)

	// Offer-with-accept: alice declines the offer, gets it again, accepts.
	want(t, n, 200, "PATCH", v1+"/groups/support", admin, map[string]any{"offer_timeout_sec": 30})
	want(t, n, 200, "PUT", v1+"/me/state", sup, map[string]any{"state": "not_ready", "reason": "coaching"})
	vt2 := ""
	want(t, n, 200, "POST", v1+"/webchat/wc_demo/visitor", "", map[string]any{"name": "Offer Visitor"}).JSON(t, &visitor)
	vt2 = visitor.Token
	want(t, n, 201, "POST", v1+"/webchat/messages", vt2, map[string]any{"cid": "o1", "text": "hello"})
	want(t, n, 201, "POST", v1+"/webchat/messages", vt2, map[string]any{"cid": "o2", "text": "I want a human"})
	offered := func() string {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var mine struct {
				Sessions []struct {
					ID    string `json:"id"`
					State string `json:"state"`
				} `json:"sessions"`
			}
			want(t, n, 200, "GET", v1+"/me/sessions", alice, nil).JSON(t, &mine)
			for _, s := range mine.Sessions {
				if s.State == "offered" {
					return s.ID
				}
			}
		}
		var all any
		want(t, n, 200, "GET", v1+"/sessions?limit=5", sup, nil).JSON(t, &all)
		t.Fatalf("alice never got an offer: %v", all)
		return ""
	}
	o := v1 + "/sessions/" + offered()
	want(t, n, 403, "POST", o+"/accept", bob, nil)
	want(t, n, 200, "POST", o+"/decline", alice, nil)
	o = v1 + "/sessions/" + offered()
	want(t, n, 200, "POST", o+"/accept", alice, nil)
	want(t, n, 409, "POST", o+"/decline", alice, nil)
	want(t, n, 200, "PATCH", v1+"/groups/support", admin, map[string]any{"offer_timeout_sec": 0})

	// Reason trees: a new version, then an empty optional one.
	want(t, n, 200, "PUT", v1+"/reason-tree", admin, map[string]any{"mandatory": true, "nodes": []map[string]any{
		{"code": "a", "label": "A", "children": []map[string]any{{"code": "a.1", "label": "A one"}}}, {"code": "b", "label": "B"}}})
	want(t, n, 400, "PUT", v1+"/reason-tree", admin, map[string]any{"mandatory": true, "nodes": []any{}})
	want(t, n, 403, "PUT", v1+"/reason-tree", sup, map[string]any{"nodes": []any{}})
	want(t, n, 200, "PUT", v1+"/reason-tree", admin, map[string]any{"mandatory": false, "nodes": []any{}})
	want(t, n, 200, "GET", v1+"/reason-tree", alice, nil)
	want(t, n, 200, "GET", v1+"/reason-tree/versions", admin, nil)

	// The knowledge base (kb_test.go).
	kbWalk(t, n, admin, sup, alice)
	channelAccountsWalk(t, n, admin, sup, alice)
	webhooksWalk(t, n, admin)
	// Contacts (contacts_test.go).
	contactsWalk(t, n, admin, sup, alice, sid, o)

	// Groups go; tokens end.
	want(t, n, 204, "DELETE", v1+"/groups/"+gid, admin, nil)
	want(t, n, 404, "DELETE", v1+"/groups/"+gid, admin, nil)
	want(t, n, 403, "DELETE", v1+"/groups/sales", sup, nil)
	want(t, n, 204, "POST", v1+"/auth/logout", bob, nil)
	want(t, n, 401, "GET", v1+"/me", bob, nil)
	want(t, n, 401, "POST", v1+"/auth/logout", "", nil)
	want(t, n, 404, "GET", v1+"/no/such/route", alice, nil)
}
