package outbox

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
)

func TestBackoff(t *testing.T) {
	base, cap := time.Second, 5*time.Minute
	for _, tc := range []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0, 0},
		{1, 0.5, 500 * time.Millisecond},
		{1, 0.999, 999 * time.Millisecond},
		{2, 0.5, time.Second},
		{4, 0.5, 4 * time.Second},
		{9, 0.5, 128 * time.Second},
		{10, 0.5, 150 * time.Second}, // 256s capped at 300s
		{0, 0.5, 500 * time.Millisecond},
		{1 << 20, 0.5, 150 * time.Second},
	} {
		if got := backoff(tc.attempt, base, cap, tc.r); got != tc.want {
			t.Errorf("backoff(%d, r=%g) = %s, want %s", tc.attempt, tc.r, got, tc.want)
		}
	}
	for attempt := 1; attempt < 100; attempt++ {
		if got := backoff(attempt, base, cap, 0.9999999); got >= cap || got < 0 {
			t.Fatalf("backoff(%d) = %s, outside [0, %s)", attempt, got, cap)
		}
	}
}

type notRetryable struct{}

func (notRetryable) Error() string   { return "bad request" }
func (notRetryable) Retryable() bool { return false }

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		kind  failKind
		code  string
		after time.Duration
	}{
		{"retry", &channels.SendError{Code: "130429", Retry: true, RetryAfter: time.Second}, failRetry, "130429", time.Second},
		{"wrapped retry", fmt.Errorf("whatsapp: %w", &channels.SendError{Code: "131016", Retry: true}), failRetry, "131016", 0},
		{"auth", &channels.SendError{Code: "190", Auth: true}, failAuth, "190", 0},
		{"window", &channels.SendError{Code: "131047", WindowClosed: true}, failWindow, "131047", 0},
		{"permanent", &channels.SendError{Code: "131026"}, failPermanent, "131026", 0},
		{"permanent without code", &channels.SendError{Msg: "no"}, failPermanent, "send_error", 0},
		{"timeout", fmt.Errorf("post: %w", context.DeadlineExceeded), failRetry, "timeout", 0},
		{"network", errors.New("connection reset"), failRetry, "error", 0},
		{"not retryable", notRetryable{}, failPermanent, "error", 0},
	} {
		f := classify(tc.err)
		if f.kind != tc.kind || f.code != tc.code || f.after != tc.after || f.reason == "" {
			t.Errorf("%s: classify = %+v, want kind %d code %q after %s", tc.name, f, tc.kind, tc.code, tc.after)
		}
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"日本語", 4, "日"}, // 3 bytes each: never half a character
		{"日本語", 6, "日本"},
	} {
		if got := clip(tc.s, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
