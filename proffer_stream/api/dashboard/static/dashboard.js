// The dashboard's behaviour: draw the charts of a page, and follow the live feed.
(function () {
  "use strict";
  const charts = [];
  let feed = null;

  function drawCharts(root) {
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const source = document.getElementById("chart-" + canvas.dataset.chart);
      if (!source || !window.Chart) return;
      const data = JSON.parse(source.textContent);
      const kind = canvas.dataset.kind || "bar";
      charts.push(new window.Chart(canvas, {
        type: kind,
        data: data,
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: kind === "doughnut",
          plugins: { legend: { display: kind !== "bar" || data.datasets.length > 1 } },
          scales: kind === "doughnut" ? {} : { y: { beginAtZero: true } },
        },
      }));
    });
  }

  function followFeed(root) {
    const list = root.querySelector("#feed[data-feed-url]");
    if (!list || !window.EventSource) return;
    feed = new EventSource(list.dataset.feedUrl);
    feed.onmessage = function (message) {
      const item = JSON.parse(message.data);
      const entry = document.createElement("li");
      entry.textContent = item.at.slice(11) + " " + item.event_type +
        (item.offer_id ? " #" + item.offer_id : "") + " " + item.customer +
        (item.status ? " → " + item.status : "") + " (" + item.cause + ")";
      list.prepend(entry);
      while (list.children.length > 100) list.lastChild.remove();
    };
    feed.addEventListener("signed-out", function () { window.location.assign("/dashboard/sign-in"); });
  }

  function start(root) {
    drawCharts(root);
    followFeed(root);
  }

  function stop() {
    while (charts.length) charts.pop().destroy();
    if (feed) { feed.close(); feed = null; }
  }

  document.addEventListener("DOMContentLoaded", function () { start(document); });
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target === document.body) stop();
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target === document.body) start(document);
  });
})();
