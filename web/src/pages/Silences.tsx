// The list of silences (active, pending, expired) with Edit and Expire.
import { useState } from 'preact/hooks';
import { getJSON, sendJSON, type Silence } from '../api';
import { useFetch, useNow } from '../hooks';
import { formatTime, relTime } from '../format';
import { Link } from '../router';
import { fromAM, formatMatcher } from '../matchers';
import { Empty, ErrorBox, Loaded, PageHeader, SearchBox, StateBadge } from '../components/ui';

type SState = Silence['status']['state'];
const tabs: SState[] = ['active', 'pending', 'expired'];

/** Expires a silence; resolves when the server has accepted it. */
export function expireSilence(id: string): Promise<unknown> {
  return sendJSON('DELETE', `api/v2/silence/${encodeURIComponent(id)}`);
}

export function MatcherBadges(props: { silence: Silence }) {
  return (
    <span class="labels">
      {props.silence.matchers.map((m) => (
        <span class="label">{formatMatcher(fromAM(m))}</span>
      ))}
    </span>
  );
}

export function SilencesPage() {
  const f = useFetch((s) => getJSON<Silence[]>('api/v2/silences', undefined, s), [], 30_000);
  const initial = new URLSearchParams(window.location.search).get('state') as SState | null;
  const [tab, setTab] = useState<SState>(initial && tabs.includes(initial) ? initial : 'active');
  const [search, setSearch] = useState('');
  const [actionError, setActionError] = useState<Error | null>(null);
  const now = useNow(5000);

  const expire = async (id: string) => {
    setActionError(null);
    try {
      await expireSilence(id);
    } catch (e) {
      setActionError(e as Error);
    }
    f.reload();
  };

  return (
    <>
      <PageHeader title="Silences">
        <Link to="silences/new" class="btn primary">
          New silence
        </Link>
        <button type="button" class="btn" onClick={f.reload}>
          Refresh
        </button>
      </PageHeader>
      {actionError && <ErrorBox title="Could not expire the silence" error={actionError} />}
      <Loaded f={f} what="silences">
        {(all) => {
          const q = search.trim().toLowerCase();
          const byState = (s: SState) => all.filter((x) => x.status.state === s);
          const list = byState(tab)
            .filter(
              (s) =>
                q === '' ||
                [s.id, s.createdBy, s.comment, ...s.matchers.map((m) => formatMatcher(fromAM(m)))].some((h) => h.toLowerCase().includes(q)),
            )
            .sort((a, b) => (tab === 'expired' ? b.endsAt.localeCompare(a.endsAt) : a.endsAt.localeCompare(b.endsAt)));
          return (
            <>
              <div class="toolbar">
                <div class="tabs" role="tablist">
                  {tabs.map((t) => (
                    <button type="button" role="tab" aria-selected={tab === t} class={`tab ${tab === t ? 'active' : ''}`} onClick={() => setTab(t)}>
                      {t[0].toUpperCase() + t.slice(1)} <span class="count">{byState(t).length}</span>
                    </button>
                  ))}
                </div>
                <SearchBox value={search} onInput={setSearch} placeholder="Filter by matcher, creator or comment" />
              </div>
              {list.length === 0 && <Empty>No {tab} silences.</Empty>}
              {list.map((s) => (
                <section class="card silence" data-silence-id={s.id}>
                  <div class="card-body">
                    <div class="silence-head">
                      <StateBadge state={s.status.state} />
                      <MatcherBadges silence={s} />
                    </div>
                    <div class="silence-meta">
                      <span title={formatTime(s.startsAt)}>
                        {s.status.state === 'pending' ? 'Starts' : 'Started'} {relTime(s.startsAt, now)}
                      </span>
                      <span title={formatTime(s.endsAt)}>
                        {s.status.state === 'expired' ? 'Ended' : 'Ends'} {relTime(s.endsAt, now)}
                      </span>
                      <span>
                        by <strong>{s.createdBy}</strong>
                      </span>
                    </div>
                    {s.comment && <div class="silence-comment">{s.comment}</div>}
                    <div class="silence-actions">
                      <Link to={`silences/${s.id}`} class="btn small">
                        {s.status.state === 'expired' ? 'View' : 'View / edit'}
                      </Link>
                      {s.status.state === 'expired' ? (
                        <Link to="silences/new" search={`from=${encodeURIComponent(s.id)}`} class="btn small">
                          Recreate
                        </Link>
                      ) : (
                        <button type="button" class="btn small danger expire" onClick={() => expire(s.id)}>
                          Expire
                        </button>
                      )}
                      <span class="muted mono small">{s.id}</span>
                    </div>
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
