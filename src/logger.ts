import pino, { type Logger } from 'pino';
import { currentRequestId } from '../kit/request-context.ts';
import { currentTraceIds } from '../kit/tracing.ts';

/** Paths that must never reach a log line, whatever a caller passes in. */
const REDACT = [
  'password',
  '*.password',
  'passwordHash',
  '*.passwordHash',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'privateKey',
  '*.privateKey',
];

export interface LoggerOptions {
  level: string;
  service?: string;
  /** Human-readable lines through pino-pretty; honoured only when stdout is a terminal (never in containers or CI logs). */
  pretty?: boolean;
  /** Where lines go; stdout unless given (tests pass a stream to read them). */
  destination?: pino.DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: opts.service ?? 'toko' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      // Any line written while serving a request names that request, and its trace when tracing is on.
      mixin: () => {
        const requestId = currentRequestId();
        const trace = currentTraceIds();
        return requestId ? { requestId, ...trace } : (trace ?? {});
      },
    },
    opts.destination ??
      (opts.pretty && process.stdout.isTTY
        ? pino.transport({ target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } })
        : pino.destination({ sync: false })),
  );
}
