package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/ledger"
)

// TestReportDecisions: who approved or rejected held payouts (the batch's
// approve/reject events) is in every format of the report, and no other
// batch-level event is.
func TestReportDecisions(t *testing.T) {
	ctx := context.Background()
	db, id := fixture(t)
	for _, e := range []ledger.Event{
		{BatchID: id, Reason: ledger.ReasonApprove, Detail: "approved by anna@host: 1 row (00123)"},
		{BatchID: id, Reason: "lease", Detail: "not a decision"},
		{BatchID: id, Reason: ledger.ReasonReject, Detail: "rejected by Boris: 1 row (0042) card " + testPAN},
	} {
		if err := db.AddEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"approved by anna@host: 1 row (00123)", "rejected by Boris: 1 row (0042) card"}

	var doc report.Document
	if err := json.Unmarshal(writeFixture(t, db, id, report.JSON), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Decisions) != 2 || doc.Decisions[0].Decision != ledger.ReasonApprove || doc.Decisions[1].Decision != ledger.ReasonReject ||
		doc.Decisions[0].Detail != want[0] || !strings.HasPrefix(doc.Decisions[1].Detail, want[1]) || doc.Decisions[0].At == "" {
		t.Fatalf("JSON decisions = %+v", doc.Decisions)
	}

	r := csv.NewReader(bytes.NewReader(writeFixture(t, db, id, report.CSV)))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, rec := range recs {
		if rec[0] == "decision" && rec[1] != "action" {
			got = append(got, rec)
		}
	}
	if len(got) != 2 || got[0][1] != "approve" || got[0][3] != want[0] || got[1][1] != "reject" || !strings.HasPrefix(got[1][3], want[1]) {
		t.Fatalf("CSV decision lines = %q", got)
	}

	f, err := excelize.OpenReader(bytes.NewReader(writeFixture(t, db, id, report.XLSX)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.GetRows(report.SheetSummary)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, row := range rows {
		if len(row) >= 3 && (row[0] == "approve" || row[0] == "reject") && strings.HasPrefix(row[2], want[found]) {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("XLSX Summary sheet shows %d of 2 decisions: %q", found, rows)
	}
	for _, out := range [][]byte{writeFixture(t, db, id, report.JSON), writeFixture(t, db, id, report.CSV)} {
		if bytes.Contains(out, []byte(testPAN)) {
			t.Fatal("report shows the card number of a decision's detail")
		}
	}
}
