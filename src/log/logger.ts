import { pino, type Logger } from 'pino';

/**
 * Paths never written to logs. Credentials arrive in headers and, later, in query strings
 * (presigned URLs) and request bodies (access keys); anything matching is replaced.
 */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-amz-security-token"]',
  'headers.authorization',
  'authorization',
  'password',
  'secretAccessKey',
  'sessionToken',
  'token',
  // Secrets Manager values, should one ever be logged by mistake (wire and domain spellings).
  'SecretString',
  'SecretBinary',
  'secretString',
  'secretBinary',
] as const;

export type { Logger };

export function createLogger(options: { level: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'berth' },
      redact: { paths: [...redactPaths], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? process.stdout,
  );
}
