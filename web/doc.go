// Package web is the finance console served by `payouts serve --web`:
// sign-in, upload with whole-file validation, four-eyes approval, live
// progress, reports and reruns, as server-rendered pages (html/template,
// embedded static files, no inline script) and the JSON API they share.
//
// The console calls the same code as the CLI: batch/manifest validates
// uploads, batch pays approved batches with the engine of `payouts run`,
// batch/report writes reports. Uploaded manifests (the only place card
// numbers live until paid) are kept encrypted at rest by Uploads.
package web
