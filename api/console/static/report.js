(function () {
  "use strict";
  window.tubetraceChart("report-chart", function (data) { return data.chart; });
})();
