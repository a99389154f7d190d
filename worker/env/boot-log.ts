import { LOG_LEVELS } from "../contract";
import { createLogger, Logger } from "../log";

/**
 * The boot commands' logger. An unusable LOG_LEVEL falls back to info instead of throwing: these
 * commands must still say what went wrong, and `kiln-worker run` reports the bad value itself.
 */
export function bootLogger(env: Record<string, string | undefined>, command: string): Logger {
  const wanted = env.LOG_LEVEL?.trim().toLowerCase().replace(/^warning$/, "warn") ?? "";
  const level = (LOG_LEVELS as readonly string[]).includes(wanted) ? wanted : "info";
  return createLogger(level, { command });
}
