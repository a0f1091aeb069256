package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/payouts/payouts/internal/refid"
)

// fillReferenceKeys is the Go step of migration 5 (schema/0005): SQLite has
// no NFKC, so the reference keys of existing rows are computed here, in the
// migration's transaction, after its SQL. Then every risk key held is
// recomputed from the reference key: older binaries upper-cased the
// reference, and a key that is not refid.Key would let another spelling of
// a reference in flight or paid start again (REF-ß held "REF-ß", and REF-ẞ
// would take "ref-ss" beside it).
func fillReferenceKeys(ctx context.Context, tx *sql.Tx, now time.Time) error {
	if err := backfillReferenceKeys(ctx, tx); err != nil {
		return err
	}
	// The first row of each key in a batch is the reference; any later one
	// is a second spelling an older binary let in.
	if _, err := tx.ExecContext(ctx, `UPDATE rows SET reference_dup = 0
		WHERE id IN (SELECT min(id) FROM rows GROUP BY reference_key, batch_id)`); err != nil {
		return fmt.Errorf("reference duplicates: %w", err)
	}
	if err := noteDuplicateReferences(ctx, tx, now); err != nil {
		return err
	}
	return rekeyRisk(ctx, tx, now)
}

// backfillReferenceKeys sets reference_key on every row, a page at a time
// (a ledger may hold millions of rows).
func backfillReferenceKeys(ctx context.Context, tx *sql.Tx) error {
	upd, err := tx.PrepareContext(ctx, `UPDATE rows SET reference_key = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("reference keys: %w", err)
	}
	defer upd.Close()
	type idRef struct {
		id  int64
		ref string
	}
	page := make([]idRef, 0, 1024)
	for last := int64(0); ; {
		page = page[:0]
		rs, err := tx.QueryContext(ctx, `SELECT id, reference FROM rows WHERE id > ? ORDER BY id LIMIT 1024`, last)
		if err != nil {
			return fmt.Errorf("reference keys: %w", err)
		}
		for rs.Next() {
			var r idRef
			if err := rs.Scan(&r.id, &r.ref); err != nil {
				rs.Close()
				return fmt.Errorf("reference keys: %w", err)
			}
			page = append(page, r)
		}
		if err := rs.Close(); err != nil {
			return fmt.Errorf("reference keys: %w", err)
		}
		if err := rs.Err(); err != nil {
			return fmt.Errorf("reference keys: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		for _, r := range page {
			if _, err := upd.ExecContext(ctx, refid.Key(r.ref), r.id); err != nil {
				return fmt.Errorf("reference key of row %d: %w", r.id, err)
			}
		}
		last = page[len(page)-1].id
	}
}

// noteDuplicateReferences records an event on every row that is a second
// spelling of a reference already in its batch.
func noteDuplicateReferences(ctx context.Context, tx *sql.Tx, now time.Time) error {
	return addEventsFrom(ctx, tx, `SELECT d.id, d.batch_id, d.line, d.reference, f.line, f.reference
		FROM rows d JOIN rows f ON f.reference_key = d.reference_key AND f.batch_id = d.batch_id AND f.reference_dup = 0
		WHERE d.reference_dup <> 0 ORDER BY d.id`, func(rs *sql.Rows) (Event, error) {
		e := Event{Reason: "reference_key_duplicate", At: now}
		var line, firstLine int
		var ref, firstRef string
		err := rs.Scan(&e.RowID, &e.BatchID, &line, &ref, &firstLine, &firstRef)
		e.Detail = fmt.Sprintf("line %d (%q) is the same reference as line %d (%q) of this batch: written before references were compared in one canonical form. "+
			"The manifest of this batch is now refused; check the journal of Pike for a double payment", line, ref, firstLine, firstRef)
		return e, err
	})
}

// addEventsFrom inserts the event scan makes of each row of query. The rows
// are read in full first: the events table is written only after.
func addEventsFrom(ctx context.Context, tx *sql.Tx, query string, scan func(*sql.Rows) (Event, error)) error {
	rs, err := tx.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("migration events: %w", err)
	}
	var events []Event
	for rs.Next() {
		e, err := scan(rs)
		if err != nil {
			rs.Close()
			return fmt.Errorf("migration events: %w", err)
		}
		events = append(events, e)
	}
	if err := rs.Close(); err != nil {
		return fmt.Errorf("migration events: %w", err)
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("migration events: %w", err)
	}
	for _, e := range events {
		if err := insertEvent(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// rekeyRisk replaces every risk key held with the reference key, keeping an
// operator override's suffix ("#override:" and the batch id). When two rows
// now hold one key (REF-ß and REF-ẞ both paid, or in flight, under the old
// keys), a succeeded row keeps the key, else the oldest; the others keep
// holding it under a suffix ("#legacy:" and their row id) and get an event.
func rekeyRisk(ctx context.Context, tx *sql.Tx, now time.Time) error {
	for _, q := range []string{
		// id is the primary key: the UPDATE below looks every row up in it.
		`CREATE TEMP TABLE migrate_risk (id INTEGER PRIMARY KEY, k TEXT NOT NULL, n INTEGER NOT NULL, holder INTEGER NOT NULL)`,
		`INSERT INTO temp.migrate_risk (id, k, n, holder)
			SELECT id, k, row_number() OVER w, first_value(id) OVER w
			FROM (SELECT id, state, reference_key ||
				CASE WHEN substr(risk_key, -length('#override:' || batch_id)) = '#override:' || batch_id
				THEN '#override:' || batch_id ELSE '' END AS k
				FROM rows WHERE risk_key IS NOT NULL)
			WINDOW w AS (PARTITION BY k ORDER BY state = 'succeeded' DESC, id)`,
		// Out of the way first (the new keys may equal other rows' old ones),
		// never through NULL: a paid row's risk key is never cleared
		// (schema 3). A control character is in no reference, so no key.
		`UPDATE rows SET risk_key = char(1) || 'migrating:' || id WHERE risk_key IS NOT NULL`,
		`UPDATE rows SET risk_key = (SELECT CASE WHEN m.n = 1 THEN m.k ELSE m.k || '#legacy:' || m.id END
			FROM temp.migrate_risk m WHERE m.id = rows.id)
			WHERE id IN (SELECT id FROM temp.migrate_risk)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("risk keys: %w", err)
		}
	}
	err := addEventsFrom(ctx, tx, `SELECT l.id, l.batch_id, l.reference, l.state, h.batch_id, h.line, h.reference, h.state
		FROM temp.migrate_risk m JOIN rows l ON l.id = m.id JOIN rows h ON h.id = m.holder
		WHERE m.n > 1 ORDER BY m.id`, func(rs *sql.Rows) (Event, error) {
		e := Event{Reason: "risk_key_shared", At: now}
		var hLine int
		var ref, state, hBatch, hRef, hState string
		err := rs.Scan(&e.RowID, &e.BatchID, &ref, &state, &hBatch, &hLine, &hRef, &hState)
		e.Detail = fmt.Sprintf("%q (%s) is the same reference as %q of batch %s line %d (%s): both were in flight or paid before references were compared in one canonical form. "+
			"Check the journal of Pike for a double payment", ref, state, hRef, hBatch, hLine, hState)
		return e, err
	})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE temp.migrate_risk`); err != nil {
		return fmt.Errorf("risk keys: %w", err)
	}
	return nil
}
