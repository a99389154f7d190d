import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/**
 * systemd's own env-file parser, run without a running systemd: the user environment.d generator
 * reads every environment.d/*.conf with the same parse_env_file_internal that EnvironmentFile= uses,
 * then prints the result. It also expands $VAR (EnvironmentFile= does not), so values given to it
 * must only use "$" where no expansion applies: before a space, punctuation or the end.
 */
export const ENVIRONMENT_D_GENERATOR = "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator";

const SYSTEM_DIRS = ["/etc/environment.d", "/run/environment.d", "/usr/local/lib/environment.d", "/usr/lib/environment.d"];

export function parseWithSystemd(envFileText: string): Map<string, string> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-envd-"));
  try {
    const dir = path.join(home, "environment.d");
    fs.mkdirSync(dir);
    // A file here overrides a same-named one in the system's environment.d directories: empty
    // namesakes keep this machine's own variables out of the result.
    for (const system of SYSTEM_DIRS) {
      for (const name of fs.existsSync(system) ? fs.readdirSync(system) : []) fs.writeFileSync(path.join(dir, name), "");
    }
    fs.writeFileSync(path.join(dir, "99-kiln-under-test.conf"), envFileText);
    const out = execFileSync(ENVIRONMENT_D_GENERATOR, [], {
      env: { PATH: "/usr/bin:/bin", XDG_CONFIG_HOME: home, SYSTEMD_LOG_LEVEL: "err" },
    });
    return decodeGeneratorOutput(out);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const C_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };

/** Undoes shell_maybe_quote(): "…" with \" \\ \` \$ escaped and control bytes as C escapes. */
function decodeGeneratorOutput(out: Buffer): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of out.toString("latin1").split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const raw = Buffer.from(line.slice(eq + 1), "latin1");
    env.set(line.slice(0, eq), raw[0] === 0x22 ? unquote(raw.subarray(1, raw.length - 1)) : raw.toString("utf8"));
  }
  return env;
}

function unquote(q: Buffer): string {
  const bytes: number[] = [];
  for (let i = 0; i < q.length; i++) {
    if (q[i] !== 0x5c) {
      bytes.push(q[i]);
      continue;
    }
    const next = String.fromCharCode(q[++i]);
    if (next in C_ESCAPES) bytes.push(C_ESCAPES[next]);
    else if (/[0-7]/.test(next)) {
      bytes.push(parseInt(q.subarray(i, i + 3).toString("latin1"), 8));
      i += 2;
    } else bytes.push(q[i]);
  }
  return Buffer.from(bytes).toString("utf8");
}
