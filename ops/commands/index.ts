import type { Command } from "../command";
import { dlqRedriveCommand } from "./dlq-redrive";
import { dlqShowCommand } from "./dlq-show";
import { doctorCommand } from "./doctor";
import { etaCommand } from "./eta";
import { logsCommand } from "./logs";
import { pauseCommand, resumeCommand } from "./pause";
import { planCommand } from "./plan";
import { rolloutCancelCommand, rolloutRollbackCommand, rolloutStatusCommand } from "./rollout";
import { scaleCommand } from "./scale";
import { smokeCommand } from "./smoke";
import { statusCommand } from "./status";

/** Every command, in the order `kiln --help` lists them. */
export const COMMANDS: Command[] = [
  statusCommand,
  etaCommand,
  planCommand,
  dlqShowCommand,
  dlqRedriveCommand,
  logsCommand,
  smokeCommand,
  doctorCommand,
  scaleCommand,
  pauseCommand,
  resumeCommand,
  rolloutStatusCommand,
  rolloutCancelCommand,
  rolloutRollbackCommand,
];
