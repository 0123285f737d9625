// Alertmanager-style matchers: `{alertname="Watchdog", severity=~"crit.*"}` or
// `alertname=Watchdog`. The API's filter= parameter takes one matcher per parameter (braces are
// refused), so a typed list is split here.
import type { AMMatcher, Labels } from './api';

export type Op = '=' | '!=' | '=~' | '!~';
export const ops: Op[] = ['=', '!=', '=~', '!~'];

export interface Matcher {
  name: string;
  op: Op;
  value: string;
}

export function opOf(m: AMMatcher): Op {
  const eq = m.isEqual ?? true;
  return m.isRegex ? (eq ? '=~' : '!~') : eq ? '=' : '!=';
}

export function fromAM(m: AMMatcher): Matcher {
  return { name: m.name, op: opOf(m), value: m.value };
}

export function toAM(m: Matcher): AMMatcher {
  return { name: m.name, value: m.value, isRegex: m.op.endsWith('~'), isEqual: !m.op.startsWith('!') };
}

/** `name="value"` with the value quoted as a Go/JSON string. */
export function formatMatcher(m: Matcher): string {
  return `${m.name}${m.op}${JSON.stringify(m.value)}`;
}

export function formatMatchers(ms: Matcher[]): string {
  return `{${ms.map(formatMatcher).join(', ')}}`;
}

/** Exact-equality matchers for every label of an alert. */
export function matchersForLabels(labels: Labels): Matcher[] {
  return Object.entries(labels).map(([name, value]) => ({ name, op: '=' as Op, value }));
}

/**
 * Parses a matcher list. Accepts optional braces, commas between matchers, quoted or bare
 * values and quoted label names. Throws an Error with a readable message when it cannot.
 */
export function parseMatchers(input: string): Matcher[] {
  let s = input.trim();
  if (s.startsWith('{')) {
    if (!s.endsWith('}')) throw new Error('missing closing "}"');
    s = s.slice(1, -1);
  }
  const out: Matcher[] = [];
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  const quoted = (): string => {
    const q = s[i];
    let j = i + 1;
    while (j < s.length && s[j] !== q) j += s[j] === '\\' ? 2 : 1;
    if (j >= s.length) throw new Error(`unterminated string at ${i + 1}`);
    const raw = s.slice(i, j + 1);
    i = j + 1;
    if (q === '"') return JSON.parse(raw) as string;
    return raw.slice(1, -1).replace(/\\(.)/g, '$1');
  };
  while (true) {
    ws();
    if (i >= s.length) break;
    let name: string;
    if (s[i] === '"' || s[i] === "'") name = quoted();
    else {
      const m = /^[^\s=!~,{}"']+/.exec(s.slice(i));
      if (!m) throw new Error(`expected a label name at position ${i + 1}`);
      name = m[0];
      i += name.length;
    }
    ws();
    const opm = /^(=~|!~|!=|=)/.exec(s.slice(i));
    if (!opm) throw new Error(`expected =, !=, =~ or !~ after "${name}"`);
    const op = opm[1] as Op;
    i += op.length;
    ws();
    let value: string;
    if (s[i] === '"' || s[i] === "'") value = quoted();
    else {
      const m = /^[^,]*/.exec(s.slice(i))!;
      value = m[0].trim();
      i += m[0].length;
    }
    if (op.endsWith('~')) {
      try {
        new RegExp(`^(?:${value})$`);
      } catch (e) {
        throw new Error(`invalid regular expression for ${name}: ${(e as Error).message}`);
      }
    }
    out.push({ name, op, value });
    ws();
    if (i < s.length) {
      if (s[i] !== ',') throw new Error(`expected "," at position ${i + 1}`);
      i++;
    }
  }
  return out;
}

/** Whether an alert's labels match every matcher (regexes anchored, as Alertmanager does). */
export function labelsMatch(labels: Labels, ms: Matcher[]): boolean {
  return ms.every((m) => {
    const v = labels[m.name] ?? '';
    switch (m.op) {
      case '=':
        return v === m.value;
      case '!=':
        return v !== m.value;
      case '=~':
      case '!~': {
        let ok: boolean;
        try {
          ok = new RegExp(`^(?:${m.value})$`).test(v);
        } catch {
          return false;
        }
        return m.op === '=~' ? ok : !ok;
      }
    }
  });
}
