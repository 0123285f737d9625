// Watchfire's notification history (api/watchfire/notifications): every notification attempt,
// its receiver and integration, the alerts it carried and whether it arrived.
import { useState } from 'preact/hooks';
import { getJSON, type Labels } from '../api';
import { useFetch, useNow } from '../hooks';
import { formatTime, relTime } from '../format';
import { Empty, LabelBadges, Loaded, PageHeader, SearchBox, StateBadge } from '../components/ui';

interface HistoryAlert {
  labels: Labels;
  annotations?: Labels;
  starts_at?: string;
  ends_at?: string;
  startsAt?: string;
  endsAt?: string;
}
interface HistoryEntry {
  seq: number;
  at: string;
  receiver: string;
  integration: string;
  index: number;
  groupKey: string;
  groupLabels: Labels;
  reason: string;
  alerts: HistoryAlert[];
  attempts: number;
  outcome: { status: 'sent' } | { status: 'failed'; error: string };
}

const limits = [100, 500, 2000];

/** A notification carries a resolved alert when its end is set and not in the future. */
function resolved(a: HistoryAlert, at: number): boolean {
  const end = Date.parse(a.ends_at ?? a.endsAt ?? '');
  return isFinite(end) && end > 0 && end <= at;
}

export function NotificationsPage() {
  const [limit, setLimit] = useState(100);
  const [receiver, setReceiver] = useState('');
  const [onlyFailed, setOnlyFailed] = useState(false);
  const [search, setSearch] = useState('');
  const f = useFetch(
    (s) => getJSON<HistoryEntry[]>('api/watchfire/notifications', { limit, receiver: receiver || undefined }, s),
    [limit, receiver],
    30_000,
  );
  const now = useNow(5000);
  const receivers = [...new Set((f.data ?? []).map((e) => e.receiver))].sort();

  return (
    <>
      <PageHeader title="Notifications">
        <button type="button" class="btn" onClick={f.reload}>
          Refresh
        </button>
      </PageHeader>
      <p class="muted">Every notification attempt, newest first: what was sent to whom, and whether it arrived.</p>
      <div class="toolbar">
        <select class="input" aria-label="Receiver" value={receiver} onChange={(e) => setReceiver((e.target as HTMLSelectElement).value)}>
          <option value="">All receivers</option>
          {[...new Set([...receivers, receiver].filter(Boolean))].map((r) => (
            <option value={r}>{r}</option>
          ))}
        </select>
        <select class="input" aria-label="How many" value={limit} onChange={(e) => setLimit(Number((e.target as HTMLSelectElement).value))}>
          {limits.map((l) => (
            <option value={l}>Last {l}</option>
          ))}
        </select>
        <label class="check">
          <input type="checkbox" checked={onlyFailed} onChange={(e) => setOnlyFailed((e.target as HTMLInputElement).checked)} /> Failed only
        </label>
        <SearchBox value={search} onInput={setSearch} placeholder="Filter by label, reason or error" />
      </div>
      <Loaded f={f} what="the notification history">
        {(entries) => {
          const q = search.trim().toLowerCase();
          const list = entries.filter((e) => {
            if (onlyFailed && e.outcome.status !== 'failed') return false;
            if (q === '') return true;
            const hay = [e.receiver, e.integration, e.reason, e.groupKey, 'error' in e.outcome ? e.outcome.error : ''];
            for (const a of e.alerts) hay.push(...Object.entries(a.labels).map(([k, v]) => `${k}=${v}`));
            return hay.some((h) => h.toLowerCase().includes(q));
          });
          if (entries.length === 0) return <Empty>No notification has been sent yet.</Empty>;
          if (list.length === 0) return <Empty>No notification matches the filter.</Empty>;
          return (
            <div class="table-wrap">
              <table class="data-table notifications">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Receiver</th>
                    <th>Group</th>
                    <th>Alerts</th>
                    <th>Outcome</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((e) => (
                    <NotificationRow entry={e} now={now} />
                  ))}
                </tbody>
              </table>
            </div>
          );
        }}
      </Loaded>
    </>
  );
}

function NotificationRow(props: { entry: HistoryEntry; now: number }) {
  const e = props.entry;
  const [open, setOpen] = useState(false);
  const at = Date.parse(e.at);
  const nResolved = e.alerts.filter((a) => resolved(a, at)).length;
  return (
    <tr>
      <td title={formatTime(e.at)}>
        {relTime(e.at, props.now)}
        <div class="muted small">{formatTime(e.at)}</div>
      </td>
      <td>
        <strong>{e.receiver}</strong>
        <div class="muted small">
          {e.integration}[{e.index}]
        </div>
      </td>
      <td>
        <LabelBadges labels={e.groupLabels} />
        <div class="muted small">{e.reason}</div>
      </td>
      <td>
        <button type="button" class="link-button" aria-expanded={open} onClick={() => setOpen(!open)}>
          {e.alerts.length - nResolved} firing{nResolved > 0 ? `, ${nResolved} resolved` : ''} {open ? '▾' : '▸'}
        </button>
        {open &&
          e.alerts.map((a) => (
            <div class="history-alert">
              <StateBadge state={resolved(a, at) ? 'ok' : 'firing'} label={resolved(a, at) ? 'resolved' : 'firing'} />{' '}
              <LabelBadges labels={a.labels} />
            </div>
          ))}
      </td>
      <td>
        <StateBadge state={e.outcome.status} />
        {e.attempts > 1 && <span class="muted small"> after {e.attempts} attempts</span>}
        {'error' in e.outcome && <div class="error-text small">{e.outcome.error}</div>}
      </td>
    </tr>
  );
}
