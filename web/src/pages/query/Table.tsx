// The table view of an instant query's result.
import type { Labels, QueryData } from '../../api';
import { formatValue, labelEntries } from '../../format';
import { Empty } from '../../components/ui';

const MAX_ROWS = 10000;

/** `name{a="b"}` with the parts coloured. */
export function SeriesName(props: { labels: Labels }) {
  const name = props.labels.__name__;
  const rest = labelEntries(props.labels).filter(([k]) => k !== '__name__');
  return (
    <span class="series-name">
      {name && <span class="metric">{name}</span>}
      {(rest.length > 0 || !name) && (
        <>
          {'{'}
          {rest.map(([k, v], i) => (
            <>
              <span class="lname">{k}</span>=<span class="lvalue">{JSON.stringify(v)}</span>
              {i < rest.length - 1 && ', '}
            </>
          ))}
          {'}'}
        </>
      )}
    </span>
  );
}

export function ResultTable(props: { data: QueryData }) {
  const { data } = props;
  if (data.resultType === 'scalar' || data.resultType === 'string') {
    return (
      <table class="data-table">
        <thead>
          <tr>
            <th>Result</th>
            <th class="value">Value</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <td>
              <span class="muted">{data.resultType}</span>
            </td>
            <td class="value">{data.resultType === 'scalar' ? formatValue(data.result[1]) : data.result[1]}</td>
          </tr>
        </tbody>
      </table>
    );
  }
  const rows = data.result;
  if (rows.length === 0) return <Empty>Empty query result.</Empty>;
  const shown = rows.slice(0, MAX_ROWS);
  return (
    <>
      {rows.length > MAX_ROWS && (
        <div class="alert-box warning">
          Showing the first {MAX_ROWS} of {rows.length} series.
        </div>
      )}
      <div class="table-wrap">
        <table class="data-table">
          <thead>
            <tr>
              <th>Series</th>
              <th class="value">Value</th>
            </tr>
          </thead>
          <tbody>
            {data.resultType === 'vector'
              ? (shown as Extract<QueryData, { resultType: 'vector' }>['result']).map((s) => (
                  <tr>
                    <td>
                      <SeriesName labels={s.metric} />
                    </td>
                    <td class="value">{s.value ? formatValue(s.value[1]) : <span class="muted">histogram</span>}</td>
                  </tr>
                ))
              : (shown as Extract<QueryData, { resultType: 'matrix' }>['result']).map((s) => (
                  <tr>
                    <td>
                      <SeriesName labels={s.metric} />
                    </td>
                    <td class="value samples">
                      {(s.values ?? []).map(([t, v]) => (
                        <div>
                          {formatValue(v)} <span class="muted">@{t}</span>
                        </div>
                      ))}
                      {(s.histograms ?? []).length > 0 && <div class="muted">{s.histograms!.length} histogram samples</div>}
                    </td>
                  </tr>
                ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
