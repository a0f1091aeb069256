// Package report writes the reconciliation report of a batch: what
// finance reads to see what was paid, what was not, and what a person must
// look at.
//
// The report is built from the ledger alone, through Store (four read-only
// methods that *ledger.DB implements). It never calls Pike, never changes
// the ledger, and can be regenerated at any time: days later, after
// `payouts serve` applied late webhooks, while a run is in progress. Write
// makes one pass over the rows, so the sections after them always agree
// with the rows printed.
//
// One line per manifest row, in manifest order, with the Columns: row,
// reference, status, amount, currency, card, recipient_name, session_id,
// payout_id, attempts, failure_code, failure_description, created_at,
// finished_at, description, email. Amounts are major units with the
// currency's digits, never a float; cards are masked (424242******4242);
// free text is scrubbed of anything shaped like a card number; times are
// RFC 3339 in UTC.
//
// After the rows come the Summary's sections: counts and sums per currency
// and status, control totals per currency (manifest, submitted, succeeded),
// the findings a person must act on (each a Finding with its FindingKind
// and what to do), and the batch's identity.
//
// Formats:
//
//   - CSV: the rows, then each section after an empty line with its own
//     header, its first cell naming it. Every cell a spreadsheet would run
//     as a formula is neutralised with an apostrophe (SpreadsheetSafe).
//     Text is written exactly as stored (00123 stays 00123).
//   - ExcelCSV: the same with a UTF-8 BOM, `;` separators and decimal
//     commas, for a spreadsheet in a Russian or European locale; identities
//     (references, session and payout ids, the batch id) and other text made
//     only of digits are written as one string constant, ="00123", which a
//     spreadsheet shows as the text 00123 and never evaluates further.
//   - JSON: one Document, the rows and the sections as arrays, with no
//     spreadsheet apostrophes.
//   - XLSX: a workbook with the sheets SheetRows, SheetSummary,
//     SheetControl and SheetFindings. Text is string cells with the Text
//     format (never a formula, never a number), amounts are numbers with
//     the currency's digits as number format, times are UTC date cells.
//     Rows are streamed, so memory does not grow with the batch.
//
// The failure codes the report explains (ledger.CodeNoPikeRecord and the
// others) are recorded by the engine, package batch, which this package
// does not import.
package report
