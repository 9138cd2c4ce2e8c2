// One log format for every program (the injector, the exporter, the bucket cache): JSON lines with
// level names ("error", not 50: log pipelines and people read names) and ISO-8601 times, so one log
// query works across the components. Plain pino options, so that common/ stays free of I/O.

/** pino options: spread into `pino({...})` or Fastify's `logger: {...}`. */
export const LOG_FORMAT = {
  // pino's stdTimeFunctions.isoTime, written out: common/ does not import pino.
  timestamp: (): string => `,"time":"${new Date().toISOString()}"`,
  formatters: { level: (label: string) => ({ level: label }) },
};
