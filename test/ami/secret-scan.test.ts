import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { scan } from "../../ami/secret-scan/scan";

describe("the image's secret scan (secretlint's preset and what it misses)", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-scan-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  // 39 characters of a key, and its last: real keys end in any of the 64 base64 characters.
  const stem = "wJalrXUtnFEMIK7MDENGbPxRfiCYzKq9Xa1Bc2D";
  const endings = ["Q", "7", "+", "/", "="];

  it("finds an AWS secret access key whatever its last character, each once", async () => {
    for (const [i, end] of endings.entries()) {
      fs.writeFileSync(path.join(dir, `config-${i}.yaml`), `aws:\n  access_key_id: AKIAABCDEFGHIJKLMNOP\n  secret_access_key: ${stem}${end}\n`);
      fs.writeFileSync(path.join(dir, `env-${i}`), `AWS_SECRET_ACCESS_KEY="${stem}${end}"\n`);
    }
    const r = await scan([dir], { skip: [] });
    const byFile = new Map<string, number>();
    for (const f of r.findings) byFile.set(path.basename(f.file), (byFile.get(path.basename(f.file)) ?? 0) + 1);
    for (const [i, end] of endings.entries()) {
      assert.equal(byFile.get(`config-${i}.yaml`), 1, `a key ending in ${end} at the end of a YAML line`);
      assert.equal(byFile.get(`env-${i}`), 1, `a key ending in ${end} in quotes`);
    }
    const missed = r.findings.find((f) => f.rule === "kiln/aws-secret-key");
    assert.deepEqual(missed && { line: missed.line, column: missed.column }, { line: 3, column: 22 }, "where the key starts");
  });

  it("reports nothing for a file without one", async () => {
    fs.writeFileSync(path.join(dir, "settings.yaml"), `secret_access_key_file: /run/secrets/aws\nregion: ap-northeast-1\n`);
    assert.deepEqual((await scan([dir], { skip: [] })).findings, []);
  });
});
