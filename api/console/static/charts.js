// Bar charts (Chart.js) from a JSON URL of this console: {labels, datasets|series, ...}.
(function () {
  "use strict";
  var COLORS = ["#2e86c1", "#f0ad4e", "#8e44ad", "#27ae60", "#c0392b", "#7f8c8d", "#16a085", "#d35400"];

  function draw(canvas, spec) {
    var datasets = spec.datasets.map(function (d, i) {
      return { label: d.label, data: d.data, backgroundColor: d.color || COLORS[i % COLORS.length] };
    });
    var chart = new Chart(canvas, {
      type: "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { title: { display: !!spec.title, text: spec.title || "" }, legend: { position: "bottom" } },
        scales: { x: { stacked: !!spec.stacked }, y: { stacked: !!spec.stacked, beginAtZero: true } }
      }
    });
    canvas.setAttribute("data-drawn-ms", String(Math.round(performance.now())));
    canvas.setAttribute("data-drawn", "true");
    return chart;
  }

  window.tubetraceChart = function (id, toSpec) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    fetch(canvas.getAttribute("data-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("the chart data answered " + r.status); }
        return r.json();
      })
      .then(function (data) { draw(canvas, toSpec(data)); })
      .catch(function (err) { canvas.setAttribute("data-error", String(err)); });
  };
})();
