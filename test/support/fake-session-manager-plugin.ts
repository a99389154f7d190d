/**
 * A stand-in for AWS's session-manager-plugin (aws/session-manager-plugin,
 * src/sessionmanagerplugin/session/session.go ValidateInputAndStartSession), for the bake's tests.
 * It reads its arguments as the real one does, and refuses what would break it, saying so the way it
 * does (most errors print "Cannot perform start session: ..." and exit 0; a request without a Target
 * panics). It then opens the fake Session Manager's data channel (test/support/fake-session-manager.ts)
 * with the session's token, listens where the session's properties say, and carries each local
 * connection to the instance's port. SIGINT ends it as the real one's port sessions end; a session
 * terminated on the service's side ends it too.
 */
import * as net from "node:net";

const VERSION = process.env.KILN_FAKE_PLUGIN_VERSION ?? "1.2.707.0";
const RESPONSE_ENV = "AWS_SSM_START_SESSION_RESPONSE";
const args = process.argv.slice(2);
const say = (text: string) => process.stdout.write(text);

/** What the real plugin does with an error it reports: print it, and exit 0. */
function cannot(why: string): never {
  say(`Cannot perform start session: ${why}\n`);
  process.exit(0);
}

function newer(version: string, than: string): boolean {
  const a = version.split(".").map(Number);
  const b = than.split(".").map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return false;
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch (e) {
    return cannot(`invalid JSON ${JSON.stringify(text.slice(0, 40))}: ${(e as Error).message}`);
  }
}

if (args.length === 0) {
  say("\nThe Session Manager plugin was installed successfully. Use the AWS CLI to start a session.\n\n");
  process.exit(0);
}
if (args.length === 1 && args[0] === "--version") {
  say(`${VERSION}\n`);
  process.exit(0);
}
if (args.length < 3) {
  say(`\nUnknown operation ${args[0]}. \nUse session-manager-plugin --version to check the version.\n\n`);
  process.exit(0);
}
// The AWS CLI passes six: response, region, operation, profile, request, endpoint.
if (args.length !== 6) cannot(`expected the AWS CLI's 6 arguments, got ${args.length}`);

const [responseArg, region, operation, profile, requestArg, endpoint] = args;
// Plugins after 1.2.497.0 read the answer from the environment variable named in its place, and unset it.
let responseText = responseArg;
if (responseArg.startsWith(RESPONSE_ENV) && newer(VERSION, "1.2.497.0")) {
  responseText = process.env[responseArg] ?? "";
  delete process.env[responseArg];
}
const response = parseJson(responseText);
for (const field of ["SessionId", "TokenValue", "StreamUrl"]) {
  if (typeof response[field] !== "string" || !response[field]) {
    process.stderr.write(`panic: runtime error: invalid memory address or nil pointer dereference (StartSession response without ${field})\n`);
    process.exit(2);
  }
}
const sessionId = response.SessionId as string;
if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) cannot(`${JSON.stringify(region)} is not a region`);
if (operation !== "StartSession") {
  say("Invalid Operation");
  process.exit(0);
}
// An empty profile means the default credential chain; a named one must exist, which none does here.
if (profile !== "") cannot(`SharedConfigProfileNotExistsError: failed to get profile, ${profile}`);
const request = parseJson(requestArg);
if (typeof request.Target !== "string") {
  process.stderr.write("panic: interface conversion: interface {} is nil, not string\n");
  process.exit(2);
}
let endpointUrl: URL;
try {
  endpointUrl = new URL(endpoint);
  if (!/^https?:$/.test(endpointUrl.protocol)) throw new Error(`scheme ${endpointUrl.protocol}`);
} catch (e) {
  cannot(`the SSM endpoint ${JSON.stringify(endpoint)} is not a URL: ${(e as Error).message}`);
}
const stream = new RegExp(`^wss://ssmmessages\\.${region}\\.amazonaws\\.com/v1/data-channel/${sessionId}\\?`);
if (!stream.test(response.StreamUrl as string)) cannot(`the stream URL is not ${region}'s data channel for ${sessionId}`);

say(`\nStarting session with SessionId: ${sessionId}\n`);
const [host, port] = (process.env.KILN_FAKE_SSMMESSAGES ?? "").split(":");
if (!host || !port) cannot("KILN_FAKE_SSMMESSAGES does not say where the fake data channel is");

let exiting = false;
function exitSession(): never {
  exiting = true;
  say(`\n\nExiting session with sessionId: ${sessionId}.\n\n`);
  process.exit(0);
}

const control = net.connect({ host, port: Number(port) });
control.on("error", (e) => cannot(`opening the data channel: ${e.message}`));
control.write(`OPEN ${sessionId} ${response.TokenValue} ${process.pid} ${endpoint}\n`);
let answer = "";
control.on("data", function onAnswer(chunk: Buffer) {
  answer += chunk.toString("utf8");
  if (!answer.includes("\n")) return;
  control.removeListener("data", onAnswer);
  const [verb, target, , localPort] = answer.trim().split(" ");
  if (verb !== "OK") cannot(`data channel refused: ${answer.trim()}`);
  if (target !== request.Target) cannot(`the session is to ${target}, the request names ${String(request.Target)}`);
  listen(Number(localPort));
});
control.on("close", () => {
  if (!exiting) exitSession();
});
process.on("SIGINT", () => {
  say("Terminate signal received, exiting.\n");
  control.end();
  exitSession();
});

function listen(localPort: number): void {
  const server = net.createServer((local) => {
    say(`Connection accepted for session [${sessionId}]\n`);
    const carried = net.connect({ host, port: Number(port) });
    carried.write(`DATA ${sessionId}\n`);
    local.pipe(carried);
    carried.pipe(local);
    local.on("error", () => carried.destroy());
    carried.on("error", () => local.destroy());
    local.on("close", () => carried.destroy());
    carried.on("close", () => local.destroy());
  });
  server.on("error", (e) => {
    say(`Unable to open tcp connection to port. ${e.message}\n`);
    cannot(e.message);
  });
  server.listen(localPort, "127.0.0.1", () => {
    const opened = (server.address() as net.AddressInfo).port;
    // The real plugin's mux mode prints this without a newline, then "\nWaiting for connections...".
    say(`Port ${opened} opened for sessionId ${sessionId}.`);
    say(`\nWaiting for connections...\n`);
  });
}
