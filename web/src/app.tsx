// The shell: top navigation, theme and time-zone toggles, and the page switch.
import { useEffect, useState } from 'preact/hooks';
import type { ComponentType } from 'preact';
import { Link, navigate, useLocation } from './router';
import { setTheme, setUTC, useSettings } from './settings';
import { ErrorBoundary } from './components/ErrorBoundary';
import { QueryPage } from './pages/query/QueryPage';
import { AlertsPage } from './pages/Alerts';
import { AlertGroupsPage } from './pages/AlertGroups';
import { SilencesPage } from './pages/Silences';
import { SilenceEditPage } from './pages/SilenceEdit';
import { NotificationsPage } from './pages/Notifications';
import { TargetsPage } from './pages/Targets';
import { ServiceDiscoveryPage } from './pages/ServiceDiscovery';
import { RulesPage } from './pages/Rules';
import { ConfigPage, FlagsPage, StatusPage, TSDBStatusPage } from './pages/Status';
import { PageHeader } from './components/ui';

interface NavItem {
  path: string;
  title: string;
}
const alertmanagerItems: NavItem[] = [
  { path: 'alertmanager', title: 'Alert groups' },
  { path: 'silences', title: 'Silences' },
  { path: 'notifications', title: 'Notifications' },
];
const statusItems: NavItem[] = [
  { path: 'targets', title: 'Targets' },
  { path: 'service-discovery', title: 'Service discovery' },
  { path: 'rules', title: 'Rules' },
  { path: 'status', title: 'Runtime & build information' },
  { path: 'tsdb-status', title: 'TSDB status' },
  { path: 'flags', title: 'Command-line flags' },
  { path: 'config', title: 'Configuration' },
];

/** Page path → component and document title. `silences/<id>` is matched separately. */
const pages: Record<string, [ComponentType, string]> = {
  query: [QueryPage, 'Query'],
  alerts: [AlertsPage, 'Alerts'],
  alertmanager: [AlertGroupsPage, 'Alert groups'],
  silences: [SilencesPage, 'Silences'],
  'silences/new': [SilenceEditPage, 'New silence'],
  notifications: [NotificationsPage, 'Notifications'],
  targets: [TargetsPage, 'Targets'],
  'service-discovery': [ServiceDiscoveryPage, 'Service discovery'],
  rules: [RulesPage, 'Rules'],
  status: [StatusPage, 'Runtime & build information'],
  'tsdb-status': [TSDBStatusPage, 'TSDB status'],
  flags: [FlagsPage, 'Command-line flags'],
  config: [ConfigPage, 'Configuration'],
};

function resolve(path: string): [ComponentType, string] | null {
  const p = path.replace(/\/+$/, '');
  if (pages[p]) return pages[p];
  if (/^silences\/[^/]+$/.test(p)) return [SilenceEditPage, 'Silence'];
  return null;
}

function Dropdown(props: { title: string; items: NavItem[]; path: string; onPick: () => void }) {
  const [open, setOpen] = useState(false);
  const active = props.items.some((i) => props.path === i.path || props.path.startsWith(i.path + '/'));
  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => {
      if (!(e.target as Element).closest?.('.dropdown')) setOpen(false);
    };
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('click', close);
    document.addEventListener('keydown', esc);
    return () => {
      document.removeEventListener('click', close);
      document.removeEventListener('keydown', esc);
    };
  }, [open]);
  return (
    <div class={`dropdown ${open ? 'open' : ''}`}>
      <button type="button" class={`nav-link dropdown-toggle ${active ? 'active' : ''}`} aria-expanded={open} onClick={() => setOpen(!open)}>
        {props.title} <span aria-hidden="true">▾</span>
      </button>
      <div class="menu" role="menu">
        <div class="menu-title">{props.title}</div>
        {props.items.map((i) => (
          <Link
            to={i.path}
            role="menuitem"
            class={`menu-item ${props.path === i.path ? 'active' : ''}`}
            onClick={() => {
              setOpen(false);
              props.onPick();
            }}
          >
            {i.title}
          </Link>
        ))}
      </div>
    </div>
  );
}

function Nav(props: { path: string }) {
  const [theme, utc] = useSettings();
  const [menuOpen, setMenuOpen] = useState(false);
  const close = () => setMenuOpen(false);
  const top = (path: string, title: string) => (
    <Link to={path} class={`nav-link ${props.path === path || (path === 'query' && props.path === 'graph') ? 'active' : ''}`} onClick={close}>
      {title}
    </Link>
  );
  return (
    <header class="topbar">
      <nav class={`nav ${menuOpen ? 'menu-open' : ''}`} aria-label="Main">
        <Link to="query" class="brand" onClick={close}>
          <img src="favicon.svg" alt="" width={22} height={22} />
          Watchfire
        </Link>
        <button
          type="button"
          class="menu-button"
          aria-label="Menu"
          aria-expanded={menuOpen}
          onClick={() => setMenuOpen(!menuOpen)}
        >
          <span class="bars" aria-hidden="true" />
        </button>
        <div class="nav-links">
          {top('query', 'Query')}
          {top('alerts', 'Alerts')}
          <Dropdown title="Alertmanager" items={alertmanagerItems} path={props.path} onPick={close} />
          <Dropdown title="Status" items={statusItems} path={props.path} onPick={close} />
          <span class="spacer" />
          <button
            type="button"
            class="nav-link toggle"
            title="Show times in UTC or in the browser's time zone"
            aria-pressed={utc}
            onClick={() => setUTC(!utc)}
          >
            {utc ? 'UTC' : 'Local time'}
          </button>
          <button
            type="button"
            class="nav-link toggle theme-toggle"
            title="Switch between light and dark theme"
            aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
            onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
          >
            {theme === 'dark' ? '☀ Light' : '☾ Dark'}
          </button>
        </div>
      </nav>
    </header>
  );
}

export function App() {
  const { path } = useLocation();
  // The server redirects the base to "query"; the dev server and old links land here too.
  // "graph" is Prometheus' old name for the query page: keep its query string.
  const redirect = path === '' || path === 'graph' || path === 'index.html';
  useEffect(() => {
    if (redirect) navigate('query', window.location.search.replace(/^\?/, ''), true);
  }, [redirect]);
  const found = redirect ? pages.query : resolve(path);
  useEffect(() => {
    document.title = found ? `${found[1]} · Watchfire` : 'Not found · Watchfire';
  }, [found]);
  const [Page] = found ?? [NotFound];
  return (
    <>
      <Nav path={redirect ? 'query' : path} />
      <main class="container">
        <ErrorBoundary key={path}>
          <Page key={path} />
        </ErrorBoundary>
      </main>
    </>
  );
}

function NotFound() {
  return (
    <>
      <PageHeader title="Page not found" />
      <p>
        There is no page here. Go to the <Link to="query">query page</Link>.
      </p>
    </>
  );
}
