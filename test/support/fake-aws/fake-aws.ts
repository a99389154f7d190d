import { AutoScalingClient, SetInstanceHealthCommand, SetInstanceHealthCommandInput } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient, PutMetricDataCommand, PutMetricDataCommandInput } from "@aws-sdk/client-cloudwatch";
import { GetParametersByPathCommand, SSMClient } from "@aws-sdk/client-ssm";
import { AwsStub, mockClient } from "aws-sdk-client-mock";
import { FakeService } from "./errors";
import { FakeParameterStore } from "./parameter-store";
import { InjectedFailures, serveCall } from "./injected-failures";

export const FAKE_REGION = "ap-northeast-1";
const CLIENT_CONFIG = { region: FAKE_REGION, credentials: { accessKeyId: "test", secretAccessKey: "test" } };

/** One call as the fake received it; `error` is set when it failed (injected or not). */
export interface FakeCall {
  service: FakeService;
  operation: string;
  input: unknown;
  error?: Error;
}


// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyStub = AwsStub<any, any, any>;
type CommandClass<I> = { name: string; new (input: I): { input: I } };

/**
 * Stateful stand-ins for the AWS APIs the worker calls, behind the real SDK v3 clients: code under
 * test gets `fake.ssm`, `fake.cloudwatch` and `fake.autoscaling`, and everything above `send` (command
 * construction, input types) is real. Each client instance is mocked on its own, so other clients in
 * the process are untouched. Any operation can be failed on demand with `failNext`; an operation with
 * no handler fails loudly. More operations plug in with `handle`, for example:
 *
 *   fake.handle("autoscaling", CompleteLifecycleActionCommand, (input) => { hooks.push(input); return {}; });
 */
export class FakeAws {
  readonly ssm = new SSMClient(CLIENT_CONFIG);
  readonly cloudwatch = new CloudWatchClient(CLIENT_CONFIG);
  readonly autoscaling = new AutoScalingClient(CLIENT_CONFIG);

  readonly parameters: FakeParameterStore;
  /** Instance id → health status set through SetInstanceHealth. */
  readonly instanceHealth = new Map<string, string>();
  /** Every call, in order. */
  readonly calls: FakeCall[] = [];

  private readonly stubs: Record<FakeService, AnyStub>;
  private readonly failures = new InjectedFailures();

  constructor(opts: { ssmPageSize?: number } = {}) {
    this.parameters = new FakeParameterStore(opts.ssmPageSize, FAKE_REGION);
    this.stubs = { ssm: mockClient(this.ssm), cloudwatch: mockClient(this.cloudwatch), autoscaling: mockClient(this.autoscaling) };
    for (const [service, stub] of Object.entries(this.stubs)) {
      stub.onAnyCommand().callsFake(() => {
        throw new Error(`fake ${service}: no handler for this command; add one with FakeAws.handle`);
      });
    }

    this.handle("ssm", GetParametersByPathCommand, (input) => this.parameters.getParametersByPath(input));
    this.handle("cloudwatch", PutMetricDataCommand, () => ({}));
    this.handle("autoscaling", SetInstanceHealthCommand, (input: SetInstanceHealthCommandInput) => {
      this.instanceHealth.set(input.InstanceId!, input.HealthStatus!);
      return {};
    });
  }

  /** Serves `command` on `service`'s client: through failure injection, recorded in `calls`. */
  handle<I>(service: FakeService, command: CommandClass<I>, handler: (input: I) => object | Promise<object>): void {
    const operation = command.name.replace(/Command$/, "");
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    this.stubs[service].on(command as any).callsFake((input: I) =>
      serveCall<FakeCall>(this.calls, this.failures, { service, operation, input }, () => handler(input)),
    );
  }

  /**
   * The next `times` calls of `operation` (Infinity: every one) throw `error` instead of being served,
   * after letting `skip` calls through (to fail, say, the second page of a read).
   */
  failNext(operation: string, error: Error, times = 1, skip = 0): void {
    this.failures.add(operation, error, times, skip);
  }

  /** The inputs `operation` was called with, failed calls included. */
  inputs<I = unknown>(operation: string): I[] {
    return this.calls.filter((c) => c.operation === operation).map((c) => c.input as I);
  }

  /** Metric data points put, flattened, each with its namespace. */
  get metrics() {
    return this.calls
      .filter((c) => c.operation === "PutMetricData" && !c.error)
      .flatMap((c) => {
        const input = c.input as PutMetricDataCommandInput;
        return (input.MetricData ?? []).map((d) => ({ Namespace: input.Namespace, ...d }));
      });
  }

  restore(): void {
    for (const stub of Object.values(this.stubs)) stub.restore();
    this.ssm.destroy();
    this.cloudwatch.destroy();
    this.autoscaling.destroy();
  }
}
