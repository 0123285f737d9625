// Scrape targets grouped by pool: health, last scrape, duration, error, and labels before
// (discovered) and after relabeling.
import { useState } from 'preact/hooks';
import { v1, type Target, type TargetsData } from '../api';
import { useFetch, useNow } from '../hooks';
import { formatSeconds, formatTime, relTime } from '../format';
import { Collapsible, Empty, LabelBadges, Loaded, PageHeader, SearchBox, StateBadge } from '../components/ui';

type Health = Target['health'];
const healths: Health[] = ['up', 'down', 'unknown'];

function targetMatches(t: Target, q: string): boolean {
  if (q === '') return true;
  const hay = [t.scrapeUrl, t.lastError, ...Object.entries(t.labels).map(([k, v]) => `${k}="${v}"`)];
  return hay.some((h) => h.toLowerCase().includes(q));
}

export function TargetsPage() {
  const f = useFetch((s) => v1<TargetsData>('targets', { state: 'active' }, s), [], 15_000);
  const [shown, setShown] = useState<Set<Health>>(new Set(healths));
  const [search, setSearch] = useState('');
  const [open, setOpen] = useState<Record<string, boolean>>({});
  const now = useNow(1000);

  return (
    <>
      <PageHeader title="Targets">
        <button type="button" class="btn" onClick={f.reload}>
          Refresh
        </button>
      </PageHeader>
      <Loaded f={f} what="targets">
        {({ data }) => {
          const all = data.activeTargets;
          const q = search.trim().toLowerCase();
          const pools = new Map<string, Target[]>();
          for (const t of all) {
            if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
          }
          for (const t of all) if (shown.has(t.health) && targetMatches(t, q)) pools.get(t.scrapePool)!.push(t);
          const names = [...pools.keys()].sort();
          const count = (h: Health) => all.filter((t) => t.health === h).length;
          const setAll = (v: boolean) => setOpen(Object.fromEntries(names.map((n) => [n, v])));
          return (
            <>
              <div class="toolbar">
                <div class="filter-buttons" role="group" aria-label="Filter by health">
                  {healths.map((h) => (
                    <button
                      type="button"
                      class={`btn toggle-btn ${shown.has(h) ? 'on' : ''}`}
                      aria-pressed={shown.has(h)}
                      onClick={() => {
                        const n = new Set(shown);
                        if (n.has(h)) n.delete(h);
                        else n.add(h);
                        setShown(n);
                      }}
                    >
                      <StateBadge state={h} label={`${h[0].toUpperCase()}${h.slice(1)} (${count(h)})`} />
                    </button>
                  ))}
                </div>
                <SearchBox value={search} onInput={setSearch} placeholder="Filter by endpoint or label" />
                <button type="button" class="btn" onClick={() => setAll(true)}>
                  Expand all
                </button>
                <button type="button" class="btn" onClick={() => setAll(false)}>
                  Collapse all
                </button>
              </div>
              {all.length === 0 && <Empty>No targets are configured.</Empty>}
              {names.map((name) => {
                const ts = pools.get(name)!;
                const inPool = all.filter((t) => t.scrapePool === name);
                const up = inPool.filter((t) => t.health === 'up').length;
                if (ts.length === 0 && (q !== '' || shown.size < healths.length)) return null;
                return (
                  <Collapsible
                    class="target-pool"
                    open={open[name] ?? true}
                    onToggle={(v) => setOpen({ ...open, [name]: v })}
                    title={
                      <span class="rule-title">
                        <strong>{name}</strong>
                        <span class={`badge ${up === inPool.length ? 'ok' : up === 0 ? 'bad' : 'warn'}`}>
                          {up}/{inPool.length} up
                        </span>
                      </span>
                    }
                  >
                    <div class="table-wrap">
                      <table class="data-table targets">
                        <thead>
                          <tr>
                            <th>Endpoint</th>
                            <th>State</th>
                            <th>Labels</th>
                            <th>Last scrape</th>
                            <th>Duration</th>
                            <th>Error</th>
                          </tr>
                        </thead>
                        <tbody>
                          {ts.map((t) => (
                            <TargetRow target={t} now={now} />
                          ))}
                        </tbody>
                      </table>
                    </div>
                  </Collapsible>
                );
              })}
            </>
          );
        }}
      </Loaded>
    </>
  );
}

function TargetRow(props: { target: Target; now: number }) {
  const t = props.target;
  const [showDiscovered, setShowDiscovered] = useState(false);
  return (
    <tr>
      <td class="endpoint">
        <a href={t.scrapeUrl} target="_blank" rel="noreferrer">
          {t.scrapeUrl}
        </a>
      </td>
      <td>
        <StateBadge state={t.health} />
      </td>
      <td>
        <LabelBadges labels={t.labels} />
        <div>
          <button type="button" class="link-button small" aria-expanded={showDiscovered} onClick={() => setShowDiscovered(!showDiscovered)}>
            {showDiscovered ? 'Hide' : 'Show'} discovered labels
          </button>
        </div>
        {showDiscovered && (
          <div class="discovered">
            <LabelBadges labels={t.discoveredLabels} />
          </div>
        )}
      </td>
      <td title={formatTime(t.lastScrape)}>{relTime(t.lastScrape, props.now)}</td>
      <td>{t.lastScrape && Date.parse(t.lastScrape) > 0 ? formatSeconds(t.lastScrapeDuration) : '-'}</td>
      <td class="error-text">{t.lastError}</td>
    </tr>
  );
}
