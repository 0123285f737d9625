// A tiny History-API router. Paths are relative to <base href> (e.g. "silences/new"), so the
// same build works at "/" and under a route prefix such as "/prom/".
import type { ComponentChildren, TargetedMouseEvent } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** The path of the base, e.g. "/" or "/prom/". */
export function basePath(): string {
  return new URL(document.baseURI).pathname;
}

/** The current page path relative to the base, without a leading slash. */
export function currentPath(): string {
  const base = basePath();
  const p = window.location.pathname;
  if (p.startsWith(base)) return decodeURIComponent(p.slice(base.length));
  // Outside the base (should not happen): fall back to the last segments.
  return p.replace(/^\/+/, '');
}

/** The absolute href of a page path (relative to the base), with an optional query string. */
export function pageHref(path: string, search?: string | URLSearchParams): string {
  const url = new URL(path, document.baseURI);
  const s = search === undefined ? '' : String(search);
  url.search = s;
  return url.pathname + url.search;
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

/** Navigate to a page path (relative to the base). */
export function navigate(path: string, search?: string | URLSearchParams, replace = false): void {
  const href = pageHref(path, search);
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  window.scrollTo(0, 0);
  listeners.forEach((l) => l());
}

/** Replace only the query string of the current page (no re-route, no scroll). */
export function replaceSearch(search: URLSearchParams): void {
  const url = new URL(window.location.href);
  url.search = search.toString();
  if (url.href !== window.location.href) history.replaceState(null, '', url.pathname + url.search);
}

/** Re-renders on every navigation; returns the current path and search string. */
export function useLocation(): { path: string; search: string } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((t) => t + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return { path: currentPath(), search: window.location.search };
}

/** An in-app link: a real href (so open-in-new-tab works) with client-side navigation. */
export function Link(props: {
  to: string;
  search?: string;
  children: ComponentChildren;
  class?: string;
  title?: string;
  role?: 'menuitem' | 'link' | 'tab';
  onClick?: (e: TargetedMouseEvent<HTMLAnchorElement>) => void;
}) {
  const { to, search, children, onClick, ...rest } = props;
  const href = pageHref(to, search);
  return (
    <a
      {...rest}
      href={href}
      onClick={(e: TargetedMouseEvent<HTMLAnchorElement>) => {
        onClick?.(e);
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to, search);
      }}
    >
      {children}
    </a>
  );
}
