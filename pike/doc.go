// Package pike is a client for the Pike payment API (developer.pikepayments.com),
// limited to what a card payout processor needs: sessions, payouts, status,
// wallet balance, request signing and webhook verification.
//
// Every request is a POST of a JSON body signed with the partner's RSA key
// (RSASSA-PKCS1-v1_5 over SHA-256 of the exact bytes sent, standard Base64 in
// X-PARTNER-SIGN). Webhooks from Pike are verified the same way with Pike's
// public key, over the raw received bytes, before anything is parsed.
//
// Pike serves two API versions that differ only in some field names
// (payment_method/payout_details, payments/payout_list,
// acquiring_payments/payment_list). The client sends one version's names and
// accepts both spellings on input, because Pike's own v2 fixtures mix them.
//
// The package never imports the rest of the processor; the batch package
// talks to it through interfaces of its own.
package pike
