import { randomBytes } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import { DescribeInstancesCommand, EC2Client, Instance } from "@aws-sdk/client-ec2";
import { GetInstanceProfileCommand, GetRolePolicyCommand, IAMClient, ListRolePoliciesCommand } from "@aws-sdk/client-iam";
import { isAlive as alive } from "../local/support";
import { FakeDataChannel, FakeSession } from "./fake-ssm-data-channel";
import { Moto, MOTO_REGION } from "./moto";

export type { FakeSession } from "./fake-ssm-data-channel";
export { installFakePlugin } from "./fake-ssm-data-channel";

/**
 * Session Manager for the bake's tests, the part moto 5.2.1 lacks (DescribeInstanceInformation,
 * StartSession, TerminateSession) and nothing else: an SSM endpoint on 127.0.0.1 that answers those
 * three in SSM's JSON protocol and passes every other SSM call to moto, plus the data channel
 * (ssmmessages, fake-ssm-data-channel.ts) the fake session-manager-plugin connects to. A session to
 * an instance's port 22 ends at the sshd `route` names for it (the debootstrap test host's).
 *
 * The agent on an instance comes online the way AWS's does: only for an instance moto runs, with an
 * instance profile whose role lets the agent register (ssm:UpdateInstanceInformation, ssmmessages:*),
 * and after `agentOnlineAfter` polls have seen it absent. `agent` makes it never register, or lose
 * its connection. Any of the three calls can be failed on demand.
 */
const AGENT_ACTIONS = ["ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"];

type AgentMode = "online" | "never" | "connection-lost";

export class FakeSessionManager {
  readonly sessions = new Map<string, FakeSession>();
  /** Every call it answered itself (not moto's), in order, failed or not. */
  readonly calls: { action: string; input: Record<string, unknown>; error?: string }[] = [];
  agent: AgentMode = "online";
  /** DescribeInstanceInformation polls that see an instance absent before its agent registers. */
  agentOnlineAfter = 1;
  /** Called on every StartSession (a test presses Ctrl-C there). */
  onStartSession?: (session: FakeSession) => void;
  private readonly routes = new Map<string, number>();
  private readonly polls = new Map<string, number>();
  private readonly failures: { action: string; code: string; message: string; times: number }[] = [];
  private readonly ec2: EC2Client;
  private readonly iam: IAMClient;
  private channel!: FakeDataChannel;

  private constructor(
    private readonly moto: Moto,
    private readonly http: http.Server,
  ) {
    this.ec2 = new EC2Client(moto.client());
    this.iam = new IAMClient(moto.client());
  }

  static async start(moto: Moto): Promise<FakeSessionManager> {
    let fake!: FakeSessionManager;
    const server = http.createServer((req, res) => fake.serve(req, res));
    fake = new FakeSessionManager(moto, server);
    fake.channel = await FakeDataChannel.start(fake.sessions, fake.routes);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return fake;
  }

  /** The SSM endpoint: the bake's SSM client goes here. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.http.address() as net.AddressInfo).port}`;
  }

  /** The data channel's address, for the fake plugin (installFakePlugin). */
  get dataChannel(): string {
    return this.channel.address;
  }

  /** Sessions to `instanceId` reach this port on 127.0.0.1 (its sshd). */
  route(instanceId: string, port: number): void {
    this.routes.set(instanceId, port);
  }

  /** The next `times` calls of `action` fail with this SSM error. */
  fail(action: string, code: string, message: string, times = 1): void {
    this.failures.push({ action, code, message, times });
  }

  /** Plugins that opened a session and still run. */
  livePlugins(): number[] {
    return [...this.sessions.values()].flatMap((s) => (s.plugin && alive(s.plugin.pid) ? [s.plugin.pid] : []));
  }

  /** Forgets sessions, routes, polls and failures, and goes back to an agent that comes online. */
  reset(): void {
    for (const s of this.sessions.values()) FakeDataChannel.close(s);
    this.sessions.clear();
    this.routes.clear();
    this.polls.clear();
    this.failures.length = 0;
    this.calls.length = 0;
    this.agent = "online";
    this.agentOnlineAfter = 1;
    this.onStartSession = undefined;
  }

  async stop(): Promise<void> {
    this.reset();
    this.http.closeAllConnections();
    await new Promise((r) => this.http.close(r));
    await this.channel.stop();
    this.ec2.destroy();
    this.iam.destroy();
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const action = String(req.headers["x-amz-target"] ?? "").replace(/^AmazonSSM\./, "");
      const handler = { DescribeInstanceInformation: this.describeInstanceInformation, StartSession: this.startSession, TerminateSession: this.terminateSession }[action];
      if (!handler) return this.forward(req, res, body);
      const input = JSON.parse(body.toString("utf8") || "{}") as Record<string, unknown>;
      const call: (typeof this.calls)[number] = { action, input };
      this.calls.push(call);
      const answer = (status: number, json: object) => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify(json));
      };
      const failure = this.failures.find((f) => f.action === action && f.times > 0);
      if (failure) {
        failure.times--;
        call.error = failure.code;
        return answer(400, { __type: failure.code, message: failure.message });
      }
      handler.call(this, input).then(
        (out) => answer(200, out),
        (e: SsmError) => {
          call.error = e.code ?? "InternalServerError";
          answer(e.code ? 400 : 500, { __type: e.code ?? "InternalServerError", message: e.message });
        },
      );
    });
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const upstream = new URL(this.moto.endpoint);
    const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on("error", (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    out.end(body);
  }

  /**
   * AWS: Filters (Key InstanceIds ...), or the legacy InstanceInformationFilterList, never both
   * ("Attempting to use InstanceInformationFilterList and Filters leads to an exception error"); each
   * filter's Values 1 to 100 items. Stopped and terminated instances are left out.
   */
  private async describeInstanceInformation(input: Record<string, unknown>): Promise<object> {
    const filters = input.Filters as { Key?: string; Values?: string[] }[] | undefined;
    if (filters && input.InstanceInformationFilterList) throw new SsmError("InvalidFilter", "Filters and InstanceInformationFilterList cannot be used together");
    for (const f of filters ?? []) {
      if (!f.Key || !f.Values?.length || f.Values.length > 100) throw new SsmError("InvalidFilterValue", `filter ${f.Key}: 1 to 100 values`);
    }
    const wanted = filters?.find((f) => f.Key === "InstanceIds")?.Values;
    const list = [];
    for (const instance of await this.instances(wanted)) {
      const id = instance.InstanceId!;
      if (instance.State?.Name !== "running" || this.agent === "never" || !(await this.agentMayRegister(instance))) continue;
      const seen = (this.polls.get(id) ?? 0) + 1;
      this.polls.set(id, seen);
      if (seen <= this.agentOnlineAfter) continue;
      list.push({
        InstanceId: id,
        PingStatus: this.agent === "connection-lost" ? "ConnectionLost" : "Online",
        AgentVersion: "3.3.1142.0",
        PlatformType: "Linux",
        ResourceType: "EC2Instance",
        LastPingDateTime: Date.now() / 1000,
      });
    }
    return { InstanceInformationList: list };
  }

  /**
   * AWS: Target required; DocumentName ^[a-zA-Z0-9_\-.:/]{3,128}$ and an existing document (else
   * InvalidDocument); Reason 1 to 256 characters; a target whose agent is not connected is
   * TargetNotConnected. AWS-StartPortForwardingSession takes portNumber and localPortNumber (one
   * number each), nothing else.
   */
  private async startSession(input: Record<string, unknown>): Promise<object> {
    const target = input.Target as string | undefined;
    if (!target) throw new SsmError("ValidationException", "1 validation error detected: Value null at 'target' failed to satisfy constraint: Member must not be null");
    const document = (input.DocumentName as string | undefined) ?? "SSM-SessionManagerRunShell";
    if (!/^[a-zA-Z0-9_\-.:/]{3,128}$/.test(document)) throw new SsmError("ValidationException", `DocumentName ${document} fails its pattern`);
    if (document !== "AWS-StartPortForwardingSession") throw new SsmError("InvalidDocument", `Document with name ${document} does not exist.`);
    const reason = input.Reason as string | undefined;
    if (reason !== undefined && !/^.{1,256}$/.test(reason)) throw new SsmError("ValidationException", "Reason must be 1 to 256 characters");
    const parameters = (input.Parameters ?? {}) as Record<string, string[]>;
    for (const [name, values] of Object.entries(parameters)) {
      if (name !== "portNumber" && name !== "localPortNumber") throw new SsmError("InvalidParameters", `${name} is not a parameter of ${document}`);
      if (values.length !== 1 || !/^\d{1,5}$/.test(values[0]) || Number(values[0]) > 65535) throw new SsmError("InvalidParameters", `${name} must be one port number`);
    }
    if (!parameters.portNumber) throw new SsmError("InvalidParameters", "portNumber is required");
    const [instance] = await this.instances([target]);
    const info = instance && (await this.describeInstanceInformation({ Filters: [{ Key: "InstanceIds", Values: [target] }] })) as { InstanceInformationList: { PingStatus: string }[] };
    if (!info || info.InstanceInformationList[0]?.PingStatus !== "Online") throw new SsmError("TargetNotConnected", `${target} is not connected.`);
    const session: FakeSession = {
      id: `kiln-test-${randomBytes(9).toString("hex")}`,
      token: randomBytes(48).toString("base64"),
      target,
      document,
      parameters,
      reason,
      status: "Connected",
      connections: 0,
      data: new Set(),
    };
    this.sessions.set(session.id, session);
    this.onStartSession?.(session);
    return {
      SessionId: session.id,
      TokenValue: session.token,
      StreamUrl: `wss://ssmmessages.${MOTO_REGION}.amazonaws.com/v1/data-channel/${session.id}?role=publish_subscribe&cell-number=AAEAAQ`,
    };
  }

  private async terminateSession(input: Record<string, unknown>): Promise<object> {
    const id = input.SessionId as string | undefined;
    // AWS: SessionId, required, 1 to 96 characters; TerminateSession's only error of its own is InternalServerError.
    if (!id || id.length > 96) throw new SsmError("ValidationException", "SessionId must be 1 to 96 characters");
    const session = this.sessions.get(id);
    if (session) FakeDataChannel.close(session);
    return { SessionId: id };
  }

  private async instances(ids: string[] | undefined): Promise<Instance[]> {
    try {
      const out = await this.ec2.send(new DescribeInstancesCommand(ids ? { InstanceIds: ids } : {}));
      return out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    } catch (e) {
      if ((e as Error).name === "InvalidInstanceID.NotFound") throw new SsmError("InvalidInstanceId", `Instance ${ids?.join(", ")} is not valid for account`);
      throw e;
    }
  }

  /** The agent registers only with credentials that let it: the instance profile's role must allow what it calls. */
  private async agentMayRegister(instance: Instance): Promise<boolean> {
    const arn = instance.IamInstanceProfile?.Arn;
    if (!arn) return false;
    const profile = await this.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: arn.split("/").pop() }));
    const allowed: string[] = [];
    for (const role of profile.InstanceProfile?.Roles ?? []) {
      const names = await this.iam.send(new ListRolePoliciesCommand({ RoleName: role.RoleName }));
      for (const name of names.PolicyNames ?? []) {
        const doc = JSON.parse(decodeURIComponent((await this.iam.send(new GetRolePolicyCommand({ RoleName: role.RoleName, PolicyName: name }))).PolicyDocument!));
        for (const st of [doc.Statement].flat()) if (st.Effect === "Allow") allowed.push(...[st.Action].flat());
      }
    }
    const grants = (action: string) => allowed.some((a) => a === action || a === "*" || (a.endsWith("*") && action.startsWith(a.slice(0, -1))));
    return AGENT_ACTIONS.every(grants);
  }
}

class SsmError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
