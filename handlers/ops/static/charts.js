// Small SVG line charts for the dashboard, drawn by hand: no library, nothing to vendor.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

// lines: [{values: [number|null], className}], drawn on one scale from 0 to the largest value; a null is
// no point (the line joins its neighbours). `name` tags the figure (data-chart), and each line carries its
// values (data-values), so a reader or a test can tell what was drawn without decoding the path.
function lineChart(title, lines, { width = 300, height = 70, name = "" } = {}) {
  const figure = document.createElement("figure");
  if (name) figure.dataset.chart = name;
  const caption = document.createElement("figcaption");
  const all = lines.flatMap((line) => line.values).filter((v) => v !== null && v !== undefined);
  const top = Math.max(1, ...all);
  caption.textContent = `${title} (max ${Math.round(top * 100) / 100})`;
  // Scales to its box's width; the lines keep their stroke (vector-effect in ops.css).
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", height,
    preserveAspectRatio: "none", role: "img" });
  svg.setAttribute("aria-label", title);
  svg.appendChild(svgElement("rect", { x: 0, y: 0, width, height, class: "chart-bg" }));
  for (const line of lines) {
    const n = line.values.length;
    if (n === 0) continue;
    const step = n > 1 ? width / (n - 1) : width;
    let path = "";
    line.values.forEach((value, i) => {
      if (value === null || value === undefined) return;
      const x = (i * step).toFixed(1);
      const y = (height - 2 - (value / top) * (height - 4)).toFixed(1);
      path += `${path ? "L" : "M"}${x},${y} `;
    });
    if (path) {
      svg.appendChild(svgElement("path", { d: path.trim(), class: `line ${line.className}`,
        "data-values": JSON.stringify(line.values) }));
    }
  }
  figure.appendChild(caption);
  figure.appendChild(svg);
  return figure;
}

window.opsCharts = { lineChart };
