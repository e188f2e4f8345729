// Keeps the page's live part up to date every second. Nothing else runs
// on the pages.
//
// A job's page (#live-head carries data-feed) asks its feed only for what
// changed: it sends the hash of its header and of each account row and
// the newest event it shows; the server answers with the parts whose hash
// differs, rendered by the page's own templates, and the newer events.
// Other pages fetch their live part whole (X-Partial): they are small.
(function () {
  var live = document.getElementById("live");
  if (!live) return;
  var maxEvents = 200;
  var last = "";

  function feedURL(head) {
    var rows = [];
    var trs = document.querySelectorAll("#accounts-body > tr");
    for (var i = 0; i < trs.length; i++) rows.push(trs[i].getAttribute("data-h") || "");
    var evs = document.getElementById("events-body");
    return head.getAttribute("data-feed") +
      "&head=" + encodeURIComponent(head.getAttribute("data-h") || "") +
      "&rows=" + encodeURIComponent(rows.join(",")) +
      "&after=" + encodeURIComponent(evs ? evs.getAttribute("data-after") || "0" : "0");
  }

  function apply(head, d) {
    if (d.head !== undefined) {
      head.innerHTML = d.head;
      head.setAttribute("data-h", d.head_h);
    }
    var body = document.getElementById("accounts-body");
    if (body) {
      (d.rows || []).forEach(function (r) {
        var tr = body.children[r.i];
        if (!tr) {
          tr = document.createElement("tr");
          body.appendChild(tr);
        }
        tr.id = "acct-" + r.id;
        tr.className = r.cls;
        tr.setAttribute("data-h", r.h);
        tr.innerHTML = r.html;
      });
      while (body.children.length > d.n) body.removeChild(body.lastElementChild);
      var none = document.getElementById("no-accounts");
      if (none) none.hidden = d.n > 0;
    }
    var evs = document.getElementById("events-body");
    if (evs) {
      var events = d.events || [];
      for (var i = events.length - 1; i >= 0; i--) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-seq", events[i].seq);
        tr.innerHTML = events[i].html;
        evs.insertBefore(tr, evs.firstChild);
      }
      while (evs.children.length > maxEvents) evs.removeChild(evs.lastElementChild);
      evs.setAttribute("data-after", d.after);
    }
  }

  function tick() {
    var head = document.getElementById("live-head");
    var req = head && head.getAttribute("data-feed")
      ? fetch(feedURL(head), { credentials: "same-origin", cache: "no-store" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (d) { if (d) apply(head, d); })
      : fetch(location.href, { headers: { "X-Partial": "1" }, credentials: "same-origin", cache: "no-store" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html !== null && html !== last) {
              last = html;
              live.innerHTML = html;
            }
          });
    req.catch(function () {}).finally(function () { setTimeout(tick, 1000); });
  }
  setTimeout(tick, 1000);
})();
