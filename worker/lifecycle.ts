import { AutoScalingClient, CompleteLifecycleActionCommand, RecordLifecycleActionHeartbeatCommand } from "@aws-sdk/client-auto-scaling";

/**
 * IMDSv2, read with plain HTTP: a session token first, then the path. The SDK's own endpoint
 * variable points it elsewhere (tests use a stand-in on 127.0.0.1).
 */
export class InstanceMetadata {
  constructor(
    private readonly endpoint = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? "http://169.254.169.254",
    private readonly timeoutMs = 2_000,
  ) {}

  async get(path: string): Promise<string> {
    const base = this.endpoint.replace(/\/$/, "");
    const tokenRes = await fetch(`${base}/latest/api/token`, {
      method: "PUT",
      headers: { "X-aws-ec2-metadata-token-ttl-seconds": "60" },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!tokenRes.ok) throw new Error(`IMDS token request answered ${tokenRes.status}`);
    const token = await tokenRes.text();
    const res = await fetch(`${base}/latest/meta-data/${path}`, {
      headers: { "X-aws-ec2-metadata-token": token },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new Error(`IMDS ${path} answered ${res.status}`);
    return (await res.text()).trim();
  }
}

/**
 * Watches the instance's Auto Scaling target lifecycle state and calls back once when the group
 * has decided to terminate it (scale-in, instance refresh, rebalancing).
 */
export class ScaleInWatcher {
  private timer?: NodeJS.Timeout;
  private fired = false;

  constructor(
    private readonly imds: InstanceMetadata,
    private readonly onTerminating: () => void,
    private readonly onError: (e: Error) => void,
    private readonly intervalMs = 5_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    void this.check();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    try {
      const state = await this.imds.get("autoscaling/target-lifecycle-state");
      if (state === "Terminated" && !this.fired) {
        this.fired = true;
        this.stop();
        this.onTerminating();
      }
    } catch (e) {
      this.onError(e as Error);
    }
  }
}

/** The terminate lifecycle action of this instance: kept alive while draining, then completed. */
export class LifecycleAction {
  constructor(
    private readonly autoscaling: AutoScalingClient,
    private readonly target: { groupName: string; hookName: string; instanceId: string },
  ) {}

  heartbeat(): Promise<unknown> {
    return this.autoscaling.send(
      new RecordLifecycleActionHeartbeatCommand({
        AutoScalingGroupName: this.target.groupName,
        LifecycleHookName: this.target.hookName,
        InstanceId: this.target.instanceId,
      }),
    );
  }

  complete(): Promise<unknown> {
    return this.autoscaling.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: this.target.groupName,
        LifecycleHookName: this.target.hookName,
        InstanceId: this.target.instanceId,
        LifecycleActionResult: "CONTINUE",
      }),
    );
  }
}
