// A time field as text ("2024-05-01 13:04:05", in UTC or local time per the setting), so it
// looks the same in every browser and locale. Empty means "now" where that is allowed.
import { useEffect, useState } from 'preact/hooks';
import { fromDateInput, toDateInput } from '../format';
import { useSettings } from '../settings';

export function TimeInput(props: {
  value: number | null;
  onChange: (ms: number | null) => void;
  label: string;
  allowEmpty?: boolean; // empty = now
}) {
  const [, utc] = useSettings();
  const show = (v: number | null) => (v === null ? '' : toDateInput(v, utc).replace('T', ' '));
  const [text, setText] = useState(show(props.value));
  const [invalid, setInvalid] = useState(false);
  useEffect(() => {
    setText(show(props.value));
    setInvalid(false);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.value, utc]);

  const commit = () => {
    const t = text.trim();
    if (t === '' || t.toLowerCase() === 'now') {
      if (props.allowEmpty) {
        setInvalid(false);
        if (props.value !== null) props.onChange(null);
      } else setInvalid(true);
      return;
    }
    const ms = fromDateInput(t, utc);
    setInvalid(ms === null);
    if (ms !== null && ms !== props.value) props.onChange(ms);
  };
  return (
    <input
      class={`input time-input mono ${invalid ? 'invalid' : ''}`}
      aria-label={props.label}
      title={`YYYY-MM-DD HH:MM:SS, ${utc ? 'UTC' : 'local time'}`}
      placeholder={props.allowEmpty ? 'now' : 'YYYY-MM-DD HH:MM:SS'}
      value={text}
      size={19}
      onInput={(e) => setText((e.target as HTMLInputElement).value)}
      onBlur={commit}
      onKeyDown={(e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          commit();
        }
      }}
    />
  );
}
