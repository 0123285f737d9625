// The PromQL editor: CodeMirror 6 with codemirror-promql's language, linter and completion.
// Completion asks the Watchfire server (relative to <base href>) for metric names, label names
// and values, and metadata.
import { useEffect, useRef } from 'preact/hooks';
import { EditorState, Prec, type Extension } from '@codemirror/state';
import { EditorView, keymap, placeholder, drawSelection, highlightSpecialChars } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, insertNewlineAndIndent } from '@codemirror/commands';
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from '@codemirror/autocomplete';
import { bracketMatching, HighlightStyle, syntaxHighlighting, indentOnInput } from '@codemirror/language';
import { tags } from '@lezer/highlight';
import { PromQLExtension } from '@prometheus-io/codemirror-promql';
import { baseURLNoSlash } from '../../api';

// One PromQL extension for all panels, so its client's metadata cache is shared.
let promql: PromQLExtension | null = null;
function promqlExtension(): Extension {
  if (!promql) {
    promql = new PromQLExtension().setComplete({
      remote: {
        url: baseURLNoSlash(),
        httpMethod: 'GET',
        cache: { maxAge: 5 * 60 * 1000 },
        // A failed completion lookup only means fewer suggestions; keep the console clean.
        httpErrorHandler: () => {},
      },
      maxMetricsMetadata: 10000,
    });
  }
  return promql.asExtension();
}

// Colours come from CSS variables, so the theme switch needs no editor reconfiguration.
const highlight = HighlightStyle.define([
  { tag: tags.number, color: 'var(--hl-number)' },
  { tag: tags.string, color: 'var(--hl-string)' },
  { tag: tags.keyword, color: 'var(--hl-keyword)', fontWeight: 'bold' },
  { tag: tags.function(tags.variableName), color: 'var(--hl-function)' },
  { tag: tags.labelName, color: 'var(--hl-label)' },
  { tag: tags.operator, color: 'var(--hl-operator)' },
  { tag: tags.modifier, color: 'var(--hl-keyword)', fontWeight: 'bold' },
  { tag: tags.operatorKeyword, color: 'var(--hl-keyword)', fontWeight: 'bold' },
  { tag: tags.logicOperator, color: 'var(--hl-keyword)', fontWeight: 'bold' },
  { tag: tags.variableName, color: 'var(--hl-metric)' },
  { tag: tags.comment, color: 'var(--fg-muted)', fontStyle: 'italic' },
  { tag: tags.invalid, color: 'var(--bad)' },
]);

const theme = EditorView.theme({
  '&': { fontSize: '14px', backgroundColor: 'var(--input-bg)', color: 'var(--fg)' },
  '.cm-content': { fontFamily: 'var(--mono)', padding: '6px 0', caretColor: 'var(--fg)' },
  '.cm-line': { padding: '0 8px' },
  '&.cm-focused': { outline: 'none' },
  '.cm-cursor': { borderLeftColor: 'var(--fg)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection': {
    backgroundColor: 'var(--selection) !important',
  },
  '.cm-placeholder': { color: 'var(--fg-muted)' },
  '.cm-tooltip': { backgroundColor: 'var(--bg-raised)', color: 'var(--fg)', border: '1px solid var(--border)' },
  '.cm-tooltip.cm-tooltip-autocomplete > ul': { fontFamily: 'var(--mono)', maxHeight: '16em' },
  '.cm-tooltip.cm-tooltip-autocomplete > ul > li[aria-selected]': {
    backgroundColor: 'var(--accent)',
    color: 'var(--accent-fg)',
  },
  '.cm-completionDetail': { color: 'var(--fg-muted)', fontStyle: 'normal', marginLeft: '1em' },
  '.cm-completionMatchedText': { textDecoration: 'none', fontWeight: 'bold' },
  '.cm-completionInfo': { maxWidth: '30em', fontFamily: 'var(--sans)' },
  '.cm-diagnostic-error': { borderLeftColor: 'var(--bad)' },
  '.cm-lintRange-error': { backgroundImage: 'none', textDecoration: 'underline wavy var(--bad)' },
});

export function PromQLEditor(props: {
  /**
   * The expression to show. The editor owns its text while the user types; it only takes this
   * value when it changes (the panel's committed expression: URL navigation, links). Feeding
   * the typed text back in would race with fast typing and make the two ping-pong.
   */
  value: string;
  onChange: (v: string) => void;
  onExecute: () => void;
  autoFocus?: boolean;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const cb = useRef(props);
  cb.current = props;

  useEffect(() => {
    const run = () => {
      cb.current.onExecute();
      return true;
    };
    const state = EditorState.create({
      doc: props.value,
      extensions: [
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        autocompletion({ activateOnTyping: true, maxRenderedOptions: 200 }),
        syntaxHighlighting(highlight),
        placeholder('PromQL expression (Shift+Enter for a new line)'),
        EditorView.lineWrapping,
        theme,
        // Enter runs the query unless the completion popup takes it first (completionKeymap
        // has the highest precedence); Shift+Enter inserts a newline; Ctrl/Cmd+Enter always runs.
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run }])),
        Prec.high(
          keymap.of([
            { key: 'Enter', run },
            { key: 'Shift-Enter', run: insertNewlineAndIndent },
          ]),
        ),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap]),
        promqlExtension(),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) cb.current.onChange(u.state.doc.toString());
        }),
        EditorView.contentAttributes.of({ 'aria-label': 'PromQL expression' }),
      ],
    });
    view.current = new EditorView({ state, parent: host.current! });
    if (props.autoFocus) view.current.focus();
    return () => {
      view.current?.destroy();
      view.current = null;
    };
    // The editor is created once; later value changes are applied below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Follow external changes (back/forward navigation, "run this expression" links).
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== props.value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: props.value } });
    }
  }, [props.value]);

  return <div class="promql-editor" ref={host} />;
}
