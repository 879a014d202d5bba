/**
 * CVSS scores computed from vectors, never read from text: v2.0 (base equation of the CVSS v2
 * Complete Guide, section 3.2.1), v3.0 and v3.1 (base equations of the v3.0 and v3.1
 * specifications, section 7.1, each with its own Roundup), and v4.0 (the MacroVector method of
 * the v4.0 specification, section 8.2, with FIRST's published tables in cvss4-tables.ts).
 *
 * Parsing is strict about content and lenient about order: an unknown metric, a value the
 * version does not define, a metric given twice or a missing base metric makes the vector
 * unusable (undefined), but metrics may come in any order, since published vectors (GHSA's v4
 * ones among them) do not always follow the specification's order.
 */
import type { CvssScore, Severity } from '../types.ts';
import { MACRO_VECTOR_SCORES, MAX_SEVERITY_DEPTH, MAX_VECTORS } from './cvss4-tables.ts';

type Metrics = Map<string, string>;
type MetricValues = Readonly<Record<string, readonly string[]>>;

const IMPACT_V2 = ['N', 'P', 'C'];
const V2_METRICS: MetricValues = {
  AV: ['L', 'A', 'N'],
  AC: ['H', 'M', 'L'],
  Au: ['M', 'S', 'N'],
  C: IMPACT_V2,
  I: IMPACT_V2,
  A: IMPACT_V2,
  E: ['U', 'POC', 'F', 'H', 'ND'],
  RL: ['OF', 'TF', 'W', 'U', 'ND'],
  RC: ['UC', 'UR', 'C', 'ND'],
  CDP: ['N', 'L', 'LM', 'MH', 'H', 'ND'],
  TD: ['N', 'L', 'M', 'H', 'ND'],
  CR: ['L', 'M', 'H', 'ND'],
  IR: ['L', 'M', 'H', 'ND'],
  AR: ['L', 'M', 'H', 'ND'],
};
const V2_BASE = ['AV', 'AC', 'Au', 'C', 'I', 'A'];

const IMPACT_V3 = ['H', 'L', 'N'];
const REQUIREMENT = ['X', 'H', 'M', 'L'];
const V3_METRICS: MetricValues = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'R'],
  S: ['U', 'C'],
  C: IMPACT_V3,
  I: IMPACT_V3,
  A: IMPACT_V3,
  E: ['X', 'H', 'F', 'P', 'U'],
  RL: ['X', 'U', 'W', 'T', 'O'],
  RC: ['X', 'C', 'R', 'U'],
  CR: REQUIREMENT,
  IR: REQUIREMENT,
  AR: REQUIREMENT,
  MAV: ['X', 'N', 'A', 'L', 'P'],
  MAC: ['X', 'L', 'H'],
  MPR: ['X', 'N', 'L', 'H'],
  MUI: ['X', 'N', 'R'],
  MS: ['X', 'U', 'C'],
  MC: ['X', ...IMPACT_V3],
  MI: ['X', ...IMPACT_V3],
  MA: ['X', ...IMPACT_V3],
};
const V3_BASE = ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'];

const V4_METRICS: MetricValues = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  AT: ['N', 'P'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'P', 'A'],
  VC: IMPACT_V3,
  VI: IMPACT_V3,
  VA: IMPACT_V3,
  SC: IMPACT_V3,
  SI: IMPACT_V3,
  SA: IMPACT_V3,
  E: ['X', 'A', 'P', 'U'],
  CR: REQUIREMENT,
  IR: REQUIREMENT,
  AR: REQUIREMENT,
  MAV: ['X', 'N', 'A', 'L', 'P'],
  MAC: ['X', 'L', 'H'],
  MAT: ['X', 'N', 'P'],
  MPR: ['X', 'N', 'L', 'H'],
  MUI: ['X', 'N', 'P', 'A'],
  MVC: ['X', ...IMPACT_V3],
  MVI: ['X', ...IMPACT_V3],
  MVA: ['X', ...IMPACT_V3],
  MSC: ['X', ...IMPACT_V3],
  MSI: ['X', 'S', ...IMPACT_V3],
  MSA: ['X', 'S', ...IMPACT_V3],
  S: ['X', 'N', 'P'],
  AU: ['X', 'N', 'Y'],
  R: ['X', 'A', 'U', 'I'],
  V: ['X', 'D', 'C'],
  RE: ['X', 'L', 'M', 'H'],
  U: ['X', 'Clear', 'Green', 'Amber', 'Red'],
};
const V4_BASE = ['AV', 'AC', 'AT', 'PR', 'UI', 'VC', 'VI', 'VA', 'SC', 'SI', 'SA'];

/**
 * The score of a CVSS vector, or undefined when the vector is not a valid one. For v2 and v3 the
 * score is the base score (temporal and environmental metrics are checked but do not change
 * it, as NVD and ECR report base scores). For v4 the specification has a single scoring method
 * over all metrics given, so threat and environmental metrics do count (the score FIRST calls
 * CVSS-BT or CVSS-BTE); supplemental metrics never do.
 */
export function cvssScore(vector: string): CvssScore | undefined {
  const text = vector.trim();
  const prefixed = /^CVSS:(3\.0|3\.1|4\.0)\/(.+)$/.exec(text);
  if (prefixed) {
    const version = prefixed[1] as '3.0' | '3.1' | '4.0';
    const body = prefixed[2] as string;
    if (version === '4.0') {
      const metrics = parseMetrics(body, V4_METRICS, V4_BASE);
      return metrics && { version, vector: text, baseScore: v4Score(metrics) };
    }
    const metrics = parseMetrics(body, V3_METRICS, V3_BASE);
    return metrics && { version, vector: text, baseScore: v3BaseScore(metrics, version === '3.1' ? roundUp31 : roundUp30) };
  }
  if (text.startsWith('CVSS:')) return undefined;
  const metrics = parseMetrics(text, V2_METRICS, V2_BASE);
  return metrics && { version: '2.0', vector: text, baseScore: v2BaseScore(metrics) };
}

/**
 * ECR's severity for a score. v3 and v4 use the specifications' qualitative ratings (None is
 * INFORMATIONAL); v2 has no official rating, so NVD's v2 bands apply (low below 4, high from 7).
 */
export function severityOfScore(score: number, version: string): Severity {
  if (!Number.isFinite(score) || score < 0 || score > 10) return 'UNDEFINED';
  if (version === '2.0') return score >= 7 ? 'HIGH' : score >= 4 ? 'MEDIUM' : 'LOW';
  if (score === 0) return 'INFORMATIONAL';
  if (score < 4) return 'LOW';
  if (score < 7) return 'MEDIUM';
  if (score < 9) return 'HIGH';
  return 'CRITICAL';
}

/**
 * The versions in the order findings prefer them. v3.x first: it is what ECR's and Inspector's
 * severities, and NVD's primary ratings, are based on, so findings rank as users expect from
 * ECR; v4.0 (whose scores run systematically different from v3's for the same flaw) when a
 * record has no v3 vector; v2.0 last, for old records that have nothing else.
 */
export const CVSS_VERSION_PREFERENCE: readonly string[] = ['3.1', '3.0', '4.0', '2.0'];

/** The score to rate a finding by: the first of the most preferred version, in the order given. */
export function preferredScore(scores: readonly CvssScore[]): CvssScore | undefined {
  for (const version of CVSS_VERSION_PREFERENCE) {
    const found = scores.find((s) => s.version === version);
    if (found) return found;
  }
  return undefined;
}

function parseMetrics(body: string, allowed: MetricValues, mandatory: readonly string[]): Metrics | undefined {
  const metrics: Metrics = new Map();
  for (const part of body.split('/')) {
    const colon = part.indexOf(':');
    if (colon <= 0) return undefined;
    const name = part.slice(0, colon);
    const value = part.slice(colon + 1);
    const values = Object.hasOwn(allowed, name) ? allowed[name] : undefined;
    if (!values || !values.includes(value) || metrics.has(name)) return undefined;
    metrics.set(name, value);
  }
  for (const name of mandatory) if (!metrics.has(name)) return undefined;
  return metrics;
}

function weight(table: Readonly<Record<string, number>>, value: string | undefined): number {
  const w = value === undefined ? undefined : table[value];
  // parseMetrics guarantees every base metric and value; reaching here is a programming error.
  if (w === undefined) throw new Error(`CVSS weight missing for ${value}`);
  return w;
}

// CVSS v2 Complete Guide, section 3.2.1.
const V2_AV = { L: 0.395, A: 0.646, N: 1.0 };
const V2_AC = { H: 0.35, M: 0.61, L: 0.71 };
const V2_AU = { M: 0.45, S: 0.56, N: 0.704 };
const V2_IMPACT = { N: 0, P: 0.275, C: 0.66 };

function v2BaseScore(m: Metrics): number {
  const c = weight(V2_IMPACT, m.get('C'));
  const i = weight(V2_IMPACT, m.get('I'));
  const a = weight(V2_IMPACT, m.get('A'));
  const impact = 10.41 * (1 - (1 - c) * (1 - i) * (1 - a));
  const exploitability = 20 * weight(V2_AV, m.get('AV')) * weight(V2_AC, m.get('AC')) * weight(V2_AU, m.get('Au'));
  // f(Impact) is 0 when there is no impact, 1.176 otherwise.
  if (impact === 0) return 0;
  return roundHalfUp1((0.6 * impact + 0.4 * exploitability - 1.5) * 1.176);
}

// CVSS v3.0 and v3.1 specifications, section 7.1 and 7.4 (the weights are the same in both).
const V3_AV = { N: 0.85, A: 0.62, L: 0.55, P: 0.2 };
const V3_AC = { L: 0.77, H: 0.44 };
const V3_PR_UNCHANGED = { N: 0.85, L: 0.62, H: 0.27 };
const V3_PR_CHANGED = { N: 0.85, L: 0.68, H: 0.5 };
const V3_UI = { N: 0.85, R: 0.62 };
const V3_CIA = { H: 0.56, L: 0.22, N: 0 };

function v3BaseScore(m: Metrics, roundUp: (x: number) => number): number {
  const changed = m.get('S') === 'C';
  const iss = 1 - (1 - weight(V3_CIA, m.get('C'))) * (1 - weight(V3_CIA, m.get('I'))) * (1 - weight(V3_CIA, m.get('A')));
  const impact = changed ? 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 : 6.42 * iss;
  const exploitability =
    8.22 *
    weight(V3_AV, m.get('AV')) *
    weight(V3_AC, m.get('AC')) *
    weight(changed ? V3_PR_CHANGED : V3_PR_UNCHANGED, m.get('PR')) *
    weight(V3_UI, m.get('UI'));
  if (impact <= 0) return 0;
  return roundUp(Math.min((changed ? 1.08 : 1) * (impact + exploitability), 10));
}

/**
 * v3.1's Roundup (specification, Appendix A): the smallest number with one decimal that is at
 * least the input, computed on the input rounded to five decimals so that floating-point noise
 * (4.000000000000001) does not push a score up a tenth.
 */
function roundUp31(x: number): number {
  const scaled = Math.round(x * 100000);
  return scaled % 10000 === 0 ? scaled / 100000 : (Math.floor(scaled / 10000) + 1) / 10;
}

/**
 * v3.0 defines Roundup only mathematically ("the smallest number, specified to one decimal
 * place, that is equal to or higher than its input"); the exact value is what counts, and
 * floating point only approximates it. Rounding to five decimals first removes the noise, as
 * v3.1 later wrote down: over all 2,592 base vectors this agrees with exact decimal arithmetic
 * (checked against the Red Hat cvss library's v3.0 vectors, computed with Python's Decimal).
 */
function roundUp30(x: number): number {
  return roundUp31(x);
}

/**
 * Half-up rounding to one decimal as the v2 guide's round_to_1_decimal and v4's final step
 * mean it; the small addend keeps a float just under a half (7.1499999999) from rounding down
 * when the exact value is 7.15.
 */
function roundHalfUp1(x: number): number {
  return Math.round((x + 1e-6) * 10) / 10;
}

// Severity levels (in tenths) of the v4.0 metrics for the severity distance, section 8.2.
const V4_LEVELS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  AV: { N: 0, A: 1, L: 2, P: 3 },
  PR: { N: 0, L: 1, H: 2 },
  UI: { N: 0, P: 1, A: 2 },
  AC: { L: 0, H: 1 },
  AT: { N: 0, P: 1 },
  VC: { H: 0, L: 1, N: 2 },
  VI: { H: 0, L: 1, N: 2 },
  VA: { H: 0, L: 1, N: 2 },
  SC: { H: 1, L: 2, N: 3 },
  SI: { S: 0, H: 1, L: 2, N: 3 },
  SA: { S: 0, H: 1, L: 2, N: 3 },
  CR: { H: 0, M: 1, L: 2 },
  IR: { H: 0, M: 1, L: 2 },
  AR: { H: 0, M: 1, L: 2 },
};
const EQ1_METRICS = ['AV', 'PR', 'UI'];
const EQ2_METRICS = ['AC', 'AT'];
const EQ3EQ6_METRICS = ['VC', 'VI', 'VA', 'CR', 'IR', 'AR'];
const EQ4_METRICS = ['SC', 'SI', 'SA'];
const DISTANCE_METRICS = [...EQ1_METRICS, ...EQ2_METRICS, ...EQ3EQ6_METRICS, ...EQ4_METRICS];

/**
 * The value each metric takes for scoring: a modified (environmental) value overrides the base
 * one unless it is X; E defaults to its worst case (A) and the security requirements to H, as
 * the specification prescribes for "Not Defined".
 */
function effectiveV4(m: Metrics): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of V4_BASE) {
    const modified = m.get(`M${name}`);
    out[name] = modified !== undefined && modified !== 'X' ? modified : (m.get(name) as string);
  }
  const e = m.get('E');
  out.E = e === undefined || e === 'X' ? 'A' : e;
  for (const name of ['CR', 'IR', 'AR']) {
    const r = m.get(name);
    out[name] = r === undefined || r === 'X' ? 'H' : r;
  }
  return out;
}

function v4Score(m: Metrics): number {
  const v = effectiveV4(m);
  if (['VC', 'VI', 'VA', 'SC', 'SI', 'SA'].every((name) => v[name] === 'N')) return 0;

  const anyNetworkLike = v.AV === 'N' || v.PR === 'N' || v.UI === 'N';
  const eq1 = v.AV === 'N' && v.PR === 'N' && v.UI === 'N' ? 0 : anyNetworkLike && v.AV !== 'P' ? 1 : 2;
  const eq2 = v.AC === 'L' && v.AT === 'N' ? 0 : 1;
  const eq3 = v.VC === 'H' && v.VI === 'H' ? 0 : v.VC === 'H' || v.VI === 'H' || v.VA === 'H' ? 1 : 2;
  const eq4 = v.SI === 'S' || v.SA === 'S' ? 0 : v.SC === 'H' || v.SI === 'H' || v.SA === 'H' ? 1 : 2;
  const eq5 = v.E === 'A' ? 0 : v.E === 'P' ? 1 : 2;
  const eq6 = (v.CR === 'H' && v.VC === 'H') || (v.IR === 'H' && v.VI === 'H') || (v.AR === 'H' && v.VA === 'H') ? 0 : 1;

  const score = (e1: number, e2: number, e3: number, e4: number, e5: number, e6: number): number | undefined =>
    MACRO_VECTOR_SCORES[`${e1}${e2}${e3}${e4}${e5}${e6}`];
  const value = score(eq1, eq2, eq3, eq4, eq5, eq6);
  if (value === undefined) throw new Error(`CVSS v4 MacroVector ${eq1}${eq2}${eq3}${eq4}${eq5}${eq6} missing`);

  // The next lower MacroVector of each class; EQ3 and EQ6 step together along their joint order
  // (00 -> 01 or 10, whichever scores higher; 01 and 10 -> 11; 11 -> 21; 21 is the lowest).
  let lowerEq3Eq6: number | undefined;
  if (eq3 === 0 && eq6 === 0) {
    const left = score(eq1, eq2, eq3, eq4, eq5, eq6 + 1);
    const right = score(eq1, eq2, eq3 + 1, eq4, eq5, eq6);
    lowerEq3Eq6 = left === undefined ? right : right === undefined ? left : Math.max(left, right);
  } else if (eq3 === 1 && eq6 === 0) {
    lowerEq3Eq6 = score(eq1, eq2, eq3, eq4, eq5, eq6 + 1);
  } else if (eq3 < 2) {
    lowerEq3Eq6 = score(eq1, eq2, eq3 + 1, eq4, eq5, eq6);
  }

  const distances = severityDistances(v, eq1, eq2, eq3, eq4, eq6);
  const sum = (names: readonly string[]) => names.reduce((total, name) => total + (distances[name] ?? 0), 0);
  const depth3 = MAX_SEVERITY_DEPTH.eq3eq6[eq3]?.[eq6] ?? Number.NaN;
  const parts: Array<{ lower: number | undefined; proportion: number }> = [
    { lower: score(eq1 + 1, eq2, eq3, eq4, eq5, eq6), proportion: sum(EQ1_METRICS) / (MAX_SEVERITY_DEPTH.eq1[eq1] ?? Number.NaN) },
    { lower: score(eq1, eq2 + 1, eq3, eq4, eq5, eq6), proportion: sum(EQ2_METRICS) / (MAX_SEVERITY_DEPTH.eq2[eq2] ?? Number.NaN) },
    { lower: lowerEq3Eq6, proportion: sum(EQ3EQ6_METRICS) / depth3 },
    { lower: score(eq1, eq2, eq3, eq4 + 1, eq5, eq6), proportion: sum(EQ4_METRICS) / (MAX_SEVERITY_DEPTH.eq4[eq4] ?? Number.NaN) },
    // EQ5 has a single vector per level: its distance within the MacroVector is always zero.
    { lower: score(eq1, eq2, eq3, eq4, eq5 + 1, eq6), proportion: 0 },
  ];
  // A class with no lower MacroVector has no room to move within and is left out of the mean.
  const present = parts.filter((p) => p.lower !== undefined);
  const mean = present.length === 0 ? 0 : present.reduce((total, p) => total + (value - (p.lower as number)) * p.proportion, 0) / present.length;
  return roundHalfUp1(Math.min(10, Math.max(0, value - mean)));
}

/**
 * Distances, in levels, from the first highest-severity vector of the MacroVector that is at
 * least as severe as the vector in every metric (the specification's "highest severity vector"
 * the score is measured down from).
 */
function severityDistances(v: Record<string, string>, eq1: number, eq2: number, eq3: number, eq4: number, eq6: number): Record<string, number> {
  let distances: Record<string, number> = {};
  for (const a of MAX_VECTORS.eq1[eq1] ?? []) {
    for (const b of MAX_VECTORS.eq2[eq2] ?? []) {
      for (const c of MAX_VECTORS.eq3eq6[eq3]?.[eq6] ?? []) {
        for (const d of MAX_VECTORS.eq4[eq4] ?? []) {
          const max = new Map(`${a}/${b}/${c}/${d}`.split('/').map((pair) => pair.split(':') as [string, string]));
          distances = {};
          let reachable = true;
          for (const name of DISTANCE_METRICS) {
            const levels = V4_LEVELS[name] as Readonly<Record<string, number>>;
            const distance = (levels[v[name] as string] as number) - (levels[max.get(name) as string] as number);
            distances[name] = distance;
            if (distance < 0) reachable = false;
          }
          if (reachable) return distances;
        }
      }
    }
  }
  // Every vector is reachable from some highest vector of its MacroVector; were one not, the
  // distances to the last candidate stand, as in FIRST's calculator.
  return distances;
}
