package web_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/payouts/payouts/pike/sandbox"
)

var screenshots = flag.Bool("web.screenshots", false, "write the browser test's screenshots to ../docs (for README)")

// chromiumPath finds Debian's chromium, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("PAYOUTS_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("PAYOUTS_TEST_BROWSER_REQUIRED") == "1" {
		t.Fatal("no chromium at /usr/bin/chromium, and PAYOUTS_TEST_BROWSER_REQUIRED=1 (CI) says the browser tests must run")
	}
	t.Skip("browser test skipped: no chromium at /usr/bin/chromium (apt-get install -y chromium; .ci/run installs it)")
	return ""
}

// newBrowser starts a headless chromium with a fresh profile.
func newBrowser(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	return ctx, func() { cancel(); acancel() }
}

// TestBrowser is what a person sees: sign in; upload a damaged file and
// read its errors by line; upload a good one; the uploader sees no approve
// button and the server refuses her anyway; a second person approves;
// progress reaches done without a reload; the report downloads.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromiumPath(t)
	r := newRig(t, sandbox.Config{SlowDelay: 3 * time.Second}) // the page must load while slow rows are still paying
	r.addUser("mila", "maker,viewer")
	r.addUser("petr", "approver,viewer")
	shots := t.TempDir()
	if *screenshots {
		shots = filepath.Join("..", "docs")
	}
	ctx, cancel := newBrowser(t)
	defer cancel()
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name), buf, 0o644)
		})
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	in := t.TempDir()
	damaged := filepath.Join(in, "payroll-november.csv")
	os.WriteFile(damaged, []byte("reference,amount,currency,card_number,recipient_name\n"+
		"NOV-001,1500.00,RUB,4242424242424242,Анна Смирнова\n"+
		"NOV-002,15O0.00,RUB,4242424242424242,Пётр Иванов\n"+
		"NOV-003,2300.00,RBL,5555555555554444,Ольга Кузнецова\n"+
		"NOV-004,990.00,RUB,4.24242E+15,Иван Петров\n"), 0o600)
	good := filepath.Join(in, "payroll-november-fixed.csv")
	var b strings.Builder
	b.WriteString("reference,amount,currency,card_number,recipient_name\n")
	for i := 1; i <= 60; i++ {
		card := sandbox.CardVisa
		switch {
		case i%10 == 0:
			card = sandbox.CardSlow
		case i%7 == 0:
			card = "5555555555554444"
		}
		name := fmt.Sprintf("Сотрудник %02d", i)
		if i == 3 {
			name = "<img src=x onerror=alert(1)>"
		}
		fmt.Fprintf(&b, "NOV-%03d,%d.%02d,RUB,%s,%s\n", i, 1000+i*37, i, card, name)
	}
	os.WriteFile(good, []byte(b.String()), 0o600)

	signIn := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(r.ts.URL+"/login"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), name),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("whoami")),
		)
	}
	do(signIn("mila"))
	if who := text("#whoami"); !strings.Contains(who, "mila") {
		t.Fatalf("signed in as %q", who)
	}
	do(chromedp.Navigate(r.ts.URL+"/upload"),
		chromedp.WaitVisible(chromedp.ID("manifest")),
		chromedp.SetUploadFiles(chromedp.ID("manifest"), []string{damaged}),
		chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.ID("problems")),
		shot("console-upload-problems.png"))
	problems := text("#problems")
	for _, want := range []string{"3\tamount", "4\tcurrency", "5\tcard_number"} {
		if !strings.Contains(problems, want) {
			t.Errorf("the problems list lacks line/column %q:\n%s", want, problems)
		}
	}
	if strings.Contains(problems, "4242424242424242") {
		t.Error("the problems page shows a full card number")
	}

	do(chromedp.Navigate(r.ts.URL+"/upload"),
		chromedp.WaitVisible(chromedp.ID("manifest")),
		chromedp.SetUploadFiles(chromedp.ID("manifest"), []string{good}),
		chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.ID("batch")),
		shot("console-awaiting-approval.png"))
	url, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	id := url[strings.LastIndex(url, "/")+1:]
	approveButtons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#approve").length`))
	if err != nil {
		t.Fatal(err)
	}
	if state := text("#state"); state != "awaiting_approval" || approveButtons != 0 {
		t.Fatalf("uploader's page: state %q, %d approve buttons; want awaiting_approval and none", state, approveButtons)
	}
	if recipient := text("#rows-body tr:nth-child(3) td.recipient"); recipient != "<img src=x onerror=alert(1)>" {
		t.Fatalf("recipient shows as %q, want the characters as typed", recipient)
	}
	// The server refuses her anyway (a same-origin request from her page).
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/v1/batches/`+id+`/approve", {method: "POST"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != 403 {
		t.Fatalf("the uploader's approve request: %d, want 403", status)
	}

	// A second person approves and watches it pay, without reloading.
	do(chromedp.Click(chromedp.CSS("form.who button")),
		chromedp.WaitVisible(chromedp.ID("username")),
		signIn("petr"),
		chromedp.Navigate(r.ts.URL+"/batches/"+id),
		chromedp.WaitVisible(chromedp.ID("approve")))
	// The approve form posts and the server redirects back to the batch's
	// page: wait for that navigation, not for the old page's elements.
	if resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("approve"))); err != nil || resp.Status != 200 {
		t.Fatalf("approve: %v %v", resp, err)
	}
	do(chromedp.WaitVisible(chromedp.ID("batch")))
	first := text("#state")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__page = "this page"`)); err != nil {
		t.Fatal(err)
	}
	if first == "paying" {
		do(shot("console-paying.png"))
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("state").textContent === "done" && document.getElementById("progress").value === 60`,
		chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		t.Fatalf("waiting for done on the page: %v", err)
	}
	same, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__page || "reloaded"`))
	if err != nil {
		t.Fatal(err)
	}
	if first != "paying" || same != "this page" {
		t.Fatalf("state %s first, page %q; want paying → done without a reload", first, same)
	}
	do(shot("console-done.png"))

	// Download the report.
	dl := t.TempDir()
	do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl})
		return err
	}), chromedp.Click(chromedp.ID("report-csv")))
	var report []byte
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dl, "payouts-"+id+".csv")); err == nil && len(b) > 0 {
			report = b
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(string(report), ",succeeded,"); n < 60 {
		t.Fatalf("downloaded report has %d succeeded rows:\n%s", n, report)
	}
	do(chromedp.Navigate(r.ts.URL+"/"), chromedp.WaitVisible(chromedp.ID("batches")), shot("console-batches.png"),
		chromedp.Navigate(r.ts.URL+"/audit"), chromedp.WaitVisible(chromedp.ID("audit")), shot("console-audit.png"))
	if paid := r.journalCounts(); len(paid) != 60 {
		t.Fatalf("%d references paid, want 60", len(paid))
	}
}
