// The one logger of lib/ and store/. Silent in production builds (Next.js inlines
// process.env.NODE_ENV, so the browser console stays quiet), verbose in development,
// quiet under tests unless VIDEOCONF_LOG names a level.

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

function isLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && value in ORDER;
}

function defaultLevel(): LogLevel {
  let nodeEnv: string | undefined;
  try {
    // Spelled out literally so that Next.js replaces it at build time in browser bundles.
    nodeEnv = process.env.NODE_ENV;
  } catch {
    nodeEnv = undefined; // no `process` at all (a bundle without Next's define)
  }
  if (nodeEnv === "production") return "silent";
  if (nodeEnv === "test") {
    let wanted: unknown;
    try {
      wanted = process.env.VIDEOCONF_LOG;
    } catch {
      wanted = undefined;
    }
    return isLevel(wanted) ? wanted : "silent";
  }
  return "debug";
}

let current: LogLevel = defaultLevel();

export function setLogLevel(level: LogLevel): void {
  current = level;
}

export function getLogLevel(): LogLevel {
  return current;
}

function emit(level: Exclude<LogLevel, "silent">, scope: string, args: unknown[]): void {
  if (ORDER[level] < ORDER[current]) return;
  const prefix = `[videoconf:${scope}]`;
  // The only console calls in lib/ and store/.
  if (level === "debug") console.debug(prefix, ...args);
  else if (level === "info") console.info(prefix, ...args);
  else if (level === "warn") console.warn(prefix, ...args);
  else console.error(prefix, ...args);
}

export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** A logger whose lines start with `[videoconf:<scope>]`. */
export function createLogger(scope: string): Logger {
  return {
    debug: (...args) => emit("debug", scope, args),
    info: (...args) => emit("info", scope, args),
    warn: (...args) => emit("warn", scope, args),
    error: (...args) => emit("error", scope, args),
  };
}
