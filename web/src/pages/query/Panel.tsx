// One query panel: the editor, Table/Graph tabs with their controls, and the result.
import { useEffect, useState } from 'preact/hooks';
import { v1, type Notes as NotesT, type QueryData, type MatrixSeries } from '../../api';
import { formatDuration, formatSeconds, parseDuration } from '../../format';
import { TimeInput } from '../../components/TimeInput';
import { useSettings } from '../../settings';
import { ErrorBox, Loading, Notes } from '../../components/ui';
import { PromQLEditor } from './Editor';
import { ResultTable } from './Table';
import { Graph } from './Graph';
import type { PanelState, Tab } from './urlstate';

// Range presets for the −/+ buttons.
const presets = ['1m', '5m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '2d', '1w', '2w', '4w', '8w', '26w', '1y'];

/** Prometheus' default resolution: about 250 points across the range, at least 1s. */
export function autoStep(rangeMs: number): number {
  return Math.max(Math.floor(rangeMs / 1000 / 250), 1);
}

interface Result {
  tab: Tab;
  data: QueryData;
  notes: NotesT;
  start: number;
  end: number;
  step: number;
  took: number;
}

export function Panel(props: {
  state: PanelState;
  runSeq: number; // bumped by "Execute all"
  onChange: (p: PanelState) => void;
  onRemove?: () => void;
  autoFocus?: boolean;
}) {
  const p = props.state;
  const [theme, utc] = useSettings();
  const [draft, setDraft] = useState(p.expr);
  const [runs, setRuns] = useState(0);
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [loading, setLoading] = useState(false);

  // The URL (back/forward) can change the committed expression under us.
  useEffect(() => setDraft(p.expr), [p.expr]);

  const set = (patch: Partial<PanelState>) => props.onChange({ ...p, ...patch });
  const execute = () => {
    if (draft !== p.expr) set({ expr: draft });
    setRuns((r) => r + 1);
  };

  const rangeMs = parseDuration(p.range);
  const stepSec = p.step === '' ? null : (parseDuration(p.step) ?? NaN) / 1000;

  // Run the query whenever what it depends on changes, or on Execute.
  useEffect(() => {
    if (p.expr.trim() === '') {
      setResult(null);
      setError(null);
      return;
    }
    const ctl = new AbortController();
    const began = performance.now();
    setLoading(true);
    setError(null);
    (async () => {
      if (p.tab === 'table') {
        const time = p.moment === null ? Date.now() / 1000 : p.moment / 1000;
        const r = await v1<QueryData>('query', { query: p.expr, time }, ctl.signal);
        return { tab: p.tab, data: r.data, notes: r, start: time, end: time, step: 0, took: performance.now() - began };
      }
      if (rangeMs === null || rangeMs <= 0) throw new Error(`Invalid range "${p.range}": use a duration such as 1h or 30m.`);
      if (stepSec !== null && !(stepSec > 0)) throw new Error(`Invalid resolution "${p.step}": use seconds or a duration such as 15s.`);
      const endMs = p.end ?? Date.now();
      const step = stepSec ?? autoStep(rangeMs);
      // Like Prometheus' UI: end at the chosen instant (not aligned to the step, so the newest
      // samples show), start one range earlier; the server evaluates at start + k·step.
      const end = Math.round(endMs) / 1000;
      const start = end - rangeMs / 1000;
      const r = await v1<QueryData>('query_range', { query: p.expr, start, end, step }, ctl.signal);
      return { tab: p.tab, data: r.data, notes: r, start, end, step, took: performance.now() - began };
    })()
      .then((r) => {
        if (!ctl.signal.aborted) {
          setResult(r);
          setLoading(false);
        }
      })
      .catch((e: Error) => {
        if (ctl.signal.aborted || e.name === 'AbortError') return;
        setError(e);
        setResult(null);
        setLoading(false);
      });
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [p.expr, p.tab, p.range, p.end, p.moment, p.step, runs, props.runSeq]);

  const stepRange = (dir: -1 | 1) => {
    const cur = rangeMs ?? 3600_000;
    const ms = presets.map((s) => parseDuration(s)!);
    const next = dir < 0 ? [...ms].reverse().find((m) => m < cur) : ms.find((m) => m > cur);
    if (next) set({ range: formatDuration(next) });
  };
  const shiftEnd = (dir: -1 | 1) => {
    const cur = p.end ?? Date.now();
    const by = (rangeMs ?? 3600_000) / 2;
    set({ end: Math.round(cur + dir * by) });
  };

  const seriesCount = result
    ? result.data.resultType === 'vector' || result.data.resultType === 'matrix'
      ? result.data.result.length
      : 1
    : 0;

  return (
    <section class="card panel">
      <div class="panel-editor">
        <PromQLEditor value={p.expr} onChange={setDraft} onExecute={execute} autoFocus={props.autoFocus} />
        <button type="button" class="btn primary execute" onClick={execute} title="Execute (Ctrl/Cmd+Enter)">
          Execute
        </button>
        {props.onRemove && (
          <button type="button" class="btn icon remove-panel" onClick={props.onRemove} title="Remove this panel" aria-label="Remove panel">
            ✕
          </button>
        )}
      </div>
      <div class="panel-tabs" role="tablist">
        {(['table', 'graph'] as Tab[]).map((t) => (
          <button type="button" role="tab" aria-selected={p.tab === t} class={`tab ${p.tab === t ? 'active' : ''}`} onClick={() => set({ tab: t })}>
            {t === 'table' ? 'Table' : 'Graph'}
          </button>
        ))}
        <span class="panel-stats muted">
          {loading ? 'Running…' : result ? `${formatSeconds(result.took / 1000)} · ${seriesCount} ${seriesCount === 1 ? 'result' : 'results'}` : ''}
        </span>
      </div>
      <div class="panel-controls">
        {p.tab === 'table' ? (
          <label class="control">
            <span>Evaluation time</span>
            <span class="input-group">
              <TimeInput label="Evaluation time" allowEmpty value={p.moment} onChange={(moment) => set({ moment })} />
              <button type="button" class="btn" disabled={p.moment === null} onClick={() => set({ moment: null })} title="Evaluate at the current time">
                Now
              </button>
            </span>
          </label>
        ) : (
          <>
            <label class="control">
              <span>Range</span>
              <span class="input-group">
                <button type="button" class="btn" onClick={() => stepRange(-1)} aria-label="Shorter range">
                  −
                </button>
                <input
                  class={`input range-input ${rangeMs === null ? 'invalid' : ''}`}
                  aria-label="Range"
                  value={p.range}
                  size={5}
                  onChange={(e) => set({ range: (e.target as HTMLInputElement).value.trim() })}
                />
                <button type="button" class="btn" onClick={() => stepRange(1)} aria-label="Longer range">
                  +
                </button>
              </span>
            </label>
            <label class="control">
              <span>End</span>
              <span class="input-group">
                <button type="button" class="btn" onClick={() => shiftEnd(-1)} aria-label="Earlier">
                  ‹
                </button>
                <TimeInput label="End time" allowEmpty value={p.end} onChange={(end) => set({ end })} />
                <button type="button" class="btn" onClick={() => shiftEnd(1)} aria-label="Later">
                  ›
                </button>
                <button type="button" class="btn" disabled={p.end === null} onClick={() => set({ end: null })} title="End at the current time">
                  Now
                </button>
              </span>
            </label>
            <label class="control">
              <span>Resolution</span>
              <input
                class={`input step-input ${stepSec !== null && !(stepSec > 0) ? 'invalid' : ''}`}
                aria-label="Resolution (step)"
                placeholder={rangeMs ? `auto: ${autoStep(rangeMs)}s` : 'auto'}
                value={p.step}
                size={8}
                onChange={(e) => set({ step: (e.target as HTMLInputElement).value.trim() })}
              />
            </label>
            <label class="control check">
              <input type="checkbox" checked={p.stacked} onChange={(e) => set({ stacked: (e.target as HTMLInputElement).checked })} />
              <span>Stacked</span>
            </label>
          </>
        )}
      </div>
      <div class="panel-result">
        {error && <ErrorBox error={error} />}
        {result && <Notes warnings={result.notes.warnings} infos={result.notes.infos} />}
        {loading && !result && <Loading />}
        {!error && !result && !loading && <div class="empty muted">Enter an expression and press Execute.</div>}
        {result && result.tab === 'table' && p.tab === 'table' && <ResultTable data={result.data} />}
        {result &&
          result.tab === 'graph' &&
          p.tab === 'graph' &&
          (result.data.resultType === 'matrix' ? (
            <Graph
              series={result.data.result as MatrixSeries[]}
              start={result.start}
              end={result.end}
              step={result.step}
              stacked={p.stacked}
              utc={utc}
              theme={theme}
              onZoom={(a, b) => set({ end: Math.round(b * 1000), range: formatDuration(Math.max(1, Math.round(b - a)) * 1000) })}
            />
          ) : (
            <ErrorBox error={`The graph needs a range vector result; this expression returns a ${result.data.resultType}.`} />
          ))}
      </div>
    </section>
  );
}
