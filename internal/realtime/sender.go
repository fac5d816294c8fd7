package realtime

import "sync"

// Sender is the outgoing side of one client connection: a bounded queue
// drained by a writer goroutine that exists only while there is something
// to write. An idle connection therefore holds no writer goroutine and no
// queue memory, which is what lets a node keep tens of thousands of idle
// WebSockets.
type Sender struct {
	write func([]byte) error
	close func() error
	limit int

	mu      sync.Mutex
	cond    *sync.Cond // signals room in the queue or close; uses mu
	queue   [][]byte   // guarded by mu
	writing bool       // a writer goroutine runs; guarded by mu
	closed  bool       // guarded by mu
}

// NewSender returns a sender that writes frames with write, closes the
// transport with close, and drops a client that has more than limit frames
// waiting.
func NewSender(write func([]byte) error, close func() error, limit int) *Sender {
	s := &Sender{write: write, close: close, limit: limit}
	s.cond = sync.NewCond(&s.mu)
	return s
}

var _ Conn = (*Sender)(nil)

// Send queues a frame without blocking. A client too slow to keep up is
// disconnected (it resumes from the store when it reconnects) and Send
// reports false.
func (s *Sender) Send(b []byte) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if len(s.queue) >= s.limit {
		s.mu.Unlock()
		s.Close()
		return false
	}
	s.enqueueLocked(b)
	s.mu.Unlock()
	return true
}

// SendWait queues a frame, waiting for room instead of dropping the client.
// It is for answers to the client's own requests (a long resume), which
// are paced by the client's reading. It reports false once closed.
func (s *Sender) SendWait(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && len(s.queue) >= s.limit {
		s.cond.Wait()
	}
	if s.closed {
		return false
	}
	s.enqueueLocked(b)
	return true
}

func (s *Sender) enqueueLocked(b []byte) {
	s.queue = append(s.queue, b)
	if !s.writing {
		s.writing = true
		go s.flush()
	}
}

// flush writes queued frames in order until the queue is empty, then ends.
func (s *Sender) flush() {
	for {
		s.mu.Lock()
		if s.closed || len(s.queue) == 0 {
			s.writing = false
			s.queue = nil
			s.mu.Unlock()
			return
		}
		b := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.cond.Broadcast()
		s.mu.Unlock()
		if err := s.write(b); err != nil {
			s.Close()
			return
		}
	}
}

// Close closes the transport once; queued frames are dropped.
func (s *Sender) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.queue = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	_ = s.close()
}

// Closed reports whether Close has been called.
func (s *Sender) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
