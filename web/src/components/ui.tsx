// Small shared pieces: page header, error and loading boxes, label badges, state badges.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Labels } from '../api';
import type { Fetched } from '../hooks';
import { labelEntries } from '../format';

export function PageHeader(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <h1>{props.title}</h1>
      {props.children && <div class="page-actions">{props.children}</div>}
    </div>
  );
}

export function ErrorBox(props: { error: Error | string; title?: string }) {
  const msg = typeof props.error === 'string' ? props.error : props.error.message;
  return (
    <div class="alert-box error" role="alert">
      <strong>{props.title ?? 'Error'}:</strong> {msg}
    </div>
  );
}

export function Notes(props: { warnings?: string[]; infos?: string[] }) {
  return (
    <>
      {(props.warnings ?? []).map((w) => (
        <div class="alert-box warning" role="status">
          <strong>Warning:</strong> {w}
        </div>
      ))}
      {(props.infos ?? []).map((w) => (
        <div class="alert-box info" role="status">
          <strong>Info:</strong> {w}
        </div>
      ))}
    </>
  );
}

export function Loading(props: { what?: string }) {
  return (
    <div class="loading" aria-busy="true">
      <span class="spinner" /> Loading{props.what ? ` ${props.what}` : ''}…
    </div>
  );
}

/** Shows the error, a spinner on the first load, or the content once data is there. */
export function Loaded<T>(props: { f: Fetched<T>; what?: string; children: (data: T) => ComponentChildren }) {
  const { f } = props;
  return (
    <>
      {f.error && <ErrorBox error={f.error} title={`Could not load ${props.what ?? 'data'}`} />}
      {f.data === undefined ? f.loading ? <Loading what={props.what} /> : null : props.children(f.data)}
    </>
  );
}

export function LabelBadges(props: { labels?: Labels; omit?: string[]; onClick?: (name: string, value: string) => void }) {
  const entries = labelEntries(props.labels).filter(([k]) => !props.omit?.includes(k));
  if (entries.length === 0) return <span class="muted">no labels</span>;
  return (
    <span class="labels">
      {entries.map(([k, v]) =>
        props.onClick ? (
          <button type="button" class="label clickable" title="Filter by this label" onClick={() => props.onClick!(k, v)}>
            {k}="{v}"
          </button>
        ) : (
          <span class="label">
            {k}="{v}"
          </span>
        ),
      )}
    </span>
  );
}

const stateClass: Record<string, string> = {
  firing: 'bad',
  down: 'bad',
  err: 'bad',
  error: 'bad',
  failed: 'bad',
  critical: 'bad',
  pending: 'warn',
  unknown: 'warn',
  suppressed: 'muted',
  expired: 'muted',
  inactive: 'ok',
  up: 'ok',
  ok: 'ok',
  active: 'info',
  sent: 'ok',
};

export function StateBadge(props: { state: string; label?: string }) {
  return <span class={`badge ${stateClass[props.state] ?? 'muted'}`}>{props.label ?? props.state}</span>;
}

export function CopyButton(props: { text: string; label?: string }) {
  const [done, setDone] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.text);
      setDone('Copied');
    } catch {
      // Clipboard API needs a secure context; fall back to a hidden textarea.
      const ta = document.createElement('textarea');
      ta.value = props.text;
      document.body.appendChild(ta);
      ta.select();
      const ok = document.execCommand('copy');
      ta.remove();
      setDone(ok ? 'Copied' : 'Copy failed');
    }
    window.setTimeout(() => setDone(null), 1500);
  };
  return (
    <button type="button" class="btn" onClick={copy}>
      {done ?? props.label ?? 'Copy'}
    </button>
  );
}

/** A card with a clickable header that folds its body. */
export function Collapsible(props: {
  title: ComponentChildren;
  defaultOpen?: boolean;
  open?: boolean;
  onToggle?: (open: boolean) => void;
  children: ComponentChildren;
  class?: string;
}) {
  const [own, setOwn] = useState(props.defaultOpen ?? true);
  const open = props.open ?? own;
  const toggle = () => {
    setOwn(!open);
    props.onToggle?.(!open);
  };
  return (
    <section class={`card collapsible ${open ? 'open' : ''} ${props.class ?? ''}`}>
      <button type="button" class="card-head" aria-expanded={open} onClick={toggle}>
        <span class="chevron" aria-hidden="true">
          ▸
        </span>
        {props.title}
      </button>
      {open && <div class="card-body">{props.children}</div>}
    </section>
  );
}

export function Empty(props: { children: ComponentChildren }) {
  return <div class="empty">{props.children}</div>;
}

/** A text input for filtering lists. */
export function SearchBox(props: { value: string; onInput: (v: string) => void; placeholder?: string; label?: string }) {
  return (
    <input
      type="search"
      class="input search"
      aria-label={props.label ?? props.placeholder ?? 'Filter'}
      placeholder={props.placeholder ?? 'Filter'}
      value={props.value}
      onInput={(e) => props.onInput((e.target as HTMLInputElement).value)}
    />
  );
}
