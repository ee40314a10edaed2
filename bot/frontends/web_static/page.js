// The public page's live figures and charts. Plain JavaScript, no build step, nothing from other sites.
// Everything here is an improvement on a page that already reads well without it.
"use strict";

(function () {
  const body = document.body;
  const units = body.dataset.units === "mi" ? "mi" : "km";
  const SVG = "http://www.w3.org/2000/svg";
  const METRES_PER_MILE = 1609.344;

  // The same rule as bot.core.parsing.format_distance.
  function formatDistance(metres) {
    if (!Number.isFinite(metres)) return "?";
    if (units === "km" && Math.round(Math.abs(metres)) < 1000) return Math.round(metres) + " m";
    const per = units === "mi" ? METRES_PER_MILE : 1000;
    return (metres / per).toFixed(2) + " " + units;
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Bars in an SVG (the 30 nights): items are {label, metres, title, cls}.
  function bars(area, items) {
    area.replaceChildren();
    if (!items.length) {
      const empty = document.createElement("p");
      empty.className = "hint";
      empty.textContent = "Nothing to show yet.";
      area.append(empty);
      return;
    }
    const most = Math.max(1, ...items.map((item) => item.metres));
    const width = 600, height = 220, top = 20, bottom = 24;
    const step = width / items.length;
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "bars" });
    items.forEach((item, i) => {
      const h = ((height - top - bottom) * item.metres) / most;
      const bar = el("rect", { x: i * step + step * 0.1, y: height - bottom - h, width: step * 0.8, height: Math.max(h, 0.5), class: item.cls });
      bar.append(el("title", {}, item.title));
      svg.append(bar);
    });
    svg.append(el("text", { x: 0, y: 14, class: "value" }, "best " + formatDistance(most)));
    svg.append(el("text", { x: 0, y: height - 6, class: "label" }, items[0].label));
    svg.append(el("text", { x: width, y: height - 6, class: "label end" }, items[items.length - 1].label));
    area.append(svg);
  }

  function setFigure(name, metric, metres) {
    for (const node of document.querySelectorAll(`[data-metric="${metric}"]`)) {
      if (node.dataset.hamster !== name) continue;
      if (metres === null || metres === undefined) {
        delete node.dataset.metres;
        node.textContent = "no data";
      } else {
        node.dataset.metres = metres.toFixed(3);
        node.textContent = formatDistance(metres);
      }
    }
  }

  function setStatus(name, online) {
    for (const node of document.querySelectorAll("[data-status]")) {
      if (node.dataset.hamster !== name) continue;
      const state = online === null ? "unknown" : online ? "online" : "offline";
      node.dataset.status = state;
      node.className = "status " + state;
      node.textContent = online === null ? "no live sensor" : online ? "sensor online" : "sensor offline";
    }
  }

  async function drawNights(area) {
    try {
      const response = await fetch(area.dataset.nights, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      bars(area, data.nights.map((night) => ({
        label: night.date,
        metres: night.distance_m ?? 0,
        title: `${night.date}: ${night.distance_m === null ? "no data" : formatDistance(night.distance_m)}`,
        cls: "hamster",
      })));
    } catch (error) {
      area.textContent = "The chart could not be loaded.";
    }
  }

  function hamsterPage() {
    document.querySelectorAll("[data-nights]").forEach(drawNights);
    const source = new EventSource("/api/live");
    source.onmessage = (message) => {
      const data = JSON.parse(message.data);
      for (const hamster of data.hamsters) {
        setFigure(hamster.name, "tonight", hamster.tonight_m);
        setFigure(hamster.name, "last_night", hamster.last_night_m);
        setFigure(hamster.name, "average_7", hamster.average_7_m);
        setFigure(hamster.name, "all_time", hamster.all_time_m);
        setStatus(hamster.name, hamster.online);
      }
      body.dataset.live = "on";
    };
  }

  function renderStandings(section, data) {
    const old = section.querySelector("[data-standings]");
    let fresh;
    if (!data.standings.length) {
      fresh = document.createElement("p");
      fresh.className = "empty";
      fresh.textContent = "Nobody has run yet.";
    } else {
      fresh = document.createElement("table");
      const caption = fresh.createCaption();
      caption.textContent = "Standings";
      const head = fresh.createTHead().insertRow();
      for (const title of ["#", "Name", "Distance"]) {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = title;
        head.append(th);
      }
      const rows = fresh.createTBody();
      let rank = 0, previous = null;
      data.standings.forEach((entry, i) => {
        const rounded = Math.round(entry.distance_m * 1000);
        if (rounded !== previous) rank = i + 1;
        previous = rounded;
        const row = rows.insertRow();
        row.dataset.standing = "";
        row.dataset.name = entry.name;
        row.dataset.kind = entry.kind;
        row.dataset.metres = entry.distance_m.toFixed(3);
        row.insertCell().textContent = String(rank);
        row.insertCell().textContent = entry.name + (entry.kind === "hamster" ? " (hamster)" : "");
        row.insertCell().textContent = formatDistance(entry.distance_m);
      });
    }
    fresh.setAttribute("data-standings", "");
    old.replaceWith(fresh);
    if (data.chart) raceLines(section.querySelector("[data-race-chart]"), data.chart.lines);
  }

  // Cumulative distance over the period, one line per runner (as /chart draws it):
  // the hamsters' lines run through their points, people's lines are steps.
  function raceLines(area, lines) {
    area.replaceChildren();
    const points = lines.flatMap((line) => line.points);
    if (!points.length) return;
    const width = 600, height = 260, left = 4, right = 4, top = 24, bottom = 8;
    const first = Math.min(...points.map((p) => p[0]));
    const last = Math.max(...points.map((p) => p[0]));
    const most = Math.max(1, ...points.map((p) => p[1]));
    const x = (t) => left + ((width - left - right) * (t - first)) / Math.max(last - first, 1);
    const y = (m) => height - bottom - ((height - top - bottom) * m) / most;
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "lines" });
    svg.append(el("text", { x: left, y: 16, class: "value" }, "top " + formatDistance(most)));
    const legend = document.createElement("ul");
    legend.className = "legend";
    let person = 0;
    lines.forEach((line) => {
      const cls = line.kind === "hamster" ? "hamster" : "p" + (person++ % 6);
      let d = "";
      line.points.forEach(([t, m], i) => {
        if (i === 0) d += `M${x(t).toFixed(1)} ${y(m).toFixed(1)}`;
        else if (line.kind === "hamster") d += `L${x(t).toFixed(1)} ${y(m).toFixed(1)}`;
        else d += `H${x(t).toFixed(1)}V${y(m).toFixed(1)}`;
      });
      const path = el("path", { d, class: cls, "data-name": line.name });
      const total = line.points.length ? line.points[line.points.length - 1][1] : 0;
      path.append(el("title", {}, `${line.name}: ${formatDistance(total)}`));
      svg.append(path);
      const item = document.createElement("li");
      item.className = cls;
      item.textContent = `${line.name}${line.kind === "hamster" ? " (hamster)" : ""}: ${formatDistance(total)}`;
      legend.append(item);
    });
    area.append(svg, legend);
  }

  function racePage() {
    const section = document.querySelector("[data-race]");
    if (!section) return;
    const token = encodeURIComponent(section.dataset.race);
    const period = encodeURIComponent(section.dataset.period);
    const source = new EventSource(`/api/race/${token}/live?period=${period}`);
    source.onmessage = (message) => {
      renderStandings(section, JSON.parse(message.data));
      body.dataset.live = "on";
    };
    // The link was turned off: show what a new visitor would see (the not-found page).
    source.addEventListener("gone", () => {
      source.close();
      window.location.reload();
    });
  }

  if (body.dataset.page === "hamsters") hamsterPage();
  if (body.dataset.page === "race") racePage();
})();
