// devskyy dashboard: follows a run in flight over server-sent events.
// The page works without this script (reload to refresh); it only updates what is shown.
(function () {
  "use strict";
  var root = document.getElementById("run");
  if (!root || root.dataset.live !== "yes" || !window.EventSource) { return; }
  var GLYPHS = {pending: "○", ready: "◔", running: "▶", retry_wait: "↻", succeeded: "✓",
    failed: "✗", skipped: "⤼", cancelled: "■", interrupted: "⚠"};
  function label(state) { return (GLYPHS[state] || "•") + " " + state.replace("_", " "); }
  function badge(el, state) {
    if (!el) { return; }
    el.className = el.className.replace(/\bs-[a-z_]+/g, "").trim() + " s-" + state;
    el.textContent = label(state);
  }
  function apply(data) {
    badge(document.getElementById("run-status"), data.status);
    Object.keys(data.steps).forEach(function (name) {
      var step = data.steps[name];
      document.querySelectorAll("svg.graph g.node").forEach(function (g) {
        if (g.getAttribute("data-node") !== name) { return; }
        g.setAttribute("class", "node state-" + step.status);
        var text = g.querySelector("text.state");
        if (text) { text.textContent = label(step.status); }
      });
      document.querySelectorAll("#steps tr").forEach(function (row) {
        if (row.getAttribute("data-step") !== name) { return; }
        badge(row.querySelector("[data-field=status]"), step.status);
        row.querySelector("[data-field=attempts]").textContent = step.attempts;
        row.querySelector("[data-field=duration]").textContent = step.duration;
      });
    });
  }
  var source = new EventSource("/ui/runs/" + encodeURIComponent(root.dataset.run) + "/events");
  source.addEventListener("state", function (event) { apply(JSON.parse(event.data)); });
  source.addEventListener("end", function () {
    source.close();
    var note = document.getElementById("live-note");
    if (note) { note.textContent = "The run has ended; reload for the full timeline and outputs."; }
  });
})();
