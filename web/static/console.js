// payouts console: live progress on a batch page (server-sent events).
// No inline script anywhere, so the Content-Security-Policy stays strict;
// every value is put in the page with textContent, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("batch");
  if (!root || !window.EventSource) return;
  var id = root.dataset.id, lastSettled = -1;

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function fill(tbody, items, cells) {
    var rows = items.map(function (it) {
      var tr = document.createElement("tr");
      cells(it).forEach(function (c) { cell(tr, c[0], c[1]); });
      return tr;
    });
    tbody.replaceChildren.apply(tbody, rows);
  }
  function refreshRows() {
    var q = new URLSearchParams(location.search);
    fetch("/api/v1/batches/" + encodeURIComponent(id) + "/rows?" + q.toString(), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        fill(document.getElementById("rows-body"), d.rows || [], function (r) {
          return [[String(r.line), "num"], [r.reference], [r.recipient, "recipient"], [r.card],
            [r.amount + " " + r.currency, "num"], [r.state, "row-state"], [r.failure || ""]];
        });
      });
  }
  function update(v) {
    var st = document.getElementById("state");
    st.textContent = v.state;
    st.className = "state state-" + v.state;
    root.dataset.state = v.state;
    document.getElementById("approved-by").textContent = v.approved_by || "";
    var p = document.getElementById("progress");
    p.max = v.rows;
    p.value = v.settled;
    document.getElementById("settled").textContent = String(v.settled);
    fill(document.querySelector("#summary tbody"), v.summary || [], function (l) {
      return [[l.state], [l.currency], [String(l.count), "num"], [l.amount, "num"]];
    });
    if (v.state !== "awaiting_approval") {
      document.querySelectorAll("#approve, #reject, #own-request").forEach(function (e) { e.remove(); });
    }
    if (v.settled !== lastSettled) {
      lastSettled = v.settled;
      refreshRows();
    }
  }
  var es = new EventSource("/batches/" + encodeURIComponent(id) + "/events");
  es.onmessage = function (e) { update(JSON.parse(e.data)); };
  es.addEventListener("end", function () { es.close(); refreshRows(); });
})();
