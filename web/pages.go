package web

import (
	"bytes"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		files.ServeHTTP(w, r)
	})
}

// pages are the parsed templates, one set per page, each with the layout.
type pages struct {
	sets map[string]*template.Template
}

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"add": func(a, b int) int { return a + b },
	"mib": func(n int64) string {
		if n%(1<<20) == 0 {
			return fmt.Sprintf("%d MiB", n>>20)
		}
		return fmt.Sprintf("%d bytes", n)
	},
}

func loadPages() (*pages, error) {
	p := &pages{sets: map[string]*template.Template{}}
	for _, name := range []string{"login", "batches", "upload", "batch", "audit"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// pageData is what every page template gets.
type pageData struct {
	Title string
	User  *user
	Error string
	Data  any
}

// render writes page name with status; html/template escapes every value
// by context, so manifest text always shows as text.
func (s *Server) render(w http.ResponseWriter, status int, name string, d pageData) {
	var b bytes.Buffer
	if err := s.pages.sets[name].Execute(&b, d); err != nil {
		s.log.Error("render page", "page", name, "err", pan.Scrub(err.Error()))
		http.Error(w, "internal error; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login", pageData{Title: "Sign in", Data: safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a redirect after sign-in on this site.
// A browser reads a backslash as a slash and drops tabs and newlines, and
// http.Redirect cleans the path ("/./\\x" becomes "/\\x"): a next with any
// of them, or whose cleaned path starts with two slashes, is refused.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.ContainsFunc(n, func(r rune) bool {
		return r == '\\' || r < 0x20 || r == 0x7f
	}) {
		return "/"
	}
	u, err := url.Parse(n)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || strings.HasPrefix(path.Clean(u.Path), "//") {
		return "/"
	}
	return n
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	if err := r.ParseForm(); err != nil {
		httpError(w, r, http.StatusBadRequest, "bad form")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	tok, _, err := s.login(r.Context(), r, r.PostForm.Get("username"), r.PostForm.Get("password"))
	if err != nil {
		msg := "Wrong user name or password."
		status := httpStatus(err)
		if status == http.StatusInternalServerError {
			s.fail(w, r, err)
			return
		}
		if errors.Is(err, errLocked) {
			msg = "This account is locked after too many wrong passwords. Wait and try again, or ask an admin."
		}
		s.render(w, status, "login", pageData{Title: "Sign in", Error: msg, Data: next})
		return
	}
	s.setCookie(w, tok)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) batchesPage(w http.ResponseWriter, r *http.Request, u user) {
	bs, err := s.batches(r.Context(), u)
	if err != nil {
		s.failPage(w, r, u, err)
		return
	}
	s.render(w, http.StatusOK, "batches", pageData{Title: "Batches", User: &u, Data: bs})
}

// failPage shows an error on a page.
func (s *Server) failPage(w http.ResponseWriter, r *http.Request, u user, err error) {
	status := httpStatus(err)
	if status == http.StatusInternalServerError {
		s.log.Error("console page failed", "path", r.URL.Path, "err", pan.Scrub(err.Error()))
	}
	s.render(w, status, "batches", pageData{Title: http.StatusText(status), User: &u, Error: publicMessage(err)})
}

type uploadData struct {
	Problems     *ProblemsError
	ProblemsJSON string
	MaxBytes     int64
	Action       string // where the form posts: /upload, or a batch's rerun
	Rerun        string // the batch id of a rerun's form
}

func (s *Server) uploadPage(w http.ResponseWriter, r *http.Request, u user) {
	if err := need(u, ledger.RoleMaker); err != nil {
		s.failPage(w, r, u, err)
		return
	}
	s.render(w, http.StatusOK, "upload", pageData{Title: "Upload", User: &u, Data: uploadData{MaxBytes: s.cfg.MaxUploadBytes, Action: "/upload"}})
}

func (s *Server) uploadForm(w http.ResponseWriter, r *http.Request, u user) {
	if err := need(u, ledger.RoleMaker); err != nil {
		s.failPage(w, r, u, err)
		return
	}
	up, err := s.readUpload(w, r)
	var v BatchView
	if err == nil {
		v, err = s.create(r.Context(), u, up)
	}
	if err != nil {
		s.uploadFailed(w, r, u, "", err)
		return
	}
	http.Redirect(w, r, "/batches/"+v.ID, http.StatusSeeOther)
}

// uploadFailed shows the upload form again with every problem: the
// upload page, or the rerun form of batch rerun.
func (s *Server) uploadFailed(w http.ResponseWriter, r *http.Request, u user, rerun string, err error) {
	d := uploadData{MaxBytes: s.cfg.MaxUploadBytes, Action: "/upload", Rerun: rerun}
	if rerun != "" {
		d.Action = "/batches/" + rerun + "/rerun"
	}
	var pe *ProblemsError
	msg := ""
	if errors.As(err, &pe) {
		d.Problems = pe
		b, _ := json.Marshal(pe.Problems)
		d.ProblemsJSON = string(b)
		msg = pe.Error()
	} else {
		msg = publicMessage(err)
		if httpStatus(err) == http.StatusInternalServerError {
			s.log.Error("upload failed", "err", pan.Scrub(err.Error()))
		}
	}
	s.render(w, httpStatus(err), "upload", pageData{Title: "Upload", User: &u, Error: msg, Data: d})
}

// problemsCSV turns the problems shown on a page back into a CSV download
// (nothing of a refused upload is stored, so the page sends them).
func (s *Server) problemsCSV(w http.ResponseWriter, r *http.Request, u user) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<20)
	if err := r.ParseForm(); err != nil {
		httpError(w, r, http.StatusBadRequest, "bad form")
		return
	}
	var ps []Problem
	if err := json.Unmarshal([]byte(r.PostForm.Get("problems")), &ps); err != nil {
		httpError(w, r, http.StatusBadRequest, "bad problems")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="manifest-problems.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"line", "column", "problem"})
	for _, p := range ps {
		_ = cw.Write([]string{strconv.Itoa(p.Line), report.SpreadsheetSafe(pan.Scrub(p.Column)), report.SpreadsheetSafe(pan.Scrub(p.Message))})
	}
	cw.Flush()
}

// maxFindings is how many findings a batch page lists.
const maxFindings = 50

type batchData struct {
	Batch     BatchView
	Rows      []RowView
	RowsTotal int
	Page      int
	Pages     int
	State     string
	States    []string
	Findings  []report.Finding
	// MoreFindings counts findings beyond maxFindings (the report has all).
	MoreFindings int
	Audit        []ledger.AuditEntry
	CanApprove   bool
	OwnRequest   bool // the user asked for what is pending: she cannot approve it
	CanRerun     bool
	Failed       int
}

func (s *Server) batchPage(w http.ResponseWriter, r *http.Request, u user) {
	ctx := r.Context()
	id := r.PathValue("id")
	v, cb, err := s.batch(ctx, u, id)
	if err != nil {
		s.failPage(w, r, u, err)
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	state := r.URL.Query().Get("state")
	rows, total, err := s.rows(ctx, id, state, page)
	if err != nil {
		s.failPage(w, r, u, err)
		return
	}
	d := batchData{Batch: v, Rows: rows, RowsTotal: total, Page: page, Pages: max((total+PageSize-1)/PageSize, 1), State: state}
	for _, st := range ledger.States() {
		if v.Counts[string(st)] > 0 {
			d.States = append(d.States, string(st))
		}
	}
	if sum, err := report.BuildSummary(ctx, s.db, id, s.cfg.Now()); err == nil {
		// While a console batch waits for approval or is being paid, rows
		// not sent yet or in flight are what is expected, not findings;
		// the report's advice for them (run the manifest again) is the
		// CLI's.
		inProgress := cb != nil && (cb.State == ledger.ConsoleAwaitingApproval || cb.State == ledger.ConsolePaying)
		for _, f := range sum.Findings {
			if inProgress && (f.Kind == report.FindingNotSent || f.Kind == report.FindingPending) {
				continue
			}
			if len(d.Findings) == maxFindings {
				d.MoreFindings++
				continue
			}
			d.Findings = append(d.Findings, f)
		}
	}
	if d.Audit, err = s.db.AuditLog(ctx, ledger.AuditFilter{BatchID: id, Limit: 100}); err != nil {
		s.failPage(w, r, u, err)
		return
	}
	d.Failed = v.Counts[string(ledger.StateFailed)] + v.Counts[string(ledger.StateCancelled)] + v.Counts[string(ledger.StateMismatch)]
	if cb == nil && v.Pending == PendingHeld {
		d.CanApprove = u.Has(ledger.RoleApprover)
	}
	if cb != nil {
		own := u.Name == cb.UploadedBy || u.Name == cb.RequestedBy
		awaiting := cb.State == ledger.ConsoleAwaitingApproval
		d.OwnRequest = awaiting && own
		d.CanApprove = awaiting && !own && u.Has(ledger.RoleApprover)
		d.CanRerun = cb.State == ledger.ConsoleDone && u.Has(ledger.RoleMaker) && d.Failed > 0
	}
	s.render(w, http.StatusOK, "batch", pageData{Title: "Batch " + id, User: &u, Data: d})
}

func (s *Server) decideForm(approve bool) func(http.ResponseWriter, *http.Request, user) {
	return func(w http.ResponseWriter, r *http.Request, u user) {
		id := r.PathValue("id")
		if _, err := s.decide(r.Context(), u, id, approve); err != nil {
			s.failPage(w, r, u, err)
			return
		}
		http.Redirect(w, r, "/batches/"+id, http.StatusSeeOther)
	}
}

func (s *Server) rerunForm(w http.ResponseWriter, r *http.Request, u user) {
	id := r.PathValue("id")
	if err := need(u, ledger.RoleMaker); err != nil {
		s.failPage(w, r, u, err)
		return
	}
	up, err := s.readUpload(w, r)
	if err == nil {
		_, err = s.rerun(r.Context(), u, id, up)
	}
	if err != nil {
		s.uploadFailed(w, r, u, id, err)
		return
	}
	http.Redirect(w, r, "/batches/"+id, http.StatusSeeOther)
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, u user) {
	if err := need(u, readers...); err != nil {
		s.failPage(w, r, u, err)
		return
	}
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	log, err := s.db.AuditLog(r.Context(), ledger.AuditFilter{BeforeID: before, Limit: 200})
	if err != nil {
		s.failPage(w, r, u, err)
		return
	}
	s.render(w, http.StatusOK, "audit", pageData{Title: "Audit log", User: &u, Data: log})
}

// events streams the batch's summary as server-sent events (one JSON
// BatchView per change) until the batch is done or rejected, or the
// client goes away.
func (s *Server) events(w http.ResponseWriter, r *http.Request, u user) {
	id := r.PathValue("id")
	v, _, err := s.batch(r.Context(), u, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		httpError(w, r, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var last []byte
	for {
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		if !bytes.Equal(b, last) {
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
			last = b
		}
		if v.State == string(ledger.ConsoleDone) || v.State == string(ledger.ConsoleRejected) {
			_, _ = io.WriteString(w, "event: end\ndata: {}\n\n")
			fl.Flush()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		// The session is checked again at every tick: a signed-out or
		// disabled user (or an expired session) reads no more.
		if u, err = s.current(r); err != nil {
			return
		}
		if v, _, err = s.batch(r.Context(), u, id); err != nil {
			return
		}
	}
}
