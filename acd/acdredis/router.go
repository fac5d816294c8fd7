package acdredis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// router makes calls of the routing program (scripts.go): by FCALL of the
// function library on a server with Redis functions (7.0 and later), by
// EVALSHA of the script on any other. It finds out on its first call: a
// server that does not know FCALL, or denies loading the library (an ACL
// without FUNCTION), gets scripts from then on. A server that lost the
// program (a restart without persistence, FUNCTION FLUSH, SCRIPT FLUSH)
// gets it again from the call that finds it missing.
type router struct {
	c redis.UniversalClient
	// scripts is set once the server turned out to need the script form.
	scripts atomic.Bool
	// loadMu makes concurrent calls that find the library missing load it
	// once rather than all at once.
	loadMu sync.Mutex
}

// caller is what a program call is sent on: the client or a pipeline.
type caller interface {
	redis.Scripter
	FCall(ctx context.Context, function string, keys []string, args ...any) *redis.Cmd
}

// cmd sends (or, on a pipeline, queues) one call of the program.
func (r *router) cmd(ctx context.Context, c caller, keys []string, argv []any) *redis.Cmd {
	if r.scripts.Load() {
		return scriptRoute.EvalSha(ctx, c, keys, argv...)
	}
	return c.FCall(ctx, functionName, keys, argv...)
}

// run makes one call of the program and waits for its reply.
func (r *router) run(ctx context.Context, keys []string, argv []any) (any, error) {
	res, err := r.cmd(ctx, r.c, keys, argv).Result()
	return r.recover(ctx, keys, argv, res, err)
}

// recover takes the outcome of a call made by cmd. A call that failed
// because the server lacks the program is made again, once, after
// loading the program (the script form loads itself: EVAL after NOSCRIPT);
// an FCALL the server refused as an unknown or denied command is made
// again as a script.
func (r *router) recover(ctx context.Context, keys []string, argv []any, res any, err error) (any, error) {
	switch {
	case err == nil:
		return res, nil
	case redis.HasErrorPrefix(err, "NOSCRIPT"):
		return scriptRoute.Run(ctx, r.c, keys, argv...).Result()
	case r.scripts.Load():
		return res, err
	case isUnknownCommand(err) || redis.HasErrorPrefix(err, "NOPERM"):
		// No FCALL here, or not for this user: a script may do.
		r.scripts.Store(true)
		return scriptRoute.Run(ctx, r.c, keys, argv...).Result()
	case redis.HasErrorPrefix(err, "Function not found"): // ("ERR " is dropped)
		if lerr := r.load(ctx); lerr != nil {
			return nil, lerr
		}
		if r.scripts.Load() {
			return scriptRoute.Run(ctx, r.c, keys, argv...).Result()
		}
		return r.cmd(ctx, r.c, keys, argv).Result()
	}
	return res, err
}

// load loads the function library on the server (on every master of a
// cluster, every shard of a ring). A server without FUNCTION, or an ACL
// that denies it, gets the script form instead.
func (r *router) load(ctx context.Context) error {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	loadOn := func(ctx context.Context, c *redis.Client) error {
		err := c.FunctionLoad(ctx, routeLibrary).Err()
		if alreadyLoaded(err) {
			return nil // loaded since by another call or node
		}
		return err
	}
	var err error
	switch c := r.c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, loadOn)
	case *redis.Ring:
		err = c.ForEachShard(ctx, loadOn)
	case *redis.Client:
		err = loadOn(ctx, c)
	default:
		if err = c.FunctionLoad(ctx, routeLibrary).Err(); alreadyLoaded(err) {
			err = nil
		}
	}
	if isUnknownCommand(err) || redis.HasErrorPrefix(err, "NOPERM") {
		r.scripts.Store(true)
		return nil
	}
	if err != nil {
		// A refusal that may pass (LOADING, BUSY, OOM) or a library that
		// does not compile (a bug, which the script form could hide).
		return fmt.Errorf("load routing functions: %w", err)
	}
	return nil
}

func alreadyLoaded(err error) bool {
	return redis.HasErrorPrefix(err, "Library '"+functionName+"' already exists")
}

// isUnknownCommand reports an error reply for a command the server does
// not have (FCALL and FUNCTION before Redis 7.0, or on the embedded
// miniredis).
func isUnknownCommand(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	msg := strings.ToLower(reply.Error())
	return strings.Contains(msg, "unknown command") || strings.Contains(msg, "unknown subcommand")
}
