import assert from "node:assert/strict";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { Moto, startMoto } from "./moto";

describe("moto test server", function () {
  this.timeout(60_000);
  let moto: Moto;
  before(async () => (moto = await startMoto()));
  after(async () => moto?.stop());

  it("serves SSM SecureStrings encrypted with a KMS key, and forgets them on reset", async () => {
    const kms = new KMSClient(moto.client());
    const ssm = new SSMClient(moto.client());
    const key = await kms.send(new CreateKeyCommand({}));
    await ssm.send(
      new PutParameterCommand({ Name: "/kiln/t/worker/SECRET", Value: "s3cret", Type: "SecureString", KeyId: key.KeyMetadata!.KeyId }),
    );
    const plain = await ssm.send(new GetParameterCommand({ Name: "/kiln/t/worker/SECRET", WithDecryption: true }));
    assert.equal(plain.Parameter?.Value, "s3cret");
    const sealed = await ssm.send(new GetParameterCommand({ Name: "/kiln/t/worker/SECRET" }));
    assert.notEqual(sealed.Parameter?.Value, "s3cret");

    await moto.reset();
    await assert.rejects(ssm.send(new GetParameterCommand({ Name: "/kiln/t/worker/SECRET" })), /ParameterNotFound/);
  });
});
