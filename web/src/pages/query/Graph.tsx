// The graph view of a range query: uPlot, with a legend that toggles series, a hover tooltip
// with the values under the cursor, stacked mode, and drag-to-zoom that narrows the range.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import type { MatrixSeries } from '../../api';
import { formatSeries, formatTime, formatValue } from '../../format';
import { SeriesName } from './Table';

const palette = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf', '#3b5bdb', '#e8590c', '#2f9e44', '#c2255c', '#5f3dc4', '#0c8599',
];
export const seriesColor = (i: number) => palette[i % palette.length];

/** Sample value strings to numbers; ±Inf and NaN become gaps (uPlot cannot scale them). */
function num(v: string): number | null {
  const n = Number(v);
  return isFinite(n) ? n : null;
}

/** Compact axis numbers: 1.5k, 2M, 0.001. */
function axisNum(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  const si: [number, string][] = [
    [1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k'],
  ];
  for (const [f, s] of si) if (a >= f) return `${parseFloat((v / f).toPrecision(4))}${s}`;
  if (a < 1e-3) return v.toExponential(1);
  return String(parseFloat(v.toPrecision(4)));
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

export interface GraphProps {
  series: MatrixSeries[];
  start: number; // seconds
  end: number; // seconds
  step: number; // seconds
  stacked: boolean;
  utc: boolean;
  theme: string;
  onZoom: (start: number, end: number) => void;
}

export function Graph(props: GraphProps) {
  const { series, start, end, step, stacked } = props;
  const host = useRef<HTMLDivElement>(null);
  const tip = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [hidden, setHidden] = useState<Set<number>>(new Set());
  const onZoom = useRef(props.onZoom);
  onZoom.current = props.onZoom;

  // A new result resets the hidden set.
  useEffect(() => setHidden(new Set()), [series]);

  // Aligned data: one x array (start, start+step, ...) and one y array per series.
  const { xs, raw, points } = useMemo(() => {
    const n = Math.max(1, Math.floor((end - start) / step + 1e-9) + 1);
    const xs = Array.from({ length: n }, (_, i) => start + i * step);
    let points = 0;
    const raw = series.map((s) => {
      const ys: (number | null)[] = new Array(n).fill(null);
      for (const [t, v] of s.values ?? []) {
        const i = Math.round((t - start) / step);
        if (i >= 0 && i < n) {
          ys[i] = num(v);
          if (ys[i] !== null) points++;
        }
      }
      return ys;
    });
    return { xs, raw, points };
  }, [series, start, end, step]);

  useEffect(() => {
    const el = host.current!;
    // Stacked: each visible series is drawn at the running sum of those before it, and a band
    // fills between it and the previous visible one. Hover values show the raw numbers.
    const acc: number[] = new Array(xs.length).fill(0);
    const drawn = raw.map((ys, i) => {
      if (!stacked || hidden.has(i)) return ys;
      return ys.map((v, j) => (v === null ? null : (acc[j] += v)));
    });
    const bands: uPlot.Band[] = [];
    if (stacked) {
      let prev = -1;
      raw.forEach((_, i) => {
        if (hidden.has(i)) return;
        if (prev >= 0) bands.push({ series: [i + 1, prev + 1] });
        prev = i;
      });
    }
    const fg = cssVar('--fg-muted');
    const grid = cssVar('--grid');
    const axis = (extra: Partial<uPlot.Axis>): uPlot.Axis => ({
      stroke: fg,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      ...extra,
    });
    let focused: number | null = null;
    const width = Math.max(200, el.clientWidth);
    const height = width < 600 ? 240 : 340;
    const opts: uPlot.Options = {
      width,
      height,
      legend: { show: false },
      tzDate: props.utc ? (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC') : (ts) => new Date(ts * 1e3),
      cursor: {
        focus: { prox: 24 },
        drag: { x: true, y: false, setScale: false },
        points: { size: 6 },
      },
      focus: { alpha: 0.35 },
      scales: { x: { time: true, range: [start, end] } },
      axes: [axis({}), axis({ size: 60, values: (_u, splits) => splits.map(axisNum) })],
      bands,
      series: [
        {},
        ...series.map((s, i) => {
          const c = seriesColor(i);
          return {
            label: formatSeries(s.metric),
            stroke: c,
            width: 1.5,
            show: !hidden.has(i),
            fill: stacked ? c + '55' : undefined,
            spanGaps: false,
            points: { show: (u: uPlot, si: number) => pointsVisible(u, si) },
          } as uPlot.Series;
        }),
      ],
      hooks: {
        setSeries: [
          (_u, si, o) => {
            if (o && 'focus' in o) focused = o.focus ? si : null;
          },
        ],
        setCursor: [(u) => renderTip(u, tip.current!, raw, focused, props.utc)],
        setSelect: [
          (u) => {
            if (u.select.width > 2) {
              const a = u.posToVal(u.select.left, 'x');
              const b = u.posToVal(u.select.left + u.select.width, 'x');
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              onZoom.current(a, b);
            }
          },
        ],
      },
    };
    const u = new uPlot(opts, [xs, ...drawn] as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (w !== u.width) u.setSize({ width: w, height: w < 600 ? 240 : 340 });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // props.theme and props.utc: colours and time axis are read at creation.
  }, [xs, raw, hidden, stacked, props.theme, props.utc]);

  const toggle = (i: number) => {
    const h = new Set(hidden);
    if (h.has(i)) h.delete(i);
    else h.add(i);
    setHidden(h);
  };

  return (
    <div class="graph" data-series={series.length - hidden.size} data-points={points}>
      <div class="graph-canvas" ref={host}>
        <div class="graph-tip" ref={tip} hidden />
      </div>
      {series.length === 0 ? (
        <div class="empty">Empty query result.</div>
      ) : (
        <div class="legend">
          {series.length > 1 && (
            <div class="legend-actions">
              <button type="button" class="link-button" onClick={() => setHidden(new Set())}>
                Show all
              </button>
              <button type="button" class="link-button" onClick={() => setHidden(new Set(series.map((_, i) => i)))}>
                Hide all
              </button>
              <span class="muted">Click a series to show or hide it.</span>
            </div>
          )}
          {series.map((s, i) => (
            <button
              type="button"
              class={`legend-item ${hidden.has(i) ? 'off' : ''}`}
              aria-pressed={!hidden.has(i)}
              onClick={() => toggle(i)}
              onMouseEnter={() => !hidden.has(i) && plot.current?.setSeries(i + 1, { focus: true })}
              onMouseLeave={() => plot.current?.setSeries(null as unknown as number, { focus: false })}
            >
              <span class="swatch" style={{ background: seriesColor(i) }} />
              <SeriesName labels={s.metric} />
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

/** Draw sample points only when they are sparse enough to see (few points per pixel). */
function pointsVisible(u: uPlot, si: number): boolean {
  const n = u.data[si]?.length ?? 0;
  return n > 0 && u.bbox.width / devicePixelRatio / n > 8;
}

/** The hover box: the time and the values at the cursor, the focused series first. */
function renderTip(u: uPlot, el: HTMLDivElement, raw: (number | null)[][], focused: number | null, utc: boolean) {
  const idx = u.cursor.idx;
  if (idx === null || idx === undefined || u.cursor.left === undefined || u.cursor.left < 0) {
    el.hidden = true;
    return;
  }
  const rows: { i: number; v: number }[] = [];
  raw.forEach((ys, i) => {
    const v = ys[idx];
    if (v !== null && u.series[i + 1].show) rows.push({ i, v });
  });
  if (rows.length === 0) {
    el.hidden = true;
    return;
  }
  rows.sort((a, b) => (a.i + 1 === focused ? -1 : b.i + 1 === focused ? 1 : b.v - a.v));
  el.replaceChildren();
  const head = document.createElement('div');
  head.className = 'tip-time';
  head.textContent = formatTime(u.data[0][idx] * 1000, utc);
  el.appendChild(head);
  const max = 10;
  for (const { i, v } of rows.slice(0, max)) {
    const row = document.createElement('div');
    row.className = 'tip-row' + (i + 1 === focused ? ' focused' : '');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = seriesColor(i);
    const name = document.createElement('span');
    name.className = 'tip-name';
    name.textContent = String(u.series[i + 1].label ?? '');
    const val = document.createElement('span');
    val.className = 'tip-value';
    val.textContent = formatValue(String(v));
    row.append(sw, name, val);
    el.appendChild(row);
  }
  if (rows.length > max) {
    const more = document.createElement('div');
    more.className = 'muted';
    more.textContent = `…and ${rows.length - max} more`;
    el.appendChild(more);
  }
  el.hidden = false;
  // Keep the box inside the plot: flip to the left of the cursor in the right half.
  const left = u.cursor.left + u.over.offsetLeft;
  const top = (u.cursor.top ?? 0) + u.over.offsetTop;
  const flip = u.cursor.left > u.over.clientWidth / 2;
  el.style.left = flip ? '' : `${left + 16}px`;
  el.style.right = flip ? `${u.root.clientWidth - left + 16}px` : '';
  el.style.top = `${Math.max(0, top - 10)}px`;
}
