// Each district's closed-loop progress of the day: tasks per status, stacked.
(function () {
  "use strict";
  var STATUS_COLORS = { pending: "#c0392b", acknowledged: "#f0ad4e", contacted: "#2e86c1", retest_collected: "#8e44ad", unreachable: "#7f8c8d", closed: "#27ae60" };
  window.tubetraceChart("progress-chart", function (data) {
    return {
      title: "",
      stacked: true,
      labels: data.labels,
      datasets: data.statuses.map(function (s) { return { label: s, data: data.series[s], color: STATUS_COLORS[s] }; })
    };
  });
})();
