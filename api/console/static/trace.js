// The trace graph: cytoscape.js with the dagre layout, top to bottom as the data flows
// (compound -> box -> tube -> persons -> residence compounds). Data comes from a JSON URL of
// this console (same session, same engine call), or with a revealed page itself; text goes in
// with textContent only.
(function () {
  "use strict";
  var box = document.getElementById("graph");
  if (!box) { return; }
  var panel = document.getElementById("record");
  var ringsLink = document.getElementById("rings-link");

  function show(data) {
    if (!panel) { return; }
    panel.hidden = false;
    panel.querySelectorAll("[data-field]").forEach(function (dd) {
      var v = data[dd.getAttribute("data-field")];
      if (Array.isArray(v)) { v = v.join(", "); }
      if (v === null || v === undefined || v === "") { v = "-"; }
      dd.textContent = String(v);
    });
    if (ringsLink) {
      ringsLink.setAttribute("href", "/console/persons/" + encodeURIComponent(data.person_id) + "/rings");
    }
    document.querySelectorAll("tr.picked").forEach(function (tr) { tr.classList.remove("picked"); });
    var row = document.getElementById("person-" + data.person_id);
    if (row) { row.classList.add("picked"); }
  }

  var style = [
    { selector: "node", style: { "label": "data(label)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3, "width": 22, "height": 22, "background-color": "#7f8c8d", "text-wrap": "ellipsis", "text-max-width": 90 } },
    { selector: "node[kind = 'compound']", style: { "shape": "round-rectangle", "background-color": "#2e86c1", "width": 34 } },
    { selector: "node[kind = 'box']", style: { "shape": "rectangle", "background-color": "#8e6c3a" } },
    { selector: "node[kind = 'tube']", style: { "shape": "round-tag", "background-color": "#95a5a6", "width": 30, "height": 30 } },
    { selector: "node[kind = 'tube'][result = 'positive']", style: { "background-color": "#d9534f" } },
    { selector: "node[kind = 'tube'][result = 'invalid']", style: { "background-color": "#f0ad4e" } },
    { selector: "node[kind = 'person']", style: { "background-color": "#27ae60" } },
    { selector: "node[kind = 'residence']", style: { "shape": "round-rectangle", "background-color": "#5dade2", "width": 34 } },
    { selector: "node[?household_separated]", style: { "border-width": 3, "border-style": "dashed", "border-color": "#e67e22" } },
    { selector: "node[?flagged]", style: { "border-width": 3, "border-color": "#c0392b" } },
    { selector: "node[?flagged][?household_separated]", style: { "border-style": "dashed", "border-color": "#c0392b" } },
    { selector: "node:selected", style: { "overlay-color": "#f1c40f", "overlay-opacity": 0.35 } },
    { selector: "edge", style: { "width": 1.5, "line-color": "#aab7c4", "target-arrow-color": "#aab7c4", "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.8 } },
    { selector: "edge[?inferred]", style: { "line-style": "dotted" } }
  ];

  // A revealed page carries its graph (the reason went in its form, never in a URL); a masked
  // one fetches it.
  var embedded = document.getElementById("graph-data");
  var loaded = embedded
    ? Promise.resolve({ elements: JSON.parse(embedded.textContent) })
    : fetch(box.getAttribute("data-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("the trace answered " + r.status); }
        return r.json();
      });
  loaded
    .then(function (data) {
      var cy = cytoscape({
        container: box,
        elements: data.elements,
        style: style,
        layout: { name: "dagre", rankDir: "TB", nodeSep: 14, rankSep: 60, fit: true, padding: 16 },
        wheelSensitivity: 0.3
      });
      cy.on("tap", "node[kind = 'person']", function (evt) { show(evt.target.data()); });
      document.querySelectorAll("tr[data-person]").forEach(function (tr) {
        tr.addEventListener("click", function () {
          var node = cy.getElementById("person:" + tr.getAttribute("data-person"));
          if (node.nonempty()) { cy.$(":selected").unselect(); node.select(); show(node.data()); }
        });
      });
      window.tubetraceGraph = cy;
      requestAnimationFrame(function () {
        requestAnimationFrame(function () {
          box.setAttribute("data-drawn-ms", String(Math.round(performance.now())));
          box.setAttribute("data-drawn", "true");
        });
      });
    })
    .catch(function (err) {
      box.setAttribute("data-error", String(err));
      box.textContent = "The graph could not be drawn: " + err;
    });
})();
