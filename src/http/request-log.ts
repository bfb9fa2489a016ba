import pino, { type Logger } from 'pino';
import { currentTraceIds } from '../../kit/tracing.ts';

export interface RequestLine {
  requestId: string;
  module: string;
  method: string;
  route: string;
  status: number;
  ms: number;
}

/**
 * One JSON line per request: request id, module, method, route template,
 * status and duration. Never bodies, query strings or headers, so no
 * password or token can reach the log this way — which is why these lines
 * skip the main logger's redaction pass: their fields are fixed and known.
 * A sibling of `logger` (same destination, level and base fields).
 */
export function requestLines(logger: Logger): (line: RequestLine) => void {
  const lines = pino(
    {
      level: logger.level,
      base: logger.bindings(),
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (logger as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym],
  );
  return (line) => {
    const trace = currentTraceIds();
    const entry = trace ? { ...line, ...trace } : line;
    // 503 is a store or peer not answering (already said once as a warning), not a fault in toko.
    if (line.status === 503) lines.warn(entry, 'request');
    else if (line.status >= 500) lines.error(entry, 'request');
    else lines.info(entry, 'request');
  };
}
