package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/internal/apptest"
	"github.com/switchboard-acd/switchboard/kb"
)

// doRaw is apptest.Node.Do for bodies that are not JSON and requests with
// headers of their own (If-Match); the conformance hook sees it too.
func doRaw(t testing.TB, n *apptest.Node, method, path, token, contentType string, body []byte, header map[string]string) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(method, n.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := apptest.Response{Status: res.StatusCode, Body: b, Header: res.Header}
	if apptest.Observer != nil {
		apptest.Observer(t, req, body, out)
	}
	return out
}

func wantRaw(t *testing.T, n *apptest.Node, status int, method, path, token, contentType string, body []byte, header map[string]string) apptest.Response {
	t.Helper()
	r := doRaw(t, n, method, path, token, contentType, body, header)
	if r.Status != status {
		t.Fatalf("%s %s: got %d %s, want %d", method, path, r.Status, r.Body, status)
	}
	return r
}

// recordMiss puts a miss in the demo tenant's unmatched bin, as the bot
// does when it does not understand a message.
func recordMiss(t *testing.T, n *apptest.Node, key, text string) kb.MissGroup {
	t.Helper()
	g, err := n.App.KB.Store().MissRecord(t.Context(), kb.Miss{TenantID: "demo", SessionID: "s-walk", Text: text, Key: key, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

type kbEntry struct {
	ID       string    `json:"id"`
	Question string    `json:"question"`
	Variants []string  `json:"variants"`
	Answer   kb.Answer `json:"answer"`
	Enabled  bool      `json:"enabled"`
	Version  int       `json:"version"`
}

// kbWalk calls every operation of the KB API (part of TestOpenAPIWalk).
func kbWalk(t *testing.T, n *apptest.Node, admin, sup, alice string) {
	const kbp = "/api/v1/kb"
	var e kbEntry
	entry := map[string]any{"question": "How do I get a refund?", "variants": []string{"money back", "refund please"},
		"answer": map[string]any{"text": "Open Orders and choose Refund.", "choices": []map[string]any{
			{"label": "Talk to a person", "handoff": true}, {"label": "Opening hours", "text": "9 to 5"}}},
		"keywords": []string{"refund"}, "category": "billing", "language": "en"}
	want(t, n, 201, "POST", kbp+"/entries", sup, entry).JSON(t, &e)
	want(t, n, 403, "POST", kbp+"/entries", alice, entry)
	want(t, n, 400, "POST", kbp+"/entries", admin, map[string]any{"question": "", "answer": map[string]any{"text": ""}})
	want(t, n, 200, "GET", kbp+"/entries?category=billing&language=en&enabled=true&q=REFUND&limit=10&offset=0", alice, nil)
	want(t, n, 400, "GET", kbp+"/entries?limit=0", alice, nil)
	want(t, n, 200, "GET", kbp+"/entries/"+e.ID, alice, nil)
	want(t, n, 404, "GET", kbp+"/entries/nope", alice, nil)
	want(t, n, 200, "GET", kbp+"/search?q=refund&limit=3", alice, nil)
	want(t, n, 400, "GET", kbp+"/search?q=", alice, nil)
	want(t, n, 400, "GET", kbp+"/search?q=refund&limit=0", alice, nil)
	want(t, n, 413, "GET", kbp+"/search?q="+strings.Repeat("a", 2001), alice, nil)

	upd := map[string]any{"question": "How do I get a refund?", "answer": map[string]any{"text": "Orders > Refund."}, "enabled": false}
	wantRaw(t, n, 200, "PUT", kbp+"/entries/"+e.ID, admin, "application/json", mustJSON(t, upd), map[string]string{"If-Match": `"1"`})
	wantRaw(t, n, 409, "PUT", kbp+"/entries/"+e.ID, admin, "application/json", mustJSON(t, upd), map[string]string{"If-Match": `"1"`})
	want(t, n, 400, "PUT", kbp+"/entries/"+e.ID, admin, upd) // no version
	upd["version"] = 2
	want(t, n, 200, "PUT", kbp+"/entries/"+e.ID, sup, upd)
	want(t, n, 404, "PUT", kbp+"/entries/nope", sup, upd)
	want(t, n, 403, "PUT", kbp+"/entries/"+e.ID, alice, upd)
	want(t, n, 200, "GET", kbp+"/entries/"+e.ID+"/history", sup, nil)
	want(t, n, 403, "GET", kbp+"/entries/"+e.ID+"/history", alice, nil)
	want(t, n, 404, "GET", kbp+"/entries/nope/history", sup, nil)

	// Import and export.
	rows := []map[string]any{{"question": "Opening hours?", "answer": "9 to 5"}, {"question": "", "answer": ""}}
	want(t, n, 400, "POST", kbp+"/import", admin, rows)
	want(t, n, 200, "POST", kbp+"/import?dry_run=true", admin, rows)
	want(t, n, 200, "POST", kbp+"/import?partial=true", admin, rows)
	want(t, n, 400, "POST", kbp+"/import?partial=maybe", admin, rows)
	wantRaw(t, n, 200, "POST", kbp+"/import", admin, "text/csv", []byte("question,answer,variants\nShipping time?,2 days,how long|delivery time\n"), nil)
	wantRaw(t, n, 400, "POST", kbp+"/import", admin, "text/csv", []byte("question,colour\n"), nil)
	wantRaw(t, n, 400, "POST", kbp+"/import", admin, "text/plain", []byte("x"), nil)
	want(t, n, 403, "POST", kbp+"/import", alice, rows)
	want(t, n, 200, "GET", kbp+"/export", admin, nil)
	want(t, n, 200, "GET", kbp+"/export?format=csv", sup, nil)
	want(t, n, 400, "GET", kbp+"/export?format=xml", sup, nil)
	want(t, n, 403, "GET", kbp+"/export", alice, nil)

	// Rules.
	var r struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	}
	rule := map[string]any{"name": "Order number", "kind": "regex", "keywords": []string{`^#?\d{6}$`}, "handoff": true, "priority": 5}
	want(t, n, 201, "POST", kbp+"/rules", sup, rule).JSON(t, &r)
	want(t, n, 400, "POST", kbp+"/rules", sup, map[string]any{"name": "bad", "kind": "regex", "keywords": []string{`(a|b`}, "handoff": true})
	want(t, n, 403, "POST", kbp+"/rules", alice, rule)
	want(t, n, 201, "POST", kbp+"/rules", admin, map[string]any{"name": "Menu 1", "kind": "menu", "keywords": []string{"1"}, "entry_id": e.ID})
	want(t, n, 200, "GET", kbp+"/rules", sup, nil)
	want(t, n, 403, "GET", kbp+"/rules", alice, nil)
	want(t, n, 200, "GET", kbp+"/rules/"+r.ID, sup, nil)
	want(t, n, 404, "GET", kbp+"/rules/nope", sup, nil)
	rule["priority"] = 7
	wantRaw(t, n, 200, "PUT", kbp+"/rules/"+r.ID, sup, "application/json", mustJSON(t, rule), map[string]string{"If-Match": fmt.Sprintf(`"%d"`, r.Version)})
	rule["version"] = 1
	want(t, n, 409, "PUT", kbp+"/rules/"+r.ID, sup, rule)
	want(t, n, 404, "PUT", kbp+"/rules/nope", sup, rule)
	rule["version"], rule["kind"] = 2, "telepathy"
	want(t, n, 400, "PUT", kbp+"/rules/"+r.ID, sup, rule)
	want(t, n, 204, "DELETE", kbp+"/rules/"+r.ID, sup, nil)
	want(t, n, 404, "DELETE", kbp+"/rules/"+r.ID, sup, nil)

	// Settings.
	want(t, n, 200, "GET", kbp+"/settings", sup, nil)
	want(t, n, 403, "GET", kbp+"/settings", alice, nil)
	settings := map[string]any{"answer_threshold": 0.6, "suggest_threshold": 0.35, "handoff_words": []string{"human", "人工"},
		"max_misses": 3, "greeting": "Hello!", "fallback_text": "Sorry?"}
	want(t, n, 200, "PUT", kbp+"/settings", admin, settings)
	settings["suggest_threshold"] = 0.9
	want(t, n, 400, "PUT", kbp+"/settings", admin, settings)
	want(t, n, 403, "PUT", kbp+"/settings", alice, settings)
	want(t, n, 200, "GET", kbp+"/settings", sup, nil)

	// The unmatched bin.
	g1 := recordMiss(t, n, "where is my parcel", "Where is my parcel?")
	recordMiss(t, n, "where is my parcel", "where is my parcel")
	g2 := recordMiss(t, n, "parcel late", "parcel late")
	g3 := recordMiss(t, n, "refund status", "refund status?")
	g4 := recordMiss(t, n, "asdf", "asdf")
	want(t, n, 200, "GET", kbp+"/unmatched?limit=50", sup, nil)
	want(t, n, 400, "GET", kbp+"/unmatched?limit=5000", sup, nil)
	want(t, n, 403, "GET", kbp+"/unmatched", alice, nil)
	want(t, n, 200, "GET", kbp+"/unmatched/"+g1.ID, sup, nil)
	want(t, n, 404, "GET", kbp+"/unmatched/nope", sup, nil)
	want(t, n, 201, "POST", kbp+"/unmatched/promote", sup, map[string]any{"group_ids": []string{g1.ID, g2.ID},
		"question": "Where is my parcel?", "answer": map[string]any{"text": "Track it under Orders."}})
	want(t, n, 200, "POST", kbp+"/unmatched/promote", sup, map[string]any{"group_ids": []string{g3.ID}, "entry_id": e.ID})
	want(t, n, 404, "POST", kbp+"/unmatched/promote", sup, map[string]any{"group_ids": []string{g1.ID}, "entry_id": e.ID})
	want(t, n, 400, "POST", kbp+"/unmatched/promote", sup, map[string]any{"group_ids": []string{}})
	want(t, n, 403, "POST", kbp+"/unmatched/promote", alice, map[string]any{"group_ids": []string{g4.ID}, "entry_id": e.ID})
	want(t, n, 204, "DELETE", kbp+"/unmatched/"+g4.ID, sup, nil)
	want(t, n, 404, "DELETE", kbp+"/unmatched/"+g4.ID, sup, nil)
	want(t, n, 403, "DELETE", kbp+"/unmatched/"+g4.ID, alice, nil)

	want(t, n, 403, "DELETE", kbp+"/entries/"+e.ID, alice, nil)
	want(t, n, 204, "DELETE", kbp+"/entries/"+e.ID, admin, nil)
	want(t, n, 404, "DELETE", kbp+"/entries/"+e.ID, admin, nil)
	want(t, n, 200, "GET", kbp+"/entries/"+e.ID+"/history", sup, nil)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// errorBody is the API's error shape, decoded.
type errorBody struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func decodeError(t *testing.T, r apptest.Response) errorBody {
	t.Helper()
	var e errorBody
	r.JSON(t, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the error shape: %s", r.Body)
	}
	return e
}

// TestKBAPI exercises the KB API beyond the walk: error bodies that name
// every problem, versions through ETag and If-Match, import reports,
// export/import round trips over HTTP, other tenants' ids and body limits.
func TestKBAPI(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			const kbp = "/api/v1/kb"
			admin, sup, alice := n.Login(t, "admin"), n.Login(t, "supervisor"), n.Login(t, "alice")

			t.Run("validation errors list every problem", func(t *testing.T) {
				r := want(t, n, 400, "POST", kbp+"/entries", sup, map[string]any{"question": " ", "answer": map[string]any{"text": "",
					"choices": []map[string]any{{"label": "x"}}}, "language": "fr"})
				e := decodeError(t, r)
				if e.Error.Code != "invalid" || e.Error.Message != "question: must not be empty (and 3 more problems)" {
					t.Errorf("error %+v", e.Error)
				}
				var fields []string
				for _, p := range e.Error.Details["problems"].([]any) {
					fields = append(fields, p.(map[string]any)["field"].(string))
				}
				if got := strings.Join(fields, ","); got != "question,answer.text,answer.choices[0],language" {
					t.Errorf("problem fields = %s", got)
				}
				r = want(t, n, 400, "POST", kbp+"/rules", sup, map[string]any{"name": "x", "kind": "regex", "keywords": []string{`\d{1,1000}`}, "handoff": true})
				if msg := decodeError(t, r).Error.Message; !strings.HasPrefix(msg, "keywords[0]: regular expression too complex") {
					t.Errorf("complex regex message = %q", msg)
				}
				r = want(t, n, 400, "POST", kbp+"/entries", sup, "{not json")
				if e := decodeError(t, r); !strings.HasPrefix(e.Error.Message, "malformed JSON body") {
					t.Errorf("malformed body message = %q", e.Error.Message)
				}
			})

			t.Run("versions", func(t *testing.T) {
				r := want(t, n, 201, "POST", kbp+"/entries", sup, map[string]any{"question": "Versioned?", "answer": map[string]any{"text": "yes"}})
				var e kbEntry
				r.JSON(t, &e)
				if r.Header.Get("ETag") != `"1"` || e.Version != 1 || !e.Enabled {
					t.Fatalf("created %s with ETag %q", r.Body, r.Header.Get("ETag"))
				}
				body := mustJSON(t, map[string]any{"question": "Versioned?", "answer": map[string]any{"text": "still yes"}})
				r = wantRaw(t, n, 200, "PUT", kbp+"/entries/"+e.ID, sup, "application/json", body, map[string]string{"If-Match": `W/"1"`})
				if r.Header.Get("ETag") != `"2"` {
					t.Errorf("ETag after update = %q", r.Header.Get("ETag"))
				}
				r = wantRaw(t, n, 409, "PUT", kbp+"/entries/"+e.ID, admin, "application/json", body, map[string]string{"If-Match": `"1"`})
				if d := decodeError(t, r); d.Error.Code != "conflict" || d.Error.Details["version"] != 2.0 {
					t.Errorf("conflict body %s", r.Body)
				}
				mismatch := mustJSON(t, map[string]any{"question": "Versioned?", "answer": map[string]any{"text": "x"}, "version": 1})
				wantRaw(t, n, 400, "PUT", kbp+"/entries/"+e.ID, admin, "application/json", mismatch, map[string]string{"If-Match": `"2"`})
				wantRaw(t, n, 400, "PUT", kbp+"/entries/"+e.ID, admin, "application/json", body, map[string]string{"If-Match": `"two"`})
				r = want(t, n, 200, "GET", kbp+"/entries/"+e.ID+"/history", sup, nil)
				var h struct {
					Changes []struct {
						Action string `json:"action"`
						Actor  string `json:"actor"`
					} `json:"changes"`
				}
				r.JSON(t, &h)
				if len(h.Changes) != 2 || h.Changes[0].Action != "update" || h.Changes[1].Action != "create" || h.Changes[0].Actor == "" {
					t.Errorf("history %s", r.Body)
				}
			})

			t.Run("import reports broken rows", func(t *testing.T) {
				csvDoc := "question,answer,enabled\nGood one?,yes,true\n,missing question,true\nBad flag?,x,maybe\n"
				r := wantRaw(t, n, 400, "POST", kbp+"/import", admin, "text/csv; charset=utf-8", []byte(csvDoc), nil)
				e := decodeError(t, r)
				rows := e.Error.Details["errors"].([]any)
				if len(rows) != 2 || rows[0].(map[string]any)["row"] != 3.0 || rows[1].(map[string]any)["field"] != "enabled" {
					t.Errorf("refused import details: %s", r.Body)
				}
				if !strings.Contains(e.Error.Message, "nothing was imported") {
					t.Errorf("message %q", e.Error.Message)
				}
				var rep kb.ImportReport
				wantRaw(t, n, 200, "POST", kbp+"/import?partial=true", admin, "text/csv", []byte(csvDoc), nil).JSON(t, &rep)
				if rep.Created != 1 || rep.Failed != 2 || len(rep.Errors) != 2 || !rep.Partial {
					t.Errorf("partial report %+v", rep)
				}
				wantRaw(t, n, 200, "POST", kbp+"/import?format=csv&dry_run=true", admin, "application/octet-stream", []byte(csvDoc), nil).JSON(t, &rep)
				if !rep.DryRun || rep.Created != 0 || rep.Failed != 2 {
					t.Errorf("dry-run report %+v", rep)
				}
				want(t, n, 400, "POST", kbp+"/import", admin, []any{})
				want(t, n, 400, "POST", kbp+"/import", admin, `{"entries": 5}`)
			})

			t.Run("round trip over HTTP", func(t *testing.T) {
				for _, format := range []string{"json", "csv"} {
					r := want(t, n, 200, "GET", kbp+"/export?format="+format, admin, nil)
					if cd := r.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") || !strings.HasSuffix(cd, "."+format+`"`) {
						t.Errorf("%s Content-Disposition %q", format, cd)
					}
					ct := "application/json"
					if format == "csv" {
						ct = "text/csv"
					}
					var rep kb.ImportReport
					wantRaw(t, n, 200, "POST", kbp+"/import", admin, ct, r.Body, nil).JSON(t, &rep)
					if rep.Created != 0 || rep.Updated == 0 || rep.Failed != 0 {
						t.Errorf("%s re-import of the export: %+v", format, rep)
					}
					again := want(t, n, 200, "GET", kbp+"/export?format="+format, admin, nil)
					if format == "csv" && !bytes.Equal(r.Body, again.Body) {
						t.Errorf("CSV export changed by its own import:\n%s\n%s", r.Body, again.Body)
					}
				}
			})

			t.Run("other tenants' ids", func(t *testing.T) {
				ctx := context.Background()
				if _, err := agentsql.New(n.App.DB).TenantCreate(ctx, agents.Tenant{ID: "other", Name: "Other", CreatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
				svc := n.App.KB
				e, err := svc.CreateEntry(ctx, "other", "x", kb.Entry{Question: "Secret?", Answer: kb.Answer{Text: "secret"}, Enabled: true})
				if err != nil {
					t.Fatal(err)
				}
				r, err := svc.CreateRule(ctx, "other", kb.Rule{Name: "r", Kind: kb.RuleExact, Keywords: []string{"x"}, Handoff: true})
				if err != nil {
					t.Fatal(err)
				}
				g, err := svc.Store().MissRecord(ctx, kb.Miss{TenantID: "other", Text: "x", Key: "x"})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct{ method, path string }{
					{"GET", "/entries/" + e.ID}, {"DELETE", "/entries/" + e.ID}, {"GET", "/entries/" + e.ID + "/history"},
					{"GET", "/rules/" + r.ID}, {"DELETE", "/rules/" + r.ID}, {"GET", "/unmatched/" + g.ID}, {"DELETE", "/unmatched/" + g.ID},
				} {
					if res := n.Do(t, c.method, kbp+c.path, admin, nil); res.Status != 404 || res.ErrorCode() != "not_found" {
						t.Errorf("%s %s: %d %s", c.method, c.path, res.Status, res.Body)
					}
				}
				body := map[string]any{"question": "Mine now?", "answer": map[string]any{"text": "no"}, "version": 1}
				want(t, n, 404, "PUT", kbp+"/entries/"+e.ID, admin, body)
				want(t, n, 404, "POST", kbp+"/unmatched/promote", admin, map[string]any{"group_ids": []string{g.ID}, "question": "q", "answer": map[string]any{"text": "a"}})
				var list struct {
					Entries []kbEntry `json:"entries"`
				}
				want(t, n, 200, "GET", kbp+"/entries?q=secret", alice, nil).JSON(t, &list)
				if len(list.Entries) != 0 {
					t.Errorf("demo sees the other tenant's entries: %+v", list.Entries)
				}
				if got, err := svc.GetEntry(ctx, "other", e.ID); err != nil || got.Version != 1 {
					t.Errorf("other tenant's entry = %+v, %v", got, err)
				}
			})

			t.Run("agents read entries only", func(t *testing.T) {
				want(t, n, 200, "GET", kbp+"/entries", alice, nil)
				for _, c := range []struct{ method, path string }{
					{"POST", "/entries"}, {"PUT", "/entries/x"}, {"DELETE", "/entries/x"}, {"GET", "/entries/x/history"},
					{"POST", "/import"}, {"GET", "/export"}, {"GET", "/rules"}, {"POST", "/rules"}, {"GET", "/rules/x"},
					{"PUT", "/rules/x"}, {"DELETE", "/rules/x"}, {"GET", "/settings"}, {"PUT", "/settings"},
					{"GET", "/unmatched"}, {"GET", "/unmatched/x"}, {"DELETE", "/unmatched/x"}, {"POST", "/unmatched/promote"},
				} {
					var body any
					if c.method == "POST" || c.method == "PUT" {
						body = map[string]any{}
					}
					if res := n.Do(t, c.method, kbp+c.path, alice, body); res.Status != 403 || res.ErrorCode() != "forbidden" {
						t.Errorf("alice %s %s: %d %s", c.method, c.path, res.Status, res.Body)
					}
				}
				if res := n.Do(t, "GET", kbp+"/entries", "", nil); res.Status != 401 {
					t.Errorf("no token: %d", res.Status)
				}
			})

			t.Run("oversized import", func(t *testing.T) {
				// The server answers 413 from the headers and closes without
				// reading the body, so speak HTTP by hand to read the answer.
				conn, err := net.Dial("tcp", strings.TrimPrefix(n.URL, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				fmt.Fprintf(conn, "POST /api/v1/kb/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n", admin, 2<<20)
				res, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != 413 || !strings.Contains(string(body), `"code":"too_large"`) {
					t.Fatalf("got %d %s, want 413 too_large", res.StatusCode, body)
				}
			})
		})
	}
}
