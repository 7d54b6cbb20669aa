(function () {
  "use strict";
  var text = document.getElementById("filter");
  var status = document.getElementById("status-filter");
  var shown = document.getElementById("shown-count");
  var cards = Array.prototype.slice.call(document.querySelectorAll(".speaker-card"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.matrix tbody tr"));

  function matches(el, needle, want) {
    if (needle && el.dataset.speaker.indexOf(needle) < 0) { return false; }
    if (!want) { return true; }
    var tags = " " + el.dataset.statuses + " " + el.dataset.verdicts + " ";
    return tags.indexOf(" " + want + " ") >= 0;
  }

  function apply() {
    var needle = text.value.trim().toLowerCase();
    var want = status.value;
    var n = 0;
    cards.forEach(function (c) { var ok = matches(c, needle, want); c.hidden = !ok; if (ok) { n += 1; } });
    rows.forEach(function (r) { r.hidden = !matches(r, needle, want); });
    var noun = cards.length === 1 ? " speaker" : " speakers";
    shown.textContent = n === cards.length ? cards.length + noun : n + " of " + cards.length + noun;
  }

  function openTarget() {
    var id = "";
    try { id = decodeURIComponent(window.location.hash.slice(1)); } catch (e) { return; }
    if (!id) { return; }
    var el = document.getElementById(id);
    if (!el) { return; }
    if (el.tagName === "DETAILS") { el.open = true; }
    var d = el.parentElement ? el.parentElement.closest("details") : null;
    while (d) { d.open = true; d = d.parentElement ? d.parentElement.closest("details") : null; }
    el.scrollIntoView();
  }

  function setAll(open) {
    cards.forEach(function (c) { if (!c.hidden) { c.open = open; } });
  }

  text.addEventListener("input", apply);
  status.addEventListener("change", apply);
  document.getElementById("expand-all").addEventListener("click", function () { setAll(true); });
  document.getElementById("collapse-all").addEventListener("click", function () { setAll(false); });
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
