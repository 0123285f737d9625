// Alertmanager's view: alert groups as routed (api/v2/alerts/groups), filtered by matchers.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { getJSON, type AMAlert, type AMGroup } from '../api';
import { useFetch, useNow } from '../hooks';
import { formatTime, relTime } from '../format';
import { Link, replaceSearch } from '../router';
import { formatMatcher, parseMatchers, type Matcher } from '../matchers';
import { Empty, ErrorBox, LabelBadges, Loaded, PageHeader, StateBadge } from '../components/ui';
import { silenceLink } from './Alerts';

/** Reads the matcher filter; returns the matchers or a parse error. */
export function useMatcherFilter(text: string): { matchers: Matcher[]; error?: string } {
  return useMemo(() => {
    try {
      return { matchers: parseMatchers(text) };
    } catch (e) {
      return { matchers: [], error: (e as Error).message };
    }
  }, [text]);
}

export function AlertGroupsPage() {
  const initial = new URLSearchParams(window.location.search);
  const [text, setText] = useState(initial.get('filter') ?? '');
  const [applied, setApplied] = useState(initial.get('filter') ?? '');
  const [silenced, setSilenced] = useState(initial.get('silenced') === '1');
  const [inhibited, setInhibited] = useState(initial.get('inhibited') === '1');
  const [receiver, setReceiver] = useState(initial.get('receiver') ?? '');
  const parsed = useMatcherFilter(applied);
  const now = useNow(5000);

  useEffect(() => {
    const q = new URLSearchParams();
    if (applied) q.set('filter', applied);
    if (silenced) q.set('silenced', '1');
    if (inhibited) q.set('inhibited', '1');
    if (receiver) q.set('receiver', receiver);
    replaceSearch(q);
  }, [applied, silenced, inhibited, receiver]);

  const receivers = useFetch((s) => getJSON<{ name: string }[]>('api/v2/receivers', undefined, s), []);
  const filterKey = parsed.matchers.map(formatMatcher).join('\u0000');
  const f = useFetch(
    (s) =>
      parsed.error
        ? Promise.resolve([] as AMGroup[])
        : getJSON<AMGroup[]>(
            'api/v2/alerts/groups',
            {
              filter: parsed.matchers.map(formatMatcher),
              silenced,
              inhibited,
              active: true,
              // The API takes a regex; anchor the exact name.
              receiver: receiver ? `^(?:${receiver.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})$` : undefined,
            },
            s,
          ),
    [filterKey, silenced, inhibited, receiver, parsed.error],
    30_000,
  );

  const addMatcher = (name: string, value: string) => {
    const m = formatMatcher({ name, op: '=', value });
    const cur = parsed.matchers.map(formatMatcher).filter((x) => x !== m);
    const next = `{${[...cur, m].join(', ')}}`;
    setText(next);
    setApplied(next);
  };

  return (
    <>
      <PageHeader title="Alert groups">
        <Link to="silences/new" search={applied ? new URLSearchParams({ filter: applied }).toString() : undefined} class="btn">
          New silence
        </Link>
        <button type="button" class="btn" onClick={f.reload}>
          Refresh
        </button>
      </PageHeader>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(text.trim());
        }}
      >
        <input
          class="input grow mono"
          aria-label="Filter by matchers"
          placeholder='Matchers, e.g. {severity="critical", instance=~"db.*"}'
          value={text}
          onInput={(e) => setText((e.target as HTMLInputElement).value)}
        />
        <button type="submit" class="btn primary">
          Filter
        </button>
        {applied && (
          <button
            type="button"
            class="btn"
            onClick={() => {
              setText('');
              setApplied('');
            }}
          >
            Clear
          </button>
        )}
        <select class="input" aria-label="Receiver" value={receiver} onChange={(e) => setReceiver((e.target as HTMLSelectElement).value)}>
          <option value="">All receivers</option>
          {(receivers.data ?? []).map((r) => (
            <option value={r.name}>{r.name}</option>
          ))}
        </select>
        <label class="check">
          <input type="checkbox" checked={silenced} onChange={(e) => setSilenced((e.target as HTMLInputElement).checked)} /> Silenced
        </label>
        <label class="check">
          <input type="checkbox" checked={inhibited} onChange={(e) => setInhibited((e.target as HTMLInputElement).checked)} /> Inhibited
        </label>
      </form>
      {parsed.error && <ErrorBox title="Invalid filter" error={parsed.error} />}
      <Loaded f={f} what="alert groups">
        {(groups) => {
          const nonEmpty = groups.filter((g) => g.alerts.length > 0);
          if (nonEmpty.length === 0) return <Empty>No alerts{applied ? ' match the filter' : ''}.</Empty>;
          return (
            <>
              {nonEmpty.map((g) => (
                <section class="card alert-group">
                  <div class="card-head static">
                    <span class="badge info">{g.receiver.name}</span>
                    <LabelBadges labels={g.labels} onClick={addMatcher} />
                    <span class="muted">
                      {g.alerts.length} {g.alerts.length === 1 ? 'alert' : 'alerts'}
                    </span>
                  </div>
                  <div class="card-body">
                    {g.alerts.map((a) => (
                      <AMAlertRow alert={a} now={now} onLabel={addMatcher} />
                    ))}
                  </div>
                </section>
              ))}
            </>
          );
        }}
      </Loaded>
    </>
  );
}

export function AMAlertRow(props: { alert: AMAlert; now: number; onLabel?: (name: string, value: string) => void; actions?: boolean }) {
  const a = props.alert;
  const ann = a.annotations ?? {};
  return (
    <div class="am-alert">
      <div class="am-alert-head">
        <StateBadge state={a.status.state} />
        <span class="muted" title={formatTime(a.startsAt)}>
          since {relTime(a.startsAt, props.now)}
        </span>
        {a.status.silencedBy.map((id) => (
          <Link to={`silences/${id}`} class="badge muted">
            silenced by {id.slice(0, 8)}
          </Link>
        ))}
        {a.status.inhibitedBy.length > 0 && <span class="badge muted">inhibited</span>}
        {props.actions !== false && (
          <span class="am-alert-actions">
            {a.generatorURL && (
              <a class="btn small" href={a.generatorURL}>
                Source
              </a>
            )}
            <Link to="silences/new" search={silenceLink(a.labels)} class="btn small">
              Silence
            </Link>
          </span>
        )}
      </div>
      <LabelBadges labels={a.labels} onClick={props.onLabel} />
      {(ann.summary || ann.description) && <div class="annotation small">{ann.summary ?? ann.description}</div>}
    </div>
  );
}
