package pike

import "sync/atomic"

// Stats are counters of a Client since it was made. Calls are logical
// requests (one per method invocation); requests are HTTP attempts.
type Stats struct {
	// Requests is the number of HTTP requests started, retries included.
	Requests int64
	// Retries is the number of HTTP requests that repeated an earlier one.
	Retries int64
	// RateLimited is the number of 429 responses received.
	RateLimited int64
	// OK is the number of calls that returned a result.
	OK int64
	// Retryable, Definitive and Unknown count the calls that returned an
	// error of that class (Retryable ones after the client's own retries).
	Retryable, Definitive, Unknown int64
	// InFlight is the number of HTTP requests in flight now.
	InFlight int64
	// MaxInFlight is the largest InFlight seen.
	MaxInFlight int64
}

type counters struct {
	requests, retries, rateLimited     atomic.Int64
	ok, retryable, definitive, unknown atomic.Int64
	inFlight, maxInFlight              atomic.Int64
}

func (c *counters) enter() {
	n := c.inFlight.Add(1)
	for {
		m := c.maxInFlight.Load()
		if n <= m || c.maxInFlight.CompareAndSwap(m, n) {
			return
		}
	}
}

func (c *counters) leave() { c.inFlight.Add(-1) }

// Stats returns a snapshot of the client's counters. It is cheap and safe
// to call from any goroutine.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Requests:    s.requests.Load(),
		Retries:     s.retries.Load(),
		RateLimited: s.rateLimited.Load(),
		OK:          s.ok.Load(),
		Retryable:   s.retryable.Load(),
		Definitive:  s.definitive.Load(),
		Unknown:     s.unknown.Load(),
		InFlight:    s.inFlight.Load(),
		MaxInFlight: s.maxInFlight.Load(),
	}
}
