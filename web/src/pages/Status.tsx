// Status pages: runtime and build information, TSDB statistics, command-line flags and the
// loaded configurations.
import { useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { getJSON, v1 } from '../api';
import { useFetch } from '../hooks';
import { formatTime, relTime } from '../format';
import { CopyButton, Empty, ErrorBox, Loaded, Loading, PageHeader, SearchBox } from '../components/ui';

function KV(props: { rows: [string, ComponentChildren][] }) {
  return (
    <table class="data-table kv-table">
      <tbody>
        {props.rows.map(([k, v]) => (
          <tr>
            <th scope="row">{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const show = (v: unknown): string => (v === undefined || v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));

interface AMStatus {
  cluster?: { status: string; peers?: unknown[]; name?: string };
  uptime?: string;
  versionInfo?: Record<string, string>;
  config?: { original: string };
}

export function StatusPage() {
  const f = useFetch(
    async (s) => {
      const [build, runtime, wal, am] = await Promise.allSettled([
        v1<Record<string, string>>('status/buildinfo', undefined, s),
        v1<Record<string, unknown>>('status/runtimeinfo', undefined, s),
        v1<{ min: number; max: number; current: number }>('status/walreplay', undefined, s),
        getJSON<AMStatus>('api/v2/status', undefined, s),
      ]);
      return { build, runtime, wal, am };
    },
    [],
  );
  const section = <T,>(title: string, r: PromiseSettledResult<T>, body: (v: T) => ComponentChildren) => (
    <section class="card">
      <div class="card-body">
        <h2>{title}</h2>
        {r.status === 'fulfilled' ? body(r.value) : <ErrorBox error={r.reason as Error} />}
      </div>
    </section>
  );
  const times = new Set(['startTime', 'lastConfigTime', 'serverTime']);
  return (
    <>
      <PageHeader title="Runtime & build information" />
      <Loaded f={f} what="status">
        {({ build, runtime, wal, am }) => (
          <div class="status-grid">
            {section('Runtime information', runtime, ({ data }) => (
              <KV
                rows={Object.entries(data).map(([k, v]) => [
                  k,
                  times.has(k) && typeof v === 'string' ? (
                    <>
                      {formatTime(v)} <span class="muted">({relTime(v)})</span>
                    </>
                  ) : (
                    show(v)
                  ),
                ])}
              />
            ))}
            {section('Build information', build, ({ data }) => (
              <KV rows={Object.entries(data).map(([k, v]) => [k, show(v)])} />
            ))}
            {section('Alertmanager', am, (d) => (
              <KV
                rows={[
                  ['Uptime since', d.uptime ? `${formatTime(d.uptime)} (${relTime(d.uptime)})` : '-'],
                  ['Cluster status', show(d.cluster?.status)],
                  ['Cluster peers', show(d.cluster?.peers?.length ?? 0)],
                  ['Version', show(d.versionInfo?.version)],
                ]}
              />
            ))}
            {section('WAL replay', wal, ({ data }) => (
              <KV
                rows={[
                  ['Segments', `${data.current} of ${data.min}–${data.max}`],
                  ['State', data.max === 0 || data.current >= data.max ? 'done' : 'in progress'],
                ]}
              />
            ))}
          </div>
        )}
      </Loaded>
    </>
  );
}

interface TSDBStatus {
  headStats: { numSeries: number; numLabelPairs: number; chunkCount: number; minTime: number; maxTime: number };
  seriesCountByMetricName: { name: string; value: number }[];
  labelValueCountByLabelName: { name: string; value: number }[];
  memoryInBytesByLabelName: { name: string; value: number }[];
  seriesCountByLabelValuePair: { name: string; value: number }[];
}

function Top(props: { title: string; rows: { name: string; value: number }[]; total?: number; unit: string }) {
  const max = Math.max(1, ...props.rows.map((r) => r.value));
  return (
    <section class="card">
      <div class="card-body">
        <h2>{props.title}</h2>
        {props.rows.length === 0 ? (
          <Empty>No data.</Empty>
        ) : (
          <table class="data-table top-table">
            <thead>
              <tr>
                <th>Name</th>
                <th class="value">{props.unit}</th>
                <th class="bar-cell" aria-hidden="true" />
              </tr>
            </thead>
            <tbody>
              {props.rows.map((r) => (
                <tr>
                  <td class="mono break">{r.name}</td>
                  <td class="value">
                    {r.value.toLocaleString()}
                    {props.total ? <span class="muted small"> ({((r.value / props.total) * 100).toFixed(1)}%)</span> : null}
                  </td>
                  <td class="bar-cell">
                    <span class="bar" style={{ width: `${(r.value / max) * 100}%` }} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}

export function TSDBStatusPage() {
  const f = useFetch((s) => v1<TSDBStatus>('status/tsdb', undefined, s), []);
  return (
    <>
      <PageHeader title="TSDB status" />
      <Loaded f={f} what="TSDB statistics">
        {({ data }) => {
          const h = data.headStats;
          const fmt = (ms: number) => (ms > 0 && ms < 9e15 ? formatTime(ms) : '-');
          return (
            <>
              <section class="card">
                <div class="card-body">
                  <h2>Head block</h2>
                  <div class="stat-row">
                    <Stat label="Series" value={h.numSeries.toLocaleString()} />
                    <Stat label="Chunks" value={h.chunkCount.toLocaleString()} />
                    <Stat label="Label pairs" value={h.numLabelPairs.toLocaleString()} />
                    <Stat label="Oldest sample" value={fmt(h.minTime)} />
                    <Stat label="Newest sample" value={fmt(h.maxTime)} />
                  </div>
                </div>
              </section>
              <div class="status-grid">
                <Top title="Top series count by metric name" rows={data.seriesCountByMetricName} total={h.numSeries} unit="Series" />
                <Top title="Top label value count by label name" rows={data.labelValueCountByLabelName} unit="Values" />
                <Top title="Top memory use by label name" rows={data.memoryInBytesByLabelName} unit="Bytes" />
                <Top title="Top series count by label pair" rows={data.seriesCountByLabelValuePair} total={h.numSeries} unit="Series" />
              </div>
            </>
          );
        }}
      </Loaded>
    </>
  );
}

function Stat(props: { label: string; value: string }) {
  return (
    <div class="stat">
      <div class="stat-value">{props.value}</div>
      <div class="stat-label muted">{props.label}</div>
    </div>
  );
}

export function FlagsPage() {
  const f = useFetch((s) => v1<Record<string, string>>('status/flags', undefined, s), []);
  const [search, setSearch] = useState('');
  return (
    <>
      <PageHeader title="Command-line flags" />
      <Loaded f={f} what="flags">
        {({ data }) => {
          const q = search.trim().toLowerCase();
          const rows = Object.entries(data)
            .sort(([a], [b]) => a.localeCompare(b))
            .filter(([k, v]) => q === '' || k.toLowerCase().includes(q) || v.toLowerCase().includes(q));
          return (
            <>
              <div class="toolbar">
                <SearchBox value={search} onInput={setSearch} placeholder="Filter flags" />
              </div>
              {rows.length === 0 ? (
                <Empty>No flag matches.</Empty>
              ) : (
                <table class="data-table flags">
                  <thead>
                    <tr>
                      <th>Flag</th>
                      <th>Value</th>
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map(([k, v]) => (
                      <tr>
                        <td class="mono">--{k}</td>
                        <td class="mono break">{v === '' ? <span class="muted">(empty)</span> : v}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          );
        }}
      </Loaded>
    </>
  );
}

function YAMLCard(props: { title: string; yaml?: string; error?: Error; loading: boolean; note?: string }) {
  return (
    <section class="card">
      <div class="card-body">
        <div class="card-title-row">
          <h2>{props.title}</h2>
          {props.yaml !== undefined && <CopyButton text={props.yaml} label="Copy to clipboard" />}
        </div>
        {props.note && <p class="muted small">{props.note}</p>}
        {props.error && <ErrorBox error={props.error} />}
        {props.yaml === undefined && props.loading && <Loading />}
        {props.yaml !== undefined && <pre class="yaml">{props.yaml}</pre>}
      </div>
    </section>
  );
}

export function ConfigPage() {
  const prom = useFetch((s) => v1<{ yaml: string }>('status/config', undefined, s), []);
  const am = useFetch((s) => getJSON<AMStatus>('api/v2/status', undefined, s), []);
  return (
    <>
      <PageHeader title="Configuration" />
      <YAMLCard
        title="Prometheus configuration"
        yaml={prom.data?.data.yaml}
        error={prom.error}
        loading={prom.loading}
        note="As loaded, with defaults filled in and secrets hidden."
      />
      <YAMLCard title="Alertmanager configuration" yaml={am.data?.config?.original} error={am.error} loading={am.loading} />
    </>
  );
}
