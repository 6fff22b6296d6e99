import pino, { type DestinationStream, type Level, type Logger } from 'pino';

/**
 * Structured fields that can carry a secret, wherever the service logs a request, a response or an error.
 * pino replaces their values before a line is written.
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'err.headers.authorization',
  'err.headers.cookie',
  'err.config.headers.authorization',
  'err.request.headers.authorization',
  'token',
  'password',
  'secret',
  '*.token',
  '*.password',
  '*.secret',
  '*.authorization',
];

const CENSOR = '[redacted]';

// credentials inside free text: an Authorization value, a token-like query parameter, a token this service minted
const SECRET_PATTERNS: readonly [RegExp, string][] = [
  [/\b(Bearer|Basic|Token)(\s+)[^\s",;]+/gi, `$1$2${CENSOR}`],
  [/([?&;](?:token|access_token|id_token|refresh_token|api_key|apikey|key|secret|password|auth)=)[^&\s"#]*/gi, `$1${CENSOR}`],
  [/\biot_[A-Za-z0-9_-]{16,}/g, `iot_${CENSOR}`],
];

/** the text with every credential pattern replaced: for messages, URLs and stacks that a field path cannot reach */
export const scrubSecrets = (text: string): string => {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
};

export interface CreateLoggerOptions {
  readonly level: Level | 'silent';
  /** the logger's name, on every line */
  readonly name?: string;
  /** bound to every line, e.g. `{ service: 'iommutrail' }` */
  readonly base?: Record<string, unknown>;
  /** where lines go: a stream, or a file descriptor (2 for stderr); stdout when absent */
  readonly destination?: DestinationStream | number;
}

/**
 * The one logger factory of the service and its commands: secret-bearing fields redacted by path, and every
 * line scrubbed of credential patterns as a last line of defence (an error message quoting a header, a URL
 * with `?token=`). **WARNING**: a logger made elsewhere has neither; pass this one to every component.
 */
export const createLogger = (options: CreateLoggerOptions): Logger =>
  pino(
    {
      level: options.level,
      ...(options.name !== undefined ? { name: options.name } : {}),
      ...(options.base ? { base: options.base } : {}),
      redact: { paths: [...REDACT_PATHS], censor: CENSOR },
      hooks: { streamWrite: scrubSecrets },
    },
    typeof options.destination === 'object' ? options.destination : pino.destination(options.destination ?? 1),
  );
