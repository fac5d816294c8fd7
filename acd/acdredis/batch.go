package acdredis

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// batcher sends script calls that arrive while earlier ones are in flight
// together, as one pipeline: Redis then reads and answers many calls per
// system call on both sides, which is where the time of a short script
// goes. Each script still runs atomically on its own; only the round trip
// is shared. A call waits for its own reply even when its caller's context
// ends, because a script that ran may have made assignments the caller
// must deliver.
type batcher struct {
	c    redis.UniversalClient
	in   chan *call
	stop chan struct{}
	// stopped is closed once every loop has returned; a call no loop took
	// by then fails with redis.ErrClosed.
	stopped chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

type call struct {
	s    *redis.Script
	keys []string
	args []any
	res  any
	err  error
	done chan struct{}
}

// maxBatch caps the calls of one pipeline.
const maxBatch = 256

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func newBatcher(c redis.UniversalClient, conns int) *batcher {
	b := &batcher{c: c, in: make(chan *call, maxBatch*conns), stop: make(chan struct{}), stopped: make(chan struct{})}
	for range conns {
		b.wg.Add(1)
		go b.loop()
	}
	return b
}

// run queues one script call and waits for its reply.
func (b *batcher) run(s *redis.Script, keys []string, args []any) (any, error) {
	c := callPool.Get().(*call)
	c.s, c.keys, c.args = s, keys, args
	select {
	case b.in <- c:
	case <-b.stop:
		callPool.Put(c)
		return nil, redis.ErrClosed
	}
	select {
	case <-c.done:
	case <-b.stopped:
		select {
		case <-c.done:
		default:
			return nil, redis.ErrClosed // c may still sit in b.in: not pooled again
		}
	}
	res, err := c.res, c.err
	*c = call{done: c.done}
	callPool.Put(c)
	return res, err
}

func (b *batcher) loop() {
	defer b.wg.Done()
	batch := make([]*call, 0, maxBatch)
	cmds := make([]*redis.Cmd, 0, maxBatch)
	ctx := context.Background()
	for {
		var first *call
		select {
		case first = <-b.in:
		case <-b.stop:
			return
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case c := <-b.in:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		if len(batch) == 1 {
			first.res, first.err = first.s.Run(ctx, b.c, first.keys, first.args...).Result()
			first.done <- struct{}{}
			continue
		}
		pipe := b.c.Pipeline()
		cmds = cmds[:0]
		for _, c := range batch {
			cmds = append(cmds, c.s.EvalSha(ctx, pipe, c.keys, c.args...))
		}
		_, _ = pipe.Exec(ctx) // errors are per command
		for i, c := range batch {
			c.res, c.err = cmds[i].Result()
			if c.err != nil && redis.HasErrorPrefix(c.err, "NOSCRIPT") {
				c.res, c.err = c.s.Run(ctx, b.c, c.keys, c.args...).Result()
			}
			c.done <- struct{}{}
		}
	}
}

// close stops the loops once the calls in flight are answered.
func (b *batcher) close() {
	b.once.Do(func() {
		close(b.stop)
		b.wg.Wait()
		close(b.stopped)
	})
}
