// Charts of the overview and operations pages (Chart.js, vendored). Data comes from the page
// (overview) or from /review/operations/data (operations, refreshed every 15 s).
(function () {
  "use strict";
  const palette = ["#1f4e79", "#b3261e", "#e0a800", "#1e7b34", "#6a3d9a", "#ff7f00", "#17becf"];
  const colour = (i) => palette[i % palette.length];

  function overview(data) {
    const days = data.days;
    const rules = Object.keys(data.alerts_by_rule);
    new Chart(document.getElementById("chart-alerts"), {
      type: "bar",
      data: { labels: days, datasets: rules.map((rule, i) => ({
        label: rule, backgroundColor: colour(i), data: days.map((d) => data.alerts_by_rule[rule][d] || 0) })) },
      options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    new Chart(document.getElementById("chart-backlog"), {
      type: "bar",
      data: { labels: Object.keys(data.backlog), datasets: [{ label: "open alerts",
        backgroundColor: colour(1), data: Object.values(data.backlog) }] },
      options: { animation: false, scales: { y: { beginAtZero: true } } },
    });
    const analysts = Object.keys(data.decisions);
    new Chart(document.getElementById("chart-decisions"), {
      type: "bar",
      data: { labels: days, datasets: analysts.map((name, i) => ({
        label: name, backgroundColor: colour(i + 3), data: days.map((d) => data.decisions[name][d] || 0) })) },
      options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    const precisionRules = Object.keys(data.precision);
    new Chart(document.getElementById("chart-precision"), {
      type: "bar",
      data: { labels: precisionRules, datasets: [{ label: "precision (%)", backgroundColor: colour(3),
        data: precisionRules.map((r) => 100 * data.precision[r].precision) }] },
      options: { animation: false, indexAxis: "y", scales: { x: { min: 0, max: 100 } } },
    });
  }

  const opsCharts = {};
  async function operations(container) {
    const status = document.getElementById("ops-status");
    let answer;
    try {
      const response = await fetch(container.dataset.source, { credentials: "same-origin" });
      answer = await response.json();
    } catch (err) {
      answer = { error: String(err) };
    }
    if (answer.error) { status.textContent = answer.error; return; }
    status.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
    for (const panel of answer.panels) {
      const canvas = container.querySelector(`canvas[data-title="${CSS.escape(panel.title)}"]`);
      if (!canvas) continue;
      const datasets = panel.series.map((s, i) => ({
        label: s.label, borderColor: colour(i), backgroundColor: colour(i), pointRadius: 0, borderWidth: 1.5,
        data: s.points.map(([t, v]) => ({ x: t * 1000, y: v })) }));
      if (opsCharts[panel.title]) {
        opsCharts[panel.title].data.datasets = datasets;
        opsCharts[panel.title].update("none");
      } else {
        opsCharts[panel.title] = new Chart(canvas, {
          type: "line", data: { datasets },
          options: { animation: false, parsing: false, scales: { x: { type: "linear",
            ticks: { callback: (v) => new Date(v).toISOString().slice(11, 16) } }, y: { beginAtZero: true } } },
        });
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const data = document.getElementById("overview-data");
    if (data) overview(JSON.parse(data.textContent));
    const ops = document.getElementById("ops-panels");
    if (ops) { operations(ops); setInterval(() => operations(ops), 15000); }
  });
})();
