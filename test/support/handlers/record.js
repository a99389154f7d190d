// A WORKER_HANDLER for tests: records "start <body> <pid>.<thread>" and "done <body> <pid>.<thread>"
// lines in RECORD_FILE (one append each, so concurrent workers never interleave a line) and takes
// HANDLER_MS milliseconds, after HANDLER_CPU_MS of synchronous computing. A body "poison" throws;
// "leak:<MiB>" keeps that much memory for good.
const fs = require("node:fs");
const { threadId } = require("node:worker_threads");

const kept = [];

exports.handle = async function handle(message, { signal }) {
  const file = process.env.RECORD_FILE;
  const ms = Number(process.env.HANDLER_MS || 0);
  const who = `${process.pid}.${threadId}`;
  fs.appendFileSync(file, `start ${message.Body} ${who}\n`);
  if (message.Body === "poison") throw new Error("poison message");
  const computeUntil = Date.now() + Number(process.env.HANDLER_CPU_MS || 0);
  while (Date.now() < computeUntil);
  const leak = /^leak:(\d+)/.exec(message.Body || "");
  if (leak) kept.push(Buffer.alloc(Number(leak[1]) * 2 ** 20, 1));
  await new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
  fs.appendFileSync(file, `done ${message.Body} ${who}\n`);
};
