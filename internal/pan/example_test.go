package pan_test

import (
	"fmt"

	"github.com/payouts/payouts/internal/pan"
)

func ExampleMask() {
	fmt.Println(pan.Mask("4242 4242 4242 4242"))
	fmt.Println(pan.Mask("378282246310005"))
	// Output:
	// 424242******4242
	// 378282*****0005
}

func ExampleScrub() {
	fmt.Println(pan.Scrub("refund to card 4242.4242.4242.4242, amount 99999999999999.00"))
	fmt.Println(pan.Scrub(`{"reference":"EMP-0042-2026-11","number":"5555555555554444"}`))
	// Output:
	// refund to card 424242******4242, amount 99999999999999.00
	// {"reference":"EMP-0042-2026-11","number":"555555******4444"}
}

func ExampleContains() {
	fmt.Println(pan.Contains("EMP-0042-2026-11"))
	fmt.Println(pan.Contains("7000000000000005"))
	// Output:
	// false
	// true
}
