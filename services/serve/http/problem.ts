import type {} from 'pino-http';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { isAppError, type ErrorKind, type FieldIssue } from '../../../schemas/index.js';

/** the one table from error kind to HTTP status (G9) */
const STATUS: Record<ErrorKind, number> = {
  validation: 400,
  illegal_state: 409,
  not_found: 404,
  conflict: 412,
  unavailable: 503,
};

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly errors?: readonly FieldIssue[];
  readonly requestId?: string;
}

export const sendProblem = (res: Response, status: number, title: string, detail?: string, errors?: readonly FieldIssue[]): void => {
  const body: Problem = {
    type: `https://iommutrail.dev/problems/${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`,
    title,
    status,
    ...(detail !== undefined ? { detail } : {}),
    ...(errors && errors.length > 0 ? { errors } : {}),
    ...(res.req?.id !== undefined ? { requestId: String(res.req.id) } : {}),
  };
  res.status(status).type('application/problem+json').send(JSON.stringify(body));
};

/** body-parser and friends throw errors carrying an http status (413 too large, 400 bad JSON) */
const httpStatusOf = (e: unknown): number | undefined => {
  if (typeof e !== 'object' || e === null) return undefined;
  const s = (e as { status?: unknown; statusCode?: unknown }).status ?? (e as { statusCode?: unknown }).statusCode;
  return typeof s === 'number' && s >= 400 && s < 500 ? s : undefined;
};

/** maps every error once: app errors by kind, client errors by their status, anything else to a bare 500 */
export const problemMiddleware: ErrorRequestHandler = (err: unknown, req: Request, res: Response, _next: NextFunction) => {
  if (res.headersSent) return;
  if (isAppError(err)) {
    const issues = 'issues' in err ? (err.issues as readonly FieldIssue[]) : undefined;
    sendProblem(res, STATUS[err.kind], err.kind.replace('_', ' '), err.message, issues);
    return;
  }
  const status = httpStatusOf(err);
  if (status === 413) return sendProblem(res, 413, 'payload too large', (err as Error).message);
  if (status !== undefined) return sendProblem(res, status, 'bad request', (err as Error).message);
  req.log?.error({ err }, 'unhandled error');
  // never leak a stack trace
  sendProblem(res, 500, 'internal error', 'the server failed to handle this request; the request id is in the logs');
};

/** express 5 forwards rejected promises already; this keeps handlers typed as returning a promise */
export const handle =
  (fn: (req: Request, res: Response) => Promise<void> | void): RequestHandler =>
  async (req, res, next) => {
    try {
      await fn(req, res);
    } catch (e) {
      next(e);
    }
  };
