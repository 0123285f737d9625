// Formatting and parsing of times, durations and label sets.
import type { Labels } from './api';
import { isUTC } from './settings';

const units: [string, number][] = [
  ['y', 365 * 24 * 3600 * 1000],
  ['w', 7 * 24 * 3600 * 1000],
  ['d', 24 * 3600 * 1000],
  ['h', 3600 * 1000],
  ['m', 60 * 1000],
  ['s', 1000],
  ['ms', 1],
];

/** Parses a Prometheus duration ("1h30m", "5m", "2d", "250ms") to milliseconds; null if invalid. */
export function parseDuration(s: string): number | null {
  const str = s.trim();
  if (str === '') return null;
  if (/^\d+(\.\d+)?$/.test(str)) return parseFloat(str) * 1000; // bare seconds
  const re = /(\d+)(ms|y|w|d|h|m|s)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(str)) !== null) {
    total += parseInt(m[1], 10) * units.find((u) => u[0] === m![2])![1];
    consumed = re.lastIndex;
  }
  return consumed === str.length && consumed > 0 ? total : null;
}

/** Formats milliseconds as a Prometheus duration ("1h30m"); "0s" for zero. */
export function formatDuration(ms: number): string {
  if (!isFinite(ms)) return String(ms);
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return '0s';
  let out = ms < 0 ? '-' : '';
  for (const [u, size] of units) {
    if (rest >= size) {
      out += Math.floor(rest / size) + u;
      rest %= size;
    }
  }
  return out;
}

/** Formats a duration in seconds for humans: "4.31ms", "1.2s", "3m20s". */
export function formatSeconds(sec: number): string {
  if (!isFinite(sec)) return '-';
  if (sec < 1e-3) return `${(sec * 1e6).toFixed(0)}µs`;
  if (sec < 1) return `${(sec * 1e3).toFixed(sec < 0.01 ? 2 : 1)}ms`;
  if (sec < 60) return `${sec.toFixed(2)}s`;
  return formatDuration(sec * 1000);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function parts(ms: number, utc: boolean) {
  const d = new Date(ms);
  return utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
}

/** "2024-05-01 13:04:05" in the chosen zone (UTC or local). */
export function formatTime(t: number | string | undefined, utc = isUTC()): string {
  if (t === undefined || t === '') return '-';
  const ms = typeof t === 'number' ? t : Date.parse(t);
  if (!isFinite(ms)) return String(t);
  // Go's zero time means "never".
  if (ms <= -62135596800000 + 1000) return 'never';
  const [y, mo, d, h, mi, s] = parts(ms, utc);
  return `${y}-${pad(mo)}-${pad(d)} ${pad(h)}:${pad(mi)}:${pad(s)}${utc ? ' UTC' : ''}`;
}

/** The two largest units of a duration: "3h20m", "2d4h". */
export function shortDuration(ms: number): string {
  const full = formatDuration(Math.floor(ms / 1000) * 1000);
  return (full.match(/\d+[a-z]+/g) ?? [full]).slice(0, 2).join('');
}

/** "12s ago", "in 3m", or "never". */
export function relTime(t: string | number | undefined, now = Date.now()): string {
  if (t === undefined || t === '') return 'never';
  const ms = typeof t === 'number' ? t : Date.parse(t);
  if (!isFinite(ms) || ms <= 0) return 'never';
  const diff = now - ms;
  const abs = Math.abs(diff);
  let s: string;
  if (abs < 1000) return 'just now';
  if (abs < 60_000) s = `${(abs / 1000).toFixed(abs < 10_000 ? 1 : 0)}s`;
  else s = shortDuration(abs);
  return diff >= 0 ? `${s} ago` : `in ${s}`;
}

/** The value of an <input type="datetime-local"> for an instant, in the chosen zone. */
export function toDateInput(ms: number, utc = isUTC()): string {
  const [y, mo, d, h, mi, s] = parts(ms, utc);
  return `${y}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}`;
}

/** Parses a datetime-local value ("2024-05-01T13:04[:05]") in the chosen zone; null if invalid. */
export function fromDateInput(v: string, utc = isUTC()): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?/.exec(v.trim());
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : parseInt(x, 10)));
  const ms = utc ? Date.UTC(y, mo - 1, d, h, mi, s) : new Date(y, mo - 1, d, h, mi, s).getTime();
  return isFinite(ms) ? ms : null;
}

/** The series notation: `name{a="b", c="d"}` with label values escaped as PromQL strings. */
export function formatSeries(labels: Labels, omitName = false): string {
  const name = labels.__name__ ?? '';
  const rest = Object.entries(labels)
    .filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  if (omitName) return `{${rest.join(', ')}}`;
  if (rest.length === 0) return name === '' ? '{}' : name;
  return `${name}{${rest.join(', ')}}`;
}

/** Sorted label entries with __name__ first. */
export function labelEntries(labels: Labels | undefined): [string, string][] {
  return Object.entries(labels ?? {}).sort(([a], [b]) =>
    a === '__name__' ? -1 : b === '__name__' ? 1 : a === 'alertname' ? -1 : b === 'alertname' ? 1 : a.localeCompare(b),
  );
}

/** Formats a numeric sample value string the way Prometheus prints it, shortened. */
export function formatValue(v: string): string {
  const n = Number(v);
  if (!isFinite(n) || v.length < 14) return v;
  return String(parseFloat(n.toPrecision(12)));
}
