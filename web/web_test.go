package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
	"github.com/payouts/payouts/web"
)

const visa = "4242424242424242"

func goodManifest(prefix string, n int) string {
	var rows [][5]string
	for i := 1; i <= n; i++ {
		rows = append(rows, [5]string{fmt.Sprintf("%s-%03d", prefix, i), fmt.Sprintf("%d.50", 10+i), "RUB", visa, "Иван Петров"})
	}
	return manifestCSV(rows...)
}

func TestRefusalsWithoutSession(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	c := r.browser()
	for _, p := range []string{"/api/v1/batches", "/api/v1/batches/x", "/api/v1/batches/x/report", "/batches/x/events", "/api/v1/audit"} {
		if a := r.get(c, p); a.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d, want 401", p, a.StatusCode)
		}
	}
	for _, p := range []string{"/api/v1/batches/x/approve", "/api/v1/batches/x/reject", "/api/v1/batches"} {
		if a := r.post(c, p); a.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d, want 401", p, a.StatusCode)
		}
	}
	if a := r.get(c, "/batches/x"); a.StatusCode != http.StatusSeeOther || !strings.HasPrefix(a.Header.Get("Location"), "/login?next=") {
		t.Errorf("GET a page without a session: %d %s, want 303 to /login", a.StatusCode, a.Header.Get("Location"))
	}
	// A forged cookie is no session either.
	req, _ := http.NewRequest("GET", r.ts.URL+"/api/v1/batches", nil)
	req.AddCookie(&http.Cookie{Name: "payouts_session", Value: "forged"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged cookie: %d, want 401", resp.StatusCode)
	}
}

func TestLoginCookieAndLogout(t *testing.T) {
	for _, secure := range []bool{false, true} {
		r := newRig(t, sandbox.Config{}, func(c *web.Config) { c.Secure = secure })
		r.addUser("vera", "viewer")
		c := r.browser()
		a := r.do(c, "POST", "/api/v1/login", "application/json", strings.NewReader(`{"username":"vera","password":"wrong password here"}`))
		if a.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d, want 401", a.StatusCode)
		}
		a = r.do(c, "POST", "/api/v1/login", "application/json", strings.NewReader(`{"username":"vera","password":"`+password+`"}`))
		if a.StatusCode != http.StatusOK {
			t.Fatalf("login: %d %s", a.StatusCode, a.Body)
		}
		cookies := a.Cookies()
		if len(cookies) != 1 {
			t.Fatalf("login set %d cookies, want 1", len(cookies))
		}
		ck := cookies[0]
		wantName := map[bool]string{false: "payouts_session", true: "__Host-payouts_session"}[secure]
		if ck.Name != wantName || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure != secure || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("secure=%v: cookie %+v, want %s, HttpOnly, SameSite=Lax, Secure=%v, Path=/, no Domain", secure, ck, wantName, secure)
		}
		if len(ck.Value) < 43 {
			t.Errorf("token %d characters, want 32 random bytes", len(ck.Value))
		}
		// The ledger keeps only the token's hash.
		raw, _ := readFile(r.db.Path())
		if strings.Contains(raw, ck.Value) {
			t.Error("the session token is stored in the ledger in clear")
		}
		if secure {
			continue // the client does not send a Secure cookie over http
		}
		// A new token at each login.
		c2 := r.login("vera")
		if tok2 := cookieOf(r, c2); tok2 == ck.Value || tok2 == "" {
			t.Errorf("second login reused the token")
		}
		if a := r.get(c, "/api/v1/batches"); a.StatusCode != http.StatusOK {
			t.Fatalf("with session: %d", a.StatusCode)
		}
		if a := r.post(c, "/api/v1/logout"); a.StatusCode != http.StatusOK {
			t.Fatalf("logout: %d", a.StatusCode)
		}
		// The old token is dead even if a client kept it.
		req, _ := http.NewRequest("GET", r.ts.URL+"/api/v1/batches", nil)
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token after logout: %d, want 401", resp.StatusCode)
		}
	}
}

func cookieOf(r *rig, c *http.Client) string {
	req, _ := http.NewRequest("GET", r.ts.URL+"/", nil)
	for _, ck := range c.Jar.Cookies(req.URL) {
		return ck.Value
	}
	return ""
}

func TestLockout(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("anna", "maker")
	c := r.browser()
	try := func(pw string) int {
		return r.do(c, "POST", "/api/v1/login", "application/json", strings.NewReader(`{"username":"anna","password":"`+pw+`"}`)).StatusCode
	}
	for i := 1; i <= 5; i++ {
		if got := try("wrong password " + string(rune('0'+i))); got != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i, got)
		}
	}
	if got := try(password); got != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: %d, want 429", got)
	}
	// The form says so too, and sets no cookie.
	a := r.do(r.browser(), "POST", "/login", "application/x-www-form-urlencoded", strings.NewReader("username=anna&password="+strings.ReplaceAll(password, " ", "+")))
	if a.StatusCode != http.StatusTooManyRequests || !strings.Contains(a.Body, "locked") || len(a.Cookies()) != 0 {
		t.Fatalf("login form while locked: %d, cookies %v", a.StatusCode, a.Cookies())
	}
	r.offset.Store(int64(16 * time.Minute))
	if got := try(password); got != http.StatusOK {
		t.Fatalf("right password after the lock: %d, want 200", got)
	}
	log, _ := r.db.AuditLog(context.Background(), ledger.AuditFilter{})
	n := map[string]int{}
	for _, e := range log {
		n[e.Action]++
		if e.RemoteAddr == "" && e.Actor == "anna" {
			t.Errorf("audit %s without remote address", e.Action)
		}
	}
	if n["login_failed"] != 5 || n["account_locked"] != 1 || n["login_refused_locked"] != 2 || n["login"] != 1 {
		t.Fatalf("audit counts %v", n)
	}
}

func TestSessionExpiry(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("vera", "viewer")
	c := r.login("vera")
	r.offset.Store(int64(29 * time.Minute))
	if a := r.get(c, "/api/v1/batches"); a.StatusCode != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d, want 200", a.StatusCode)
	}
	r.offset.Add(int64(31 * time.Minute))
	if a := r.get(c, "/api/v1/batches"); a.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after 31 idle minutes: %d, want 401", a.StatusCode)
	}
	// Absolute expiry: busy all day, still out after 12 hours.
	c = r.login("vera")
	for h := 0; h < 24; h++ {
		r.offset.Add(int64(29 * time.Minute))
		want := http.StatusOK
		if time.Duration(h+1)*29*time.Minute >= 12*time.Hour {
			want = http.StatusUnauthorized
		}
		if a := r.get(c, "/api/v1/batches"); a.StatusCode != want {
			t.Fatalf("after %v: %d, want %d", time.Duration(h+1)*29*time.Minute, a.StatusCode, want)
		}
		if want == http.StatusUnauthorized {
			break
		}
	}
}

var inlineScript = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+\s*=|javascript:`)

func TestSecurityHeaders(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker,viewer")
	c := r.login("mila")
	id := r.uploadOK(c, "pay.csv", goodManifest("H", 3))
	for _, p := range []string{"/login", "/", "/upload", "/batches/" + id, "/audit", "/api/v1/batches", "/static/console.js"} {
		cl := c
		if p == "/login" {
			cl = r.browser()
		}
		a := r.get(cl, p)
		if a.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", p, a.StatusCode)
		}
		csp := a.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if a.Header.Get("X-Content-Type-Options") != "nosniff" || a.Header.Get("Referrer-Policy") == "" {
			t.Errorf("%s: nosniff %q, Referrer-Policy %q", p, a.Header.Get("X-Content-Type-Options"), a.Header.Get("Referrer-Policy"))
		}
		if strings.HasSuffix(p, ".js") {
			continue
		}
		if m := inlineScript.FindString(a.Body); m != "" {
			t.Errorf("%s has inline script: %q", p, m)
		}
	}
}

func TestStaticFiles(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	c := r.browser()
	if a := r.get(c, "/static/console.js"); a.StatusCode != http.StatusOK || !strings.Contains(a.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("console.js: %d %s", a.StatusCode, a.Header.Get("Content-Type"))
	}
	for _, p := range []string{"/static/", "/static/nope.js"} {
		if a := r.get(c, p); a.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, a.StatusCode)
		}
	}
}

func TestCrossOriginRefused(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("petr", "approver")
	maker, approver := r.login("mila"), r.login("petr")
	id := r.uploadOK(maker, "pay.csv", goodManifest("X", 2))
	for _, p := range []string{"/api/v1/batches/" + id + "/approve", "/batches/" + id + "/approve", "/api/v1/logout"} {
		a := r.post(approver, p, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		if a.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST %s: %d, want 403", p, a.StatusCode)
		}
	}
	a := r.do(r.browser(), "POST", "/api/v1/login", "application/json", strings.NewReader(`{"username":"petr","password":"`+password+`"}`), "Sec-Fetch-Site", "cross-site")
	if a.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: %d, want 403", a.StatusCode)
	}
	if v := r.batchView(approver, id); v.State != "awaiting_approval" {
		t.Fatalf("state after cross-origin approvals: %s", v.State)
	}
	// Same origin from a browser, and a non-browser client, are served.
	if a := r.post(approver, "/api/v1/batches/"+id+"/reject", "Origin", r.ts.URL, "Sec-Fetch-Site", "same-origin"); a.StatusCode != http.StatusOK {
		t.Fatalf("same-origin reject: %d %s", a.StatusCode, a.Body)
	}
	log, _ := r.db.AuditLog(context.Background(), ledger.AuditFilter{})
	n := 0
	for _, e := range log {
		if e.Action == "cross_origin_refused" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d cross_origin_refused in the audit log, want 4", n)
	}
}

func TestUploadProblems(t *testing.T) {
	r := newRig(t, sandbox.Config{}, func(c *web.Config) { c.ManifestOptions.MaxAmount = map[string]int64{"RUB": 100000} })
	r.addUser("mila", "maker")
	c := r.login("mila")
	damaged := "reference,amount,currency,card_number,recipient_name\n" +
		"D-1,100.00,RUB,4242424242424242,Ivan\n" +
		"D-2,1.5.0,RUB,4242424242424242,Ivan\n" +
		"D-3,10,XXX,4242424242424241,Ivan\n" +
		"D-4,5000.00,RUB,4242424242424242,Ivan\n"
	a := r.upload(c, "damaged.csv", damaged)
	if a.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("damaged upload: %d %s, want 422", a.StatusCode, a.Body)
	}
	var pe web.ProblemsError
	if err := json.Unmarshal([]byte(a.Body), &pe); err != nil {
		t.Fatal(err)
	}
	want := map[[2]any]bool{{3, "amount"}: false, {4, "currency"}: false, {4, "card_number"}: false, {5, "amount"}: false}
	for _, p := range pe.Problems {
		k := [2]any{p.Line, p.Column}
		if _, ok := want[k]; ok {
			want[k] = true
		}
		if p.Message == "" {
			t.Errorf("problem without a message: %+v", p)
		}
	}
	for k, found := range want {
		if !found {
			t.Errorf("no problem reported at line %v column %v: %+v", k[0], k[1], pe.Problems)
		}
	}
	if strings.Contains(a.Body, "4242424242424241") {
		t.Error("the answer shows a full card number")
	}
	// Control totals from the form.
	a = r.upload(c, "ok.csv", goodManifest("T", 2), "expect_rows", "3", "expect_total", "RUB:1.00")
	if a.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(a.Body, "expected") {
		t.Fatalf("control totals: %d %s", a.StatusCode, a.Body)
	}
	// The page lists them by line and offers them as CSV.
	ct, body := multipartBody("damaged.csv", damaged)
	pg := r.do(c, "POST", "/upload", ct, body)
	if pg.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(pg.Body, `<td class="num">3</td><td>amount</td>`) || !strings.Contains(pg.Body, "problems-csv") {
		t.Fatalf("upload page: %d\n%s", pg.StatusCode, pg.Body)
	}
	js, _ := json.Marshal(pe.Problems)
	csvA := r.do(c, "POST", "/problems.csv", "application/x-www-form-urlencoded", strings.NewReader("problems="+url.QueryEscape(string(js))))
	if csvA.StatusCode != http.StatusOK || !strings.Contains(csvA.Body, "line,column,problem") || !strings.Contains(csvA.Body, "3,amount,") {
		t.Fatalf("problems CSV: %d %s", csvA.StatusCode, csvA.Body)
	}
	// Nothing stored.
	if bs, _ := r.db.Batches(context.Background()); len(bs) != 0 {
		t.Fatalf("%d batches stored after refused uploads", len(bs))
	}
	if f := r.uploadFiles(); len(f) != 0 {
		t.Fatalf("upload store holds %v after refused uploads", f)
	}
}

func TestUploadTooLarge(t *testing.T) {
	r := newRig(t, sandbox.Config{}, func(c *web.Config) { c.MaxUploadBytes = 2048 })
	r.addUser("mila", "maker")
	c := r.login("mila")
	if a := r.upload(c, "big.csv", goodManifest("B", 60)); a.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("big upload: %d %s, want 413", a.StatusCode, a.Body)
	}
	if a := r.upload(c, "small.csv", goodManifest("S", 2)); a.StatusCode != http.StatusCreated {
		t.Fatalf("small upload: %d %s, want 201", a.StatusCode, a.Body)
	}
}

func TestRoles(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("vera", "viewer")
	r.addUser("mila", "maker")
	r.addUser("adam", "admin")
	viewer, maker, admin := r.login("vera"), r.login("mila"), r.login("adam")
	if a := r.upload(viewer, "v.csv", goodManifest("V", 1)); a.StatusCode != http.StatusForbidden {
		t.Errorf("viewer uploads: %d, want 403", a.StatusCode)
	}
	id := r.uploadOK(maker, "m.csv", goodManifest("M", 1))
	for _, c := range []*http.Client{viewer, maker} {
		if a := r.post(c, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusForbidden {
			t.Errorf("approve without the approver role: %d, want 403", a.StatusCode)
		}
	}
	if a := r.get(admin, "/api/v1/batches"); a.StatusCode != http.StatusForbidden {
		t.Errorf("admin-only user reads batches: %d, want 403", a.StatusCode)
	}
	if a := r.get(viewer, "/api/v1/batches/nosuchbatch"); a.StatusCode != http.StatusNotFound {
		t.Errorf("unknown batch: %d, want 404", a.StatusCode)
	}
	if a := r.get(viewer, "/api/v1/batches/"+id+"/report"); a.StatusCode != http.StatusOK {
		t.Errorf("viewer downloads the report: %d, want 200", a.StatusCode)
	}
}

func TestFourEyesApprovePayReport(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker,approver")
	r.addUser("petr", "approver")
	maker, approver := r.login("mila"), r.login("petr")
	id := r.uploadOK(maker, "payroll.csv", goodManifest("P", 5))
	v := r.batchView(maker, id)
	if v.State != "awaiting_approval" || v.Rows != 5 || v.UploadedBy != "mila" || v.Counts["planned"] != 5 {
		t.Fatalf("after upload: %+v", v)
	}
	if got := r.uploadFiles(); len(got) != 1 || got[0] != id+".enc" {
		t.Fatalf("upload store: %v, want [%s.enc]", got, id)
	}
	if n := len(r.journalCounts()); n != 0 {
		t.Fatalf("%d payouts before approval", n)
	}
	// The uploader sees no button, and is refused anyway.
	page := r.get(maker, "/batches/"+id)
	if strings.Contains(page.Body, `id="approve"`) || !strings.Contains(page.Body, "own-request") {
		t.Error("the uploader's page offers approval")
	}
	if a := r.post(maker, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusForbidden {
		t.Fatalf("uploader approves: %d, want 403", a.StatusCode)
	}
	if a := r.post(maker, "/batches/"+id+"/approve"); a.StatusCode != http.StatusForbidden {
		t.Fatalf("uploader approves through the form: %d, want 403", a.StatusCode)
	}
	if a := r.post(approver, "/api/v1/batches/nosuch/approve"); a.StatusCode != http.StatusNotFound {
		t.Fatalf("approve an unknown batch: %d, want 404", a.StatusCode)
	}
	if !strings.Contains(r.get(approver, "/batches/"+id).Body, `id="approve"`) {
		t.Fatal("the approver's page has no approve button")
	}
	if a := r.post(approver, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusOK {
		t.Fatalf("second person approves: %d %s", a.StatusCode, a.Body)
	}
	if a := r.post(approver, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusConflict {
		t.Fatalf("approve twice: %d, want 409", a.StatusCode)
	}
	r.waitState(id, "done")
	v = r.batchView(approver, id)
	if v.Counts["succeeded"] != 5 || v.ApprovedBy != "petr" || v.Settled != 5 {
		t.Fatalf("done: %+v", v)
	}
	for ref, n := range r.journalCounts() {
		if n != 1 {
			t.Errorf("%s paid %d times", ref, n)
		}
	}
	if n := len(r.journalCounts()); n != 5 {
		t.Fatalf("%d references paid, want 5", n)
	}
	poll.Until(t, "the upload destroyed once every row is final", func() bool { return len(r.uploadFiles()) == 0 })
	rep := r.get(approver, "/api/v1/batches/"+id+"/report")
	if rep.StatusCode != http.StatusOK || len(regexp.MustCompile(`(?m)^\d+,P-\d+,succeeded,`).FindAllString(rep.Body, -1)) != 5 || !strings.Contains(rep.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("report: %d\n%s", rep.StatusCode, rep.Body)
	}
	if j := r.get(approver, "/api/v1/batches/"+id+"/report?format=json"); j.StatusCode != http.StatusOK || !json.Valid([]byte(j.Body)) || !strings.Contains(j.Body, "approved by petr in the console") {
		t.Fatalf("JSON report (with who approved): %d\n%s", j.StatusCode, j.Body)
	}
	if x := r.get(approver, "/api/v1/batches/"+id+"/report?format=excel"); x.StatusCode != http.StatusOK || !strings.HasPrefix(x.Body, "\ufeff") {
		t.Fatalf("Excel report: %d", x.StatusCode)
	}
	if x := r.get(approver, "/api/v1/batches/"+id+"/report?format=pdf"); x.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown report format: %d", x.StatusCode)
	}
	// The same file again is the same batch: refused.
	if a := r.upload(maker, "payroll-again.csv", goodManifest("P", 5)); a.StatusCode != http.StatusConflict {
		t.Fatalf("same file again: %d, want 409", a.StatusCode)
	}
	if ds, err := r.db.Decisions(context.Background(), id); err != nil || len(ds) != 1 || !strings.Contains(ds[0].Detail, "approved by petr") {
		t.Fatalf("the batch's decisions: %+v %v", ds, err)
	}
	log, _ := r.db.AuditLog(context.Background(), ledger.AuditFilter{BatchID: id})
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
	}
	got := strings.Join(actions, " ")
	for _, w := range []string{"upload", "approve_refused", "approve", "batch_done", "report_download"} {
		if !strings.Contains(got, w) {
			t.Errorf("batch audit %q lacks %s", got, w)
		}
	}
}

func TestReject(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("petr", "approver")
	maker, approver := r.login("mila"), r.login("petr")
	id := r.uploadOK(maker, "p.csv", goodManifest("R", 3))
	if a := r.post(maker, "/api/v1/batches/"+id+"/reject"); a.StatusCode != http.StatusForbidden {
		t.Fatalf("maker rejects: %d, want 403", a.StatusCode)
	}
	if a := r.post(approver, "/batches/"+id+"/reject"); a.StatusCode != http.StatusSeeOther {
		t.Fatalf("reject form: %d", a.StatusCode)
	}
	if v := r.batchView(approver, id); v.State != "rejected" {
		t.Fatalf("state %s, want rejected", v.State)
	}
	if a := r.post(approver, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusConflict {
		t.Fatalf("approve after reject: %d, want 409", a.StatusCode)
	}
	if f := r.uploadFiles(); len(f) != 0 {
		t.Fatalf("upload store after reject: %v", f)
	}
	if n := len(r.journalCounts()); n != 0 {
		t.Fatalf("%d payouts of a rejected batch", n)
	}
}

func TestManifestTextRendersAsText(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	c := r.login("mila")
	evil := `<img src=x onerror=alert(1)>`
	id := r.uploadOK(c, "xss.csv", manifestCSV([5]string{"XSS-1", "10.00", "RUB", visa, evil}))
	page := r.get(c, "/batches/"+id)
	if strings.Contains(page.Body, evil) || !strings.Contains(page.Body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Fatalf("the recipient is not escaped:\n%s", page.Body)
	}
	var rows struct{ Rows []web.RowView }
	json.Unmarshal([]byte(r.get(c, "/api/v1/batches/"+id+"/rows").Body), &rows)
	if len(rows.Rows) != 1 || rows.Rows[0].Recipient != evil || rows.Rows[0].Card != "424242******4242" {
		t.Fatalf("rows API: %+v", rows.Rows)
	}
}

func TestRowsPaginatedAndFiltered(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	c := r.login("mila")
	var rows [][5]string
	for i := 0; i < 120; i++ {
		rows = append(rows, [5]string{fmt.Sprintf("PG-%03d", i), fmt.Sprintf("%d.00", i+1), "RUB", visa, "N"})
	}
	id := r.uploadOK(c, "many.csv", manifestCSV(rows...))
	page := r.get(c, "/batches/"+id)
	if n := strings.Count(page.Body, `class="row-state"`); n != 50 {
		t.Fatalf("first page shows %d rows, want 50", n)
	}
	if !strings.Contains(page.Body, "Page 1 of 3") {
		t.Fatal("no pager")
	}
	p3 := r.get(c, "/batches/"+id+"?page=3")
	if n := strings.Count(p3.Body, `class="row-state"`); n != 20 {
		t.Fatalf("page 3 shows %d rows, want 20", n)
	}
	if f := r.get(c, "/batches/"+id+"?state=succeeded"); strings.Count(f.Body, `class="row-state"`) != 0 {
		t.Fatal("filter by state shows rows of another state")
	}
	if f := r.get(c, "/api/v1/batches/"+id+"/rows?state=bogus"); f.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown state filter: %d, want 400", f.StatusCode)
	}
}

func readFile(p string) (string, error) {
	b, err := readAll(p)
	return string(b), err
}

func TestAuditAPI(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("vera", "viewer")
	c := r.login("vera")
	a := r.get(c, "/api/v1/audit")
	var raw map[string][]map[string]any
	if err := json.Unmarshal([]byte(a.Body), &raw); err != nil || a.StatusCode != http.StatusOK {
		t.Fatalf("audit API: %d %v", a.StatusCode, err)
	}
	var login map[string]any
	for _, e := range raw["audit"] {
		if e["action"] == "login" {
			login = e
		}
	}
	if login == nil || login["actor"] != "vera" || login["remote_addr"] == "" {
		t.Fatalf("no login of vera with a remote address in %v", raw["audit"])
	}
}

// TestSessionSurvivesRestart: sessions are in the ledger, not in memory.
func TestSessionSurvivesRestart(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("vera", "viewer")
	c := r.login("vera")
	r.stop()
	r.start()
	if a := r.get(c, "/api/v1/batches"); a.StatusCode != http.StatusOK {
		t.Fatalf("the session after a restart: %d, want 200", a.StatusCode)
	}
}

// TestAllowDuplicates: the same card and amount under two references is
// refused unless the uploader allows it; then the approver sees each one.
func TestAllowDuplicates(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("petr", "approver")
	mila, petr := r.login("mila"), r.login("petr")
	dup := manifestCSV([5]string{"DUP-1", "50.00", "RUB", visa, "A"}, [5]string{"DUP-2", "50.00", "RUB", visa, "A"})
	if a := r.upload(mila, "dup.csv", dup); a.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("duplicates not allowed: %d, want 422", a.StatusCode)
	}
	a := r.upload(mila, "dup.csv", dup, "allow_duplicates", "on")
	if a.StatusCode != http.StatusCreated {
		t.Fatalf("duplicates allowed: %d %s", a.StatusCode, a.Body)
	}
	var v web.BatchView
	json.Unmarshal([]byte(a.Body), &v)
	if !v.AllowDuplicates || len(v.Warnings) != 1 || v.Warnings[0].Line != 3 || strings.Contains(a.Body, visa) {
		t.Fatalf("view: %+v", v)
	}
	page := r.get(petr, "/batches/"+v.ID)
	if !strings.Contains(page.Body, `id="duplicates"`) || !strings.Contains(page.Body, "DUP-2") {
		t.Fatal("the approver's page does not show the allowed duplicates")
	}
	if a := r.post(petr, "/api/v1/batches/"+v.ID+"/approve"); a.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d", a.StatusCode)
	}
	r.waitState(v.ID, "done")
	if paid := r.journalCounts(); paid["DUP-1"] != 1 || paid["DUP-2"] != 1 {
		t.Fatalf("journal %v", paid)
	}
}
