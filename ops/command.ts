import type { KilnConfig } from "../infra/config";
import type { FlagSpec, FlagValues } from "./args";
import type { OpsFleet } from "./fleet";
import type { OpsIo } from "./io";
import type { Globals } from "./target";

/** What a command runs with. The stack and the fleet are opened on first use. */
export interface CommandContext {
  values: FlagValues;
  g: Globals;
  io: OpsIo;
  env: NodeJS.ProcessEnv;
  cfg(): KilnConfig;
  fleet(): OpsFleet;
  /** Human output (ignored with --json). */
  say(text: string): void;
  /** The command's JSON document (printed only with --json). */
  json(doc: unknown): void;
}

export interface Command {
  /** "status", "dlq show", "rollout status". */
  name: string;
  summary: string;
  /** Synopsis and what the command does, for --help. */
  help: string;
  flags: FlagSpec;
  run(ctx: CommandContext): Promise<number>;
}
