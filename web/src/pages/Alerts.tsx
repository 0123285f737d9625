// Alerting rules and their active alerts (Prometheus' view), from api/v1/rules?type=alert.
import { useState } from 'preact/hooks';
import { v1, type Labels, type Rule, type RuleGroup } from '../api';
import { useFetch, useNow } from '../hooks';
import { formatDuration, formatTime, formatValue, relTime } from '../format';
import { Link } from '../router';
import { formatMatchers, matchersForLabels } from '../matchers';
import { Collapsible, Empty, LabelBadges, Loaded, PageHeader, SearchBox, StateBadge } from '../components/ui';

type State = 'inactive' | 'pending' | 'firing';
const states: State[] = ['firing', 'pending', 'inactive'];

/** The query page link for an expression (table tab). */
export function queryLink(expr: string, tab: 'table' | 'graph' = 'table'): string {
  return new URLSearchParams({ 'g0.expr': expr, 'g0.tab': tab === 'graph' ? '0' : '1' }).toString();
}

export function silenceLink(labels: Labels): string {
  return new URLSearchParams({ filter: formatMatchers(matchersForLabels(labels)) }).toString();
}

function matchesSearch(r: Rule, q: string): boolean {
  if (q === '') return true;
  const hay = [r.name, r.query, ...Object.entries(r.labels ?? {}).map(([k, v]) => `${k}=${v}`)];
  for (const a of r.alerts ?? []) hay.push(...Object.entries(a.labels).map(([k, v]) => `${k}=${v}`));
  return hay.some((h) => h.toLowerCase().includes(q));
}

export function AlertsPage() {
  const f = useFetch((s) => v1<{ groups: RuleGroup[] }>('rules', { type: 'alert' }, s), [], 30_000);
  const [shown, setShown] = useState<Set<State>>(new Set(states));
  const [search, setSearch] = useState('');
  const now = useNow(5000);

  return (
    <>
      <PageHeader title="Alerts">
        <button type="button" class="btn" onClick={f.reload}>
          Refresh
        </button>
      </PageHeader>
      <Loaded f={f} what="alerting rules">
        {({ data }) => {
          const all = data.groups.flatMap((g) => g.rules);
          const count = (s: State) => all.filter((r) => (r.state ?? 'inactive') === s).length;
          const q = search.trim().toLowerCase();
          const groups = data.groups
            .map((g) => ({ ...g, rules: g.rules.filter((r) => shown.has((r.state ?? 'inactive') as State) && matchesSearch(r, q)) }))
            .filter((g) => g.rules.length > 0);
          return (
            <>
              <div class="toolbar">
                <div class="filter-buttons" role="group" aria-label="Filter by state">
                  {states.map((s) => (
                    <button
                      type="button"
                      class={`btn toggle-btn ${shown.has(s) ? 'on' : ''}`}
                      aria-pressed={shown.has(s)}
                      onClick={() => {
                        const n = new Set(shown);
                        if (n.has(s)) n.delete(s);
                        else n.add(s);
                        setShown(n);
                      }}
                    >
                      <StateBadge state={s} label={`${s[0].toUpperCase()}${s.slice(1)} (${count(s)})`} />
                    </button>
                  ))}
                </div>
                <SearchBox value={search} onInput={setSearch} placeholder="Filter by name or label" />
              </div>
              {all.length === 0 && <Empty>No alerting rules are loaded.</Empty>}
              {all.length > 0 && groups.length === 0 && <Empty>No alerting rule matches the filter.</Empty>}
              {groups.map((g) => (
                <div class="rule-group">
                  <h2 class="group-title">
                    {g.name} <span class="muted small">{g.file}</span>
                  </h2>
                  {g.rules.map((r) => (
                    <AlertRule rule={r} now={now} />
                  ))}
                </div>
              ))}
            </>
          );
        }}
      </Loaded>
    </>
  );
}

function AlertRule(props: { rule: Rule; now: number }) {
  const r = props.rule;
  const state = r.state ?? 'inactive';
  const alerts = r.alerts ?? [];
  return (
    <Collapsible
      class={`alert-rule state-${state}`}
      defaultOpen={state !== 'inactive'}
      title={
        <span class="rule-title">
          <StateBadge state={state} />
          <strong>{r.name}</strong>
          {alerts.length > 0 && <span class="muted">({alerts.length} active)</span>}
          {r.health !== 'ok' && r.health !== 'unknown' && <StateBadge state="err" label={`health: ${r.health}`} />}
        </span>
      }
    >
      <dl class="rule-def">
        <dt>Expression</dt>
        <dd>
          <Link to="query" search={queryLink(r.query)} class="expr" title="Open in the query page">
            {r.query}
          </Link>
        </dd>
        {!!r.duration && (
          <>
            <dt>For</dt>
            <dd>{formatDuration(r.duration * 1000)}</dd>
          </>
        )}
        {!!r.keepFiringFor && (
          <>
            <dt>Keep firing for</dt>
            <dd>{formatDuration(r.keepFiringFor * 1000)}</dd>
          </>
        )}
        {r.labels && Object.keys(r.labels).length > 0 && (
          <>
            <dt>Labels</dt>
            <dd>
              <LabelBadges labels={r.labels} />
            </dd>
          </>
        )}
        {Object.entries(r.annotations ?? {}).map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd class="annotation">{v}</dd>
          </>
        ))}
        {r.lastError && (
          <>
            <dt>Last error</dt>
            <dd class="error-text">{r.lastError}</dd>
          </>
        )}
      </dl>
      {alerts.length > 0 && (
        <div class="table-wrap">
          <table class="data-table alerts-table">
            <thead>
              <tr>
                <th>State</th>
                <th>Labels</th>
                <th>Active since</th>
                <th class="value">Value</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {alerts.map((a) => (
                <tr>
                  <td>
                    <StateBadge state={a.state} />
                  </td>
                  <td>
                    <LabelBadges labels={a.labels} omit={['alertname']} />
                    {Object.entries(a.annotations ?? {})
                      .filter(([k]) => k === 'summary' || k === 'description')
                      .map(([k, v]) => (
                        <div class="annotation small">
                          <span class="muted">{k}:</span> {v}
                        </div>
                      ))}
                  </td>
                  <td title={formatTime(a.activeAt)}>{relTime(a.activeAt, props.now)}</td>
                  <td class="value">{formatValue(a.value)}</td>
                  <td>
                    <Link to="silences/new" search={silenceLink(a.labels)} class="btn small">
                      Silence
                    </Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Collapsible>
  );
}
