// silences/new and silences/<id>: the silence form with a matcher editor and a live preview
// of the alerts it would silence. Editing posts with the silence's id; an expired silence can
// only be recreated (posted without id).
import { useMemo, useState } from 'preact/hooks';
import { getJSON, sendJSON, type AMAlert, type Silence } from '../api';
import { useDebounced, useFetch, useNow } from '../hooks';
import { formatDuration, formatTime, parseDuration, relTime } from '../format';
import { TimeInput } from '../components/TimeInput';
import { currentPath, Link, navigate } from '../router';
import { remembered } from '../settings';
import { formatMatcher, fromAM, ops, parseMatchers, toAM, type Matcher, type Op } from '../matchers';
import { Empty, ErrorBox, Loaded, Loading, PageHeader, StateBadge } from '../components/ui';
import { AMAlertRow } from './AlertGroups';
import { expireSilence, MatcherBadges } from './Silences';

// A one-shot message shown after a redirect (e.g. "Silence created").
let flash: string | null = null;

export function SilenceEditPage() {
  const path = currentPath().replace(/\/+$/, '');
  const id = path === 'silences/new' ? null : decodeURIComponent(path.slice('silences/'.length));
  const params = new URLSearchParams(window.location.search);
  const sourceId = id ?? params.get('from');
  const [message, setMessage] = useState(() => {
    const m = flash;
    flash = null;
    return m;
  });
  const [actionError, setActionError] = useState<Error | null>(null);
  const existing = useFetch(
    (s) => (sourceId ? getJSON<Silence>(`api/v2/silence/${encodeURIComponent(sourceId)}`, undefined, s) : Promise.resolve(null)),
    [sourceId],
  );
  const now = useNow(5000);

  const expire = async () => {
    if (!id) return;
    setActionError(null);
    try {
      await expireSilence(id);
      setMessage('Silence expired.');
      existing.reload();
    } catch (e) {
      setActionError(e as Error);
    }
  };

  const title = id ? 'Silence' : 'New silence';
  return (
    <>
      <PageHeader title={title}>
        <Link to="silences" class="btn">
          All silences
        </Link>
      </PageHeader>
      {message && (
        <div class="alert-box success" role="status">
          {message}
        </div>
      )}
      {actionError && <ErrorBox title="Could not expire the silence" error={actionError} />}
      {sourceId ? (
        <Loaded f={existing} what="the silence">
          {(s) =>
            s && (
              <>
                {id && <SilenceSummary silence={s} now={now} onExpire={expire} />}
                <SilenceForm
                  key={s.updatedAt + s.status.state}
                  source={s}
                  editId={id && s.status.state !== 'expired' ? id : undefined}
                  onSaved={() => {
                    setMessage('Silence updated.');
                    existing.reload();
                  }}
                />
              </>
            )
          }
        </Loaded>
      ) : (
        <SilenceForm filter={params.get('filter') ?? ''} />
      )}
    </>
  );
}

function SilenceSummary(props: { silence: Silence; now: number; onExpire: () => void }) {
  const s = props.silence;
  return (
    <section class="card silence-summary">
      <div class="card-body">
        <div class="silence-head">
          <StateBadge state={s.status.state} />
          <MatcherBadges silence={s} />
        </div>
        <dl class="kv">
          <dt>ID</dt>
          <dd class="mono">{s.id}</dd>
          <dt>Starts</dt>
          <dd>
            {formatTime(s.startsAt)} <span class="muted">({relTime(s.startsAt, props.now)})</span>
          </dd>
          <dt>Ends</dt>
          <dd>
            {formatTime(s.endsAt)} <span class="muted">({relTime(s.endsAt, props.now)})</span>
          </dd>
          <dt>Created by</dt>
          <dd>{s.createdBy}</dd>
          <dt>Comment</dt>
          <dd class="pre-wrap">{s.comment}</dd>
          <dt>Updated</dt>
          <dd>{formatTime(s.updatedAt)}</dd>
        </dl>
        {s.status.state !== 'expired' && (
          <button type="button" class="btn danger expire" onClick={props.onExpire}>
            Expire
          </button>
        )}
      </div>
    </section>
  );
}

interface Row extends Matcher {
  key: number;
}
let rowKey = 1;
const row = (m: Matcher): Row => ({ ...m, key: rowKey++ });

function initialRows(source: Silence | undefined, filter: string): { rows: Row[]; error?: string } {
  if (source) return { rows: source.matchers.map((m) => row(fromAM(m))) };
  if (filter.trim() !== '') {
    try {
      const ms = parseMatchers(filter);
      if (ms.length) return { rows: ms.map(row) };
    } catch (e) {
      return { rows: [row({ name: '', op: '=', value: '' })], error: `Could not read the filter ${filter}: ${(e as Error).message}` };
    }
  }
  return { rows: [row({ name: 'alertname', op: '=', value: '' })] };
}

function validRegex(v: string): boolean {
  try {
    new RegExp(`^(?:${v})$`);
    return true;
  } catch {
    return false;
  }
}

/** Alertmanager refuses silences whose every matcher matches the empty string. */
function matchesEmpty(m: Matcher): boolean {
  switch (m.op) {
    case '=':
      return m.value === '';
    case '!=':
      return m.value !== '';
    case '=~':
      return validRegex(m.value) && new RegExp(`^(?:${m.value})$`).test('');
    case '!~':
      return validRegex(m.value) && !new RegExp(`^(?:${m.value})$`).test('');
  }
}

function SilenceForm(props: { source?: Silence; editId?: string; filter?: string; onSaved?: () => void }) {
  const src = props.source;
  const editing = !!props.editId;
  const init = useMemo(() => initialRows(src, props.filter ?? ''), []);
  const [rows, setRows] = useState<Row[]>(init.rows);
  // Editing keeps the silence's times; recreating keeps its length from now.
  const [start, setStart] = useState<number>(() => (editing ? Date.parse(src!.startsAt) : Date.now()));
  const initialDur = src ? Math.max(60_000, Date.parse(src.endsAt) - Date.parse(src.startsAt)) : 2 * 3600_000;
  const [end, setEnd] = useState<number>(() => (editing ? Date.parse(src!.endsAt) : start + initialDur));
  const [durText, setDurText] = useState(() => formatDuration(end - start));
  const [createdBy, setCreatedBy] = useState(src?.createdBy ?? remembered.load('watchfire.silence.creator') ?? '');
  const [comment, setComment] = useState(src?.comment ?? '');
  const [errors, setErrors] = useState<string[]>(init.error ? [init.error] : []);
  const [saving, setSaving] = useState(false);
  const now = useNow(10000);

  const setRow = (i: number, patch: Partial<Matcher>) => setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));

  const onDuration = (v: string) => {
    setDurText(v);
    const ms = parseDuration(v);
    if (ms !== null && ms > 0) setEnd(start + ms);
  };
  const onStart = (t: number | null) => {
    if (t === null) return;
    const dur = end - start;
    setStart(t);
    setEnd(t + dur);
  };
  const onEnd = (t: number | null) => {
    if (t === null) return;
    setEnd(t);
    setDurText(t > start ? formatDuration(t - start) : '');
  };

  // The preview: alerts currently matching every complete matcher row.
  const complete = rows.filter((r) => r.name.trim() !== '' && (!r.op.endsWith('~') || validRegex(r.value)));
  const filterKey = useDebounced(complete.map(formatMatcher).join('\u0000'), 300);
  const preview = useFetch(
    (s) =>
      filterKey === ''
        ? Promise.resolve(null)
        : getJSON<AMAlert[]>('api/v2/alerts', { filter: filterKey.split('\u0000'), silenced: true, inhibited: true, active: true }, s),
    [filterKey],
  );

  const validate = (): string[] => {
    const errs: string[] = [];
    if (rows.length === 0) errs.push('Add at least one matcher.');
    rows.forEach((r, i) => {
      if (r.name.trim() === '') errs.push(`Matcher ${i + 1} has no label name.`);
      if (r.op.endsWith('~') && !validRegex(r.value)) errs.push(`Matcher ${i + 1} has an invalid regular expression.`);
    });
    if (rows.length > 0 && rows.every(matchesEmpty)) errs.push('At least one matcher must not match the empty string (it would silence everything).');
    if (!(end > start)) errs.push('The end must be after the start.');
    if (end <= Date.now()) errs.push('The end is in the past.');
    if (createdBy.trim() === '') errs.push('Say who creates the silence.');
    if (comment.trim() === '') errs.push('Add a comment saying why.');
    return errs;
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const errs = validate();
    setErrors(errs);
    if (errs.length) return;
    setSaving(true);
    remembered.save('watchfire.silence.creator', createdBy.trim());
    try {
      const body = {
        ...(props.editId ? { id: props.editId } : {}),
        matchers: rows.map((r) => toAM({ name: r.name.trim(), op: r.op, value: r.value })),
        // A start in the past means "now" (the server moves it), as Alertmanager does.
        startsAt: new Date(Math.max(start, editing ? start : Date.now())).toISOString(),
        endsAt: new Date(end).toISOString(),
        createdBy: createdBy.trim(),
        comment: comment.trim(),
      };
      const res = await sendJSON<{ silenceID: string }>('POST', 'api/v2/silences', body);
      if (res.silenceID === props.editId) {
        props.onSaved?.();
      } else {
        // A new silence (or Alertmanager replaced the edited one): show it on its own page.
        flash = editing ? 'Silence updated.' : 'Silence created.';
        navigate(`silences/${res.silenceID}`);
      }
    } catch (err) {
      setErrors([(err as Error).message]);
    } finally {
      setSaving(false);
    }
  };

  return (
    <form class="card silence-form" onSubmit={submit} noValidate>
      <div class="card-body">
        <h2>{editing ? 'Edit silence' : src ? 'Recreate silence' : 'Create silence'}</h2>
        {src && !editing && src.status.state === 'expired' && (
          <p class="muted">This silence has expired; saving creates a new silence with these matchers.</p>
        )}
        <fieldset class="matchers">
          <legend>Matchers</legend>
          <p class="muted small">Alerts matching every matcher are silenced. Regular expressions are anchored.</p>
          {rows.map((r, i) => (
            <div class="matcher-row" key={r.key}>
              <input
                class="input mono"
                aria-label={`Matcher ${i + 1} label name`}
                placeholder="label"
                value={r.name}
                onInput={(e) => setRow(i, { name: (e.target as HTMLInputElement).value })}
              />
              <select
                class="input mono"
                aria-label={`Matcher ${i + 1} operator`}
                value={r.op}
                onChange={(e) => setRow(i, { op: (e.target as HTMLSelectElement).value as Op })}
              >
                {ops.map((o) => (
                  <option value={o}>{o}</option>
                ))}
              </select>
              <input
                class={`input mono grow ${r.op.endsWith('~') && !validRegex(r.value) ? 'invalid' : ''}`}
                aria-label={`Matcher ${i + 1} value`}
                placeholder="value"
                value={r.value}
                onInput={(e) => setRow(i, { value: (e.target as HTMLInputElement).value })}
              />
              <button
                type="button"
                class="btn icon"
                aria-label={`Remove matcher ${i + 1}`}
                title="Remove this matcher"
                disabled={rows.length === 1}
                onClick={() => setRows(rows.filter((_, j) => j !== i))}
              >
                ✕
              </button>
            </div>
          ))}
          <button type="button" class="btn small add-matcher" onClick={() => setRows([...rows, row({ name: '', op: '=', value: '' })])}>
            + Add matcher
          </button>
        </fieldset>
        <div class="form-grid">
          <label>
            <span>Start</span>
            <TimeInput label="Start" value={start} onChange={onStart} />
          </label>
          <label>
            <span>Duration</span>
            <input
              class={`input ${parseDuration(durText) === null ? 'invalid' : ''}`}
              aria-label="Duration"
              value={durText}
              placeholder="2h"
              onInput={(e) => onDuration((e.target as HTMLInputElement).value)}
            />
          </label>
          <label>
            <span>End</span>
            <TimeInput label="End" value={end} onChange={onEnd} />
          </label>
          <label>
            <span>Created by</span>
            <input class="input" aria-label="Created by" value={createdBy} onInput={(e) => setCreatedBy((e.target as HTMLInputElement).value)} />
          </label>
          <label class="wide">
            <span>Comment</span>
            <textarea class="input" aria-label="Comment" rows={3} value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
          </label>
        </div>
        <p class="muted small">
          {end > now ? `Ends ${relTime(end, now)} (${formatTime(end)}).` : 'The end is in the past.'}
        </p>
        {errors.length > 0 && (
          <div class="alert-box error" role="alert">
            {errors.length === 1 ? errors[0] : (
              <ul>
                {errors.map((e) => (
                  <li>{e}</li>
                ))}
              </ul>
            )}
          </div>
        )}
        <div class="form-actions">
          <button type="submit" class="btn primary" disabled={saving}>
            {saving ? 'Saving…' : editing ? 'Update silence' : 'Create silence'}
          </button>
          <Link to="silences" class="btn">
            Cancel
          </Link>
        </div>
      </div>
      <div class="card-body preview">
        <h3>Affected alerts</h3>
        <Preview f={preview} now={now} />
      </div>
    </form>
  );
}

function Preview(props: { f: ReturnType<typeof useFetch<AMAlert[] | null>>; now: number }) {
  const { f } = props;
  if (f.error) return <ErrorBox title="Could not preview" error={f.error} />;
  if (f.data === undefined) return <Loading what="matching alerts" />;
  if (f.data === null) return <Empty>Fill in a matcher to see the alerts it would silence.</Empty>;
  if (f.data.length === 0) return <Empty>No current alert matches.</Empty>;
  return (
    <div class="preview-list" data-count={f.data.length}>
      <p class="muted">
        {f.data.length} current {f.data.length === 1 ? 'alert matches' : 'alerts match'}.
      </p>
      {f.data.map((a) => (
        <AMAlertRow alert={a} now={props.now} actions={false} />
      ))}
    </div>
  );
}
