package sandbox

import (
	"fmt"

	"github.com/payouts/payouts/pike"
)

// ResolveSessionError does what Pike's support does with a session in
// `error` (pike-api.md §5: "not final — outcome unknown until support
// resolves it"): it settles the payout, paid or failed, and Pike sends
// payment_finished again. A processor that took the first answer for final
// (and paid the reference again in a new session) pays twice.
func (s *Sandbox) ResolveSessionError(sessionID string, paid bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[sessionID]
	if !ok {
		return fmt.Errorf("session %s: %s", sessionID, pike.CodeSessionNotFound)
	}
	if ss.status != pike.SessionError || ss.payout == nil {
		return fmt.Errorf("session %s is %s, not error", sessionID, ss.status)
	}
	ss.err = nil
	if !paid {
		s.fail(ss, pike.SessionCancelled, pike.CodeProviderInternal, "resolved by support: not paid")
		return nil
	}
	ss.payout.err = nil
	s.succeed(ss)
	return nil
}
