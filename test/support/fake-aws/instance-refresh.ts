import { randomUUID } from "node:crypto";
import { AwsFault, AwsProxy, xml } from "./aws-proxy";

export interface FakeRefresh {
  id: string;
  group: string;
  status: "Pending" | "InProgress" | "Successful" | "Failed" | "Cancelling" | "Cancelled" | "RollbackInProgress" | "RollbackSuccessful";
  percentage: number;
  instancesToUpdate: number;
  started: Date;
  reason?: string;
}

/**
 * Auto Scaling instance refresh, which moto lacks: Start, Describe, Cancel and Rollback served by
 * the proxy from state the test steers (`set` a refresh's progress, as AWS would advance it).
 */
export class FakeInstanceRefresh {
  readonly refreshes: FakeRefresh[] = [];

  constructor(proxy: AwsProxy) {
    proxy.serve("autoscaling", "StartInstanceRefresh", (c) => {
      const group = String(c.input.AutoScalingGroupName);
      if (this.active(group)) throw new AwsFault("InstanceRefreshInProgress", `An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.`);
      const r = this.add({ group, status: "Pending", percentage: 0, instancesToUpdate: 0 });
      return { body: `<InstanceRefreshId>${r.id}</InstanceRefreshId>` };
    });
    proxy.serve("autoscaling", "DescribeInstanceRefreshes", (c) => {
      const max = Number(c.input.MaxRecords ?? 50);
      const mine = this.refreshes.filter((r) => r.group === c.input.AutoScalingGroupName).reverse().slice(0, max);
      const members = mine
        .map(
          (r) =>
            `<member><InstanceRefreshId>${r.id}</InstanceRefreshId><AutoScalingGroupName>${xml(r.group)}</AutoScalingGroupName>` +
            `<Status>${r.status}</Status>${r.reason ? `<StatusReason>${xml(r.reason)}</StatusReason>` : ""}` +
            `<StartTime>${r.started.toISOString()}</StartTime><PercentageComplete>${r.percentage}</PercentageComplete>` +
            `<InstancesToUpdate>${r.instancesToUpdate}</InstancesToUpdate></member>`,
        )
        .join("");
      return { body: `<InstanceRefreshes>${members}</InstanceRefreshes>` };
    });
    proxy.serve("autoscaling", "CancelInstanceRefresh", (c) => {
      const r = this.active(String(c.input.AutoScalingGroupName));
      if (!r) throw new AwsFault("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found for Auto Scaling group");
      r.status = "Cancelling";
      return { body: `<InstanceRefreshId>${r.id}</InstanceRefreshId>` };
    });
    proxy.serve("autoscaling", "RollbackInstanceRefresh", (c) => {
      const r = this.active(String(c.input.AutoScalingGroupName));
      if (!r || !["Pending", "InProgress"].includes(r.status)) throw new AwsFault("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found for Auto Scaling group");
      r.status = "RollbackInProgress";
      return { body: `<InstanceRefreshId>${r.id}</InstanceRefreshId>` };
    });
  }

  add(r: Omit<FakeRefresh, "id" | "started"> & { started?: Date }): FakeRefresh {
    const refresh = { id: randomUUID(), started: new Date(), ...r };
    this.refreshes.push(refresh);
    return refresh;
  }

  active(group: string): FakeRefresh | undefined {
    return this.refreshes.find((r) => r.group === group && ["Pending", "InProgress", "Cancelling", "RollbackInProgress"].includes(r.status));
  }
}
