package report_test

import (
	"context"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/ledger"
)

// A batch of one row the runner has not sent yet: the report shows the
// row, the summary and control totals, and the finding that tells a person
// what to do about it.
func ExampleWrite() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "report-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := ledger.Open(ctx, filepath.Join(dir, "payouts.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return at }

	if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b1", ManifestName: "payroll.csv", ManifestSHA256: "9f2c", RowCount: 1,
		Totals: map[string]int64{"RUB": 150050}}); err != nil {
		log.Fatal(err)
	}
	if _, err := db.InsertRows(ctx, "b1", func(yield func(ledger.Row, error) bool) {
		yield(ledger.Row{Line: 2, Reference: "EMP-0042-2026-11", Amount: 150050, Currency: "RUB", RecipientName: "Иванов Иван",
			Email: "ivan@example.com", Description: "Зарплата за ноябрь", CardBIN: "220070", CardLast4: "0009", CardFingerprint: strings.Repeat("ab", 32)}, nil)
	}); err != nil {
		log.Fatal(err)
	}

	err = report.Write(ctx, db, "b1", os.Stdout, report.Options{Now: func() time.Time { return at }})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// row,reference,status,amount,currency,card,recipient_name,session_id,payout_id,attempts,failure_code,failure_description,created_at,finished_at,description,email
	// 2,EMP-0042-2026-11,planned,1500.50,RUB,220070******0009,Иванов Иван,,,0,,,2026-11-30T09:00:00Z,,Зарплата за ноябрь,ivan@example.com
	//
	// summary,currency,status,rows,amount
	// summary,RUB,planned,1,1500.50
	//
	// control,currency,manifest,submitted,succeeded
	// control,RUB,1500.50,0.00,0.00
	//
	// finding,kind,row,reference,session_id,detail,action
	// finding,not_sent,2,EMP-0042-2026-11,,never sent to Pike,"run the same manifest again (`payouts run`, batch b1) to pay it"
	//
	// decision,action,at,detail
	//
	// batch,id,manifest,manifest_sha256,generated_at,rows
	// batch,b1,payroll.csv,9f2c,2026-11-30T09:00:00Z,1
}
