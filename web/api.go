package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// The JSON API: the same service calls as the pages.

func (s *Server) apiBatches(w http.ResponseWriter, r *http.Request, u user) {
	bs, err := s.batches(r.Context(), u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"batches": bs})
}

func (s *Server) apiBatch(w http.ResponseWriter, r *http.Request, u user) {
	v, _, err := s.batch(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiRows(w http.ResponseWriter, r *http.Request, u user) {
	id := r.PathValue("id")
	if _, _, err := s.batch(r.Context(), u, id); err != nil {
		s.fail(w, r, err)
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	rows, total, err := s.rows(r.Context(), id, r.URL.Query().Get("state"), page)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rows": rows, "total": total, "page": max(page, 1), "page_size": PageSize})
}

func (s *Server) apiUpload(w http.ResponseWriter, r *http.Request, u user) {
	if err := need(u, ledger.RoleMaker); err != nil {
		s.fail(w, r, err)
		return
	}
	up, err := s.readUpload(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.create(r.Context(), u, up)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) apiDecide(approve bool) func(http.ResponseWriter, *http.Request, user) {
	return func(w http.ResponseWriter, r *http.Request, u user) {
		v, err := s.decide(r.Context(), u, r.PathValue("id"), approve)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) apiRerun(w http.ResponseWriter, r *http.Request, u user) {
	if err := need(u, ledger.RoleMaker); err != nil {
		s.fail(w, r, err)
		return
	}
	up, err := s.readUpload(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.rerun(r.Context(), u, r.PathValue("id"), up)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, v)
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, u user) {
	if err := need(u, readers...); err != nil {
		s.fail(w, r, err)
		return
	}
	log, err := s.db.AuditLog(r.Context(), ledger.AuditFilter{BatchID: r.URL.Query().Get("batch")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	type entry struct {
		ID         int64     `json:"id"`
		At         time.Time `json:"at"`
		Actor      string    `json:"actor"`
		RemoteAddr string    `json:"remote_addr"`
		Action     string    `json:"action"`
		BatchID    string    `json:"batch_id,omitempty"`
		Detail     string    `json:"detail,omitempty"`
	}
	out := make([]entry, len(log))
	for i, e := range log {
		out[i] = entry{e.ID, e.At, e.Actor, e.RemoteAddr, e.Action, e.BatchID, e.Detail}
	}
	writeJSON(w, http.StatusOK, map[string]any{"audit": out})
}

// report is GET .../batches/{id}/report: the API's and the page's download.
func (s *Server) report(w http.ResponseWriter, r *http.Request, u user) {
	if err := s.writeReport(w, r, u); err != nil {
		if w.Header().Get("Content-Disposition") != "" {
			s.log.Error("report failed midway", "err", pan.Scrub(err.Error()))
			return
		}
		s.fail(w, r, err)
	}
}
