// Package pan is the one place that knows what a card number (primary
// account number, PAN) looks like. Validation, masking and scrubbing all ask
// it, so what the manifest refuses, what the ledger masks and what a log
// line shows follow one rule. It imports only the standard library.
//
// # The rule
//
// A card number is 13 to 19 decimal digits that pass the Luhn check,
// written together or in groups. Two groups are joined by any run of the
// separators people put between the digits of a number: spaces of every
// kind (double spaces, no-break and thin spaces, tabs), dashes (- and the
// Unicode dashes and minus), '.', '/', '_' and invisible format characters
// (zero-width space, soft hyphen). Letters, ':', ',', '+', '*', '%', quotes
// and line breaks end a number. Digits of any script count (a full-width
// ４２４２ is 4242). URL escapes such as %20 are not separators: the
// escape's own digits could not be told from the number's.
// Inside a run of groups, every stretch of whole consecutive groups is
// tried, so a card number next to a date or a count is found too; a single
// group of more than 19 digits is a long number (an ARN, a hash), not a
// card, and is not searched inside.
//
// Why 13 to 19: ISO/IEC 7812 numbers of payment cards have 12 to 19 digits,
// but this product only ever holds card numbers that the manifest accepted
// (13–19) and Pike pays (14–19). A 12-digit card cannot enter it, while
// 12-digit numbers that are not cards are common (phone numbers with their
// country code, RRNs); treating them as cards would mask and refuse one in
// ten of them for no card it could protect.
//
// Two more rules make the detector safe on text that is not a card:
//
//   - A decimal point is not a separator where the number reads as a
//     decimal. When '.' alone is the only separator of two groups
//     (99999999999999.00, 1730800000.123456) the integer and the fraction
//     are two numbers, each tested on its own. When a run's only '.' comes
//     last and is followed by one to three digits (1 500 000 000.00) those
//     digits are a fraction and are left out. Card numbers written with
//     dots (4242.4242.4242.4242) have more than one dot and are read as
//     groups. A comma always ends a number, so 1 500 000,00 is an amount.
//   - A number written the way card numbers are printed — groups of four
//     digits and a last group of one to four (4242 4242 4242 4241), or
//     4-6-4 and 4-6-5 (Diners, Amex) — is masked even when it fails the
//     Luhn check: it is most likely a mistyped card number, which is as
//     sensitive as a correct one. Other Luhn-invalid numbers are left
//     alone: a 16-digit id or a nanosecond timestamp fails Luhn nine times
//     in ten and is not a card, and masking every long number would corrupt
//     the identifiers in the webhooks the ledger keeps.
//
// Masking over-approximates on purpose: one number in ten that is not a
// card number but has 13–19 digits passes the Luhn check by chance and is
// masked too. That costs a digit string in a log line; missing a card
// number costs a leak. Values the product must match exactly (references,
// batch ids, and so the webhook metadata built from them) are refused at
// validation when [Contains] reports them, so the ledger never masks one.
//
// # Masking
//
// [Mask] shows a card number as its first six and last four digits with '*'
// between them (424242******4242), the most PCI DSS allows to display.
// [Scrub] replaces every card number in a text with that form, and where
// several candidate numbers overlap, the whole overlapping stretch is masked
// as one, so no card number inside it keeps more than ten digits visible.
// Scrubbing is idempotent.
package pan
