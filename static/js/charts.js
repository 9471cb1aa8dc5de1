/* Charts of the forecast's analysis pages, drawn with the vendored Chart.js from the
   figures the page embeds as JSON (json_script): no inline script, and the same figures
   are in the table next to each chart. */
(function () {
  "use strict";

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var colours = ["#2454d6", "#945800", "#1f7a3a"];
    spec.datasets.forEach(function (dataset, index) {
      dataset.backgroundColor = colours[index % colours.length];
    });
    new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, suggestedMax: 100 } },
      },
    });
    canvas.dataset.drawn = "true";  // for whoever waits on the chart, tests included
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
})();
