// The query page's state lives in the URL query string, in Prometheus' own parameter names so
// links from Prometheus (and Watchfire's generatorURL) work here:
//   g<N>.expr, g<N>.tab (0 = graph, 1 = table; "graph"/"table" accepted),
//   g<N>.range_input (1h), g<N>.end_input ("YYYY-MM-DD HH:mm:ss", UTC; absent = now),
//   g<N>.moment_input (table evaluation time, same format), g<N>.step_input (seconds or a
//   duration; absent = automatic), g<N>.stacked=1 (also accepted: g<N>.display_mode=stacked).

export type Tab = 'table' | 'graph';

export interface PanelState {
  key: number; // stable identity for rendering only; not in the URL
  expr: string;
  tab: Tab;
  range: string;
  end: number | null; // ms since epoch; null = now
  moment: number | null; // ms since epoch; null = now
  step: string; // '' = automatic
  stacked: boolean;
}

let nextKey = 1;
export function newPanel(expr = ''): PanelState {
  return { key: nextKey++, expr, tab: 'table', range: '1h', end: null, moment: null, step: '', stacked: false };
}

const pad = (n: number) => String(n).padStart(2, '0');

/** "2024-05-01 13:04:05" in UTC, as Prometheus writes end_input and moment_input. */
export function formatURLTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** Reads a time parameter: "YYYY-MM-DD HH:mm:ss" (UTC), an RFC 3339 string or unix seconds. */
export function parseURLTime(v: string | null): number | null {
  if (!v) return null;
  if (/^\d+(\.\d+)?$/.test(v)) return parseFloat(v) * 1000;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v.trim());
  if (m) {
    const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x ? parseInt(x, 10) : 0));
    return Date.UTC(y, mo - 1, d, h, mi, s);
  }
  const t = Date.parse(v);
  return isFinite(t) ? t : null;
}

export function panelsFromURL(search: string): PanelState[] {
  const q = new URLSearchParams(search);
  const indices = new Set<number>();
  for (const k of q.keys()) {
    const m = /^g(\d+)\./.exec(k);
    if (m) indices.add(parseInt(m[1], 10));
  }
  const panels = [...indices]
    .sort((a, b) => a - b)
    .map((i) => {
      const get = (name: string) => q.get(`g${i}.${name}`);
      const p = newPanel(get('expr') ?? '');
      const tab = get('tab');
      p.tab = tab === '0' || tab === 'graph' ? 'graph' : 'table';
      p.range = get('range_input') || '1h';
      p.end = parseURLTime(get('end_input'));
      p.moment = parseURLTime(get('moment_input'));
      p.step = get('step_input') ?? '';
      p.stacked = get('stacked') === '1' || get('stacked') === 'true' || get('display_mode') === 'stacked';
      return p;
    });
  return panels.length ? panels : [newPanel()];
}

export function panelsToURL(panels: PanelState[]): URLSearchParams {
  const q = new URLSearchParams();
  panels.forEach((p, i) => {
    q.set(`g${i}.expr`, p.expr);
    q.set(`g${i}.tab`, p.tab === 'graph' ? '0' : '1');
    q.set(`g${i}.range_input`, p.range);
    if (p.end !== null) q.set(`g${i}.end_input`, formatURLTime(p.end));
    if (p.moment !== null) q.set(`g${i}.moment_input`, formatURLTime(p.moment));
    if (p.step !== '') q.set(`g${i}.step_input`, p.step);
    if (p.stacked) q.set(`g${i}.stacked`, '1');
  });
  return q;
}
