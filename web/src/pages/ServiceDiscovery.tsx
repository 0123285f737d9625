// Service discovery: per scrape pool, what discovery found (labels before relabeling) and what
// became of it (the target's labels, or dropped).
import { useState } from 'preact/hooks';
import { v1, type DroppedTarget, type Labels, type TargetsData } from '../api';
import { useFetch } from '../hooks';
import { Collapsible, Empty, LabelBadges, Loaded, PageHeader, SearchBox } from '../components/ui';

interface Entry {
  discovered: Labels;
  labels: Labels | null; // null = dropped
}

export function ServiceDiscoveryPage() {
  const f = useFetch(
    async (s) => {
      const [t, p] = await Promise.all([
        v1<TargetsData>('targets', { state: 'any' }, s),
        v1<{ scrapePools: string[] }>('scrape_pools', undefined, s).catch(() => ({ data: { scrapePools: [] as string[] } })),
      ]);
      return { targets: t.data, pools: p.data.scrapePools };
    },
    [],
    30_000,
  );
  const [search, setSearch] = useState('');
  const [showDropped, setShowDropped] = useState(true);

  return (
    <>
      <PageHeader title="Service discovery">
        <button type="button" class="btn" onClick={f.reload}>
          Refresh
        </button>
      </PageHeader>
      <Loaded f={f} what="service discovery">
        {({ targets, pools }) => {
          const byPool = new Map<string, Entry[]>();
          const add = (pool: string, e: Entry) => {
            if (!byPool.has(pool)) byPool.set(pool, []);
            byPool.get(pool)!.push(e);
          };
          pools.forEach((p) => byPool.set(p, []));
          targets.activeTargets.forEach((t) => add(t.scrapePool, { discovered: t.discoveredLabels, labels: t.labels }));
          targets.droppedTargets.forEach((t: DroppedTarget) =>
            add(t.scrapePool ?? t.discoveredLabels.job ?? '(unknown)', { discovered: t.discoveredLabels, labels: null }),
          );
          const q = search.trim().toLowerCase();
          const names = [...byPool.keys()].sort().filter((n) => q === '' || n.toLowerCase().includes(q));
          if (byPool.size === 0) return <Empty>No scrape pools are configured.</Empty>;
          return (
            <>
              <div class="toolbar">
                <SearchBox value={search} onInput={setSearch} placeholder="Filter by pool" />
                <label class="check">
                  <input type="checkbox" checked={showDropped} onChange={(e) => setShowDropped((e.target as HTMLInputElement).checked)} /> Show dropped
                  targets
                </label>
              </div>
              <nav class="pool-index">
                {/* Buttons, not "#fragment" links: those would resolve against <base href>. */}
                {names.map((n) => (
                  <button type="button" class="link-button" onClick={() => document.getElementById(`pool-${n}`)?.scrollIntoView()}>
                    {n}
                  </button>
                ))}
              </nav>
              {names.map((name) => {
                const entries = byPool.get(name)!;
                const active = entries.filter((e) => e.labels).length;
                const droppedCount = targets.droppedTargetCounts?.[name] ?? entries.length - active;
                const list = showDropped ? entries : entries.filter((e) => e.labels);
                return (
                  <div id={`pool-${name}`}>
                    <Collapsible
                      title={
                        <span class="rule-title">
                          <strong>{name}</strong>
                          <span class="muted">
                            {active} active, {droppedCount} dropped
                          </span>
                        </span>
                      }
                    >
                      {list.length === 0 ? (
                        <Empty>Nothing discovered{showDropped ? '' : ' (dropped targets hidden)'}.</Empty>
                      ) : (
                        <div class="table-wrap">
                          <table class="data-table sd">
                            <thead>
                              <tr>
                                <th>Discovered labels</th>
                                <th>Target labels</th>
                              </tr>
                            </thead>
                            <tbody>
                              {list.map((e) => (
                                <tr>
                                  <td>
                                    <LabelBadges labels={e.discovered} />
                                  </td>
                                  <td>{e.labels ? <LabelBadges labels={e.labels} /> : <span class="badge muted">Dropped</span>}</td>
                                </tr>
                              ))}
                            </tbody>
                          </table>
                        </div>
                      )}
                      {droppedCount > entries.length - active && (
                        <p class="muted small">
                          {droppedCount - (entries.length - active)} more dropped targets are not kept (see keep_dropped_targets).
                        </p>
                      )}
                    </Collapsible>
                  </div>
                );
              })}
            </>
          );
        }}
      </Loaded>
    </>
  );
}
