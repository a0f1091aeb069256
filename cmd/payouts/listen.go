package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits of the webhook listener, which anyone who can reach its port may
// talk to. Pike sends small requests (a signature header and a JSON body
// of a few kilobytes) over a handful of connections.
const (
	// webhookMaxConns caps the connections open at once; one more is
	// answered 503 and closed, and Pike delivers again later.
	webhookMaxConns = 128
	// webhookMaxHeaderBytes caps the request headers.
	webhookMaxHeaderBytes = 16 << 10
)

// webhookServer returns the HTTP server of the webhook listener: every
// phase of a request has a deadline, so a peer that sends slowly or not at
// all gives its connection back.
//
// Keep-alive is off: every connection is closed once its request is
// answered, so a peer that leaves connections idle holds no slot of the
// connection cap (128 idle keep-alive connections used to lock Pike out).
// Pike delivers each webhook as one POST; nothing is lost by it.
func webhookServer(ctx context.Context, h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		MaxHeaderBytes:    webhookMaxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.SetKeepAlivesEnabled(false)
	return srv
}

// limitListener holds at most cap(slots) connections open at once. A
// connection beyond that is answered 503 at once, without reading its
// request, and closed: a flood of connections costs an accept and a write
// each, not a goroutine and a buffer each.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

// limitConns wraps l to hold at most n connections.
func limitConns(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n)}
}

// busyResponse is the whole answer to a connection over the limit.
const busyResponse = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 29\r\n\r\ntoo many connections, retry\r\n"

// Accept returns the next connection that fits under the limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, busyResponse)
			_ = c.Close()
		}
	}
}

// inUse is the number of connections open.
func (l *limitListener) inUse() int { return len(l.slots) }

// limitConn gives its slot back when closed, once.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
