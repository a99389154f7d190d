import { EXIT } from "./contract";
import { runWorker } from "./run";

const USAGE = `usage: kiln-worker <command>

commands:
  run [--self-check]   consume the queue named by SQS_QUEUE_URL until SIGTERM (docs/worker.md: the
                       contract); --self-check validates the configuration and the handler, command
                       or app (an app is started, health-checked and stopped), then exits
  env                  write /etc/kiln/worker.env and the sizing drop-in from SSM (on an instance)
  report-failure       report that systemd gave up on the worker (run by kiln-worker-failed.service)

exit codes: ${Object.entries(EXIT)
  .map(([k, v]) => `${v} ${k.toLowerCase().replace("_", " ")}`)
  .join(", ")}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      return runWorker({ selfCheck: rest.includes("--self-check"), catchUncaught: true });
    case "env":
    case "report-failure": {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const boot = require("./env/command") as { runEnvCommand(o: object): Promise<number>; runReportFailure(o: object): Promise<number> };
      return command === "env" ? boot.runEnvCommand({}) : boot.runReportFailure({});
    }
    case "-h":
    case "--help":
    case "help":
      process.stdout.write(USAGE + "\n");
      return 0;
    default:
      process.stderr.write(`kiln-worker: unknown command ${JSON.stringify(command ?? "")}\n${USAGE}\n`);
      return EXIT.CONFIG_ERROR;
  }
}

/** Runs the CLI as a program: the process exits with the code that says why the worker stopped. */
export function runCli(argv = process.argv.slice(2)): void {
  process.on("unhandledRejection", (e) => {
    // A handler's stray promise must not take the other in-flight messages down with it.
    process.stderr.write(JSON.stringify({ level: "error", msg: "unhandled rejection", err: String(e) }) + "\n");
  });
  main(argv).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(JSON.stringify({ level: "fatal", msg: "worker crashed", err: e.stack ?? String(e) }) + "\n");
      process.exit(EXIT.CRASHED);
    },
  );
}

if (require.main === module) runCli();
