package batch

import "sync"

// rowLocks serialises everything the runner does to one row: the feeder,
// the poller and webhook appliers may all want to act on it at once, and
// two of them confirming or cancelling concurrently would be wrong even if
// the ledger's compare-and-set would catch the second.
type rowLocks struct {
	mu    sync.Mutex
	locks map[int64]*rowLock
}

type rowLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks row id and returns its unlock function.
func (l *rowLocks) lock(id int64) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[int64]*rowLock)
	}
	rl := l.locks[id]
	if rl == nil {
		rl = &rowLock{}
		l.locks[id] = rl
	}
	rl.refs++
	l.mu.Unlock()

	rl.mu.Lock()
	return func() {
		rl.mu.Unlock()
		l.mu.Lock()
		rl.refs--
		if rl.refs == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}
