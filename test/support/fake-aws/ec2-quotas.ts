import { AwsFault, AwsProxy } from "./aws-proxy";

/**
 * Service Quotas for EC2, which moto knows only for VPC: GetServiceQuota(ec2, code) answers the
 * values the test sets, as an account's applied quota; other codes are NoSuchResourceException.
 */
export class FakeEc2Quotas {
  constructor(
    proxy: AwsProxy,
    readonly values: Record<string, number>,
  ) {
    proxy.serve("servicequotas", "GetServiceQuota", (c) => {
      const { ServiceCode, QuotaCode } = c.input as { ServiceCode?: string; QuotaCode?: string };
      const value = ServiceCode === "ec2" && QuotaCode ? this.values[QuotaCode] : undefined;
      if (value === undefined) throw new AwsFault("NoSuchResourceException", `The request failed because the specified service quota ${QuotaCode} does not exist.`);
      return { body: { Quota: { ServiceCode, QuotaCode, Value: value, Unit: "None", Adjustable: true } } };
    });
  }
}
