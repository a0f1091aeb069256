// Package samples holds the example manifests, built into the binary so
// that `payouts demo` runs anywhere.
package samples

import (
	"bufio"
	_ "embed"
	"fmt"
	"os"
)

// Payroll is samples/payroll.csv: realistic rows using the sandbox's test
// cards, so a demo run shows every outcome.
//
//go:embed payroll.csv
var Payroll []byte

// WriteLarge writes a valid manifest of n rows to the file at path and
// returns its size, for benchmarks: unique references, the sandbox's
// success cards, amounts that never repeat for a card, one row in three
// with an email. Its shape is fixed so that measured figures stay
// comparable (`go run ./samples/gen` writes more varied files).
func WriteLarge(path string, n int) (size int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	cards := []string{"2200000000000004", "4242424242424242", "5555555555554444"}
	names := []string{"Иванов Иван Иванович", "Петрова Анна Сергеевна", "John Smith", "Anna Müller"}
	fmt.Fprintln(w, "reference,amount,currency,card_number,recipient_name,email,description")
	for i := range n {
		minor := 50000 + i/len(cards)
		email := ""
		if i%3 == 0 {
			email = fmt.Sprintf("employee%d@example.com", i)
		}
		fmt.Fprintf(w, "BENCH-%08d,%d.%02d,RUB,%s,%s,%s,Зарплата за ноябрь 2026\n", i, minor/100, minor%100, cards[i%len(cards)], names[i%len(names)], email)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
