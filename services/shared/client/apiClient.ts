import { NotFoundError, UnavailableError, ValidationError } from '../../../schemas/index.js';

export interface ApiClientOptions {
  /** e.g. http://127.0.0.1:8377 */
  readonly url: string;
  readonly token: string;
  /** @defaultValue 30_000 */
  readonly timeoutMs?: number;
}

/** a thin client of the service's HTTP API, mapping problem answers back to the closed error set */
export const createApiClient = (options: ApiClientOptions) => {
  const base = options.url.replace(/\/+$/, '');
  const request = async (method: string, pathname: string, body?: string, contentType = 'application/json'): Promise<{ status: number; json: unknown }> => {
    let res: Response;
    try {
      res = await fetch(`${base}${pathname}`, {
        method,
        headers: { authorization: `Bearer ${options.token}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
    } catch (e) {
      throw new UnavailableError(`${base}: ${(e as Error).message}`, { cause: e });
    }
    const text = await res.text();
    const json: unknown = text ? JSON.parse(text) : null;
    if (res.status >= 400 && !(res.status === 400 && pathname === '/v1/events' && json && typeof json === 'object' && 'results' in json)) {
      const detail = (json as { detail?: string; title?: string } | null)?.detail ?? (json as { title?: string } | null)?.title ?? text;
      if (res.status === 404) throw new NotFoundError(detail);
      if (res.status === 400) throw new ValidationError(detail, (json as { errors?: { path: string; message: string }[] }).errors ?? []);
      if (res.status === 401 || res.status === 403) throw new ValidationError(`${res.status}: ${detail} (check --token / IOMMUTRAIL_TOKEN)`);
      if (res.status >= 500 || res.status === 429) throw new UnavailableError(`${res.status}: ${detail}`);
      throw new ValidationError(`${res.status}: ${detail}`);
    }
    return { status: res.status, json };
  };
  return {
    get: async <T>(pathname: string): Promise<T> => (await request('GET', pathname)).json as T,
    post: async <T>(pathname: string, body: unknown): Promise<T> => (await request('POST', pathname, JSON.stringify(body))).json as T,
    postNdjson: async <T>(pathname: string, lines: readonly string[]): Promise<{ status: number; body: T }> => {
      const r = await request('POST', pathname, `${lines.join('\n')}\n`, 'application/x-ndjson');
      return { status: r.status, body: r.json as T };
    },
  };
};
export type ApiClient = ReturnType<typeof createApiClient>;

/** --url/--token from flags or IOMMUTRAIL_URL / IOMMUTRAIL_TOKEN */
export const apiClientFromOptions = (opts: { url?: string; token?: string }): ApiClient => {
  const url = opts.url ?? process.env.IOMMUTRAIL_URL ?? 'http://127.0.0.1:8377';
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new ValidationError(`--url: expected an http(s) URL such as http://127.0.0.1:8377, got ${JSON.stringify(url)}`);
  const token = opts.token ?? process.env.IOMMUTRAIL_TOKEN;
  if (!token) throw new ValidationError('--token: required (or set IOMMUTRAIL_TOKEN); `iommutrail serve` prints an admin token on its first start');
  return createApiClient({ url, token });
};
