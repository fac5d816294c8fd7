package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// acdTestConfig is a short run on backend kind ("redis" or "embedded"),
// small enough for the embedded server.
func acdTestConfig(t *testing.T, kind string) ACDConfig {
	cfg := DefaultACDConfig()
	cfg.RedisURL = EmbeddedRedis
	if kind == "redis" {
		cfg.RedisURL = testenv.RedisURL()
	}
	cfg.Prefix = testenv.UniqueName("sbt")
	cfg.Agents, cfg.Groups, cfg.Workers = 200, 10, 16
	cfg.Warmup, cfg.Duration, cfg.Ceiling = 100*time.Millisecond, 400*time.Millisecond, 0
	cfg.Progress = testWriter{t}
	return cfg
}

// runACD runs cfg and fails the test on any error or violation: a Redis
// that cannot be reached fails it too.
func runACD(t *testing.T, cfg ACDConfig) ACDResult {
	t.Helper()
	res, err := RunACD(context.Background(), cfg)
	if err != nil {
		var b strings.Builder
		res.WriteText(&b)
		t.Fatalf("RunACD: %v\n%s", err, b.String())
	}
	ck := res.Check
	if res.Matches == 0 || ck.Enqueued == 0 {
		t.Fatalf("no load: %+v", res)
	}
	if ck.Assigned+ck.Waiting != ck.Enqueued {
		t.Errorf("enqueued %d, assigned %d + waiting %d", ck.Enqueued, ck.Assigned, ck.Waiting)
	}
	if res.EnqueueAssign.Count == 0 || res.EnqueueAssign.P50ms <= 0 {
		t.Errorf("no enqueue→assign samples: %+v", res.EnqueueAssign)
	}
	return res
}

func TestRunACD(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) {
			t.Run("Throughput", func(t *testing.T) {
				cfg := acdTestConfig(t, kind)
				cfg.Ceiling = 200 * time.Millisecond
				res := runACD(t, cfg)
				if res.Ceiling == nil || res.Ceiling.CallsPerSec <= 0 || res.RatioToCeiling <= 0 {
					t.Errorf("no ceiling: %+v, ratio %v", res.Ceiling, res.RatioToCeiling)
				}
				// Released at once, every session finds a free agent.
				if res.Check.Waiting != 0 || res.Check.Assigned != res.Check.Enqueued {
					t.Errorf("check %+v: all must be assigned", res.Check)
				}
			})
			t.Run("Batched", func(t *testing.T) {
				cfg := acdTestConfig(t, kind)
				cfg.PipelineConns = 4
				runACD(t, cfg)
			})
			t.Run("LatencyWithHold", func(t *testing.T) {
				cfg := acdTestConfig(t, kind)
				cfg.Rate, cfg.Hold = 400, 5*time.Millisecond
				res := runACD(t, cfg)
				if res.ArrivalAssign == nil || res.ArrivalAssign.Count == 0 {
					t.Errorf("no arrival→assign samples")
				}
				// The pacer never runs ahead of the rate; how far below it a
				// run falls depends on the machine's load (an open loop on a
				// busy machine falls behind), so only a stalled pacer fails.
				if res.EnqueuesPerSec < 50 || res.EnqueuesPerSec > 500 {
					t.Errorf("achieved %.0f/s, want about 400 (at most 500, at least 50 however loaded)", res.EnqueuesPerSec)
				}
			})
			// Far more workers than capacity: sessions queue, and releases
			// hand them out, in every strategy.
			for _, s := range acd.Strategies() {
				t.Run("Contended/"+string(s), func(t *testing.T) {
					cfg := acdTestConfig(t, kind)
					cfg.Agents, cfg.Groups, cfg.Skills, cfg.MaxSessions, cfg.Workers = 9, 3, 2, 1, 24
					cfg.Strategy = s
					cfg.PipelineConns = 2
					res := runACD(t, cfg)
					if res.Check.Waiting != 0 {
						t.Errorf("%d sessions left waiting with every agent free", res.Check.Waiting)
					}
				})
			}
		})
	}
}

func TestACDConfigValidate(t *testing.T) {
	if err := DefaultACDConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cfg := DefaultACDConfig()
	cfg.Skills, cfg.Strategy, cfg.Hold, cfg.RedisURL = 51, "fastest", time.Second, "http://x"
	err := cfg.Validate()
	for _, want := range []string{"-skills", "-strategy", "-hold needs -rate", "-redis"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}
