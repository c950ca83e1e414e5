/**
 * Minimal SVG charts for the benchmark report, written by hand (no dependencies): horizontal
 * bars with min–max whiskers, empirical CDFs, line charts over a few x values, and stacked bars.
 * Log or linear axes with 1-2-5 ticks. Output is a standalone SVG document.
 */

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#e7ba52'];
export const color = (i: number): string => PALETTE[i % PALETTE.length]!;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (x: number) => (Math.round(x * 10) / 10).toString();

/** A number as a short label: 1.5, 12, 3.4k, 120k, 1.2M. */
export function short(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 100) return `${Math.round(v)}`;
  if (a >= 10) return `${+v.toFixed(1)}`;
  return `${+v.toPrecision(2)}`;
}

interface Scale {
  (v: number): number;
  ticks: number[];
  /** Ticks that get a label (all of them on linear axes; fewer on wide log axes). */
  labelled: Set<number>;
}

function logScale(min: number, max: number, a: number, b: number): Scale {
  const lo = Math.log10(Math.max(min, 1e-9));
  const hi = Math.log10(Math.max(max, min * 10));
  const lo2 = Math.floor(lo);
  const hi2 = Math.ceil(hi);
  const s = ((v: number) => a + ((Math.log10(Math.max(v, 1e-9)) - lo2) / (hi2 - lo2)) * (b - a)) as Scale;
  s.ticks = [];
  s.labelled = new Set();
  const decades = hi2 - lo2;
  // Label 1-2-5 on narrow axes, 1-5 on medium ones, powers of ten on wide ones.
  const labelled = decades <= 2 ? [1, 2, 5] : decades <= 4 ? [1, 5] : [1];
  for (let e = lo2; e <= hi2; e++) {
    for (const m of [1, 2, 5]) {
      const t = +(m * 10 ** e).toPrecision(6);
      if (t > 10 ** hi2 * (1 + 1e-9)) continue;
      s.ticks.push(t);
      if (labelled.includes(m)) s.labelled.add(t);
    }
  }
  return s;
}

function linScale(min: number, max: number, a: number, b: number): Scale {
  const span = max - min || Math.abs(max) || 1;
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw)!;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const s = ((v: number) => a + ((v - lo) / (hi - lo || 1)) * (b - a)) as Scale;
  s.ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) s.ticks.push(+v.toPrecision(12));
  s.labelled = new Set(s.ticks);
  return s;
}

function doc(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Legend entries laid out left to right, wrapping before `maxX`; returns the SVG and its rows. */
function legend(items: Array<{ label: string; color: string; dashed?: boolean }>, x: number, y: number, maxX = 740): { svg: string[]; rows: number } {
  const out: string[] = [];
  let cx = x;
  let cy = y;
  let rows = 1;
  for (const it of items) {
    const w = 30 + it.label.length * 6.3;
    if (cx + w > maxX && cx > x) {
      cx = x;
      cy += 18;
      rows++;
    }
    out.push(`<line x1="${cx}" y1="${cy}" x2="${cx + 18}" y2="${cy}" stroke="${it.color}" stroke-width="3"${it.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    out.push(`<text x="${cx + 22}" y="${cy + 4}">${esc(it.label)}</text>`);
    cx += w;
  }
  return { svg: out, rows };
}

/** Rows a legend will need (to size the drawing before laying it out). */
function legendRows(labels: string[], x: number, maxX = 740): number {
  return legend(
    labels.map((label) => ({ label, color: '' })),
    x,
    0,
    maxX,
  ).rows;
}

export interface Bar {
  label: string;
  value: number;
  min?: number;
  max?: number;
  color?: string;
  note?: string;
}

/** Horizontal bars (grouped), median with a min–max whisker; optional vertical reference lines. */
export function barChart(o: {
  title: string;
  unit: string;
  log?: boolean;
  groups: Array<{ label: string; bars: Bar[] }>;
  refs?: Array<{ value: number; label: string }>;
}): string {
  const labelW = 190;
  const width = 760;
  const barH = 18;
  const gap = 6;
  const groupGap = 26;
  const top = 40;
  const rows = o.groups.reduce((n, g) => n + g.bars.length, 0);
  const plotH = rows * (barH + gap) + o.groups.length * groupGap;
  const height = top + plotH + 50;
  const all = o.groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.min ?? b.value, b.max ?? b.value])).filter((v) => v > 0);
  const x0 = labelW;
  const x1 = width - 70;
  const sx = o.log ? logScale(Math.min(...all) * 0.8, Math.max(...all) * 1.1, x0, x1) : linScale(0, Math.max(...all) * 1.05, x0, x1);
  const body: string[] = [];
  for (const t of sx.ticks) {
    const x = sx(t);
    if (x < x0 - 0.5 || x > x1 + 0.5) continue;
    body.push(`<line x1="${f(x)}" y1="${top}" x2="${f(x)}" y2="${top + plotH}" stroke="${sx.labelled.has(t) ? '#ccc' : '#eee'}"/>`);
    if (sx.labelled.has(t)) body.push(`<text x="${f(x)}" y="${top + plotH + 14}" text-anchor="middle" fill="#555">${short(t)}</text>`);
  }
  body.push(`<text x="${(x0 + x1) / 2}" y="${top + plotH + 32}" text-anchor="middle">${esc(o.unit)}${o.log ? ' (log scale)' : ''}</text>`);
  let y = top;
  o.groups.forEach((g) => {
    y += groupGap - 6;
    body.push(`<text x="8" y="${y - 4}" font-weight="bold">${esc(g.label)}</text>`);
    g.bars.forEach((b, i) => {
      const c = b.color ?? color(i);
      const w = Math.max(1, sx(b.value) - x0);
      body.push(`<rect x="${x0}" y="${y}" width="${f(w)}" height="${barH}" fill="${c}" opacity="0.85"/>`);
      body.push(`<text x="${x0 - 6}" y="${y + barH / 2 + 4}" text-anchor="end">${esc(b.label)}</text>`);
      if (b.min !== undefined && b.max !== undefined) {
        const a = sx(b.min);
        const z = sx(b.max);
        const cy = y + barH / 2;
        body.push(`<line x1="${f(a)}" y1="${cy}" x2="${f(z)}" y2="${cy}" stroke="black"/>`);
        body.push(
          `<line x1="${f(a)}" y1="${cy - 4}" x2="${f(a)}" y2="${cy + 4}" stroke="black"/><line x1="${f(z)}" y1="${cy - 4}" x2="${f(z)}" y2="${cy + 4}" stroke="black"/>`,
        );
      }
      const tx = Math.max(x0 + w, b.max !== undefined ? sx(b.max) : 0) + 5;
      body.push(`<text x="${f(tx)}" y="${y + barH / 2 + 4}" fill="#222">${short(b.value)}${b.note ? ` ${esc(b.note)}` : ''}</text>`);
      y += barH + gap;
    });
  });
  (o.refs ?? []).forEach((r, i) => {
    const x = sx(r.value);
    body.push(`<line x1="${f(x)}" y1="${top}" x2="${f(x)}" y2="${top + plotH}" stroke="#d62728" stroke-dasharray="4,3"/>`);
    body.push(`<text x="${f(x)}" y="${top + 10 + i * 14}" fill="#d62728" text-anchor="middle">${esc(r.label)}</text>`);
  });
  return doc(width, height, o.title, body);
}

/** Empirical CDFs of several samples on one (log or linear) x axis, with vertical reference lines. */
export function cdfChart(o: {
  title: string;
  xLabel: string;
  log?: boolean;
  series: Array<{ label: string; values: number[]; color?: string; dashed?: boolean }>;
  refs?: Array<{ value: number; label: string }>;
}): string {
  const width = 760;
  const left = 60;
  const right = width - 20;
  const labels = o.series.map((s) => `${s.label} (n=${s.values.length})`);
  const height = 340 + legendRows(labels, left) * 18;
  const top = 40;
  const bottom = 300;
  const all = o.series.flatMap((s) => s.values).filter((v) => v > 0);
  const refs = (o.refs ?? []).map((r) => r.value);
  const lo = Math.min(...all, ...refs);
  const hi = Math.max(...all, ...refs);
  const sx = o.log ? logScale(lo * 0.9, hi * 1.1, left, right) : linScale(0, hi * 1.05, left, right);
  const sy = (p: number) => bottom - p * (bottom - top);
  const body: string[] = [];
  for (const t of sx.ticks) {
    const x = sx(t);
    if (x < left - 0.5 || x > right + 0.5) continue;
    body.push(`<line x1="${f(x)}" y1="${top}" x2="${f(x)}" y2="${bottom}" stroke="${sx.labelled.has(t) ? '#ddd' : '#f0f0f0'}"/>`);
    if (sx.labelled.has(t)) body.push(`<text x="${f(x)}" y="${bottom + 14}" text-anchor="middle" fill="#555">${short(t)}</text>`);
  }
  for (const p of [0, 0.25, 0.5, 0.75, 0.9, 0.99]) {
    body.push(`<line x1="${left}" y1="${f(sy(p))}" x2="${right}" y2="${f(sy(p))}" stroke="${p === 0.5 || p === 0.99 ? '#bbb' : '#eee'}"/>`);
    body.push(`<text x="${left - 6}" y="${f(sy(p) + 4)}" text-anchor="end" fill="#555">${p === 0.5 ? 'p50' : p === 0.99 ? 'p99' : p}</text>`);
  }
  body.push(`<text transform="translate(14,${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" fill="#555">share ≤ x</text>`);
  body.push(`<text x="${(left + right) / 2}" y="${bottom + 32}" text-anchor="middle">${esc(o.xLabel)}${o.log ? ' (log scale)' : ''}</text>`);
  o.series.forEach((s, i) => {
    const c = s.color ?? color(i);
    const v = [...s.values].sort((a, b) => a - b);
    if (!v.length) return;
    let d = `M${f(sx(v[0]!))},${f(sy(0))}`;
    v.forEach((x, j) => {
      d += ` L${f(sx(x))},${f(sy(j / v.length))} L${f(sx(x))},${f(sy((j + 1) / v.length))}`;
    });
    body.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
  });
  (o.refs ?? []).forEach((r, i) => {
    const x = sx(r.value);
    body.push(`<line x1="${f(x)}" y1="${top}" x2="${f(x)}" y2="${bottom}" stroke="#d62728" stroke-dasharray="4,3"/>`);
    body.push(`<text x="${f(x + 3)}" y="${top + 12 + i * 14}" fill="#d62728">${esc(r.label)}</text>`);
  });
  body.push(
    ...legend(
      o.series.map((s, i) => ({ label: labels[i]!, color: s.color ?? color(i), dashed: s.dashed })),
      left,
      bottom + 52,
    ).svg,
  );
  return doc(width, height, o.title, body);
}

export interface LinePoint {
  x: number;
  y: number;
  min?: number;
  max?: number;
}

/** Lines over a few x values (placed evenly, labelled), with whiskers and horizontal reference lines. */
export function lineChart(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  xs: number[];
  series: Array<{ label: string; points: LinePoint[]; color?: string; dashed?: boolean }>;
  refs?: Array<{ value: number; label: string }>;
  yFromZero?: boolean;
  /** A second line under each x value (e.g. a count behind it). */
  xNotes?: Record<number, string>;
}): string {
  const width = 760;
  const left = 80;
  const right = width - 30;
  const height =
    350 +
    legendRows(
      o.series.map((s) => s.label),
      left,
    ) *
      18;
  const top = 40;
  const bottom = 290;
  const ys = o.series.flatMap((s) => s.points.flatMap((p) => [p.y, p.min ?? p.y, p.max ?? p.y]));
  const refs = (o.refs ?? []).map((r) => r.value);
  const sy0 = linScale(o.yFromZero === false ? Math.min(...ys, ...refs) * 0.9 : 0, Math.max(...ys, ...refs) * 1.08, bottom, top);
  const xpos = (x: number) => left + 40 + (o.xs.indexOf(x) / Math.max(1, o.xs.length - 1)) * (right - left - 80);
  const body: string[] = [];
  for (const t of sy0.ticks) {
    const y = sy0(t);
    if (y > bottom + 0.5 || y < top - 0.5) continue;
    body.push(`<line x1="${left}" y1="${f(y)}" x2="${right}" y2="${f(y)}" stroke="#e5e5e5"/>`);
    body.push(`<text x="${left - 6}" y="${f(y + 4)}" text-anchor="end" fill="#555">${short(t)}</text>`);
  }
  for (const x of o.xs) {
    body.push(`<text x="${f(xpos(x))}" y="${bottom + 16}" text-anchor="middle" fill="#333">${x}</text>`);
    const note = o.xNotes?.[x];
    if (note) body.push(`<text x="${f(xpos(x))}" y="${bottom + 30}" text-anchor="middle" fill="#777" font-size="11">${esc(note)}</text>`);
  }
  body.push(`<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#999"/>`);
  body.push(`<text x="${(left + right) / 2}" y="${bottom + 48}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  body.push(`<text transform="translate(16,${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  for (const r of o.refs ?? []) {
    const y = sy0(r.value);
    body.push(`<line x1="${left}" y1="${f(y)}" x2="${right}" y2="${f(y)}" stroke="#d62728" stroke-dasharray="4,3"/>`);
    body.push(`<text x="${right - 4}" y="${f(y - 4)}" fill="#d62728" text-anchor="end">${esc(r.label)}</text>`);
  }
  o.series.forEach((s, i) => {
    const c = s.color ?? color(i);
    const pts = s.points.filter((p) => o.xs.includes(p.x));
    body.push(
      `<polyline points="${pts.map((p) => `${f(xpos(p.x))},${f(sy0(p.y))}`).join(' ')}" fill="none" stroke="${c}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`,
    );
    for (const p of pts) {
      const x = xpos(p.x);
      if (p.min !== undefined && p.max !== undefined)
        body.push(`<line x1="${f(x)}" y1="${f(sy0(p.min))}" x2="${f(x)}" y2="${f(sy0(p.max))}" stroke="${c}" stroke-width="1.5"/>`);
      body.push(`<circle cx="${f(x)}" cy="${f(sy0(p.y))}" r="4" fill="${c}"/>`);
      body.push(`<text x="${f(x + 7)}" y="${f(sy0(p.y) - 6)}" fill="${c}">${short(p.y)}</text>`);
    }
  });
  body.push(
    ...legend(
      o.series.map((s, i) => ({ label: s.label, color: s.color ?? color(i), dashed: s.dashed })),
      left,
      bottom + 70,
    ).svg,
  );
  return doc(width, height, o.title, body);
}

/** Horizontal stacked bars: where the time of each row goes. */
export function stackedBars(o: { title: string; unit: string; rows: Array<{ label: string; parts: Record<string, number> }> }): string {
  const width = 760;
  const labelW = 170;
  const barH = 22;
  const top = 40;
  const keys = [...new Set(o.rows.flatMap((r) => Object.keys(r.parts)))];
  const legendRows = Math.ceil(keys.length / 4);
  const plotH = o.rows.length * (barH + 12);
  const height = top + plotH + 40 + legendRows * 18 + 10;
  const total = Math.max(...o.rows.map((r) => Object.values(r.parts).reduce((a, b) => a + b, 0)));
  const sx = linScale(0, total * 1.02, labelW, width - 60);
  const body: string[] = [];
  for (const t of sx.ticks) {
    const x = sx(t);
    if (x > width - 59) continue;
    body.push(`<line x1="${f(x)}" y1="${top}" x2="${f(x)}" y2="${top + plotH}" stroke="#e5e5e5"/>`);
    body.push(`<text x="${f(x)}" y="${top + plotH + 14}" text-anchor="middle" fill="#555">${short(t)}</text>`);
  }
  body.push(`<text x="${(labelW + width - 60) / 2}" y="${top + plotH + 30}" text-anchor="middle">${esc(o.unit)}</text>`);
  o.rows.forEach((r, i) => {
    const y = top + i * (barH + 12) + 4;
    body.push(`<text x="${labelW - 6}" y="${y + barH / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`);
    let x = labelW;
    let sum = 0;
    for (const k of keys) {
      const v = r.parts[k] ?? 0;
      if (v <= 0) continue;
      const w = sx(sum + v) - sx(sum);
      body.push(
        `<rect x="${f(x)}" y="${y}" width="${f(w)}" height="${barH}" fill="${color(keys.indexOf(k))}"><title>${esc(`${k}: ${short(v)}`)}</title></rect>`,
      );
      if (w > 26) body.push(`<text x="${f(x + w / 2)}" y="${y + barH / 2 + 4}" text-anchor="middle" fill="white" font-size="10">${short(v)}</text>`);
      x += w;
      sum += v;
    }
    body.push(`<text x="${f(x + 5)}" y="${y + barH / 2 + 4}">${short(sum)}</text>`);
  });
  keys.forEach((k, i) => {
    const lx = 20 + (i % 4) * 185;
    const ly = top + plotH + 48 + Math.floor(i / 4) * 18;
    body.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="12" fill="${color(i)}"/><text x="${lx + 16}" y="${ly + 1}">${esc(k)}</text>`);
  });
  return doc(width, height, o.title, body);
}
