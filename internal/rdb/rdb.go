// Package rdb opens the Redis connection Switchboard runs on: a real server
// given by URL, or an in-process miniredis for the embedded default. Both are
// driven through the same go-redis client and the same Lua scripts.
package rdb

import (
	"context"
	"fmt"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Client is a Redis client plus, for the embedded default, the in-process
// server it talks to.
type Client struct {
	redis.UniversalClient
	// Embedded is non-nil when the server runs in this process.
	Embedded *miniredis.Miniredis
	// Prefix starts every key this process writes ("sb" by default); tests
	// randomise it to isolate themselves on a shared server.
	Prefix string
}

// Open connects to url (redis://...), or starts an in-process server when url
// is empty. It pings before returning.
func Open(ctx context.Context, url, prefix string) (*Client, error) {
	if prefix == "" {
		prefix = "sb"
	}
	c := &Client{Prefix: prefix}
	if strings.TrimSpace(url) == "" {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("start in-process redis: %w", err)
		}
		c.Embedded = m
		c.UniversalClient = redis.NewClient(&redis.Options{Addr: m.Addr(), PoolSize: 64})
	} else {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("parse redis url: %w", err)
		}
		if opt.PoolSize < 64 {
			opt.PoolSize = 64
		}
		c.UniversalClient = redis.NewClient(opt)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	return c, nil
}

// Close closes the client and stops an embedded server.
func (c *Client) Close() error {
	err := c.UniversalClient.Close()
	if c.Embedded != nil {
		c.Embedded.Close()
	}
	return err
}

// TenantKey builds a key of one tenant, hash-tagged so that all of a tenant's
// routing keys live in one Redis Cluster slot: "<prefix>:{<tenant>}:<parts...>".
func (c *Client) TenantKey(tenantID string, parts ...string) string {
	return TenantKey(c.Prefix, tenantID, parts...)
}

// TenantKey is the free-function form of Client.TenantKey.
func TenantKey(prefix, tenantID string, parts ...string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(tenantID) + 4 + 16*len(parts))
	b.WriteString(prefix)
	b.WriteString(":{")
	b.WriteString(tenantID)
	b.WriteString("}")
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}
