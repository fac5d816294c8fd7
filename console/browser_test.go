package console_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-acd/switchboard/internal/apptest"
)

// chromiumPath is Debian's chromium; CI installs it. A missing browser
// fails the test.
func chromiumPath(t *testing.T) string {
	p := os.Getenv("SWITCHBOARD_TEST_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("chromium not found at %s (install Debian's chromium): %v", p, err)
	}
	return p
}

func newBrowser(t *testing.T) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

func tab(t *testing.T, browser context.Context) context.Context {
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var shot []byte
		_ = chromedp.Run(ctx, chromedp.FullScreenshot(&shot, 80))
		if len(shot) > 0 {
			p := t.TempDir() + "/failure.jpg"
			_ = os.WriteFile(p, shot, 0o644)
		}
		var body string
		_ = chromedp.Run(ctx, chromedp.Text("body", &body, chromedp.ByQuery))
		t.Fatalf("%s: %v\npage text: %.2000s", step, err, body)
	}
}

// TestBrowserAgentHandlesChat drives the real console and chat widget in
// headless Chromium: an agent logs in and goes ready, a customer writes from
// the widget and asks for a person, the agent receives the chat, replies,
// pins a message and closes it with a contact reason.
func TestBrowserAgentHandlesChat(t *testing.T) {
	n := apptest.Start(t, "embedded")
	browser := newBrowser(t)
	agent := tab(t, browser)
	customer := tab(t, browser)

	run(t, agent, "log in",
		chromedp.Navigate(n.URL+"/"),
		chromedp.WaitVisible("#login-username", chromedp.ByQuery),
		chromedp.SendKeys("#login-username", "alice", chromedp.ByQuery),
		chromedp.SendKeys("#login-password", apptest.Password, chromedp.ByQuery),
		chromedp.Click("#login-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#state-select", chromedp.ByQuery),
	)
	run(t, agent, "go ready",
		chromedp.SetValue("#state-select", "ready", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#state-select').dispatchEvent(new Event('change', {bubbles: true}))`, nil),
	)
	waitFor(t, n, func() bool {
		r := n.Do(t, "GET", "/api/v1/agents", n.Login(t, "supervisor"), nil)
		return strings.Contains(string(r.Body), `"username":"alice"`) && strings.Contains(string(r.Body), `"state":"ready"`)
	}, "alice ready")

	run(t, customer, "customer writes",
		chromedp.Navigate(n.URL+"/chat?key=wc_demo"),
		chromedp.WaitVisible("#chat-input", chromedp.ByQuery),
		chromedp.SendKeys("#chat-input", "hello, where is my parcel?", chromedp.ByQuery),
		chromedp.Click("#chat-send", chromedp.ByQuery),
		chromedp.WaitVisible(`#chat-messages .chat-msg.from-bot`, chromedp.ByQuery),
		chromedp.SendKeys("#chat-input", "agent", chromedp.ByQuery),
		chromedp.Click("#chat-send", chromedp.ByQuery),
	)
	run(t, agent, "agent receives the chat",
		chromedp.WaitVisible(`#session-list .session-item`, chromedp.ByQuery),
		chromedp.Click(`#session-list .session-item`, chromedp.ByQuery),
		chromedp.WaitVisible(`#transcript .msg`, chromedp.ByQuery),
	)
	var transcript string
	run(t, agent, "read transcript", chromedp.Text("#transcript", &transcript, chromedp.ByQuery))
	if !strings.Contains(transcript, "where is my parcel") {
		t.Fatalf("the agent's transcript lacks the bot conversation: %q", transcript)
	}
	run(t, agent, "agent replies",
		chromedp.SendKeys("#composer-input", "It arrives tomorrow.", chromedp.ByQuery),
		chromedp.Click("#composer-send", chromedp.ByQuery),
	)
	run(t, customer, "customer sees the reply",
		chromedp.WaitVisible(`//div[contains(@class,"chat-msg") and contains(@class,"from-agent") and contains(., "It arrives tomorrow.")]`, chromedp.BySearch),
	)
	shoot(t, agent, "console-active")
	shoot(t, customer, "widget-active")
	run(t, agent, "agent pins the reply",
		chromedp.WaitVisible(`#transcript .msg.msg-out:not(.pending) .pin-btn:not([disabled])`, chromedp.ByQuery),
		chromedp.Click(`#transcript .msg.msg-out:not(.pending) .pin-btn:not([disabled])`, chromedp.ByQuery),
		chromedp.WaitVisible(`#transcript .msg.pinned`, chromedp.ByQuery),
	)
	run(t, agent, "agent closes and wraps up",
		chromedp.Click("#close-btn", chromedp.ByQuery),
		chromedp.WaitVisible("#wrapup-panel", chromedp.ByQuery),
		chromedp.WaitVisible(`input.reason-leaf[value="tech.bug"]`, chromedp.ByQuery),
		chromedp.Click(`input.reason-leaf[value="tech.bug"]`, chromedp.ByQuery),
		chromedp.Click("#wrapup-submit", chromedp.ByQuery),
	)
	sup := n.Login(t, "supervisor")
	waitFor(t, n, func() bool {
		r := n.Do(t, "GET", "/api/v1/sessions?state=closed", sup, nil)
		return strings.Contains(string(r.Body), `"reason_codes":["tech.bug"]`)
	}, "session closed with reason tech.bug")
	r := n.Do(t, "GET", "/api/v1/sessions?state=closed", sup, nil)
	var out struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	r.JSON(t, &out)
	ms := n.Do(t, "GET", "/api/v1/sessions/"+out.Sessions[0].ID+"/messages", sup, nil)
	if !strings.Contains(string(ms.Body), `"pinned":true`) {
		t.Fatalf("no pinned message stored: %s", ms.Body)
	}
}

// shoot saves a screenshot of the page when SWITCHBOARD_TEST_SCREENSHOTS
// names a directory (for looking at the UI a test drove).
func shoot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("SWITCHBOARD_TEST_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(dir+"/"+name+".png", png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
}

func waitFor(t *testing.T, n *apptest.Node, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(fmt.Sprintf("timed out waiting for %s", what))
}
