package acdredis

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// batcher sends the operations that arrive while earlier ones are in
// flight together. Operations of one tenant go in one call of the routing
// program (lua/dispatch.lua runs them in order, each atomic, since a call
// runs atomically as a whole), up to maxOpsPerScript of them, which shares
// the fixed cost of a call and what the operations read; the calls of a
// round go out as one pipeline, which shares the round trip and the system
// calls on both sides. A call waits for its own reply even when its
// caller's context ends, because an operation that ran may have made
// assignments the caller must deliver.
type batcher struct {
	r    *router
	in   chan *call
	stop chan struct{}
	// stopped is closed once every loop has returned; a call no loop took
	// by then fails with redis.ErrClosed.
	stopped chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// call is one operation of one tenant and, once done, its reply.
type call struct {
	prefix string // the tenant's key prefix
	op     operation
	now    int64 // unix µs
	args   []any
	res    any
	err    error
	done   chan struct{}
}

// maxBatch caps the operations of one round.
const maxBatch = 256

// maxOpsPerScript caps the operations of one script call: a script blocks
// the server while it runs, and a match takes some 10 to 30 µs, so 32 of
// them stay well under a millisecond.
const maxOpsPerScript = 32

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func newBatcher(r *router, conns int) *batcher {
	b := &batcher{r: r, in: make(chan *call, maxBatch*conns), stop: make(chan struct{}), stopped: make(chan struct{})}
	for range conns {
		b.wg.Add(1)
		go b.loop()
	}
	return b
}

// run queues one operation and waits for its reply.
func (b *batcher) run(prefix string, o operation, now int64, args []any) (any, error) {
	c := callPool.Get().(*call)
	c.prefix, c.op, c.now, c.args = prefix, o, now, args
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
	var chunks [][]*call
	open := map[string]int{} // prefix -> its chunk still taking operations
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
		// One program call per tenant and maxOpsPerScript operations, in
		// arrival order.
		chunks = chunks[:0]
		clear(open)
		for _, c := range batch {
			i, ok := open[c.prefix]
			if !ok || len(chunks[i]) == maxOpsPerScript {
				i = len(chunks)
				chunks = append(chunks, make([]*call, 0, min(len(batch), maxOpsPerScript)))
				open[c.prefix] = i
			}
			chunks[i] = append(chunks[i], c)
		}
		if len(chunks) == 1 {
			keys, argv := dispatchArgs(chunks[0])
			res, err := b.r.run(ctx, keys, argv)
			b.deliver(chunks[0], res, err)
			continue
		}
		pipe := b.r.c.Pipeline()
		cmds = cmds[:0]
		for _, ch := range chunks {
			keys, argv := dispatchArgs(ch)
			cmds = append(cmds, b.r.cmd(ctx, pipe, keys, argv))
		}
		_, _ = pipe.Exec(ctx) // errors are per command
		for i, ch := range chunks {
			res, err := cmds[i].Result()
			if err != nil {
				keys, argv := dispatchArgs(ch)
				res, err = b.r.recover(ctx, keys, argv, res, err)
			}
			b.deliver(ch, res, err)
		}
	}
}

// deliver hands each call of a program call its reply and wakes its caller.
func (b *batcher) deliver(calls []*call, res any, err error) {
	split(calls, res, err)
	for _, c := range calls {
		c.done <- struct{}{}
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

// dispatchArgs builds the KEYS and ARGV of one program call running calls,
// which all belong to one tenant (lua/dispatch.lua).
func dispatchArgs(calls []*call) ([]string, []any) {
	n := 1
	for _, c := range calls {
		n += 3 + len(c.args)
	}
	argv := make([]any, 0, n)
	argv = append(argv, calls[0].prefix)
	for _, c := range calls {
		argv = append(argv, string(c.op), c.now, len(c.args))
		argv = append(argv, c.args...)
	}
	return []string{builtKey(calls[0].prefix)}, argv
}

// split gives each call its part of a program call's reply, or the error
// of the whole program call.
func split(calls []*call, res any, err error) {
	arr, ok := res.([]any)
	if err == nil && (!ok || len(arr) != len(calls)) {
		err = fmt.Errorf("unexpected dispatch reply %#v for %d operations", res, len(calls))
	}
	for i, c := range calls {
		switch {
		case err != nil:
			c.res, c.err = nil, err
		default:
			if msg, isErr := arr[i].(string); isErr {
				c.res, c.err = nil, scriptError(msg)
			} else {
				c.res, c.err = arr[i], nil
			}
		}
	}
}
