import { main } from "./scan";

// Fed to `node -` on the builder: stdin is the program, so there is no require.main to test.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    // Only what failed, never a file's content.
    process.stderr.write(`secret scan failed: ${e.name}: ${e.message.split("\n")[0].slice(0, 200)}\n`);
    process.exit(1);
  },
);
