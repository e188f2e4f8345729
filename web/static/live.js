// Refreshes the page's live part every second: the server renders only
// that part when asked with X-Partial. Nothing else runs on the pages.
(function () {
  var live = document.getElementById("live");
  if (!live) return;
  var last = "";
  function tick() {
    fetch(location.href, { headers: { "X-Partial": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) {
          last = html;
          live.innerHTML = html;
        }
      })
      .catch(function () {})
      .finally(function () { setTimeout(tick, 1000); });
  }
  setTimeout(tick, 1000);
})();
