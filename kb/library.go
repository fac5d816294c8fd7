package kb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Matcher is a tenant's knowledge base compiled for matching customer text:
// keyword rules, handoff words and FAQ retrieval. It is built by a Builder
// (kb/kbindex composes kb/rules and kb/match) and is safe for concurrent use.
type Matcher interface {
	// WantsPerson reports whether text asks for a person (a handoff word).
	WantsPerson(text string) bool
	// Rule returns the keyword rule text matches, if any.
	Rule(text string) (RuleHit, bool)
	// FAQ returns up to k entries for text, best first, each with its
	// calibrated confidence (0..1).
	FAQ(text string, k int) []Candidate
	// Close releases the matcher's index.
	Close() error
}

// RuleHit is a keyword rule match: which rule and which keyword.
type RuleHit struct {
	RuleID  string
	Kind    RuleKind
	Keyword string
}

// Candidate is an entry the FAQ matcher proposes for a message.
type Candidate struct {
	EntryID    string  `json:"entry_id"`
	Confidence float64 `json:"confidence"`
}

// BuildInput is everything a Builder compiles: the tenant's enabled entries
// and rules, the handoff words, and the directory for an on-disk index
// ("" keeps it in memory).
type BuildInput struct {
	TenantID     string
	Entries      []Entry
	Rules        []Rule
	HandoffWords []string
	Dir          string
}

// Builder compiles a tenant's knowledge base into a Matcher.
type Builder func(in BuildInput) (Matcher, error)

// Snapshot is one compiled revision of a tenant's knowledge base: the
// matcher and the entries, rules and settings it was built from, so a bot
// turn reads one consistent state.
type Snapshot struct {
	TenantID string
	Revision int64
	Matcher  Matcher
	Entries  map[string]Entry
	Rules    map[string]Rule
	Settings Settings
	BuiltAt  time.Time
	BuildDur time.Duration

	refs    sync.WaitGroup // bot turns using the matcher
	dir     string
	retired sync.Once
}

// LibraryOptions configure a Library.
type LibraryOptions struct {
	// Dir is where on-disk indexes live, one sub-directory per tenant and
	// revision; "" keeps indexes in memory.
	Dir string
	// HandoffWords are added to every tenant's own handoff words.
	HandoffWords []string
	// Debounce delays a rebuild after a change so a burst of edits (an
	// import, a script) costs one build. Default 200ms.
	Debounce time.Duration
}

// Library keeps every tenant's compiled knowledge base on this node (DESIGN
// D9: the index is derived data). A tenant's matcher is built on first use,
// rebuilt in the background after Changed (called on every node through
// pub/sub) and checked against the stored revision by Refresh, so a lost
// notification only delays an update. Readers keep the old snapshot until
// the new one is ready: a rebuild never blocks a bot turn.
type Library struct {
	store Store
	build Builder
	opts  LibraryOptions
	log   *slog.Logger

	mu      sync.Mutex
	tenants map[string]*tenantLib
	closed  bool
}

type tenantLib struct {
	ready   chan struct{} // closed once the first build finished
	snap    *Snapshot
	err     error
	dirty   bool // a change arrived since the running build read the store
	running bool
	timer   *time.Timer
}

// NewLibrary returns a Library that reads from store and compiles with build.
func NewLibrary(store Store, build Builder, opts LibraryOptions, log *slog.Logger) *Library {
	if opts.Debounce <= 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.Dir != "" {
		// Indexes of an earlier run are stale by definition: rebuilt at start.
		_ = os.RemoveAll(opts.Dir)
	}
	return &Library{store: store, build: build, opts: opts, log: log, tenants: map[string]*tenantLib{}}
}

// Acquire returns the tenant's current snapshot, building it first if this
// node has none yet. The caller must call Release on it when done.
func (l *Library) Acquire(ctx context.Context, tenantID string) (*Snapshot, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("kb: library closed")
	}
	t := l.tenants[tenantID]
	if t == nil {
		t = &tenantLib{ready: make(chan struct{})}
		l.tenants[tenantID] = t
	}
	if t.snap == nil && !t.running {
		// First use, or every build so far failed: build (again).
		select {
		case <-t.ready:
			t.ready = make(chan struct{})
		default:
		}
		t.running = true
		go l.rebuild(tenantID, t)
	}
	ready := t.ready
	l.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.snap == nil {
		return nil, fmt.Errorf("kb: build for tenant %s: %w", tenantID, t.err)
	}
	t.snap.refs.Add(1)
	return t.snap, nil
}

// Release ends a use of a snapshot from Acquire.
func (s *Snapshot) Release() { s.refs.Done() }

// Changed schedules a rebuild of the tenant's knowledge base after the
// debounce delay. It is called on every node when any node writes to it.
func (l *Library) Changed(tenantID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[tenantID]
	if t == nil {
		return // never used on this node: built on first use
	}
	t.dirty = true
	if t.timer == nil {
		t.timer = time.AfterFunc(l.opts.Debounce, func() { l.kick(tenantID) })
	}
}

// kick starts a rebuild unless one is running (which then runs again).
func (l *Library) kick(tenantID string) {
	l.mu.Lock()
	t := l.tenants[tenantID]
	t.timer = nil
	if t.running {
		l.mu.Unlock()
		return
	}
	t.running = true
	l.mu.Unlock()
	l.rebuild(tenantID, t)
}

// rebuild builds until no change arrived during the build.
func (l *Library) rebuild(tenantID string, t *tenantLib) {
	for {
		l.mu.Lock()
		t.dirty = false
		l.mu.Unlock()
		snap, err := l.compile(context.Background(), tenantID)
		l.mu.Lock()
		if l.closed {
			if err == nil {
				go retire(snap, l.log)
			}
			t.running = false
			select {
			case <-t.ready:
			default:
				close(t.ready) // waiters find no snapshot: an error
			}
			l.mu.Unlock()
			return
		}
		if err != nil {
			l.log.Error("kb build", "tenant", tenantID, "err", err)
			t.err = err
		} else {
			old := t.snap
			t.snap, t.err = snap, nil
			if old != nil {
				go retire(old, l.log)
			}
			l.log.Info("kb built", "tenant", tenantID, "revision", snap.Revision,
				"entries", len(snap.Entries), "rules", len(snap.Rules), "took", snap.BuildDur)
		}
		select {
		case <-t.ready:
		default:
			close(t.ready)
		}
		again := t.dirty
		if !again {
			t.running = false
		}
		l.mu.Unlock()
		if !again {
			return
		}
	}
}

// retire closes an old snapshot's matcher once no bot turn uses it (once,
// however many paths retire it).
func retire(s *Snapshot, log *slog.Logger) {
	s.refs.Wait()
	s.retired.Do(func() {
		if err := s.Matcher.Close(); err != nil {
			log.Warn("kb close index", "tenant", s.TenantID, "err", err)
		}
		if s.dir != "" {
			_ = os.RemoveAll(s.dir)
		}
	})
}

// compile reads the tenant's knowledge base and builds a snapshot of it.
func (l *Library) compile(ctx context.Context, tenantID string) (*Snapshot, error) {
	start := time.Now()
	var (
		snap = &Snapshot{TenantID: tenantID, Entries: map[string]Entry{}, Rules: map[string]Rule{}}
		in   = BuildInput{TenantID: tenantID}
	)
	// Read revision first: a write after it bumps the revision again, so
	// Refresh notices a snapshot that missed it.
	err := l.store.InTx(ctx, func(tx Store) error {
		var err error
		if snap.Revision, err = tx.Revision(ctx, tenantID); err != nil {
			return err
		}
		if snap.Settings, err = tx.SettingsGet(ctx, tenantID); err != nil {
			return err
		}
		enabled := true
		entries, err := tx.EntryList(ctx, tenantID, EntryFilter{Enabled: &enabled})
		if err != nil {
			return err
		}
		rules, err := tx.RuleList(ctx, tenantID)
		if err != nil {
			return err
		}
		in.Entries = entries
		for _, e := range entries {
			snap.Entries[e.ID] = e
		}
		for _, r := range rules {
			if r.Enabled {
				in.Rules = append(in.Rules, r)
				snap.Rules[r.ID] = r
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	in.HandoffWords = append(append([]string(nil), snap.Settings.HandoffWords...), l.opts.HandoffWords...)
	if l.opts.Dir != "" {
		snap.dir = filepath.Join(l.opts.Dir, safeName(tenantID), fmt.Sprintf("%d-%d", snap.Revision, start.UnixNano()))
		if err := os.MkdirAll(filepath.Dir(snap.dir), 0o755); err != nil {
			return nil, err
		}
		in.Dir = snap.dir
	}
	m, err := l.build(in)
	if err != nil {
		if snap.dir != "" {
			_ = os.RemoveAll(snap.dir)
		}
		return nil, err
	}
	snap.Matcher, snap.BuiltAt, snap.BuildDur = m, time.Now(), time.Since(start)
	return snap, nil
}

// Refresh compares every built tenant's revision with the store and
// rebuilds those that fell behind (a missed pub/sub message).
func (l *Library) Refresh(ctx context.Context) error {
	l.mu.Lock()
	have := map[string]int64{}
	for id, t := range l.tenants {
		if t.snap != nil {
			have[id] = t.snap.Revision
		}
	}
	l.mu.Unlock()
	var errs []error
	for id, rev := range have {
		cur, err := l.store.Revision(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cur != rev {
			l.Changed(id)
		}
	}
	return errors.Join(errs...)
}

// Close releases every index. The Library must not be used afterwards.
func (l *Library) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, t := range l.tenants {
		if t.timer != nil {
			t.timer.Stop()
		}
		if t.snap != nil {
			go retire(t.snap, l.log)
		}
	}
	l.tenants = map[string]*tenantLib{}
}

// safeName keeps a tenant id usable as a directory name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Suggestion is an entry proposed to an agent for a customer's message
// (agent assist), with the matcher's confidence.
type Suggestion struct {
	EntryID  string  `json:"entry_id"`
	Question string  `json:"question"`
	Answer   Answer  `json:"answer"`
	Category string  `json:"category,omitempty"`
	Score    float64 `json:"score"`
}

// Search returns up to limit entries for text, best first, whatever their
// confidence: the agent judges, the score helps. Empty or unreadable text
// has no suggestions.
func (l *Library) Search(ctx context.Context, tenantID, text string, limit int) ([]Suggestion, error) {
	snap, err := l.Acquire(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	out := []Suggestion{}
	for _, c := range snap.Matcher.FAQ(text, limit) {
		if e, ok := snap.Entries[c.EntryID]; ok {
			out = append(out, Suggestion{EntryID: e.ID, Question: e.Question, Answer: e.Answer, Category: e.Category, Score: round3(c.Confidence)})
		}
	}
	return out, nil
}
