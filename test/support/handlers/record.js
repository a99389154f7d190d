// A WORKER_HANDLER for tests: records "start <body>" and "done <body>" lines in RECORD_FILE (one
// append each, so concurrent workers never interleave a line) and takes HANDLER_MS milliseconds.
const fs = require("node:fs");

exports.handle = async function handle(message, { signal }) {
  const file = process.env.RECORD_FILE;
  const ms = Number(process.env.HANDLER_MS || 0);
  fs.appendFileSync(file, `start ${message.Body} ${process.pid}\n`);
  if (message.Body === "poison") throw new Error("poison message");
  await new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
  fs.appendFileSync(file, `done ${message.Body} ${process.pid}\n`);
};
