// Package refid defines the identity of a payout reference: when two
// references written differently are the same reference.
//
// The product promises at most one successful payout per reference, ever.
// That promise is only as strong as the meaning of "the same reference", so
// the manifest's duplicate check, the ledger's risk key (unique while a
// payout is in flight or paid), the ledger's lookups and a rerun's matching of
// a corrected manifest all use [Key] and nothing else. Before this package
// each did its own thing (lower case, upper case, exact bytes) and the gaps
// between them paid one payee twice or silently skipped another.
//
// # The canonical form
//
// Key is Unicode NFKC, then full case folding, then NFKC again:
//
//   - NFKC (compatibility normalization) makes characters that are only a
//     different presentation of the same text equal: full-width ＰＡＹ-１ is
//     PAY-1, the ligature ﬁ is fi, the Kelvin sign K is K, the Ohm sign Ω
//     is Ω, a no-break space is a space, ① is 1.
//   - Full case folding (Unicode CaseFolding.txt, statuses C and F) makes
//     letter case irrelevant the way Unicode defines it for caseless
//     matching, which upper- or lower-casing does not: ß, ẞ, ss and SS are
//     one key (strings.ToUpper leaves ß alone, so REF-ß and REF-ẞ used to be
//     two references), and final sigma ς is σ.
//   - Folding can produce text that is no longer normalized, so NFKC is
//     applied again. The result is stable: Key(Key(x)) == Key(x), checked for
//     every code point and fuzzed.
//
// Dotless ı (U+0131) stays distinct from i: the default (non-Turkic) folding
// maps I to i and leaves ı alone, so PAY-I and PAY-ı are two references, and
// so are PAY-i and PAY-İ (İ folds to i followed by a combining dot). No code
// path may let I and ı collide — strings.ToUpper("ı") is "I", which is how
// one of them used to be skipped as "already paid".
//
// golang.org/x/text folds the Cherokee letters to lower case, where
// CaseFolding.txt folds them to upper case (the lower-case letters were
// added later, in Unicode 8); its folding is then not stable (Ꭰ → ꭰ → Ꭰ), so
// Key folds Cherokee to upper case itself.
//
// # References that cannot have a safe identity
//
// A key says when two spellings are the same reference; it cannot say when
// two references only look the same. [Check] refuses what would make that
// possible: control, format (zero-width, bidirectional), private-use,
// unassigned and surrogate characters, variation selectors and other
// invisible characters, characters that print as blank, accents that cannot
// be seen (a dot above on i, the same accent twice), leading or trailing
// spaces, an empty canonical form, and letters from scripts that are mixed
// in a confusable way (a Latin reference with a Cyrillic А or a Greek Α in
// it). Latin may be mixed only with Han, Hiragana, Katakana, Hangul and
// Bopomofo, which is how Japanese, Chinese and Korean references are written.
//
// Not detected: a reference written wholly in another script that looks
// like a Latin one (Cyrillic РАУ beside Latin PAY), and look-alikes within
// one script (O and 0). Those need Unicode's confusables data, which Go does
// not ship; they are two references, as they are to Pike.
package refid
