// The kiln contender's WORKER_HANDLER: the bench's workload, run in the worker's handler threads as
// a real handler is. BENCH_WORKLOAD=noop does nothing; sleep waits the milliseconds the body names
// (`<index> <ms> <padding>`, the same draw every contender sleeps).
"use strict";

const workload = process.env.BENCH_WORKLOAD || "noop";

exports.handle =
  workload === "noop"
    ? async function handle() {}
    : function handle(message) {
        const body = message.Body || "";
        const a = body.indexOf(" ") + 1;
        const ms = Number(body.slice(a, body.indexOf(" ", a)));
        return new Promise((resolve) => setTimeout(resolve, ms));
      };
