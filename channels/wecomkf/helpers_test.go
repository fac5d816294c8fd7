package wecomkf_test

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wecomkf"
	"github.com/switchboard-acd/switchboard/channels/wecomkf/wecomkftest"
	"github.com/switchboard-acd/switchboard/channels/wxtoken"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const hookURL = "https://sb.example.com/api/v1/hooks/wecom_kf/key1"

// tlog routes the adapter's logs to the test's log.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// env is an adapter on a real (or in-process) Redis talking to a fake
// WeCom.
type env struct {
	fake *wecomkftest.Server
	a    *wecomkf.Adapter
	acct channels.Account
	clk  *clock.Fake
	rc   *rdb.Client
}

func newEnv(t *testing.T, kind string) *env {
	t.Helper()
	rc := testenv.Redis(t, kind)
	clk := clock.NewFake(start)
	fake := wecomkftest.NewServer()
	fake.Now = clk.Now
	t.Cleanup(fake.Close)
	tokens := wxtoken.New(rc.UniversalClient, rc.Prefix, clk, testLogger(t))
	a := wecomkf.New(tokens, wecomkf.Options{Logger: testLogger(t), Clock: clk})
	return &env{fake: fake, a: a, clk: clk, rc: rc,
		acct: channels.Account{TenantID: "t1", ID: "a-kf", Type: channels.WeComKF, Credentials: fake.Credentials()}}
}

func forKinds(t *testing.T, f func(t *testing.T, e *env)) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) { f(t, newEnv(t, kind)) })
	}
}

// credsJSON builds credentials for fixed ids (the vectors' and samples').
func credsJSON(t testing.TB, corpID, token, key, openKfID string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(wecomkf.Credentials{CorpID: corpID, Secret: "s", Token: token, EncodingAESKey: key, OpenKfID: openKfID})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wxVector holds the WeCom vectors B and B2 of wechat_encrypted_vector.txt.
type wxVector struct {
	token, key, corpID string
	query              url.Values // B: msg_signature, timestamp, nonce (GET); B2: of the POST
	echostr, echoPlain string     // B
	body               string     // B2
}

// readWeComVectors parses vectors B (URL verification) and B2 (encrypted
// POST) from the shared vector file.
func readWeComVectors(t testing.TB) (b, b2 wxVector) {
	t.Helper()
	lines := strings.Split(string(testenv.ChannelSample(t, "wechat_encrypted_vector.txt")), "\n")
	section := ""
	value := func(l string) string {
		_, v, _ := strings.Cut(l, "=")
		f := strings.Fields(v)
		if len(f) == 0 {
			return ""
		}
		return f[0]
	}
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "# Vector B2"):
			section = "B2"
			continue
		case strings.HasPrefix(l, "# Vector B "):
			section = "B"
			continue
		case strings.HasPrefix(l, "# Vector"):
			section = ""
			continue
		}
		switch section {
		case "B":
			switch {
			case strings.HasPrefix(l, "Token"):
				b.token = value(l)
			case strings.HasPrefix(l, "EncodingAESKey"):
				b.key = value(l)
			case strings.HasPrefix(l, "ReceiveID"):
				b.corpID = value(l)
			case strings.HasPrefix(l, "GET ?"):
				q, err := url.ParseQuery(strings.TrimPrefix(l, "GET ?"))
				if err != nil {
					t.Fatal(err)
				}
				q.Del("echostr")
				b.query = q
			case strings.HasPrefix(l, "echostr"):
				b.echostr = value(l)
			case strings.HasPrefix(l, "expected response body"):
				b.echoPlain = value(l)
			}
		case "B2":
			switch {
			case strings.HasPrefix(l, "POST "):
				u, err := url.Parse(strings.TrimPrefix(l, "POST "))
				if err != nil {
					t.Fatal(err)
				}
				b2.query = u.Query()
			case strings.HasPrefix(l, "Token="):
				for _, f := range strings.Fields(l) {
					k, v, _ := strings.Cut(f, "=")
					switch k {
					case "Token":
						b2.token = v
					case "EncodingAESKey":
						b2.key = v
					case "ReceiveID":
						b2.corpID = v
					}
				}
			case l == "Body:" && i+1 < len(lines):
				b2.body = lines[i+1]
			}
		}
	}
	if b.token == "" || b.key == "" || b.corpID == "" || b.echostr == "" || b.echoPlain == "" || b.query.Get("msg_signature") == "" {
		t.Fatalf("vector B incomplete: %+v", b)
	}
	if b2.token == "" || b2.key == "" || b2.corpID == "" || b2.body == "" || b2.query.Get("msg_signature") == "" {
		t.Fatalf("vector B2 incomplete: %+v", b2)
	}
	return b, b2
}
