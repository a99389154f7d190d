export { FakeAws, FAKE_REGION } from "./fake-aws";
export type { FakeCall } from "./fake-aws";
export { FakeParameterStore } from "./parameter-store";
export { FakeImds } from "./imds";
export type { FakeImdsOptions } from "./imds";
export { awsError, networkError } from "./errors";
export type { FakeService } from "./errors";
