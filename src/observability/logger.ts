/**
 * Logging: pino JSON, one child logger per component carrying the object it works on. Replica
 * processes always write JSON lines to stdout; the head writes its own lines and its replicas' lines
 * to one destination, readable (pino-pretty) in a terminal and JSON elsewhere.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

const levels: Record<string, string> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
  CRITICAL: 'fatal',
};

export interface LogSettings {
  /** Ray's log level names (DEBUG, INFO, WARNING, ERROR, CRITICAL) or pino's. */
  level?: string;
  /**
   * TEXT (readable) or JSON. Unset: TEXT in a terminal, JSON elsewhere (log collectors). TEXT asked
   * for explicitly is TEXT everywhere, colourless outside a terminal.
   */
  encoding?: 'TEXT' | 'JSON';
}

export function pinoLevel(level: string | undefined): string {
  if (!level) return process.env.RAYLINE_LOG_LEVEL?.toLowerCase() ?? 'info';
  return levels[level] ?? level.toLowerCase();
}

/** Where log lines (ours and our children's) go. */
export function logDestination(settings: LogSettings = {}): DestinationStream {
  const tty = Boolean(process.stdout.isTTY);
  const readable = settings.encoding === undefined ? tty : settings.encoding === 'TEXT';
  if (!readable) return pino.destination({ fd: 1, sync: false });
  return pretty({ colorize: tty, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true });
}

export function createLogger(settings: LogSettings = {}, destination = logDestination(settings)): Logger {
  return pino({ level: pinoLevel(settings.level), base: { pid: process.pid } }, destination);
}
