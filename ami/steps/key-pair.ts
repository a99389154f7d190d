import { CreateKeyPairCommand, DeleteKeyPairCommand, EC2Client } from "@aws-sdk/client-ec2";
import { awsCall, isAwsError } from "../aws-errors";
import { unabortable } from "../call-signal";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { builderName, builderTags, tagSpec } from "./tags";
import { throwIfAborted } from "./wait";

const NAME = "key-pair";

/** A key pair of this build's own, so no long-lived key ever reaches a builder or the image. */
export const stepKeyPair: Step<BakeState> = {
  name: NAME,
  title: "temporary SSH key pair",

  async run(state, ctx) {
    const name = builderName(state);
    throwIfAborted(NAME, ctx.signal, `creating key pair ${name}`);
    // Ctrl-C waits for the call that creates (call-signal.ts): if it went through, its id must come back to be cleaned up.
    const out = await awsCall(NAME, `creating key pair ${name}`, () => unabortable(() =>
      state.clients.ec2.send(
        new CreateKeyPairCommand({ KeyName: name, KeyType: "ed25519", KeyFormat: "pem", TagSpecifications: [tagSpec("key-pair", builderTags(state))] }),
      )),
    );
    state.keyPair = { name: out.KeyName ?? name, id: out.KeyPairId, privateKey: out.KeyMaterial ?? "" };
    if (!out.KeyMaterial) throw new StepError(NAME, `CreateKeyPair returned no private key for ${name}`, undefined, "bake again");
    ctx.log(`${state.keyPair.name} (${state.keyPair.id ?? "no id"})`);
  },

  async cleanup(state, ctx) {
    if (!state.keyPair) return;
    await deleteKeyPair(state.clients.ec2, NAME, state.keyPair);
    ctx.log(`deleted ${state.keyPair.name}`);
  },
};

/** Deletes a key pair; one already gone counts as deleted. */
export async function deleteKeyPair(ec2: EC2Client, step: string, key: { name: string; id?: string }): Promise<void> {
  try {
    await awsCall(
      step,
      `deleting key pair ${key.name}`,
      () => ec2.send(new DeleteKeyPairCommand(key.id ? { KeyPairId: key.id } : { KeyName: key.name })),
      { UnauthorizedOperation: `delete key pair ${key.name} yourself (EC2 console → Key pairs), or grant ec2:DeleteKeyPair and run bake-ami --reap` },
    );
  } catch (e) {
    if (!isAwsError(e, "InvalidKeyPair.NotFound")) throw e;
  }
}
