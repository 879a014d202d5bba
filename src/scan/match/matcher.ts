/**
 * Matching an image's inventory against the vulnerability database (docs/scanning.md).
 *
 * OS packages are matched only against their distro's advisories, never against language
 * feeds (issue 13: "distro advisories win over language feeds for OS packages"); language
 * packages against their OSV ecosystem. Each affected entry is evaluated as the OSV schema's
 * evaluation algorithm says (https://ossf.github.io/osv-schema/#evaluation), with the distro
 * tracker's statuses on top. Entries that describe the same vulnerability of the same package
 * (a DSA and the tracker's CVE, a GHSA and a PYSEC with the same CVE) become one finding.
 *
 * Cost: one store query per ecosystem with every package name batched, and one or two record
 * queries, whatever the size of the inventory. A Matcher kept for many inventories (re-matching
 * every stored image after an import) also remembers what the database said and what each
 * entry said of each version, so images sharing a base pay for it once.
 */
import { compareVersions, isValidVersion, schemeOfEcosystem, type VersionScheme } from '../version/index.ts';
import type {
  AffectedRange,
  AffectedStatus,
  CvssScore,
  Ecosystem,
  Finding,
  Inventory,
  Package,
  Severity,
  VulnAffected,
  VulnRecord,
} from '../types.ts';
import { cvssScore, preferredScore, severityOfScore } from './cvss.ts';
import { advisoryNames, advisoryVersion, distroFeed, distroSeverity, familyOfEcosystem, type FeedQuery } from './distro.ts';
import { normalisePythonName } from '../analyse/python.ts';

/** The part of the vulnerability database the matcher reads (VulnDbStore satisfies it). */
export interface VulnLookup {
  affected(ecosystem: string, packages: string[]): Promise<VulnAffected[]>;
  affectedByPrefix(prefix: string, packages: string[]): Promise<VulnAffected[]>;
  records(ids: string[]): Promise<VulnRecord[]>;
}

export interface MatchResult {
  findings: Finding[];
  /** Sentences for the scan's description: packages that could not be matched, and why. */
  notes: string[];
}

/** The OSV ecosystem of each language package manager. */
const LANGUAGE_ECOSYSTEMS: Readonly<Partial<Record<Ecosystem, string>>> = {
  npm: 'npm',
  pypi: 'PyPI',
  go: 'Go',
  maven: 'Maven',
  cargo: 'crates.io',
};

const OS_ECOSYSTEMS: ReadonlySet<Ecosystem> = new Set(['deb', 'rpm', 'apk']);
const DESCRIPTION_MAX_CHARS = 4000;
const REFERENCES_MAX = 50;

/** One package to match: where to look and what version to compare. */
interface Target {
  pkg: Package;
  version: string;
  /** The scheme of the package's own ecosystem, for ECOSYSTEM ranges and `versions` lists. */
  scheme: VersionScheme;
  queries: FeedQuery[];
  /** The names to look up; the store matches them exactly. */
  names: string[];
}

/** An affected entry evaluated against one version. */
interface Verdict {
  row: VulnAffected;
  rank: number;
  affected: boolean;
  fixedVersion?: string;
  /**
   * The ids that name the same vulnerability: the entry's id and the CVE in a distro id; for an
   * affected entry also its records' aliases, once they are read (`idsFromRecords`).
   */
  ids: string[];
  idsFromRecords: boolean;
}

/** A finding of some package, before it is given the package. */
interface Draft {
  name: string;
  primary: Verdict;
  affected: Verdict[];
  ids: string[];
  fixedVersion?: string;
}

/**
 * Work remembered across the matches of one Matcher: a version's validity and an ecosystem's
 * scheme are otherwise asked for once per entry, thousands of times for one image.
 */
class Memo {
  readonly #valid = new Map<VersionScheme, Map<string, boolean>>();
  readonly #schemes = new Map<string, VersionScheme | undefined>();

  isValid(scheme: VersionScheme, version: string): boolean {
    let known = this.#valid.get(scheme);
    if (!known) this.#valid.set(scheme, (known = new Map()));
    let valid = known.get(version);
    if (valid === undefined) known.set(version, (valid = isValidVersion(scheme, version)));
    return valid;
  }

  schemeOf(ecosystem: string): VersionScheme | undefined {
    if (!this.#schemes.has(ecosystem)) this.#schemes.set(ecosystem, schemeOfEcosystem(ecosystem));
    return this.#schemes.get(ecosystem);
  }
}

/** Matches one inventory; see Matcher for matching many against one database version. */
export async function matchInventory(inventory: Inventory, lookup: VulnLookup): Promise<MatchResult> {
  return new Matcher(lookup).match(inventory);
}

/**
 * Matches inventories, remembering what the database answered. Use one Matcher per database
 * version (a re-match run after an import) and drop it after: it never asks again for a
 * package or record it has seen. Concurrent match() calls may share it; at worst they ask
 * the database the same thing twice.
 */
export class Matcher {
  readonly #lookup: VulnLookup;
  readonly #memo = new Memo();
  /** Rows by query and package name; an empty list for a name the database has nothing on. */
  readonly #rows = new Map<string, Map<string, VulnAffected[]>>();
  readonly #records = new RecordIndex();
  /** Verdicts by query, name, scheme and version. */
  readonly #verdicts = new Map<string, { list: Verdict[]; anyAffected: boolean }>();
  /** Drafts by everything a target's findings depend on (queries, names, scheme, version). */
  readonly #drafts = new Map<string, Draft[]>();

  constructor(lookup: VulnLookup) {
    this.#lookup = lookup;
  }

  async match(inventory: Inventory): Promise<MatchResult> {
    const notes: string[] = [];
    const targets = buildTargets(inventory, notes, this.#memo);
    await this.#fetchRows(targets);

    // Evaluate every entry against its package. Binary packages of one source share the
    // source's entries and version: each entry is evaluated once per version.
    const withAffected: Array<{ target: Target; verdicts: Verdict[]; key: string }> = [];
    const unread = new Set<string>();
    for (const target of targets) {
      const verdicts: Verdict[] = [];
      for (const query of target.queries) {
        const key = queryKey(query);
        const byName = this.#rows.get(key);
        for (const name of target.names) {
          const rows = byName?.get(name);
          if (!rows || rows.length === 0) continue;
          const cacheKey = `${key}\u0000${name}\u0000${target.scheme}\u0000${target.version}`;
          let evaluated = this.#verdicts.get(cacheKey);
          if (!evaluated) {
            const list = rows.map((row) => evaluate(row, target.version, target.scheme, query.rank, this.#memo));
            this.#verdicts.set(cacheKey, (evaluated = { list, anyAffected: list.some((v) => v.affected) }));
          }
          // Entries that affect nothing can only matter beside other entries of the same package
          // (a better-ranked feed's word, the entries of its other name).
          if (!evaluated.anyAffected && target.queries.length === 1 && target.names.length === 1) continue;
          for (const v of evaluated.list) {
            if (v.affected && !v.idsFromRecords && !this.#records.asked(v.row.vulnId)) unread.add(v.row.vulnId);
            verdicts.push(v);
          }
        }
      }
      if (verdicts.some((v) => v.affected)) {
        const key = `${target.queries.map(queryKey).join('\u0001')}\u0000${target.names.join('\u0001')}\u0000${target.scheme}\u0000${target.version}`;
        withAffected.push({ target, verdicts, key });
      }
    }

    // Records only of entries that matched: an image's packages have thousands of fixed entries.
    await this.#fetchRecords([...unread]);
    for (const { verdicts } of withAffected) {
      for (const v of verdicts) {
        if (v.affected && !v.idsFromRecords) {
          v.ids = identityIds(v.row.vulnId, this.#records.all(v.row.vulnId));
          v.idsFromRecords = true;
        }
      }
    }

    const drafts: Array<{ target: Target; draft: Draft }> = [];
    for (const { target, verdicts, key } of withAffected) {
      let list = this.#drafts.get(key);
      if (!list) this.#drafts.set(key, (list = decide(target.scheme, verdicts, this.#records)));
      for (const draft of list) drafts.push({ target, draft });
    }

    // Scores may live in the record of an alias (the CVE itself, the GHSA of a GO- record) that
    // did not match by itself, perhaps from another source than the advisory.
    await this.#fetchRecords([...new Set(drafts.flatMap(({ draft }) => draft.ids))].filter((id) => !this.#records.asked(id)));

    const findings = drafts.map(({ target, draft }) => toFinding(draft, target.pkg, this.#records));
    findings.sort(compareFindings);
    return { findings, notes };
  }

  /** One query per ecosystem (or prefix), with every name not asked before. */
  async #fetchRows(targets: Target[]): Promise<void> {
    const wanted = new Map<string, { query: FeedQuery; names: Set<string> }>();
    for (const target of targets) {
      for (const query of target.queries) {
        const key = queryKey(query);
        const known = this.#rows.get(key);
        for (const name of target.names) {
          if (known?.has(name)) continue;
          let entry = wanted.get(key);
          if (!entry) wanted.set(key, (entry = { query, names: new Set() }));
          entry.names.add(name);
        }
      }
    }
    await Promise.all(
      [...wanted].map(async ([key, { query, names }]) => {
        const list = [...names];
        const rows =
          query.kind === 'exact'
            ? await this.#lookup.affected(query.ecosystem, list)
            : (await this.#lookup.affectedByPrefix(query.prefix, list)).filter((row) => query.accepts(row.ecosystem));
        const byName = new Map<string, VulnAffected[]>(list.map((name) => [name, []]));
        for (const row of rows) byName.get(row.package)?.push(row);
        let known = this.#rows.get(key);
        if (!known) this.#rows.set(key, (known = new Map()));
        for (const [name, found] of byName) if (!known.has(name)) known.set(name, found);
      }),
    );
  }

  async #fetchRecords(ids: string[]): Promise<void> {
    if (ids.length > 0) this.#records.add(ids, await this.#lookup.records(ids));
  }
}

function buildTargets(inventory: Inventory, notes: string[], memo: Memo): Target[] {
  const targets: Target[] = [];
  const feed = distroFeed(inventory.os);
  const unmatchedOs = new Map<Ecosystem, number>();
  let unorderable = 0;
  let unorderableExample: string | undefined;

  for (const pkg of inventory.packages) {
    let target: Target | undefined;
    if (OS_ECOSYSTEMS.has(pkg.ecosystem)) {
      if ('reason' in feed || feed.packageEcosystem !== pkg.ecosystem) {
        unmatchedOs.set(pkg.ecosystem, (unmatchedOs.get(pkg.ecosystem) ?? 0) + 1);
        continue;
      }
      target = {
        pkg,
        version: advisoryVersion(feed.family, pkg),
        scheme: pkg.ecosystem as VersionScheme,
        queries: feed.queries,
        names: advisoryNames(feed.family, pkg),
      };
    } else {
      const ecosystem = LANGUAGE_ECOSYSTEMS[pkg.ecosystem];
      const scheme = ecosystem === undefined ? undefined : schemeOfEcosystem(ecosystem);
      if (ecosystem === undefined || scheme === undefined) continue;
      const query: FeedQuery = { kind: 'exact', ecosystem, rank: 0 };
      if (pkg.ecosystem === 'pypi') {
        // OSV names PyPI packages by their PEP 503 normalised name; metadata keeps the author's
        // spelling, and a database may too.
        const names = [...new Set([normalisePythonName(pkg.name), pkg.name])];
        target = { pkg, version: pkg.version, scheme, queries: [query], names };
      } else {
        const version = pkg.ecosystem === 'go' ? goVersion(pkg.version) : pkg.version;
        target = { pkg, version, scheme, queries: [query], names: [pkg.name] };
      }
    }
    if (!memo.isValid(target.scheme, target.version)) {
      unorderable++;
      unorderableExample ??= `${pkg.name} ${JSON.stringify(pkg.version)}`;
    }
    targets.push(target);
  }

  for (const [ecosystem, count] of unmatchedOs) {
    const why = 'reason' in feed ? feed.reason : `the image's OS is ${feed.label}, whose advisories describe ${feed.packageEcosystem} packages`;
    notes.push(`${count} ${ecosystem} package${count === 1 ? '' : 's'} not matched: ${why}`);
  }
  if (unorderable > 0) {
    notes.push(
      `${unorderable} package${unorderable === 1 ? ' has a version' : 's have versions'} that cannot be ordered (e.g. ${unorderableExample}): only exact version lists were checked`,
    );
  }
  return targets;
}

/** OSV's Go ranges are semver without the "v" Go writes ("v1.2.3" -> "1.2.3"; "go1.21.3" for the toolchain). */
function goVersion(version: string): string {
  if (/^v\d/.test(version)) return version.slice(1);
  if (/^go\d/.test(version)) return version.slice(2);
  return version;
}

function queryKey(query: FeedQuery): string {
  return query.kind === 'exact' ? `=${query.ecosystem}` : `^${query.prefix}`;
}

// --- Evaluation of one affected entry (OSV schema, "Evaluation") ---

function evaluate(row: VulnAffected, version: string, packageScheme: VersionScheme, rank: number, memo: Memo): Verdict {
  const verdict: Verdict = { row, rank, affected: false, ids: identityIds(row.vulnId, []), idsFromRecords: false };
  switch (row.status) {
    case 'not_affected':
      return verdict;
    case 'unfixed':
    case 'will_not_fix':
    case 'postponed':
      // The distro says every version of this release is affected, whatever the ranges say.
      verdict.affected = true;
      return verdict;
    default:
      break;
  }
  const scheme = memo.schemeOf(row.ecosystem) ?? packageScheme;
  let fixed: string | undefined;
  for (const range of row.ranges) {
    const rangeScheme = rangeSchemeOf(range, scheme);
    if (rangeScheme === undefined || !memo.isValid(rangeScheme, version)) continue;
    const result = inRange(range, version, rangeScheme, memo);
    if (result.affected) {
      verdict.affected = true;
      if (result.fixed !== undefined && (fixed === undefined || compareVersions(rangeScheme, result.fixed, fixed) < 0)) fixed = result.fixed;
    }
  }
  if (!verdict.affected && row.versions.some((listed) => sameVersion(scheme, listed, version, memo))) verdict.affected = true;
  if (verdict.affected && fixed !== undefined) verdict.fixedVersion = fixed;
  return verdict;
}

/** SEMVER ranges follow SemVer 2.0 whatever the ecosystem; ECOSYSTEM ranges the ecosystem's order; GIT ranges need the repository and are not evaluated. */
function rangeSchemeOf(range: AffectedRange, ecosystemScheme: VersionScheme): VersionScheme | undefined {
  if (range.type === 'SEMVER') return 'semver';
  if (range.type === 'ECOSYSTEM') return ecosystemScheme;
  return undefined;
}

const EVENT_ORDER = { introduced: 0, last_affected: 1, fixed: 2 } as const;
type EventKind = keyof typeof EVENT_ORDER;

/** An event with where the installed version stands to it (-1: below, 0: at, 1: above); "0" introduced is below everything. */
interface TimelineEvent {
  kind: EventKind;
  at: string;
  isZero: boolean;
  versionVsEvent: -1 | 0 | 1;
}

/**
 * IncludedInRanges for one range: events in version order ("0" before all), walked as a
 * timeline; `limit` events bound the range from above ("*" is infinity). A range with a
 * version the scheme cannot read is not evaluated rather than guessed at. Also gives the
 * range's first `fixed` event above the version.
 */
function inRange(range: AffectedRange, version: string, scheme: VersionScheme, memo: Memo): { affected: boolean; fixed?: string } {
  const events: TimelineEvent[] = [];
  let beforeLimit: boolean | undefined;
  for (const event of range.events) {
    let kind: EventKind;
    let at: string;
    if (event.introduced !== undefined) [kind, at] = ['introduced', event.introduced];
    else if (event.fixed !== undefined) [kind, at] = ['fixed', event.fixed];
    else if (event.last_affected !== undefined) [kind, at] = ['last_affected', event.last_affected];
    else if (event.limit !== undefined) {
      if (event.limit.includes('*')) beforeLimit = true;
      else if (!memo.isValid(scheme, event.limit)) return { affected: false };
      else if (compareVersions(scheme, version, event.limit) < 0) beforeLimit = true;
      else beforeLimit ??= false;
      continue;
    } else continue;
    const isZero = kind === 'introduced' && at === '0';
    if (!isZero && !memo.isValid(scheme, at)) return { affected: false };
    events.push({ kind, at, isZero, versionVsEvent: isZero ? 1 : compareVersions(scheme, version, at) });
  }
  if (beforeLimit === false) return { affected: false };

  if (events.length > 1) {
    events.sort((a, b) => {
      if (a.isZero || b.isZero) return a.isZero === b.isZero ? 0 : a.isZero ? -1 : 1;
      // At one version an introduction comes first, so that introduced X, fixed X is empty.
      return compareVersions(scheme, a.at, b.at) || EVENT_ORDER[a.kind] - EVENT_ORDER[b.kind];
    });
  }
  let affected = false;
  for (const event of events) {
    if (event.kind === 'introduced') {
      if (event.versionVsEvent >= 0) affected = true;
    } else if (event.kind === 'fixed') {
      if (event.versionVsEvent >= 0) affected = false;
    } else if (event.versionVsEvent > 0) {
      affected = false;
    }
  }
  if (!affected) return { affected };
  // Sorted, so the first fixed event above the version is the smallest.
  const fixed = events.find((e) => e.kind === 'fixed' && e.versionVsEvent < 0)?.at;
  return fixed === undefined ? { affected } : { affected, fixed };
}

function sameVersion(scheme: VersionScheme, a: string, b: string, memo: Memo): boolean {
  return a === b || (memo.isValid(scheme, a) && memo.isValid(scheme, b) && compareVersions(scheme, a, b) === 0);
}

// --- Deciding findings ---

const CVE = /^CVE-\d{4}-\d{4,}$/;
/** Distro records named for one CVE: DEBIAN-CVE-2024-1234, UBUNTU-CVE-..., ALPINE-CVE-... */
const CVE_SUFFIX = /-(CVE-\d{4}-\d{4,})$/;

function isCve(id: string): boolean {
  return CVE.test(id);
}

function identityIds(vulnId: string, records: readonly VulnRecord[]): string[] {
  const embedded = vulnId.includes('-CVE-') ? CVE_SUFFIX.exec(vulnId)?.[1] : undefined;
  const ids = embedded ? [vulnId, embedded] : [vulnId];
  for (const record of records) for (const alias of record.aliases) if (!ids.includes(alias)) ids.push(alias);
  return ids;
}

/**
 * The findings of one package. Entries sharing an id (or an alias) describe one vulnerability.
 * Within one, only the entries of the best rank count (Ubuntu's archive over Ubuntu Pro); an
 * explicit "not affected" from the distro decides against; otherwise any affected entry makes
 * the finding, with the smallest fix any of them knows. An advisory that bundles CVEs (a DSA,
 * an RLSA) is dropped when every CVE it names has entries of its own for the package: those
 * say more precisely which of them still apply.
 */
function decide(scheme: VersionScheme, verdicts: Verdict[], records: RecordIndex): Draft[] {
  // Entries that can change the outcome: the affected, the distro's "not affected", and those
  // of a better rank than some affected one. Most of an image's entries are fixed ones that
  // take no part (they matter only to the bundle rule below).
  let worstAffectedRank = 0;
  for (const v of verdicts) if (v.affected && v.rank > worstAffectedRank) worstAffectedRank = v.rank;
  const relevant = verdicts.filter((v) => v.affected || v.row.status === 'not_affected' || v.rank < worstAffectedRank);
  const drafts: Draft[] = [];
  const advisories: Array<{ draft: Draft; upstream: string[] }> = [];
  for (const group of groupByIdentity(relevant)) {
    let best = Number.POSITIVE_INFINITY;
    for (const v of group) if (v.rank < best) best = v.rank;
    const counted = group.filter((v) => v.rank === best);
    if (counted.some((v) => v.row.status === 'not_affected')) continue;
    const affected = counted.filter((v) => v.affected);
    if (affected.length === 0) continue;

    let fixedVersion: string | undefined;
    for (const v of affected) {
      if (v.fixedVersion !== undefined && (fixedVersion === undefined || compareVersions(scheme, v.fixedVersion, fixedVersion) < 0)) fixedVersion = v.fixedVersion;
    }
    const primary = [...affected].sort((a, b) => primaryOrder(a, b, records))[0] as Verdict;
    const ids = [...new Set(group.flatMap((v) => v.ids))].sort();
    const cves = ids.filter(isCve);
    const name = CVE.test(primary.row.vulnId) ? primary.row.vulnId : (cves.find((id) => primary.ids.includes(id)) ?? cves[0] ?? primary.row.vulnId);
    const draft: Draft = { name, primary, affected, ids };
    if (fixedVersion !== undefined) draft.fixedVersion = fixedVersion;
    if (isCve(name)) {
      drafts.push(draft);
    } else {
      const upstream = affected.flatMap((v) => records.all(v.row.vulnId).flatMap((r) => r.related)).filter(isCve);
      advisories.push({ draft, upstream: [...new Set(upstream)] });
    }
  }
  if (advisories.length > 0) {
    const knownIds = new Set<string>();
    for (const v of verdicts) if (!advisories.some((a) => a.draft.affected.includes(v))) for (const id of v.ids) knownIds.add(id);
    for (const { draft, upstream } of advisories) {
      if (upstream.length > 0 && upstream.every((id) => knownIds.has(id))) continue;
      drafts.push(draft);
    }
  }
  return drafts;
}

/** Union of entries that share any id; groups come out in the order of their first entry. */
function groupByIdentity(verdicts: Verdict[]): Verdict[][] {
  const parent = verdicts.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i] as number] as number;
    return i;
  };
  const owner = new Map<string, number>();
  verdicts.forEach((v, i) => {
    for (const id of v.ids) {
      const other = owner.get(id);
      if (other === undefined) owner.set(id, i);
      else parent[find(i)] = find(other);
    }
  });
  const groups = new Map<number, Verdict[]>();
  verdicts.forEach((v, i) => {
    const root = find(i);
    const group = groups.get(root);
    if (group) group.push(v);
    else groups.set(root, [v]);
  });
  return [...groups.values()];
}

/** The entry a finding is reported from: one that knows a fix, then one with a CVSS vector, then by id. */
function primaryOrder(a: Verdict, b: Verdict, records: RecordIndex): number {
  const fixA = a.fixedVersion !== undefined ? 0 : 1;
  const fixB = b.fixedVersion !== undefined ? 0 : 1;
  if (fixA !== fixB) return fixA - fixB;
  const scoredA = scoresOf(records.own(a.row)).length > 0 ? 0 : 1;
  const scoredB = scoresOf(records.own(b.row)).length > 0 ? 0 : 1;
  if (scoredA !== scoredB) return scoredA - scoredB;
  return a.row.vulnId < b.row.vulnId ? -1 : a.row.vulnId > b.row.vulnId ? 1 : a.row.source < b.row.source ? -1 : a.row.source > b.row.source ? 1 : 0;
}

// --- Records and findings ---

/** Records by id (an id can have a record in several sources), and which ids were asked for. */
class RecordIndex {
  readonly #byId = new Map<string, VulnRecord[]>();

  /** The answer to a records() query for `ids`; asking again for an id replaces its records. */
  add(ids: string[], records: VulnRecord[]): void {
    const answer = new Map<string, VulnRecord[]>(ids.map((id) => [id, []]));
    for (const record of records) answer.get(record.id)?.push(record);
    for (const [id, list] of answer) this.#byId.set(id, list);
  }

  asked(id: string): boolean {
    return this.#byId.has(id);
  }

  all(id: string): VulnRecord[] {
    return this.#byId.get(id) ?? [];
  }

  /** The record an affected entry belongs to: the same id from the same source, else from any. */
  own(row: VulnAffected): VulnRecord | undefined {
    const list = this.#byId.get(row.vulnId);
    return list?.find((r) => r.source === row.source) ?? list?.[0];
  }
}

const scoresByRecord = new WeakMap<VulnRecord, CvssScore[]>();

function scoresOf(record: VulnRecord | undefined): CvssScore[] {
  if (!record) return [];
  let scores = scoresByRecord.get(record);
  if (scores) return scores;
  scores = [];
  for (const s of record.severity) {
    if (!s.type.startsWith('CVSS_')) continue;
    const score = cvssScore(s.score);
    if (score) scores.push(score);
  }
  scoresByRecord.set(record, scores);
  return scores;
}

/** What a draft's findings share, whichever package they are of; computed once per draft. */
type FindingDetails = Omit<Finding, 'package' | 'title'> & { summary?: string };
const detailsByDraft = new WeakMap<Draft, FindingDetails>();

function toFinding(draft: Draft, pkg: Package, records: RecordIndex): Finding {
  let details = detailsByDraft.get(draft);
  if (!details) detailsByDraft.set(draft, (details = findingDetails(draft, records)));
  const { summary, ...shared } = details;
  // Copies of the lists, so that a caller changing one finding changes no other.
  return {
    ...shared,
    cvss: [...shared.cvss],
    references: [...shared.references],
    aliases: [...shared.aliases],
    package: pkg,
    title: summary ?? `${draft.name} - ${pkg.name}`,
  };
}

function findingDetails(draft: Draft, records: RecordIndex): FindingDetails {
  const { primary, name } = draft;
  const primaryRecord = records.own(primary.row);
  // The primary's record first, then the other entries', then records of the CVE itself.
  const ordered: VulnRecord[] = [];
  const addRecord = (r: VulnRecord | undefined) => {
    if (r && !ordered.includes(r)) ordered.push(r);
  };
  addRecord(primaryRecord);
  for (const v of draft.affected) for (const r of records.all(v.row.vulnId)) addRecord(r);
  for (const id of draft.ids) for (const r of records.all(id)) addRecord(r);

  const cvss: CvssScore[] = [];
  for (const record of ordered) for (const score of scoresOf(record)) if (!cvss.some((c) => c.vector === score.vector)) cvss.push(score);

  const family = familyOfEcosystem(primary.row.ecosystem);
  const ratings = [primary.row.distroSeverity, ...draft.affected.map((v) => v.row.distroSeverity), ...ordered.flatMap((r) => r.severity.filter((s) => s.type === 'Ubuntu').map((s) => s.score))];
  const rating = ratings.find((r): r is string => r !== undefined && r.trim() !== '');

  let severity: Severity = 'UNDEFINED';
  const preferred = preferredScore(cvss);
  if (preferred) severity = severityOfScore(preferred.baseScore, preferred.version);
  else if (rating !== undefined && family !== undefined) severity = distroSeverity(family, rating) ?? 'UNDEFINED';

  // Without a known fix, the distro's most telling word: it will not fix, it put the fix off, or none yet.
  const statuses = new Set(draft.affected.map((v) => v.row.status));
  const status: AffectedStatus =
    draft.fixedVersion !== undefined ? 'fixed' : statuses.has('will_not_fix') ? 'will_not_fix' : statuses.has('postponed') ? 'postponed' : 'unfixed';

  const summary = ordered.map((r) => r.summary?.trim()).find((s) => s);
  const details = ordered.map((r) => r.details?.trim()).find((s) => s);
  const references: string[] = [];
  for (const record of ordered) for (const ref of record.references) if (!references.includes(ref.url) && references.length < REFERENCES_MAX) references.push(ref.url);

  const finding: FindingDetails = {
    name,
    vulnId: primary.row.vulnId,
    source: primary.row.source,
    severity,
    cvss,
    status,
    description: truncate(details ?? summary ?? ''),
    uri: findingUri(primary.row, name),
    references,
    aliases: draft.ids.filter((id) => id !== name),
  };
  if (summary !== undefined) finding.summary = summary;
  if (rating !== undefined) finding.distroSeverity = rating;
  if (draft.fixedVersion !== undefined) finding.fixedVersion = draft.fixedVersion;
  if (primaryRecord?.published) finding.published = primaryRecord.published;
  if (primaryRecord?.modified) finding.modified = primaryRecord.modified;
  return finding;
}

function truncate(text: string): string {
  return text.length <= DESCRIPTION_MAX_CHARS ? text : `${text.slice(0, DESCRIPTION_MAX_CHARS - 1).trimEnd()}…`;
}

/** Where a person reads more: the distro's page for the CVE, the advisory's own page, else OSV's. */
function findingUri(row: VulnAffected, name: string): string {
  const id = row.vulnId;
  if (id.startsWith('GHSA-')) return `https://github.com/advisories/${id}`;
  if (id.startsWith('GO-')) return `https://pkg.go.dev/vuln/${id}`;
  const cve = isCve(name);
  switch (familyOfEcosystem(row.ecosystem)) {
    case 'debian':
      return `https://security-tracker.debian.org/tracker/${encodeURIComponent(cve ? name : id)}`;
    case 'ubuntu':
      if (cve) return `https://ubuntu.com/security/${name}`;
      if (id.startsWith('USN-')) return `https://ubuntu.com/security/notices/${id}`;
      break;
    case 'alpine':
      if (cve) return `https://security.alpinelinux.org/vuln/${name}`;
      break;
    case 'redhat':
      if (cve) return `https://access.redhat.com/security/cve/${name}`;
      if (id.startsWith('RHSA-')) return `https://access.redhat.com/errata/${id}`;
      break;
    default:
      break;
  }
  return `https://osv.dev/vulnerability/${encodeURIComponent(id)}`;
}

const SEVERITY_ORDER: Readonly<Record<Severity, number>> = {
  CRITICAL: 0,
  HIGH: 1,
  MEDIUM: 2,
  LOW: 3,
  INFORMATIONAL: 4,
  UNTRIAGED: 5,
  UNDEFINED: 6,
};

/** Most severe first, then by name and package, so that a scan's findings come in a stable order. */
function compareFindings(a: Finding, b: Finding): number {
  return (
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
    (a.package.name < b.package.name ? -1 : a.package.name > b.package.name ? 1 : 0) ||
    (a.package.path < b.package.path ? -1 : a.package.path > b.package.path ? 1 : 0)
  );
}
