package ledger

import (
	"strconv"
	"strings"
)

// metadataPrefix starts every metadata string the runner sends.
const metadataPrefix = "payouts:"

// RowKey is the metadata the runner sends with a session and expects back in
// every response and webhook about it: it names the batch, the attempt and
// the reference, so a session Pike reports can be tied to exactly one
// attempt of one row even when its id was never learnt (a lost
// session/init/payout response).
func RowKey(batchID, reference string, attempt int) string {
	return metadataPrefix + RowKeyBatch(batchID) + ":" + strconv.Itoa(attempt) + ":" + reference
}

// ParseRowKey splits a RowKey; batchPrefix is the RowKeyBatch of the
// batch id. ok is false for metadata the runner did not make.
func ParseRowKey(s string) (batchPrefix string, attempt int, reference string, ok bool) {
	rest, found := strings.CutPrefix(s, metadataPrefix)
	if !found {
		return "", 0, "", false
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return "", 0, "", false
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 1 {
		return "", 0, "", false
	}
	return parts[0], n, parts[2], true
}

// RowKeyBatch is the batch id as it appears in a RowKey: long ids (hashes)
// are cut to 16 characters, enough to tell batches apart.
func RowKeyBatch(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
