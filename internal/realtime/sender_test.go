package realtime

import (
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeTransport struct {
	mu      sync.Mutex
	got     []string
	block   chan struct{}
	closed  bool
	failing bool
}

func (f *fakeTransport) write(b []byte) error {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return errors.New("broken pipe")
	}
	f.got = append(f.got, string(b))
	return nil
}

func (f *fakeTransport) close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

func (f *fakeTransport) snapshot() ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...), f.closed
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met")
}

func TestSenderKeepsOrder(t *testing.T) {
	ft := &fakeTransport{}
	s := NewSender(ft.write, ft.close, 1000)
	for i := 0; i < 500; i++ {
		if !s.Send([]byte{byte('a' + i%26)}) {
			t.Fatal("send refused")
		}
	}
	waitUntil(t, func() bool { got, _ := ft.snapshot(); return len(got) == 500 })
	got, _ := ft.snapshot()
	for i, g := range got {
		if g != string(rune('a'+i%26)) {
			t.Fatalf("frame %d = %q: order lost", i, g)
		}
	}
	// Once drained, the writer goroutine ends and the queue is released.
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return !s.writing && s.queue == nil })
}

func TestSenderDropsSlowClient(t *testing.T) {
	ft := &fakeTransport{block: make(chan struct{})}
	s := NewSender(ft.write, ft.close, 3)
	s.Send([]byte("x")) // taken by the writer, which blocks
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.queue) == 0 })
	for i := 0; i < 3; i++ {
		if !s.Send([]byte("x")) {
			t.Fatalf("send %d refused early", i)
		}
	}
	if s.Send([]byte("x")) {
		t.Fatal("a full queue accepted a frame")
	}
	if _, closed := ft.snapshot(); !closed {
		t.Fatal("slow client not closed")
	}
	close(ft.block)
}

func TestSenderWaitAndClose(t *testing.T) {
	ft := &fakeTransport{block: make(chan struct{})}
	s := NewSender(ft.write, ft.close, 1)
	s.Send([]byte("1")) // taken by the writer, which blocks
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.queue) == 0 })
	s.Send([]byte("2")) // fills the queue
	done := make(chan bool)
	go func() { done <- s.SendWait([]byte("3")) }()
	select {
	case <-done:
		t.Fatal("SendWait did not wait for room")
	case <-time.After(50 * time.Millisecond):
	}
	close(ft.block)
	if !<-done {
		t.Fatal("SendWait failed after room was made")
	}
	waitUntil(t, func() bool { got, _ := ft.snapshot(); return len(got) == 3 })
	s.Close()
	if s.Send([]byte("4")) || s.SendWait([]byte("5")) {
		t.Fatal("closed sender accepted frames")
	}
}

func TestSenderWriteErrorCloses(t *testing.T) {
	ft := &fakeTransport{failing: true}
	s := NewSender(ft.write, ft.close, 10)
	s.Send([]byte("x"))
	waitUntil(t, func() bool { _, closed := ft.snapshot(); return closed })
	if !s.Closed() {
		t.Fatal("sender not marked closed")
	}
}
