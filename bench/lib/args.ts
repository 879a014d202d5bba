/**
 * A numeric command-line option of a bench: `fallback` when absent; otherwise a finite number of
 * at least `min` (and whole, with `isWhole`), or an error naming the option.
 */
export function numberOption(name: string, value: string | undefined, fallback: number, options: { min: number; isWhole?: boolean }): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(n) || n < options.min || (options.isWhole && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a ${options.isWhole ? 'whole ' : ''}number of at least ${options.min}, got ${value}`);
  }
  return n;
}
