import { freeLocalPort } from "../../worker/free-port";
import {
  DescribeInstanceInformationCommand,
  InstanceInformation,
  SSMClient,
  StartSessionCommand,
  StartSessionCommandOutput,
  TerminateSessionCommand,
} from "@aws-sdk/client-ssm";
import { awsCall, isAwsError } from "../aws-errors";
import { unabortable } from "../call-signal";
import { PLUGIN, PluginSession, SessionPlugin } from "../session-plugin";
import type { BakeState } from "../state";
import { Step, StepContext, StepError } from "../step";
import { DEFAULT_POLL_MS, pollUntil, throwIfAborted, WaitOptions } from "./wait";

const NAME = "ssm-tunnel";
/** AWS's document for forwarding a local port to a port on the instance itself. */
export const PORT_FORWARDING_DOCUMENT = "AWS-StartPortForwardingSession";
const SSH_PORT = 22;

const AGENT_HINT =
  "the builder's SSM agent never reported to Session Manager: its subnet needs a way to the SSM endpoints (a NAT gateway, or VPC interface " +
  "endpoints for ssm, ssmmessages and ec2messages), and the base image must run the agent (AL2023's does); or reach the builder another " +
  "way (kiln:bake.sshInterface private_ip), or allow more time: kiln:bake.sshTimeout or --ssh-timeout <seconds>";

/**
 * With sshInterface session_manager (Packer's StepCreateSSMTunnel): waits for the builder's SSM agent
 * to come online, starts an AWS-StartPortForwardingSession to its port 22, and runs AWS's
 * session-manager-plugin to carry it from a local port; SSH then goes to 127.0.0.1. The session and the
 * plugin are each recorded the moment they exist; the cleanup stops the plugin, then ends the session.
 */
export const stepSsmTunnel: Step<BakeState> = {
  name: NAME,
  title: "Session Manager port forwarding to the builder's SSH",

  async run(state, ctx) {
    if (state.settings.sshInterface !== "session_manager") {
      ctx.log("not needed: SSH goes over the network (sshInterface is not session_manager)");
      return;
    }
    const { instanceId, ssh } = state;
    const version = state.sessionPluginVersion;
    if (!instanceId || !ssh || !version) {
      throw new StepError(NAME, "the builder and the plugin's version must be known first", undefined, "run pre-validate and run-builder before ssm-tunnel");
    }
    const s = state.settings;
    const deadline = (state.sshDeadline = Date.now() + s.sshTimeout * 1000);
    const ssm = state.clients.ssm;

    ctx.log(`waiting up to ${s.sshTimeout} s for the SSM agent on ${instanceId}, then SSH through it`);
    const t0 = Date.now();
    const agent = await waitForAgent(ssm, instanceId, waitOptions(state, deadline, ctx));
    ctx.log(`SSM agent ${agent.AgentVersion ?? ""} on ${instanceId} online after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const localPort = await freeLocalPort();
    const request = {
      Target: instanceId,
      DocumentName: PORT_FORWARDING_DOCUMENT,
      Parameters: { portNumber: [String(SSH_PORT)], localPortNumber: [String(localPort)] },
      Reason: `kiln bake ${state.buildId}: SSH to the builder`,
    };
    state.tunnel = { instanceId };
    throwIfAborted(NAME, ctx.signal, "starting a Session Manager session");
    const { out, endpoint } = await startSession(ssm, request, waitOptions(state, deadline, ctx), (sessionId) => (state.tunnel!.sessionId = sessionId));
    const sessionId = out.SessionId!;

    const session: PluginSession = {
      response: { SessionId: sessionId, TokenValue: out.TokenValue!, StreamUrl: out.StreamUrl! },
      request,
      region: await ssm.config.region(),
      endpoint,
      version,
    };
    throwIfAborted(NAME, ctx.signal, `starting ${PLUGIN}`);
    const plugin = SessionPlugin.start(session);
    state.tunnel.plugin = plugin;
    plugin.onLine((line) => ctx.log(`plugin: ${line}`));
    let port: number;
    try {
      port = await plugin.waitUntilListening(sessionId, deadline, ctx.signal);
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      throw new StepError(
        NAME,
        `no tunnel to ${instanceId}:${SSH_PORT}: ${(e as Error).message}`,
        undefined,
        `AWS's plugin failed, not the bake: its output is above; update it if it is old (${version}), and check that your credentials may use the session`,
      );
    }
    plugin.onLine(undefined);
    state.tunnel.localPort = port;
    state.ssh = { ...ssh, host: "127.0.0.1", port };
    plugin.onExit(() => {
      if (!state.tunnel?.closing && !ctx.signal.aborted) ctx.log(`the tunnel is down: ${plugin.describeExit()}`);
    });
    ctx.log(`session ${sessionId}: 127.0.0.1:${port} → ${instanceId}:${SSH_PORT} (${PLUGIN} ${version}, pid ${plugin.pid})`);
  },

  async cleanup(state, ctx) {
    await closeTunnel(state, NAME, ctx.log);
  },
};

/**
 * Stops the plugin, then ends the session (as Packer does once its plugin returns, and as it does,
 * reports a session it could not end without failing for it). Each part is forgotten once done, so a
 * second call (the clean step closes the tunnel early, this step's cleanup makes sure) does only what
 * is left.
 */
export async function closeTunnel(state: BakeState, step: string, log: (line: string) => void): Promise<void> {
  const tunnel = state.tunnel;
  if (!tunnel) return;
  tunnel.closing = true;
  if (tunnel.plugin) {
    const running = !tunnel.plugin.exit;
    await tunnel.plugin.stop();
    log(`${running ? "stopped" : "already ended"}: ${tunnel.plugin.describeExit()}`);
    tunnel.plugin = undefined;
  }
  if (tunnel.sessionId) {
    const sessionId = tunnel.sessionId;
    try {
      await awsCall(step, `ending Session Manager session ${sessionId}`, () => state.clients.ssm.send(new TerminateSessionCommand({ SessionId: sessionId })));
      log(`ended session ${sessionId}`);
    } catch (e) {
      // Not left behind: a session lives no longer than its instance's agent, and the builder is stopped
      // (create-image) or terminated (run-builder's cleanup) next; the plugin's SIGINT already told the agent.
      log(`could not end session ${sessionId} (${(e as Error).message}); it ends with the builder. To end sessions yourself, grant ssm:TerminateSession (docs/bake.md)`);
    }
    tunnel.sessionId = undefined;
  }
  state.tunnel = undefined;
}

/** Why SSH to the builder broke, when the tunnel it goes through has ended; undefined when it has not. */
export function tunnelLost(state: BakeState): string | undefined {
  const plugin = state.tunnel?.plugin;
  if (!plugin?.exit || state.tunnel?.closing) return undefined;
  return `the Session Manager tunnel is down: ${plugin.describeExit()}`;
}

/**
 * tunnelLost, after giving a plugin that is still running a moment to be seen ending: when it is
 * killed, the SSH connection through it can break before its exit is noticed.
 */
export async function tunnelLostSoon(state: BakeState, withinMs = 2_000): Promise<string | undefined> {
  const plugin = state.tunnel?.plugin;
  if (plugin && !plugin.exit) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, withinMs);
      plugin.onExit(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return tunnelLost(state);
}

function waitOptions(state: BakeState, deadline: number, ctx: StepContext): WaitOptions {
  return {
    step: NAME,
    timeoutSeconds: Math.max((deadline - Date.now()) / 1000, 0),
    pollMs: state.settings.pollMs ?? DEFAULT_POLL_MS,
    signal: ctx.signal,
    onRetry: ctx.log,
    timeoutHint: AGENT_HINT,
  };
}

/**
 * Polls DescribeInstanceInformation until the agent's PingStatus is Online. An instance the agent has
 * not registered yet is absent from the answer, or (AWS: "If you specify a node ID that isn't valid
 * ... you receive an error") refused as InvalidInstanceId: both mean "not yet".
 */
async function waitForAgent(ssm: SSMClient, instanceId: string, opts: WaitOptions): Promise<InstanceInformation> {
  let last: string | undefined;
  return pollUntil(`the SSM agent on ${instanceId} to come online`, opts, async () => {
    let info: InstanceInformation | undefined;
    try {
      const out = await awsCall(NAME, `asking Session Manager about ${instanceId} (DescribeInstanceInformation)`, () =>
        ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: [instanceId] }] })),
      );
      info = out.InstanceInformationList?.find((i) => i.InstanceId === instanceId);
    } catch (e) {
      if (!isAwsError(e, "InvalidInstanceId")) throw e;
    }
    const status = info?.PingStatus ?? "not registered yet";
    if (status !== last) opts.onRetry?.(`SSM agent: ${status}`);
    last = status;
    return info?.PingStatus === "Online" ? info : undefined;
  });
}

/**
 * StartSession, retried while Session Manager says TargetNotConnected (an agent reports Online a moment
 * before it takes sessions; Packer retries the same error). The call creates a session: Ctrl-C waits
 * for its answer, which `record` keeps at once. Also returns the endpoint the request went to, which
 * the plugin is given as the AWS CLI gives it (client.meta.endpoint_url).
 */
async function startSession(
  ssm: SSMClient,
  request: ConstructorParameters<typeof StartSessionCommand>[0],
  opts: WaitOptions,
  record: (sessionId: string) => void,
): Promise<{ out: StartSessionCommandOutput; endpoint: string }> {
  let endpoint: string | undefined;
  const command = new StartSessionCommand(request);
  command.middlewareStack.add(
    (next) => async (args) => {
      const r = args.request as { protocol?: string; hostname?: string; port?: number; path?: string };
      if (r?.hostname) endpoint = `${r.protocol ?? "https:"}//${r.hostname}${r.port ? `:${r.port}` : ""}${r.path && r.path !== "/" ? r.path : ""}`;
      return next(args);
    },
    { step: "finalizeRequest", name: "kilnSsmEndpoint" },
  );
  let told = false;
  const out = await pollUntil(`Session Manager to accept a session to ${request.Target}`, opts, async () => {
    try {
      return await awsCall(NAME, `starting a port-forwarding session to ${request.Target}:${SSH_PORT}`, () => unabortable(() => ssm.send(command)), {
        InvalidDocument: `${PORT_FORWARDING_DOCUMENT} is AWS's own document: check the stack's region`,
      });
    } catch (e) {
      if (!isAwsError(e, "TargetNotConnected")) throw e;
      if (!told) opts.onRetry?.(`Session Manager does not take sessions to ${request.Target} yet (TargetNotConnected); retrying`);
      told = true;
      return undefined;
    }
  });
  if (out.SessionId) record(out.SessionId);
  if (!out.SessionId || !out.TokenValue || !out.StreamUrl) {
    throw new StepError(NAME, "StartSession answered without a session id, token or stream URL", undefined, "bake again");
  }
  return { out, endpoint: endpoint ?? `https://ssm.${await ssm.config.region()}.amazonaws.com` };
}

