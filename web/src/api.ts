// Every request goes to the Watchfire server, relative to <base href>, so the UI works under
// --web.route-prefix and behind a reverse proxy. Never build an absolute "/api/..." path.

export type Params = Record<string, string | number | boolean | undefined | (string | number)[]>;

/** The absolute URL of an API path (no leading slash) relative to the document's base. */
export function apiURL(path: string, params?: Params): URL {
  const url = new URL(path.replace(/^\/+/, ''), document.baseURI);
  if (params) {
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined) continue;
      if (Array.isArray(v)) v.forEach((x) => url.searchParams.append(k, String(x)));
      else url.searchParams.set(k, String(v));
    }
  }
  return url;
}

/** The base URL without its trailing slash, as codemirror-promql's client wants it. */
export function baseURLNoSlash(): string {
  return new URL('.', document.baseURI).href.replace(/\/$/, '');
}

/** An error from the API or the network, with a message fit to show the user. */
export class APIError extends Error {
  constructor(
    message: string,
    public status?: number,
    public errorType?: string,
  ) {
    super(message);
  }
}

/** The Prometheus v1 envelope's warnings and infos, when a call returns them. */
export interface Notes {
  warnings?: string[];
  infos?: string[];
}

async function request(url: URL, init?: RequestInit): Promise<{ res: Response; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers: { Accept: 'application/json', ...(init?.headers ?? {}) } });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new APIError(`Cannot reach the Watchfire server (${url.pathname}): ${(e as Error).message}`);
  }
  const text = await res.text();
  let body: unknown = undefined;
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { res, body };
}

/** Turns an error body of either API flavour into a message. */
function errorMessage(res: Response, body: unknown): string {
  if (typeof body === 'string' && body.trim() !== '') return body.trim();
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.error === 'string') return b.error;
    if (typeof b.message === 'string') return b.message;
  }
  return `${res.status} ${res.statusText}`.trim();
}

/** GET (or POST) a Prometheus v1 endpoint and unwrap its `{status, data}` envelope. */
export async function v1<T>(
  path: string,
  params?: Params,
  signal?: AbortSignal,
): Promise<{ data: T } & Notes> {
  const { res, body } = await request(apiURL('api/v1/' + path, params), { signal });
  const b = body as { status?: string; data?: T; error?: string; errorType?: string } & Notes;
  if (!res.ok || !b || b.status !== 'success') {
    throw new APIError(errorMessage(res, body), res.status, b?.errorType);
  }
  return { data: b.data as T, warnings: b.warnings, infos: b.infos };
}

/** A plain-JSON endpoint (Alertmanager API v2, Watchfire's own). */
export async function getJSON<T>(path: string, params?: Params, signal?: AbortSignal): Promise<T> {
  const { res, body } = await request(apiURL(path, params), { signal });
  if (!res.ok) throw new APIError(errorMessage(res, body), res.status);
  return body as T;
}

/** POST or DELETE a JSON body to a plain-JSON endpoint. */
export async function sendJSON<T>(method: 'POST' | 'DELETE', path: string, payload?: unknown): Promise<T> {
  const { res, body } = await request(apiURL(path), {
    method,
    headers: payload === undefined ? {} : { 'Content-Type': 'application/json' },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  if (!res.ok) throw new APIError(errorMessage(res, body), res.status);
  return body as T;
}

// --- Shapes of the responses the UI reads ---------------------------------------------------

export type Labels = Record<string, string>;

export type SamplePair = [number, string];
export interface VectorSample {
  metric: Labels;
  value?: SamplePair;
  histogram?: [number, unknown];
}
export interface MatrixSeries {
  metric: Labels;
  values?: SamplePair[];
  histograms?: [number, unknown][];
}
export type QueryData =
  | { resultType: 'vector'; result: VectorSample[] }
  | { resultType: 'matrix'; result: MatrixSeries[] }
  | { resultType: 'scalar'; result: SamplePair }
  | { resultType: 'string'; result: SamplePair };

export interface RuleAlert {
  labels: Labels;
  annotations: Labels;
  state: 'inactive' | 'pending' | 'firing';
  activeAt?: string;
  keepFiringSince?: string;
  value: string;
}
export interface Rule {
  name: string;
  query: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  lastEvaluation: string;
  evaluationTime: number;
  labels?: Labels;
  // alerting only
  state?: 'inactive' | 'pending' | 'firing';
  duration?: number;
  keepFiringFor?: number;
  annotations?: Labels;
  alerts?: RuleAlert[];
}
export interface RuleGroup {
  name: string;
  file: string;
  interval: number;
  limit?: number;
  lastEvaluation: string;
  evaluationTime: number;
  rules: Rule[];
}

export interface Target {
  discoveredLabels: Labels;
  labels: Labels;
  scrapePool: string;
  scrapeUrl: string;
  globalUrl?: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
  lastScrapeDuration: number;
  scrapeInterval?: string;
  scrapeTimeout?: string;
}
export interface DroppedTarget {
  discoveredLabels: Labels;
  scrapePool?: string;
}
export interface TargetsData {
  activeTargets: Target[];
  droppedTargets: DroppedTarget[];
  droppedTargetCounts?: Record<string, number>;
}

// Alertmanager API v2
export interface AMMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual?: boolean;
}
export interface AMAlert {
  labels: Labels;
  annotations: Labels;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  generatorURL?: string;
  fingerprint: string;
  receivers: { name: string }[];
  status: { state: 'active' | 'suppressed' | 'unprocessed'; silencedBy: string[]; inhibitedBy: string[]; mutedBy?: string[] };
}
export interface AMGroup {
  labels: Labels;
  receiver: { name: string };
  alerts: AMAlert[];
}
export interface Silence {
  id: string;
  matchers: AMMatcher[];
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  createdBy: string;
  comment: string;
  status: { state: 'active' | 'pending' | 'expired' };
}
