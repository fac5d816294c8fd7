// Package testenv gives tests the real services they run against: a
// PostgreSQL schema and a Redis key prefix of their own on the shared
// servers, or the embedded SQLite and in-process Redis. A service that is
// not reachable fails the test; it is never skipped.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/rdb"
)

// PostgresURL is the server tests use: SWITCHBOARD_TEST_DATABASE_URL or the
// local default.
func PostgresURL() string {
	if u := os.Getenv("SWITCHBOARD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// RedisURL is the server tests use: SWITCHBOARD_TEST_REDIS_URL or the local
// default.
func RedisURL() string {
	if u := os.Getenv("SWITCHBOARD_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// UniqueName returns prefix followed by random hex, usable as a schema name
// or key prefix.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Redis opens a client for a test. kind is "redis" for the real server or
// "embedded" for an in-process one. Keys get a unique prefix that is deleted
// when the test ends.
func Redis(t testing.TB, kind string) *rdb.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := ""
	if kind == "redis" {
		url = RedisURL()
	}
	c, err := rdb.Open(ctx, url, UniqueName("sbt"))
	if err != nil {
		t.Fatalf("redis (%s) not reachable: %v", kind, err)
	}
	t.Cleanup(func() {
		if c.Embedded == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			iter := c.Scan(ctx, 0, c.Prefix+":*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
		c.Close()
	})
	return c
}

// RedisKinds lists the Redis backends every Redis test runs against.
var RedisKinds = []string{"redis", "embedded"}
