// Command gen writes a large valid payout manifest for load tests and
// benchmarks:
//
//	go run ./samples/gen -rows 1000000 -seed 1 -out /tmp/big.csv
//
// Every row has a unique reference and pays one of the sandbox's success
// cards (Mir 2200000000000004, Visa 4242424242424242, Mastercard
// 5555555555554444). Amounts are spread so that no card is paid the same
// amount in the same currency twice: the file passes `payouts validate`
// without --allow-duplicates, and the sandbox pays every row.
package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
)

var cards = []string{"2200000000000004", "4242424242424242", "5555555555554444"}

var (
	firstNames = []string{"Иван", "Анна", "Пётр", "Мария", "Алексей", "Елена", "Дмитрий", "Ольга", "Сергей", "Татьяна",
		"John", "Emma", "Lukas", "Sofia", "Jean", "Marta", "Ahmed", "Yuki", "Carlos", "Ingrid"}
	lastNames = []string{"Иванов", "Петрова", "Сидоров", "Кузнецова", "Смирнов", "Попова", "Волков", "Соколова", "Лебедев", "Новикова",
		"Smith", "Müller", "García", "Dubois", "Rossi", "Nowak", "Jensen", "Silva", "O'Connor", "Tanaka"}
	descriptions = []string{"Зарплата за ноябрь 2026", "Аванс за ноябрь 2026", "Премия по итогам квартала", "Компенсация расходов",
		"Contractor invoice 2026-11", "Consulting, November 2026"}
)

func main() {
	rows := flag.Int("rows", 1000, "number of rows")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same file)")
	out := flag.String("out", "", "output file (default: standard output)")
	flag.Parse()
	if err := run(*rows, *seed, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(rows int, seed uint64, out string) error {
	if rows < 1 {
		return errors.New("-rows must be at least 1")
	}
	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := write(bw, rows, seed); err != nil {
		return err
	}
	return bw.Flush()
}

// write writes the manifest. Row i pays cards[i%3]; the k-th row of a card
// (k = i/3) pays 500.00 RUB plus a permutation of k in kopecks: the affine
// map k → (a·k + b) mod m with m prime and m > k is one-to-one, so a card is
// never paid the same amount twice, yet amounts look random. One row in ten
// is in EUR or USD (smaller amounts, same rule).
func write(w io.Writer, rows int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	perCard := rows/len(cards) + 1
	m := nextPrime(uint64(perCard))
	a := 1 + rng.Uint64N(m-1)
	b := rng.Uint64N(m)
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"reference", "amount", "currency", "card_number", "recipient_name", "email", "description"}); err != nil {
		return err
	}
	rec := make([]string, 7)
	for i := range rows {
		k := uint64(i / len(cards))
		spread := (a*k + b) % m
		cur, base := "RUB", uint64(50000)
		if i%10 == 9 {
			cur, base = []string{"EUR", "USD"}[i/10%2], 1000
		}
		minor := base + spread
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		email := ""
		if rng.IntN(3) == 0 {
			email = "employee" + strconv.Itoa(i+1) + "@example.com"
		}
		rec[0] = fmt.Sprintf("GEN-%d-%08d", seed, i+1)
		rec[1] = strconv.FormatUint(minor/100, 10) + "." + fmt.Sprintf("%02d", minor%100)
		rec[2] = cur
		rec[3] = cards[i%len(cards)]
		rec[4] = first + " " + last
		rec[5] = email
		rec[6] = descriptions[rng.IntN(len(descriptions))]
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// nextPrime returns the smallest prime greater than n (n is at most a few
// million: trial division is plenty).
func nextPrime(n uint64) uint64 {
	for p := n + 1; ; p++ {
		if p < 2 {
			continue
		}
		prime := true
		for d := uint64(2); d*d <= p; d++ {
			if p%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			return p
		}
	}
}
