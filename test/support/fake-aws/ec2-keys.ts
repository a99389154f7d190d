import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";

/** Key material as CreateKeyPair returns it: a real key, usable with OpenSSH and ssh2. */
export interface KeyMaterial {
  privateKey: string;
  /** OpenSSH authorized_keys form. */
  publicKey: string;
  fingerprint: string;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(data: Buffer | string): Buffer {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([u32(b.length), b]);
}

/** An mpint: big-endian, with a leading zero when the top bit is set. */
function mpint(b: Buffer): Buffer {
  return sshString(b[0] & 0x80 ? Buffer.concat([Buffer.alloc(1), b]) : b);
}

function wrap(b64: string): string {
  return b64.match(/.{1,70}/g)!.join("\n");
}

/** An ed25519 key in OpenSSH's own format, which is what EC2 returns for KeyType ed25519. */
export function ed25519Key(comment: string): KeyMaterial {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d!, "base64url");
  const pub = Buffer.from(jwk.x!, "base64url");
  const pubBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, sshString("ssh-ed25519"), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (secret.length + pad.length) % 8 !== 0; i++) pad.push(i);
  secret = Buffer.concat([secret, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    u32(1),
    sshString(pubBlob),
    sshString(secret),
  ]);
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${wrap(body.toString("base64"))}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${pubBlob.toString("base64")}`,
    // EC2's fingerprint of an ed25519 key: SHA-256 of the public key blob, base64.
    fingerprint: createHash("sha256").update(pubBlob).digest("base64"),
  };
}

/** A 2048-bit RSA key in PKCS#1 PEM, as EC2 returns for KeyType rsa. */
export function rsaKey(): KeyMaterial {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = publicKey.export({ format: "jwk" });
  const blob = Buffer.concat([sshString("ssh-rsa"), mpint(Buffer.from(jwk.e!, "base64url")), mpint(Buffer.from(jwk.n!, "base64url"))]);
  // EC2's fingerprint of a key it made: SHA-1 of the private key's PKCS#8 DER, colon-separated hex.
  const der = privateKey.export({ type: "pkcs8", format: "der" });
  return {
    privateKey: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicKey: `ssh-rsa ${blob.toString("base64")}`,
    fingerprint: createHash("sha1").update(der).digest("hex").match(/../g)!.join(":"),
  };
}
