package sandbox

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/payouts/payouts/pike"
)

// maxBody bounds request bodies.
const maxBody = 1 << 20

// Paths of the sandbox's own read-only endpoints (no signature needed).
const (
	PathJournal = "/sandbox/journal"
	PathStats   = "/sandbox/stats"
)

// methods maps the path after /api/vN/ to the API method it calls.
var methods = map[string]string{
	pike.MethodSessionCreate: pike.MethodSessionCreate,
	pike.MethodStartPayout:   pike.MethodStartPayout,
	"session/start":          pike.MethodStartPayout, // the path of Pike's walkthroughs
	pike.MethodInitPayout:    pike.MethodInitPayout,
	pike.MethodConfirm:       pike.MethodConfirm,
	pike.MethodCancel:        pike.MethodCancel,
	pike.MethodStatus:        pike.MethodStatus,
	pike.MethodWalletBalance: pike.MethodWalletBalance,
}

// mutating reports whether method changes state (and so honours
// idempotency keys and the after-apply faults).
func mutating(method string) bool {
	return method != pike.MethodStatus && method != pike.MethodWalletBalance
}

// route splits /api/v1/session/create into (V1, "session/create").
func route(path string) (pike.Version, string, bool) {
	var v pike.Version
	switch {
	case strings.HasPrefix(path, "/api/v1/"):
		v = pike.V1
	case strings.HasPrefix(path, "/api/v2/"):
		v = pike.V2
	default:
		return 0, "", false
	}
	m, ok := methods[path[len("/api/v1/"):]]
	return v, m, ok
}

// stored is a complete answer: kept per idempotency key for replays.
type stored struct {
	status int
	body   []byte
}

// ServeHTTP serves POST /api/v1/<method> and /api/v2/<method> for every
// Pike method the processor uses, plus GET /sandbox/journal and
// GET /sandbox/stats.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathJournal:
		s.serveJSON(w, r, func() any {
			if j := s.Journal(); j != nil {
				return j
			}
			return []Payment{}
		})
		return
	case PathStats:
		s.serveJSON(w, r, func() any { return s.Stats() })
		return
	}
	v, method, ok := route(r.URL.Path)
	if !ok {
		write(w, errorResponse(errorf(http.StatusNotFound, pike.CodeInvalidRequest, "unknown path %q: use POST /api/v1/<method> or /api/v2/<method>", r.URL.Path)))
		return
	}
	s.mu.Lock()
	s.stats.Requests[method]++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		write(w, errorResponse(errorf(http.StatusMethodNotAllowed, pike.CodeInvalidRequest, "%s: Pike methods are called with POST", r.Method)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			write(w, errorResponse(errorf(http.StatusRequestEntityTooLarge, pike.CodeInvalidRequest, "request body is larger than %d bytes", maxBody)))
		} else {
			write(w, errorResponse(invalidRequest("read request body: %v", err)))
		}
		return
	}
	// Latency after reading the body: only then does net/http notice a
	// client that hangs up, and cancel r.Context().
	if !sleep(r.Context(), s.latency()) {
		return
	}
	if e := s.authenticate(r, body); e != nil {
		s.mu.Lock()
		s.stats.AuthFailures++
		s.mu.Unlock()
		write(w, errorResponse(e))
		return
	}
	res, drop, slow := s.handle(v, method, r.Header.Get(pike.HeaderIdempotencyKey), body)
	if !sleep(r.Context(), slow) {
		return
	}
	if drop {
		dropConnection(w)
		return
	}
	if res.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	write(w, res)
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("api call", "method", method, "version", v.String(), "status", res.status, "idempotency_key", r.Header.Get(pike.HeaderIdempotencyKey))
	}
}

// authenticate checks X-PARTNER-PROJECT and X-PARTNER-SIGN.
func (s *Sandbox) authenticate(r *http.Request, body []byte) *apiError {
	p := r.Header.Get(pike.HeaderProject)
	if p == "" || (s.cfg.Project != "" && p != s.cfg.Project) {
		return errorf(http.StatusUnauthorized, pike.CodeAuthentication, "%s is missing or not a known project", pike.HeaderProject)
	}
	s.mu.Lock()
	v := s.verifier
	s.mu.Unlock()
	if err := v.Verify(body, r.Header.Get(pike.HeaderSign)); err != nil {
		return errorf(http.StatusUnauthorized, pike.CodeAuthentication, "%s: %v", pike.HeaderSign, err)
	}
	return nil
}

// handle decodes, applies and answers one authenticated call. drop means
// the call was applied and its connection must be closed unanswered; slow
// is how long to hold the answer back (FaultSlowAnswer).
func (s *Sandbox) handle(v pike.Version, method, key string, body []byte) (res *stored, drop bool, slow time.Duration) {
	res, drop, slow = s.handle1(v, method, key, body)
	if res != nil {
		res = s.dressStored(res)
	}
	return res, drop, slow
}

func (s *Sandbox) handle1(v pike.Version, method, key string, body []byte) (res *stored, drop bool, slow time.Duration) {
	var preq pike.PayoutRequest
	var sreq pike.SessionRequest
	var err error
	switch method {
	case pike.MethodSessionCreate, pike.MethodStartPayout, pike.MethodInitPayout:
		err = pike.UnmarshalVersion(body, &preq, v)
		sreq.SessionID = preq.SessionID
	case pike.MethodConfirm, pike.MethodCancel, pike.MethodStatus:
		err = pike.UnmarshalVersion(body, &sreq, v)
	default:
		var obj map[string]json.RawMessage
		err = json.Unmarshal(body, &obj)
	}
	if err != nil {
		return errorResponse(invalidRequest("request body is not a valid %s JSON object: %v", method, err)), false, 0
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errorResponse(errorf(http.StatusServiceUnavailable, pike.CodeInternal, "the sandbox is closed")), false, 0
	}
	ss := s.sessions[sreq.SessionID]
	ref := ""
	switch {
	case preq.Customer != nil:
		ref = preq.Customer.Reference
	case ss != nil:
		ref = ss.reference()
	}
	if s.fire(FaultRateLimit, method, ref, s.faults.RateLimit) {
		return errorResponse(errorf(http.StatusTooManyRequests, pike.CodeRateLimited, "too many requests: retry after 1 second")), false, 0
	}
	if method == pike.MethodSessionCreate || method == pike.MethodInitPayout {
		// Another merchant's session copying this request exists whatever
		// becomes of the request itself.
		if s.fire(FaultForeignWebhook, method, ref, s.faults.ForeignWebhooks) {
			s.foreignFromRequest(v, &preq)
		}
	}
	if e, ok := s.fireAnswer(FaultFailBeforeApply, method, ref, s.faults.FailBeforeApply); ok {
		return errorResponse(e), false, 0
	}
	mut := mutating(method)
	if mut {
		if key == "" {
			s.stats.MissingIdempotencyKey++
		} else if prev, ok := s.idem[key]; ok {
			s.stats.IdempotencyRepeats++
			if s.cfg.IdempotencyReplay {
				return prev, false, 0
			}
			return errorResponse(errorf(http.StatusBadRequest, pike.CodeIdempotencyKeyExists, "idempotency key %q was already used: the call is in progress or processed", key)), false, 0
		}
	}
	if method == pike.MethodWalletBalance {
		return s.wallets(), false, 0
	}
	ss, e := s.apply(v, method, ss, &preq, &sreq)
	if e != nil {
		return errorResponse(e), false, 0
	}
	res = sessionResponse(v, ss.view())
	slow = s.fireDelay(method, ref)
	if !mut {
		return res, false, slow
	}
	if key != "" {
		// Keep the answer only when it may be replayed: a large batch
		// makes several keys per row.
		if s.cfg.IdempotencyReplay {
			s.idem[key] = res
		} else {
			s.idem[key] = nil
		}
	}
	if s.fire(FaultDropAfterApply, method, ref, s.faults.DropAfterApply) {
		return nil, true, slow
	}
	if e, ok := s.fireAnswer(FaultFailAfterApply, method, ref, s.faults.FailAfterApply); ok {
		return errorResponse(e), false, slow
	}
	return res, false, slow
}

// apply runs one session method. Callers hold s.mu.
func (s *Sandbox) apply(v pike.Version, method string, ss *session, preq *pike.PayoutRequest, sreq *pike.SessionRequest) (*session, *apiError) {
	switch method {
	case pike.MethodSessionCreate:
		return s.createSession(v, preq)
	case pike.MethodInitPayout:
		if e := checkInit(v, preq); e != nil {
			return nil, e
		}
		ss, e := s.createSession(v, preq)
		if e != nil {
			return nil, e
		}
		// checkInit made sure start cannot refuse what create accepted.
		return ss, s.startPayout(v, method, ss, &pike.PayoutRequest{})
	}
	if sreq.SessionID == "" {
		return nil, invalidRequest("session_id is required")
	}
	if ss == nil {
		// Another merchant's session is, to this project, no session at all.
		return nil, s.notFound(sreq.SessionID)
	}
	var e *apiError
	switch method {
	case pike.MethodStartPayout:
		e = s.startPayout(v, method, ss, preq)
	case pike.MethodConfirm:
		e = s.confirmSession(ss)
	case pike.MethodCancel:
		e = s.cancelSession(ss)
	}
	return ss, e
}

// checkInit refuses a session/init/payout that start would refuse, before
// anything is created.
func checkInit(v pike.Version, req *pike.PayoutRequest) *apiError {
	if req.Method == nil {
		field := "payment_method"
		if v == pike.V2 {
			field = "payout_details"
		}
		return invalidRequest("%s is required", field)
	}
	if req.AmountDetails == nil {
		return invalidRequest("amount_details is required")
	}
	if c, msg := checkCard(req.Method); msg == "" && c.behaviour == cardExpired {
		return errorf(http.StatusBadRequest, pike.CodeBankCardExpired, "the card has expired")
	}
	return nil
}

// wallets answers wallet/balance: the available balance per currency
// (balance less what confirmed payouts in flight hold). Callers hold s.mu.
func (s *Sandbox) wallets() *stored {
	ws := []pike.Wallet{}
	for _, cur := range slices.Sorted(maps.Keys(s.balances)) {
		ws = append(ws, pike.Wallet{ID: "w_" + cur, AmountDetails: pike.AmountDetails{Amount: s.balances[cur] - s.reserved[cur], Currency: cur}})
	}
	b, _ := json.Marshal(struct {
		Status  string        `json:"status"`
		Wallets []pike.Wallet `json:"wallets"`
	}{"ok", ws})
	return &stored{status: http.StatusOK, body: b}
}

func sessionResponse(v pike.Version, sess pike.Session) *stored {
	sb, err := pike.MarshalVersion(sess, v)
	if err != nil {
		return errorResponse(errorf(http.StatusInternalServerError, pike.CodeInternal, "encode session: %v", err))
	}
	b, _ := json.Marshal(struct {
		Status  string          `json:"status"`
		Session json.RawMessage `json:"session"`
	}{"ok", sb})
	return &stored{status: http.StatusOK, body: b}
}

func errorResponse(e *apiError) *stored {
	b, _ := json.Marshal(struct {
		Status string         `json:"status"`
		Error  pike.ErrorInfo `json:"error"`
	}{"error", pike.ErrorInfo{Code: e.code, Description: e.desc}})
	return &stored{status: e.status, body: b}
}

func write(w http.ResponseWriter, res *stored) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

// dropConnection closes the client's connection without an answer, as a
// network failure after Pike applied the call would look.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 or a recorder: abort the handler; the server resets the stream.
	panic(http.ErrAbortHandler)
}

// serveJSON answers GET requests to the sandbox's own endpoints.
func (s *Sandbox) serveJSON(w http.ResponseWriter, r *http.Request, get func() any) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		write(w, errorResponse(errorf(http.StatusMethodNotAllowed, pike.CodeInvalidRequest, "use GET")))
		return
	}
	b, err := json.MarshalIndent(get(), "", "  ")
	if err != nil {
		write(w, errorResponse(errorf(http.StatusInternalServerError, pike.CodeInternal, "encode: %v", err)))
		return
	}
	write(w, &stored{status: http.StatusOK, body: append(b, '\n')})
}
