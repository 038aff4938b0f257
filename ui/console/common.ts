import { html } from 'htm/preact';
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useState } from 'preact/hooks';
import type { Session } from './api';

/** The session every page reads: the node it talks to, and whether changes are allowed. */
export const SessionContext = createContext<Session>({ node_id: '', read_only: true });
export const useSession = (): Session => useContext(SessionContext);

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/** Loads once (and again on `reload` or when `deps` change); keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (value) => live && (setData(value), setError(undefined)),
      (err: Error) => live && setError(err.message),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tick, ...deps]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

export const ErrorNote = ({ error }: { error: string | undefined }) =>
  error ? html`<p class="error" role="alert">${error}</p>` : null;

export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export const num = (value: number | null | undefined, digits = 1): string =>
  value === null || value === undefined ? '–' : Number.isInteger(value) ? String(value) : value.toFixed(digits);

export const json = (value: unknown): string => JSON.stringify(value, null, 2);

/** Parses the text of a JSON field; throws a message naming the field. */
export function parseJson(text: string, field: string): unknown {
  try {
    return text.trim() === '' ? {} : JSON.parse(text);
  } catch (err) {
    throw new Error(`${field} is not valid JSON: ${(err as Error).message}`);
  }
}
