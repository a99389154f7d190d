/**
 * On-demand list prices (USD an hour, Linux, shared tenancy) for the instance types queue workers
 * commonly run on, in the regions kiln's stacks use. A small table shipped with kiln, not a live
 * price: it is for comparing plans, and `--price` replaces it (also for any type or region not here).
 * Spot capacity is cheaper and its price moves; the on-demand figure is the ceiling.
 */
const PRICES: Record<string, Record<string, number>> = {
  "us-east-1": {
    "t3.nano": 0.0052, "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416, "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
    "t3a.micro": 0.0094, "t3a.small": 0.0188, "t3a.medium": 0.0376, "t3a.large": 0.0752, "t3a.xlarge": 0.1504,
    "t4g.micro": 0.0084, "t4g.small": 0.0168, "t4g.medium": 0.0336, "t4g.large": 0.0672, "t4g.xlarge": 0.1344,
    "m5.large": 0.096, "m5.xlarge": 0.192, "m6i.large": 0.096, "m6i.xlarge": 0.192,
    "c5.large": 0.085, "c5.xlarge": 0.17, "c6i.large": 0.085, "c6i.xlarge": 0.17,
  },
  "ap-northeast-1": {
    "t3.nano": 0.0068, "t3.micro": 0.0136, "t3.small": 0.0272, "t3.medium": 0.0544, "t3.large": 0.1088, "t3.xlarge": 0.2176, "t3.2xlarge": 0.4352,
    "t3a.micro": 0.0122, "t3a.small": 0.0245, "t3a.medium": 0.049, "t3a.large": 0.0979, "t3a.xlarge": 0.1958,
    "t4g.micro": 0.0108, "t4g.small": 0.0216, "t4g.medium": 0.0432, "t4g.large": 0.0864, "t4g.xlarge": 0.1728,
    "m5.large": 0.124, "m5.xlarge": 0.248, "m6i.large": 0.124, "m6i.xlarge": 0.248,
    "c5.large": 0.107, "c5.xlarge": 0.214, "c6i.large": 0.107, "c6i.xlarge": 0.214,
  },
};

export interface Price {
  usdPerHour: number;
  /** "--price" or "kiln's table of on-demand list prices (us-east-1)". */
  from: string;
}

export function onDemandPrice(region: string, instanceType: string, override?: number): Price | undefined {
  if (override !== undefined) return { usdPerHour: override, from: "--price" };
  const p = PRICES[region]?.[instanceType];
  return p === undefined ? undefined : { usdPerHour: p, from: `kiln's table of on-demand list prices (${region}, Linux); --price to use your own` };
}
