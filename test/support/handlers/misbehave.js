// A WORKER_HANDLER that misbehaves as a message's body asks, for the tests that prove no handler can
// freeze the worker or outlive its slot. Lines go to RECORD_FILE: "<event> <body> <thread> <ms>".
//   spin     a synchronous endless loop
//   ignore   ignores its abort signal and keeps working (a "tick" line every 50 ms) for 60 s
//   timer    throws from a timer, outside the message's promise
//   exit     calls process.exit in the handler
//   other    takes HANDLER_MS (default 50) and succeeds
const fs = require("node:fs");
const { threadId } = require("node:worker_threads");

const line = (event, body) => fs.appendFileSync(process.env.RECORD_FILE, `${event} ${body} ${threadId} ${Date.now()}\n`);

exports.handle = async function handle(message, { signal }) {
  const body = message.Body;
  line("start", body);
  if (body === "spin") for (;;);
  if (body === "ignore") {
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      line("tick", body);
      await new Promise((r) => setTimeout(r, 50));
    }
  } else if (body === "timer") {
    setTimeout(() => {
      throw new Error("thrown from a timer");
    }, 10);
    await new Promise((r) => setTimeout(r, 200));
  } else if (body === "exit") {
    process.exit(4);
  } else {
    await new Promise((resolve, reject) => {
      const t = setTimeout(resolve, Number(process.env.HANDLER_MS || 50));
      signal.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
    });
  }
  line("done", body);
};
