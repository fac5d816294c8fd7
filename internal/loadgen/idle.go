package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// connsPerSource is how many connections share one local source address.
// The kernel gives one source address about 28,000 ephemeral ports towards
// one server port (net.ipv4.ip_local_port_range); staying well below lets
// several bench processes, each with its own -conn-offset, open more
// connections together than one address could.
const connsPerSource = 20000

// idleSetupPerConn is the time the deadline allows per idle connection for
// opening it (a visitor token, which writes a contact and a conversation,
// and a WebSocket handshake), on top of the fixed slack.
const idleSetupPerConn = 4 * time.Millisecond

const (
	rssMetric       = "process_resident_memory_bytes"
	webchatWSMetric = `switchboard_websocket_connections{kind="webchat"}`
)

// sourceAddr picks the local address of global connection index g: the
// system's choice for the first connsPerSource, then 127.0.0.2, 127.0.0.3
// and so on. Any 127/8 address reaches a server on 127.0.0.1 on Linux.
// It only applies when the target is an IPv4 loopback address; for
// "localhost" or ::1 the system chooses.
func sourceAddr(host string, g int) (string, error) {
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return "", nil
	}
	block := g / connsPerSource
	if block == 0 {
		return "", nil
	}
	if block+1 > 254 {
		return "", fmt.Errorf("connection index %d is beyond the loopback source addresses", g)
	}
	return fmt.Sprintf("127.0.0.%d", block+1), nil
}

// RunIdle opens cfg.Idle web-chat connections, holds them idle for
// cfg.Duration and reports what they cost the server in resident memory,
// from its /metrics before and after.
//
// One process can hold only as many connections as its open-file limit
// allows (about 20,000 on a default workstation limit, less a reserve), so
// use -idle 15000 or fewer per process and run several processes with
// -conn-offset 0, 15000, 30000, ... for more. Remember the server has the
// same kind of limit.
func RunIdle(ctx context.Context, cfg Config) (*IdleResult, error) {
	base, err := CheckLocalURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Idle < 1:
		return nil, errors.New("-idle must be at least 1")
	case cfg.ConnOffset < 0:
		return nil, errors.New("-conn-offset must not be negative")
	case cfg.Duration <= 0:
		return nil, errors.New("-duration must be positive")
	}
	if err := checkFDs(cfg.Idle); err != nil {
		return nil, err
	}
	if _, err := sourceAddr(base.Hostname(), cfg.ConnOffset+cfg.Idle-1); err != nil {
		return nil, err
	}
	start := time.Now()
	global := start.Add(cfg.Duration + Slack + time.Duration(cfg.Idle)*idleSetupPerConn)
	ctx, cancel := context.WithDeadline(ctx, global)
	defer cancel()
	a := newAPI(base)
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench: "+format+"\n", args...)
		}
	}
	if err := a.healthz(ctx); err != nil {
		return nil, err
	}
	res := &IdleResult{URL: base.String(), Requested: cfg.Idle, ConnOffset: cfg.ConnOffset}
	// A failing /metrics costs the memory figures, not the run: the
	// connection counts are worth having on their own.
	metricsOK := true
	scrape := func(ctx context.Context, when string) map[string]float64 {
		m, err := a.metrics(ctx)
		if err != nil {
			metricsOK = false
			res.Warnings = append(res.Warnings, fmt.Sprintf("server metrics %s: %v", when, err))
			return nil
		}
		if _, ok := m[rssMetric]; !ok {
			metricsOK = false
			res.Warnings = append(res.Warnings, fmt.Sprintf("server metrics %s: no %s (not Linux?)", when, rssMetric))
		}
		return m
	}
	before := scrape(ctx, "before opening")
	res.RSSBefore, res.ServerConnsBefore = before[rssMetric], before[webchatWSMetric]

	// Open, leaving room for the hold and closing within the deadline.
	openCtx, cancelOpen := context.WithDeadline(ctx, global.Add(-cfg.Duration-cleanupReserve))
	defer cancelOpen()
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	conns := make([]*websocket.Conn, cfg.Idle)
	var closing atomic.Bool
	var dropped, opened, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	srcs := map[string]bool{}
	var srcMu sync.Mutex
	logf("opening %d idle web-chat connections (offset %d)", cfg.Idle, cfg.ConnOffset)
	openStart := time.Now()
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				logf("%d/%d open, %d failed", opened.Load(), cfg.Idle, failed.Load())
			case <-progressDone:
				return
			}
		}
	}()
	parallel(cfg.Idle, 64, func(i int) {
		if openCtx.Err() != nil {
			failed.Add(1)
			return
		}
		conn, src, err := openIdle(openCtx, a, cfg.ChatKey, base.Hostname(), cfg.ConnOffset+i)
		if err != nil {
			failed.Add(1)
			errOnce.Do(func() { firstErr = err })
			return
		}
		srcMu.Lock()
		srcs[src] = true
		srcMu.Unlock()
		conns[i] = conn
		opened.Add(1)
		go func() {
			// Idle means the bench sends nothing; it still reads so that
			// the library answers pings and notices a closed connection.
			for {
				if _, _, err := conn.Read(readCtx); err != nil {
					if !closing.Load() && readCtx.Err() == nil {
						dropped.Add(1)
					}
					return
				}
			}
		}()
	})
	close(progressDone)
	res.OpenSec = time.Since(openStart).Seconds()
	res.Opened, res.Failed = int(opened.Load()), int(failed.Load())
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	for s := range srcs {
		if s == "" {
			s = "system-chosen"
		}
		res.SourceAddrs = append(res.SourceAddrs, s)
	}
	slices.Sort(res.SourceAddrs)
	res.RSSOpen = scrape(ctx, "with all open")[rssMetric]

	logf("%d open; holding for %s", res.Opened, cfg.Duration)
	holdStart := time.Now()
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	res.HoldSec = time.Since(holdStart).Seconds()
	mctx, cancelM := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancelM()
	after := scrape(mctx, "after the hold")
	res.RSSAfter, res.ServerConnsAfter = after[rssMetric], after[webchatWSMetric]
	res.MemoryMeasured = metricsOK
	if metricsOK && res.Opened > 0 {
		res.PerConnBytes = (res.RSSAfter - res.RSSBefore) / float64(res.Opened)
	}
	res.ClientRSS = selfRSS()
	res.Dropped = dropped.Load()

	logf("closing")
	closing.Store(true)
	parallel(len(conns), 256, func(i int) {
		if conns[i] != nil {
			_ = conns[i].Close(websocket.StatusNormalClosure, "bench done")
		}
	})
	if ctx.Err() != nil && res.HoldSec < cfg.Duration.Seconds() {
		return res, fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return res, nil
}

// openIdle opens global connection g: a fresh visitor, a WebSocket from
// its source address, and the hello frame that proves the server set it up.
func openIdle(ctx context.Context, a *api, chatKey, host string, g int) (*websocket.Conn, string, error) {
	src, err := sourceAddr(host, g)
	if err != nil {
		return nil, "", err
	}
	tok, err := a.visitor(ctx, chatKey)
	if err != nil {
		return nil, "", err
	}
	conn, err := a.dialWS(ctx, "/webchat/ws", tok, src)
	if err != nil {
		return nil, "", err
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, b, err := conn.Read(hctx); err != nil {
		conn.CloseNow()
		return nil, "", fmt.Errorf("waiting for hello: %w", err)
	} else if !strings.Contains(string(b), `"hello"`) {
		conn.CloseNow()
		return nil, "", fmt.Errorf("first frame is not hello: %.200s", b)
	}
	return conn, src, nil
}

// selfRSS returns this process's resident memory in bytes (Linux), or 0.
func selfRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				kb, _ := strconv.ParseFloat(fs[0], 64)
				return kb * 1024
			}
		}
	}
	return 0
}
