/** Shared by the comparator tests: a seeded generator of version strings and checks over ordered lists. */
import { spawnSync } from 'node:child_process';

/** mulberry32: small, seeded, the same sequence on every run so that a failure reproduces. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/**
 * Pairs of versions built from pieces: the second of a pair is usually the first with one or two
 * pieces changed, inserted or removed, so that most pairs agree on a prefix and differ where the
 * rules are subtle; some pairs are independent and some identical.
 */
export function generatePairs(
  count: number,
  seed: number,
  build: (random: () => number) => string[],
  pieces: readonly string[],
  render: (parts: string[]) => string,
): Array<[string, string]> {
  const random = seededRandom(seed);
  const pairs: Array<[string, string]> = [];
  while (pairs.length < count) {
    const a = build(random);
    let b: string[];
    const roll = random();
    if (roll < 0.1) b = build(random);
    else if (roll < 0.15) b = [...a];
    else {
      b = [...a];
      const edits = 1 + Math.floor(random() * 2);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * (b.length + 1));
        const kind = random();
        if (kind < 0.4 && at < b.length) b[at] = pick(random, pieces);
        else if (kind < 0.7 || b.length < 2) b.splice(at, 0, pick(random, pieces));
        else b.splice(Math.min(at, b.length - 1), 1);
      }
    }
    pairs.push(random() < 0.5 ? [render(a), render(b)] : [render(b), render(a)]);
  }
  return pairs;
}

/** Every pair i < j of an ascending list must compare -1 one way and 1 the other; returns the failures. */
export function checkAscending(compare: (a: string, b: string) => number, list: readonly string[]): { pairs: number; failures: string[] } {
  const failures: string[] = [];
  let pairs = 0;
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      pairs++;
      const [a, b] = [list[i]!, list[j]!];
      if (compare(a, b) !== -1) failures.push(`${a} < ${b}, got ${compare(a, b)}`);
      if (compare(b, a) !== 1) failures.push(`${b} > ${a}, got ${compare(b, a)}`);
    }
  }
  return { pairs, failures };
}

/** Every two versions of a group must compare 0 both ways; returns the failures. */
export function checkEqualGroups(compare: (a: string, b: string) => number, groups: readonly (readonly string[])[]): { pairs: number; failures: string[] } {
  const failures: string[] = [];
  let pairs = 0;
  for (const group of groups) {
    for (const a of group) {
      for (const b of group) {
        pairs++;
        if (compare(a, b) !== 0) failures.push(`${a} = ${b}, got ${compare(a, b)}`);
      }
    }
  }
  return { pairs, failures };
}

/** Whether a command can be run (the oracle tests skip, saying why, when it cannot). */
export function canRun(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}
