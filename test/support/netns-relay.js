"use strict";
/**
 * Runs inside a network namespace of its own (`unshare --net node netns-relay.js SPEC`), which holds
 * nothing but loopback, and joins it to the test's servers through Unix sockets, the only way across
 * (a path in the file system is reachable from any network namespace):
 *
 *   inbound:  listens on host:port in the namespace; each connection goes to a Unix socket the test
 *             serves (the stand-ins for IMDS and the AWS APIs)
 *   outbound: listens on a Unix socket; each connection goes to host:port in the namespace (the
 *             machine's sshd, for the test)
 *
 * SPEC is JSON: { addresses: ["169.254.169.254/32"], inbound: [{host, port, socket}], outbound: [{socket, host, port}] }.
 * Prints "ready" once every listener is up; exits on SIGTERM, and the namespace goes with it.
 */
const net = require("node:net");
const { spawnSync } = require("node:child_process");

const spec = JSON.parse(process.argv[2]);

function ip(args) {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.error ? r.error.message : r.stderr.trim()}`);
}

function pipe(a, b) {
  a.on("error", () => b.destroy());
  b.on("error", () => a.destroy());
  a.pipe(b).pipe(a);
}

function listen(server, ...args) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(...args, resolve);
  });
}

async function main() {
  ip(["link", "set", "lo", "up"]);
  for (const address of spec.addresses || []) ip(["address", "add", address, "dev", "lo"]);
  const servers = [];
  for (const r of spec.inbound || []) {
    const server = net.createServer((c) => pipe(c, net.connect(r.socket)));
    await listen(server, r.port, r.host);
    servers.push(server);
  }
  for (const r of spec.outbound || []) {
    const server = net.createServer((c) => pipe(c, net.connect(r.port, r.host)));
    await listen(server, r.socket);
    servers.push(server);
  }
  process.on("SIGTERM", () => process.exit(0));
  process.stdout.write("ready\n");
}

main().catch((e) => {
  process.stderr.write(`netns relay: ${e.message}\n`);
  process.exit(1);
});
