// kiln's demo WORKER_HANDLER: stands in for real work so a fleet can be watched scaling, retrying
// and dead-lettering without an application. `npm run local` uses it by default, and the worker
// bundle ships it (examples/demo-handler.js), so a stack can point kiln:workerHandler at it to try a
// fleet out before its own handler exists. Plain CommonJS, no dependencies.
//
// Each message takes a random time, uniform from 0 to 2 × DEMO_AVG_MS milliseconds (default 500),
// so DEMO_AVG_MS is the average. The body may ask for something else:
//   {"ms": 1200}             take exactly 1200 ms
//   {"fail": true}  or  poison   fail every time: the message comes back after the worker's retry
//                             delay and moves to the dead-letter queue after maxReceiveCount receives
// Any other body, JSON or not, is simply "processed". The worker's abort signal (processing timeout,
// end of a drain) stops the wait at once and fails the message with the signal's reason.
"use strict";

function demoAverageMs() {
  const raw = process.env.DEMO_AVG_MS;
  if (raw === undefined || raw.trim() === "") return 500;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`DEMO_AVG_MS must be a number of milliseconds (got ${JSON.stringify(raw)})`);
  return ms;
}

// Read at load so a bad value is a configuration error at start (the worker names WORKER_HANDLER),
// not a failure of every message.
const AVG_MS = demoAverageMs();

function parse(body) {
  if (body === undefined || body === null) return {};
  if (body.trim() === "poison") return { fail: true };
  try {
    const value = JSON.parse(body);
    return typeof value === "object" && value !== null ? value : {};
  } catch {
    return {};
  }
}

function wait(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

exports.handle = async function handle(message, { signal }) {
  const request = parse(message.Body);
  if (request.fail === true) throw new Error("the message asked to fail (demo)");
  const ms = typeof request.ms === "number" && request.ms >= 0 ? request.ms : Math.random() * 2 * AVG_MS;
  await wait(ms, signal);
};
