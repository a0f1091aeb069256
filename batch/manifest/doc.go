// Package manifest reads and validates payout manifests: CSV files or
// Excel (XLSX) workbooks of card payouts, one row per payout. It is pure: it reads a file and says what is
// in it and what is wrong with it, and knows nothing of the ledger, the
// engine or Pike. package batch pays what it returns; `payouts validate`
// prints it.
//
// # Format
//
// A header line names the columns; names compare case-insensitively with
// surrounding spaces ignored; an unknown column is an error unless
// Options.AllowExtraColumns. UTF-8 with or without a BOM (or the
// Options.Encoding: windows-1251, windows-1252), CRLF or LF line ends, ','
// or ';' as the delimiter (detected from the header). Blank lines are
// skipped; the line numbers are those an editor shows. A file that is not
// UTF-8 is one problem naming its likely encoding, and reading stops there.
//
// A file that starts like a zip is an XLSX workbook (the content decides,
// not the name): its first visible sheet, or Options.Sheet; the first
// non-empty row is the header; line numbers are the sheet's row numbers.
// Cells are read as text as the spreadsheet shows them, except that a card
// number stored as a number is spreadsheet damage, an amount stored as a
// number is its value (15 significant digits, never ambiguous), and an
// error cell (#N/A) is damage. The workbook is read in memory only, at
// most Options.MaxXLSXBytes as a file and unzipped (a zip bomb is
// ErrTooLarge); nothing is ever written to a temporary file.
//
//	column          required  rule
//	reference       yes       1–64 characters, unique in the file in one canonical form (internal/refid)
//	amount          yes       decimal in major units ("1500", "1500.50", "1 500,50", "85,000.00"), > 0, never a float; "1,500" is ambiguous
//	currency        yes       ISO 4217 code, any case; minor digits from the code (RUB 2, JPY 0, KWD 3)
//	card_number     yes       13–19 digits after spaces and dashes, Luhn-valid
//	recipient_name  yes       1–128 characters, at least one letter
//	email           no        one plain address
//	description     no        at most 256 characters; a line break (and the spaces around it) becomes one space
//
// No column but card_number may hold a card number (the others are stored
// and shown in clear). Values a spreadsheet has damaged (4.24E+15, a
// trailing .0, a text marker, a formula) are errors that say so.
//
// Over the whole file: duplicate references are errors; the same card,
// amount and currency under two references is an error, or a warning with
// Options.AllowDuplicates; Options.ExpectRows and Options.ExpectTotals are
// control totals; Options.MaxAmount and Options.MaxTotal are safety caps.
//
// # Reading
//
// ReadBytes and ReadAt read a whole file given as bytes or an io.ReaderAt
// with its size, CSV or XLSX by content, without a temporary file: what a
// web console calls for an upload. Read and ReadFile stream the file once, validate every row and the file
// as a whole, and hand each valid row to a callback while the file is valid
// so far. A caller that must fail closed validates the whole file first
// (a nil callback), then reads it again with Reread, which checks that the
// file's SHA-256 is still the one validated.
//
// # Errors
//
// When anything is invalid, the error is a *ValidationError listing every
// problem in file order (up to Options.MaxErrors, with the total count) as
// *RowError values addressed by line and column, each with a Code for
// programs, an Err wrapping the sentinel of that code (errors.Is(err,
// ErrAmount) works through the ValidationError too) and a Hint saying what
// to do. Problems of the whole file have line 0 and come last. No error,
// value or message ever holds a full card number: values are masked and
// scrubbed (internal/pan) before they are put in an error. Other errors
// (the file cannot be read, the callback failed, options that make no
// sense) are returned as they are, wrapped.
//
// PAN, the card column's type, prints masked through every fmt verb, slog
// and JSON; only PAN.Digits gives the number, for the request that pays it.
package manifest
