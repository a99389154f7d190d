import { main } from "../../../ops/cli";

export interface KilnRun {
  code: number;
  out: string;
  err: string;
  /** --json output, parsed. */
  json<T = any>(): T;
}

/**
 * Runs one kiln command in this process, as `npm run kiln -- ...` would, with its output captured.
 * `signal` stands in for Ctrl-C.
 */
export async function kiln(argv: string[], o: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; tty?: boolean } = {}): Promise<KilnRun> {
  let out = "";
  let err = "";
  const code = await main(
    argv,
    {
      out: { write: (s: string) => (out += s), isTTY: o.tty ?? false, columns: 200 },
      err: { write: (s: string) => (err += s) },
      signal: o.signal ?? new AbortController().signal,
    },
    o.env ?? { ...process.env },
  );
  return {
    code,
    out,
    err,
    json: () => {
      try {
        return JSON.parse(out);
      } catch {
        throw new Error(`not JSON (exit ${code}):\n${out}\n${err}`);
      }
    },
  };
}
