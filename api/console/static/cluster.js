// A cluster of cases: cytoscape.js with its built-in force layout (cose). Cases, the compounds
// they were swabbed at and the pooled tubes they shared; each coloured by its day (the same
// colour for the same day, a legend below). Text goes in with textContent only.
(function () {
  "use strict";
  var box = document.getElementById("graph");
  if (!box) { return; }
  var legend = document.getElementById("day-legend");
  var palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
                 "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#9c9ede"];

  var style = [
    { selector: "node", style: { "label": "data(label)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3, "width": 20, "height": 20, "background-color": "#7f8c8d", "text-wrap": "ellipsis", "text-max-width": 90 } },
    { selector: "node[color]", style: { "background-color": "data(color)" } },
    { selector: "node[kind = 'compound']", style: { "shape": "round-rectangle", "background-color": "#2e86c1", "width": 34, "height": 24 } },
    { selector: "node[kind = 'pool']", style: { "shape": "round-tag", "width": 24, "height": 24 } },
    { selector: "node:selected", style: { "overlay-color": "#f1c40f", "overlay-opacity": 0.35 } },
    { selector: "edge", style: { "width": 2, "line-color": "#aab7c4", "curve-style": "bezier" } },
    { selector: "edge[color]", style: { "line-color": "data(color)" } },
    { selector: "edge[type = 'IN_POOL']", style: { "line-style": "dashed" } }
  ];

  fetch(box.getAttribute("data-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (r) {
      if (!r.ok) { throw new Error("the cluster answered " + r.status); }
      return r.json();
    })
    .then(function (data) {
      var days = {};
      data.elements.nodes.concat(data.elements.edges).forEach(function (e) {
        if (e.data.day) { days[e.data.day] = true; }
      });
      var sorted = Object.keys(days).sort();
      var colour = {};
      sorted.forEach(function (d, i) { colour[d] = palette[i % palette.length]; });
      data.elements.nodes.concat(data.elements.edges).forEach(function (e) {
        if (e.data.day && e.data.kind !== "compound") { e.data.color = colour[e.data.day]; }
      });
      if (legend) {
        sorted.forEach(function (d) {
          var key = document.createElement("span");
          key.className = "key day";
          key.style.borderLeft = "1.2em solid " + colour[d];
          key.textContent = " " + d + " ";
          legend.appendChild(key);
        });
      }
      var cy = cytoscape({
        container: box,
        elements: data.elements,
        style: style,
        layout: { name: "cose", animate: false, fit: true, padding: 16, randomize: false },
        wheelSensitivity: 0.3
      });
      cy.on("tap", "node[kind = 'case']", function (evt) {
        document.querySelectorAll("tr.picked").forEach(function (tr) { tr.classList.remove("picked"); });
        var row = document.getElementById("case-" + evt.target.data("person_id"));
        if (row) { row.classList.add("picked"); row.scrollIntoView({ block: "nearest" }); }
      });
      window.tubetraceGraph = cy;
      requestAnimationFrame(function () {
        box.setAttribute("data-drawn", "true");
      });
    })
    .catch(function (err) {
      box.setAttribute("data-error", String(err));
      box.textContent = "The graph could not be drawn: " + err;
    });
})();
