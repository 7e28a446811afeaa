/**
 * Kubernetes resource quantities ("500m", "16Gi", "1e3", 2) as numbers, for the flags a pod's
 * container limits turn into (`--num-cpus`, `--memory`, `--num-gpus`).
 */

const suffixes: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const quantityPattern = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The quantity's value, or undefined when the text is not a Kubernetes quantity. */
export function parseQuantity(quantity: string | number): number | undefined {
  if (typeof quantity === 'number') return Number.isFinite(quantity) ? quantity : undefined;
  const match = quantityPattern.exec(quantity.trim());
  if (!match) return undefined;
  const scale = suffixes[match[2] ?? ''];
  return scale === undefined ? undefined : Number(match[1]) * scale;
}

/** Formats a number of bytes the way kubectl would show a memory total. */
export function formatBytes(bytes: number): string {
  for (const [suffix, scale] of [
    ['Ti', 2 ** 40],
    ['Gi', 2 ** 30],
    ['Mi', 2 ** 20],
    ['Ki', 2 ** 10],
  ] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${suffix}`;
  }
  return String(bytes);
}
