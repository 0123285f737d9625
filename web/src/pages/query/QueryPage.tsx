// The query page: several panels whose whole state is kept in the URL.
import { useEffect, useState } from 'preact/hooks';
import { replaceSearch } from '../../router';
import { PageHeader } from '../../components/ui';
import { Panel } from './Panel';
import { newPanel, panelsFromURL, panelsToURL, type PanelState } from './urlstate';

export function QueryPage() {
  const [panels, setPanels] = useState<PanelState[]>(() => panelsFromURL(window.location.search));
  const [runSeq, setRunSeq] = useState(0);

  // State → URL (replace, so typing does not flood the history).
  useEffect(() => replaceSearch(panelsToURL(panels)), [panels]);

  // Back/forward within the page: URL → state.
  useEffect(() => {
    const onPop = () => setPanels(panelsFromURL(window.location.search));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  const update = (i: number, p: PanelState) => setPanels((ps) => ps.map((x, j) => (j === i ? p : x)));
  return (
    <>
      <PageHeader title="Query">
        <button type="button" class="btn" onClick={() => setRunSeq((s) => s + 1)}>
          Execute all
        </button>
        <button type="button" class="btn" onClick={() => setPanels((ps) => [...ps, newPanel()])}>
          Add panel
        </button>
      </PageHeader>
      {panels.map((p, i) => (
        <Panel
          key={p.key}
          state={p}
          runSeq={runSeq}
          autoFocus={i === 0 && p.expr === ''}
          onChange={(np) => update(i, np)}
          onRemove={panels.length > 1 ? () => setPanels((ps) => ps.filter((_, j) => j !== i)) : undefined}
        />
      ))}
      <button type="button" class="btn add-panel" onClick={() => setPanels((ps) => [...ps, newPanel()])}>
        + Add panel
      </button>
    </>
  );
}
