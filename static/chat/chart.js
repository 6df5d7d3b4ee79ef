// The `filtered_line_chart` component as an SVG line chart: axes, legend that
// filters series, and a hover read-out. Every label is set as text, never HTML.

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#4f6bed", "#e07a3d", "#2a9d78", "#c4457c", "#8a63d2", "#2f9fb8", "#b08d2a"];
const HEIGHT = 280;
const MARGIN = { top: 14, right: 18, bottom: 30, left: 54 };
const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function svg(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Validate `{title, data: [[x, s1, s2…], [x, v1, v2…], …]}`; null when unusable. */
export function parseChart(content) {
  const header = Array.isArray(content?.data) ? content.data[0] : null;
  if (!Array.isArray(header) || header.length < 2) return null;
  const rows = content.data.slice(1).filter((row) => Array.isArray(row) && row.length >= 2);
  if (rows.length < 2) return null;
  const series = header.slice(1).map((name, i) => ({
    name: String(name),
    color: COLORS[i % COLORS.length],
    values: rows.map((row) => {
      const value = Number(row[i + 1]);
      return row[i + 1] === null || row[i + 1] === "" || !Number.isFinite(value) ? null : value;
    }),
  }));
  return {
    title: content.title ? String(content.title) : "",
    xLabel: String(header[0]),
    x: rows.map((row) => String(row[0])),
    series,
  };
}

/** Round numbers for an axis: about `count` ticks covering [min, max]. */
export function niceTicks(min, max, count = 5) {
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(+v.toFixed(10));
  if (ticks[ticks.length - 1] < max) ticks.push(+(ticks[ticks.length - 1] + step).toFixed(10));
  return ticks;
}

/** Indexes of the x labels to show: month starts for ISO dates, else evenly spaced. */
function xTicks(x, width) {
  const room = Math.max(2, Math.floor(width / 70));
  if (x.every((label) => ISO_DAY.test(label))) {
    const starts = [];
    x.forEach((label, i) => {
      if (i === 0 || label.slice(0, 7) !== x[i - 1].slice(0, 7)) starts.push(i);
    });
    const every = Math.ceil(starts.length / room);
    return starts
      .filter((_, k) => k % every === 0)
      .map((i) => {
        const month = Number(x[i].slice(5, 7)) - 1;
        const label = month === 0 || i === 0 ? `${MONTHS[month]} ${x[i].slice(0, 4)}` : MONTHS[month];
        return { i, label };
      });
  }
  const count = Math.min(room, x.length);
  const ticks = [];
  for (let k = 0; k < count; k++) {
    const i = Math.round((k * (x.length - 1)) / Math.max(1, count - 1));
    if (!ticks.length || ticks[ticks.length - 1].i !== i) ticks.push({ i, label: x[i] });
  }
  return ticks;
}

const formatValue = (v) =>
  Math.abs(v) >= 1000 ? v.toLocaleString("en-US", { maximumFractionDigits: 0 }) : v.toLocaleString("en-US", { maximumFractionDigits: 2 });

/** A `<figure>` that draws itself at its own width and redraws on resize. */
export function lineChart(chart) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const legend = document.createElement("div");
  legend.className = "chart-legend";
  legend.setAttribute("role", "group");
  legend.setAttribute("aria-label", "Series");
  const plot = document.createElement("div");
  plot.className = "chart-plot";
  const tooltip = document.createElement("div");
  tooltip.className = "chart-tooltip";
  tooltip.hidden = true;
  plot.append(tooltip);

  const hidden = new Set();
  for (const series of chart.series) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "chart-key";
    button.setAttribute("aria-pressed", "true");
    const swatch = document.createElement("span");
    swatch.className = "chart-swatch";
    swatch.style.background = series.color;
    button.append(swatch, document.createTextNode(series.name));
    button.addEventListener("click", () => {
      const visible = chart.series.length - hidden.size;
      if (!hidden.has(series.name) && visible === 1) return; // keep at least one line
      if (hidden.has(series.name)) hidden.delete(series.name);
      else hidden.add(series.name);
      button.setAttribute("aria-pressed", String(!hidden.has(series.name)));
      draw();
    });
    legend.append(button);
  }
  figure.append(legend, plot);

  let width = 0;
  let geometry = null;
  function draw() {
    if (!width) return;
    plot.querySelector("svg")?.remove();
    geometry = drawSvg(chart, width, hidden);
    plot.prepend(geometry.svg);
  }
  const observer = new ResizeObserver((entries) => {
    if (!plot.isConnected && width > 0) return observer.disconnect(); // the chart was removed
    const next = Math.round(entries[0].contentRect.width);
    if (next > 0 && next !== width) {
      width = next;
      draw();
    }
  });
  observer.observe(plot);

  plot.addEventListener("pointermove", (event) => {
    if (!geometry) return;
    const box = plot.getBoundingClientRect();
    const i = geometry.indexAt(event.clientX - box.left);
    if (i === null) return hideTip();
    geometry.guide(i);
    tooltip.replaceChildren();
    const date = document.createElement("strong");
    date.textContent = chart.x[i];
    tooltip.append(date);
    for (const series of chart.series) {
      if (hidden.has(series.name) || series.values[i] === null) continue;
      const row = document.createElement("div");
      const swatch = document.createElement("span");
      swatch.className = "chart-swatch";
      swatch.style.background = series.color;
      row.append(swatch, document.createTextNode(`${series.name} ${formatValue(series.values[i])}`));
      tooltip.append(row);
    }
    tooltip.hidden = false;
    const x = geometry.xAt(i);
    tooltip.style.left = `${Math.min(Math.max(x + 12, 0), width - tooltip.offsetWidth - 4)}px`;
    if (x + 12 + tooltip.offsetWidth > width) tooltip.style.left = `${Math.max(0, x - 12 - tooltip.offsetWidth)}px`;
  });
  const hideTip = () => {
    tooltip.hidden = true;
    geometry?.guide(null);
  };
  plot.addEventListener("pointerleave", hideTip);
  return figure;
}

function drawSvg(chart, width, hidden) {
  const shown = chart.series.filter((s) => !hidden.has(s.name));
  const values = shown.flatMap((s) => s.values.filter((v) => v !== null));
  const ticks = niceTicks(Math.min(...values), Math.max(...values));
  const [lo, hi] = [ticks[0], ticks[ticks.length - 1]];
  const inner = { w: width - MARGIN.left - MARGIN.right, h: HEIGHT - MARGIN.top - MARGIN.bottom };
  const n = chart.x.length;
  const xAt = (i) => MARGIN.left + (n === 1 ? inner.w / 2 : (i * inner.w) / (n - 1));
  const yAt = (v) => MARGIN.top + inner.h - ((v - lo) / (hi - lo || 1)) * inner.h;

  const root = svg("svg", {
    width,
    height: HEIGHT,
    viewBox: `0 0 ${width} ${HEIGHT}`,
    role: "img",
    "aria-label": `${chart.title || "Line chart"}: ${chart.series.map((s) => s.name).join(", ")}`,
  });
  const yAxis = svg("g", { class: "axis axis-y" });
  for (const tick of ticks) {
    const y = yAt(tick);
    yAxis.append(
      svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y, y2: y, class: "grid" }),
      svg("text", { x: MARGIN.left - 8, y, dy: "0.32em", "text-anchor": "end" }, formatValue(tick)),
    );
  }
  const xAxis = svg("g", { class: "axis axis-x" });
  const baseline = MARGIN.top + inner.h;
  xAxis.append(svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: baseline, y2: baseline, class: "domain" }));
  for (const { i, label } of xTicks(chart.x, inner.w)) {
    const x = xAt(i);
    xAxis.append(
      svg("line", { x1: x, x2: x, y1: baseline, y2: baseline + 5, class: "tick" }),
      svg("text", { x, y: baseline + 18, "text-anchor": i === 0 ? "start" : "middle" }, label),
    );
  }
  root.append(yAxis, xAxis);

  const lines = svg("g", { class: "lines" });
  for (const series of shown) {
    let d = "";
    let pen = false;
    series.values.forEach((v, i) => {
      if (v === null) return (pen = false);
      d += `${pen ? "L" : "M"}${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}`;
      pen = true;
    });
    const path = svg("path", { d, stroke: series.color, class: "line" });
    path.dataset.series = series.name;
    lines.append(path);
  }
  root.append(lines);

  const guide = svg("g", { class: "guide", visibility: "hidden" });
  const guideLine = svg("line", { y1: MARGIN.top, y2: baseline });
  guide.append(guideLine);
  const dots = shown.map((s) => {
    const dot = svg("circle", { r: 3.5, fill: s.color });
    guide.append(dot);
    return { s, dot };
  });
  root.append(guide);

  return {
    svg: root,
    xAt,
    indexAt(px) {
      if (px < MARGIN.left - 6 || px > width - MARGIN.right + 6) return null;
      return Math.min(n - 1, Math.max(0, Math.round(((px - MARGIN.left) / inner.w) * (n - 1))));
    },
    guide(i) {
      if (i === null) return guide.setAttribute("visibility", "hidden");
      guide.setAttribute("visibility", "visible");
      guideLine.setAttribute("x1", xAt(i));
      guideLine.setAttribute("x2", xAt(i));
      for (const { s, dot } of dots) {
        const v = s.values[i];
        dot.setAttribute("visibility", v === null ? "hidden" : "visible");
        if (v !== null) {
          dot.setAttribute("cx", xAt(i));
          dot.setAttribute("cy", yAt(v));
        }
      }
    },
  };
}
