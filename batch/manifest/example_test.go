package manifest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/payouts/payouts/batch/manifest"
)

// ExampleReadFile validates a whole manifest, then prints each row's
// problems by line and column, or the rows and totals of a valid file.
func ExampleReadFile() {
	dir, err := os.MkdirTemp("", "manifest-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "payroll.csv")
	csv := "reference;amount;currency;card_number;recipient_name\n" +
		"EMP-0042-2026-11;1 500,50;rub;4242 4242 4242 4242;Иванов Иван\n" +
		"EMP-0043-2026-11;1500.505;RUB;5555555555554444;Anna Müller\n" +
		"EMP-0044-2026-11;99;EUR;4.24242E+15;John Smith\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		panic(err)
	}

	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	var ve *manifest.ValidationError
	if errors.As(err, &ve) {
		for _, e := range ve.Errors {
			fmt.Printf("line %d, %s (%s): %v\n", e.Line, e.Column, e.Code, e.Err)
		}
		return
	}
	if err != nil {
		panic(err)
	}
	fmt.Println(sum.Rows, "rows")
	// Output:
	// line 3, amount (amount): amount has 3 decimals, RUB has 2
	// line 4, card_number (spreadsheet_damage): card number is in scientific notation: a spreadsheet turned it into a number and its digits are lost
}

// ExampleRead reads a valid manifest from memory and hands each row on.
func ExampleRead() {
	csv := "reference,amount,currency,card_number,recipient_name\n" +
		"EMP-0042-2026-11,1500.50,RUB,4242424242424242,Ivan Ivanov\n" +
		"EMP-0043-2026-11,1500,JPY,5555 5555 5555 4444,Yuki Sato\n"
	sum, err := manifest.Read(strings.NewReader(csv), manifest.Options{}, func(r manifest.Row) error {
		fmt.Printf("line %d: %s pays %s %s to %s\n", r.Line, r.Reference, manifest.FormatAmount(r.Amount, r.Currency), r.Currency, r.Card)
		return nil
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(sum.Rows, "rows, RUB", manifest.FormatAmount(sum.Totals["RUB"], "RUB"))
	// Output:
	// line 2: EMP-0042-2026-11 pays 1500.50 RUB to 424242******4242
	// line 3: EMP-0043-2026-11 pays 1500 JPY to 555555******4444
	// 2 rows, RUB 1500.50
}
