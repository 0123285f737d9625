// User settings kept in localStorage: theme and whether times are shown in UTC.
import { useEffect, useState } from 'preact/hooks';

type Theme = 'light' | 'dark';

function load(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
function save(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* private mode: not remembered */
  }
}

const media = window.matchMedia?.('(prefers-color-scheme: dark)');

export function currentTheme(): Theme {
  const t = load('watchfire.theme');
  if (t === 'light' || t === 'dark') return t;
  return media?.matches ? 'dark' : 'light';
}

export function applyTheme(): void {
  document.documentElement.dataset.theme = currentTheme();
}

const listeners = new Set<() => void>();
function notify() {
  applyTheme();
  listeners.forEach((l) => l());
}
media?.addEventListener?.('change', notify);

export function setTheme(t: Theme): void {
  save('watchfire.theme', t);
  notify();
}

/** Times are shown in the browser's zone unless the user picked UTC. */
export function isUTC(): boolean {
  return load('watchfire.utc') === '1';
}
export function setUTC(on: boolean): void {
  save('watchfire.utc', on ? '1' : '0');
  notify();
}

/** Re-renders the caller when a setting changes; returns [theme, utc]. */
export function useSettings(): [Theme, boolean] {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((t) => t + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return [currentTheme(), isUTC()];
}

/** A remembered text value (e.g. the silence creator). */
export const remembered = { load, save };
