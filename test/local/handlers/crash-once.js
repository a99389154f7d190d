// A WORKER_HANDLER for the local fleet's tests: the first worker process to load it exits 1 (a
// crash, not a configuration error), every later one loads it and handles messages at once.
const fs = require("node:fs");

const marker = process.env.CRASH_ONCE_MARKER;
if (marker && !fs.existsSync(marker)) {
  fs.writeFileSync(marker, String(process.pid));
  process.exit(1);
}

exports.handle = async function handle() {};
