// Rule groups: file, interval, last evaluation and its duration; each rule with its query,
// health, last error and evaluation time.
import { useState } from 'preact/hooks';
import { v1, type Rule, type RuleGroup } from '../api';
import { useFetch, useNow } from '../hooks';
import { formatDuration, formatSeconds, formatTime, relTime } from '../format';
import { Link } from '../router';
import { Collapsible, Empty, LabelBadges, Loaded, PageHeader, SearchBox, StateBadge } from '../components/ui';
import { queryLink } from './Alerts';

function healthState(h: string): string {
  return h === 'ok' ? 'ok' : h === 'err' || h === 'error' ? 'err' : 'unknown';
}

export function RulesPage() {
  const f = useFetch((s) => v1<{ groups: RuleGroup[] }>('rules', undefined, s), [], 30_000);
  const [search, setSearch] = useState('');
  const [onlyErrors, setOnlyErrors] = useState(false);
  const now = useNow(5000);
  return (
    <>
      <PageHeader title="Rules">
        <button type="button" class="btn" onClick={f.reload}>
          Refresh
        </button>
      </PageHeader>
      <Loaded f={f} what="rules">
        {({ data }) => {
          const q = search.trim().toLowerCase();
          const keep = (r: Rule) =>
            (!onlyErrors || r.health !== 'ok') && (q === '' || r.name.toLowerCase().includes(q) || r.query.toLowerCase().includes(q));
          const groups = data.groups.map((g) => ({ ...g, rules: g.rules.filter(keep) })).filter((g) => g.rules.length > 0 || (q === '' && !onlyErrors));
          return (
            <>
              <div class="toolbar">
                <SearchBox value={search} onInput={setSearch} placeholder="Filter by rule name or query" />
                <label class="check">
                  <input type="checkbox" checked={onlyErrors} onChange={(e) => setOnlyErrors((e.target as HTMLInputElement).checked)} /> Unhealthy only
                </label>
              </div>
              {data.groups.length === 0 && <Empty>No rules are loaded.</Empty>}
              {data.groups.length > 0 && groups.length === 0 && <Empty>No rule matches the filter.</Empty>}
              {groups.map((g) => (
                <Collapsible
                  class="rule-group-card"
                  title={
                    <span class="rule-title wrap">
                      <strong>{g.name}</strong>
                      <span class="muted small">{g.file}</span>
                      <span class="muted small">every {formatDuration(g.interval * 1000)}</span>
                      <span class="muted small" title={formatTime(g.lastEvaluation)}>
                        last evaluated {relTime(g.lastEvaluation, now)} in {formatSeconds(g.evaluationTime)}
                      </span>
                    </span>
                  }
                >
                  <div class="table-wrap">
                    <table class="data-table rules">
                      <thead>
                        <tr>
                          <th>Rule</th>
                          <th>Health</th>
                          <th>Last evaluation</th>
                          <th>Evaluation time</th>
                        </tr>
                      </thead>
                      <tbody>
                        {g.rules.map((r) => (
                          <tr>
                            <td class="rule-cell">
                              <div>
                                <span class="muted">{r.type === 'alerting' ? 'alert:' : 'record:'}</span> <strong>{r.name}</strong>
                                {r.type === 'alerting' && r.state && (
                                  <>
                                    {' '}
                                    <StateBadge state={r.state} />
                                  </>
                                )}
                              </div>
                              <div>
                                <span class="muted">expr:</span>{' '}
                                <Link to="query" search={queryLink(r.query)} class="expr">
                                  {r.query}
                                </Link>
                              </div>
                              {!!r.duration && (
                                <div>
                                  <span class="muted">for:</span> {formatDuration(r.duration * 1000)}
                                </div>
                              )}
                              {r.labels && Object.keys(r.labels).length > 0 && (
                                <div>
                                  <span class="muted">labels:</span> <LabelBadges labels={r.labels} />
                                </div>
                              )}
                              {r.lastError && <div class="error-text">{r.lastError}</div>}
                            </td>
                            <td>
                              <StateBadge state={healthState(r.health)} label={r.health} />
                            </td>
                            <td title={formatTime(r.lastEvaluation)}>{relTime(r.lastEvaluation, now)}</td>
                            <td>{formatSeconds(r.evaluationTime)}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                </Collapsible>
              ))}
            </>
          );
        }}
      </Loaded>
    </>
  );
}
