import { DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import type { AlarmView } from "../fleet";
import { awsCall } from "./call";
import type { AwsClients } from "./clients";

/** The stack's own alarms (named from `kiln-<stack>-`) that are in ALARM now. */
export async function alarmsFiring(c: AwsClients, prefix: string): Promise<AlarmView[]> {
  const alarms: AlarmView[] = [];
  let NextToken: string | undefined;
  do {
    const page = await awsCall("reading the stack's alarms", () =>
      c.cloudwatch.send(new DescribeAlarmsCommand({ AlarmNamePrefix: prefix, StateValue: "ALARM", AlarmTypes: ["MetricAlarm", "CompositeAlarm"], NextToken })),
    );
    // Filtered here too: some endpoints apply only one of the request's filters.
    for (const a of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])].filter((x) => x.StateValue === "ALARM" && x.AlarmName?.startsWith(prefix))) {
      alarms.push({ name: a.AlarmName!, state: a.StateValue!, reason: a.StateReason, since: a.StateUpdatedTimestamp?.toISOString() });
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return alarms;
}
