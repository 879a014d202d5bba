import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DAY_MS, evaluateLifecycle, matchesTagPattern, previewSummary, type LifecycleImage } from './evaluate.ts';
import { parseLifecyclePolicy, type LifecyclePolicy } from './policy.ts';

const NOW = Date.UTC(2025, 0, 31, 12);
const HOUR_MS = 3_600_000;

type Selection = Record<string, unknown>;

// Selection shorthands, in ECR's JSON shape.
const UNTAGGED: Selection = { tagStatus: 'untagged' };
const ANY: Selection = { tagStatus: 'any' };
const prefixes = (...tagPrefixList: string[]): Selection => ({ tagStatus: 'tagged', tagPrefixList });
const patterns = (...tagPatternList: string[]): Selection => ({ tagStatus: 'tagged', tagPatternList });
const keep = (countNumber: number, selection: Selection): Selection => ({ ...selection, countType: 'imageCountMoreThan', countNumber });
const pushedOver = (days: number, selection: Selection): Selection => ({ ...selection, countType: 'sinceImagePushed', countUnit: 'days', countNumber: days });
const pulledOver = (days: number, selection: Selection): Selection => ({ ...selection, countType: 'sinceImagePulled', countUnit: 'days', countNumber: days });

/** Rules get priorities 1, 2, ... in order unless given as [priority, selection]. */
function policy(...rules: (Selection | [number, Selection])[]): LifecyclePolicy {
  const text = JSON.stringify(
    {
      rules: rules.map((rule, index) => {
        const [rulePriority, selection] = Array.isArray(rule) ? rule : [index + 1, rule];
        return { rulePriority, description: `Rule ${rulePriority}`, selection, action: { type: 'expire' } };
      }),
    },
    null,
    2,
  );
  return parseLifecyclePolicy(text);
}

interface ImageOptions {
  pulledDaysAgo?: number;
  children?: string[];
  subject?: string;
}

function img(digest: string, tags: string[], pushedDaysAgo: number, options: ImageOptions = {}): LifecycleImage {
  return {
    digest,
    tags,
    pushedAtMs: NOW - pushedDaysAgo * DAY_MS,
    lastPulledAtMs: options.pulledDaysAgo === undefined ? null : NOW - options.pulledDaysAgo * DAY_MS,
    children: options.children ?? [],
    subject: options.subject ?? null,
  };
}

interface Case {
  name: string;
  policy: LifecyclePolicy;
  images: LifecycleImage[];
  /** digest -> rulePriority of every expired image; everything else is kept. */
  expired: Record<string, number>;
  /** digest -> dependents, for expired images that have any. */
  dependents?: Record<string, string[]>;
}

function check({ policy: p, images, expired, dependents = {} }: Case): void {
  const decisions = evaluateLifecycle(p, images, NOW);
  assert.deepEqual(Object.fromEntries(decisions.map((d) => [d.digest, d.rulePriority])), expired);
  assert.deepEqual(
    Object.fromEntries(decisions.filter((d) => d.dependents.length > 0).map((d) => [d.digest, d.dependents])),
    dependents,
  );
  for (const decision of decisions) {
    const image = images.find((i) => i.digest === decision.digest)!;
    assert.equal(decision.action, 'expire');
    assert.deepEqual(decision.tags, image.tags);
    assert.equal(decision.pushedAtMs, image.pushedAtMs);
  }
}

const cases: Case[] = [
  // --- tagStatus and count types ---------------------------------------------------------------
  {
    name: 'untagged, imageCountMoreThan: keeps the newest untagged images, ignores tagged ones',
    policy: policy(keep(1, UNTAGGED)),
    images: [img('u1', [], 3), img('u2', [], 2), img('u3', [], 1), img('t', ['v1'], 5)],
    expired: { u1: 1, u2: 1 },
  },
  {
    name: 'untagged, sinceImagePushed: expires untagged images older than the limit',
    policy: policy(pushedOver(2, UNTAGGED)),
    images: [img('u1', [], 3), img('u2', [], 1), img('t', ['v1'], 5)],
    expired: { u1: 1 },
  },
  {
    name: 'tagged, imageCountMoreThan: untagged images are not selected',
    policy: policy(keep(1, prefixes('v'))),
    images: [img('v1', ['v1'], 3), img('v2', ['v2'], 2), img('u', [], 9)],
    expired: { v1: 1 },
  },
  {
    name: 'any, imageCountMoreThan: tagged and untagged images count together',
    policy: policy(keep(2, ANY)),
    images: [img('a', ['x'], 4), img('b', [], 3), img('c', ['y'], 2), img('d', [], 1)],
    expired: { a: 1, b: 1 },
  },
  {
    name: 'any, sinceImagePushed: every old image expires whatever its tags',
    policy: policy(pushedOver(7, ANY)),
    images: [img('a', ['x'], 8), img('b', [], 10), img('c', ['y'], 6)],
    expired: { a: 1, b: 1 },
  },
  {
    name: 'a rule that selects nothing expires nothing',
    policy: policy(keep(1, UNTAGGED)),
    images: [img('a', ['x'], 8), img('b', ['y'], 10)],
    expired: {},
  },
  {
    name: 'imageCountMoreThan with fewer images than the count expires nothing',
    policy: policy(keep(5, ANY)),
    images: [img('a', ['x'], 8), img('b', [], 10)],
    expired: {},
  },
  {
    name: 'imageCountMoreThan with exactly the count expires nothing',
    policy: policy(keep(2, ANY)),
    images: [img('a', ['x'], 8), img('b', [], 10)],
    expired: {},
  },
  {
    name: 'an empty repository gives no decisions',
    policy: policy(keep(1, ANY)),
    images: [],
    expired: {},
  },
  {
    name: 'imageCountMoreThan keeps by push time, not by list order',
    policy: policy(keep(1, ANY)),
    images: [img('new', ['x'], 1), img('old', ['y'], 9), img('mid', ['z'], 5)],
    expired: { mid: 1, old: 1 },
  },

  // --- tagPrefixList ---------------------------------------------------------------------------
  {
    name: 'a prefix matches tags that start with it, case-sensitively',
    policy: policy(pushedOver(1, prefixes('prod'))),
    images: [
      img('prod', ['prod'], 5),
      img('prod1', ['prod1'], 5),
      img('production', ['production'], 5),
      img('preprod', ['preprod'], 5),
      img('Prod', ['Prod-1'], 5),
    ],
    expired: { prod: 1, prod1: 1, production: 1 },
  },
  {
    name: 'several prefixes: an image must have a tag for every prefix',
    policy: policy(pushedOver(1, prefixes('alpha', 'beta'))),
    images: [img('a', ['alpha-1'], 5), img('b', ['beta-1'], 5), img('ab', ['alpha-2', 'beta-2'], 5)],
    expired: { ab: 1 },
  },
  {
    name: 'several prefixes may all be matched by one tag',
    policy: policy(pushedOver(1, prefixes('prod', 'prod-1'))),
    images: [img('a', ['prod-1'], 5), img('b', ['prod-2'], 5)],
    expired: { a: 1 },
  },
  {
    name: 'a prefix needs to match only one of the image tags',
    policy: policy(pushedOver(1, prefixes('prod'))),
    images: [img('a', ['latest', 'prod-3'], 5), img('b', ['latest'], 5)],
    expired: { a: 1 },
  },

  // --- tagPatternList --------------------------------------------------------------------------
  {
    name: 'pattern with a wildcard at the end (the guide: prod* matches prod, prod1, production-team1)',
    policy: policy(pushedOver(1, patterns('prod*'))),
    images: [img('a', ['prod'], 5), img('b', ['prod1'], 5), img('c', ['production-team1'], 5), img('d', ['preprod'], 5)],
    expired: { a: 1, b: 1, c: 1 },
  },
  {
    name: 'pattern with wildcards at both ends (the guide: *prod* matches repo-production, prod-team)',
    policy: policy(pushedOver(1, patterns('*prod*'))),
    images: [img('a', ['repo-production'], 5), img('b', ['prod-team'], 5), img('c', ['prd'], 5), img('d', ['PROD'], 5)],
    expired: { a: 1, b: 1 },
  },
  {
    name: 'pattern with a wildcard at the start',
    policy: policy(pushedOver(1, patterns('*-rc'))),
    images: [img('a', ['1.0-rc'], 5), img('b', ['1.0-rc1'], 5), img('c', ['-rc'], 5)],
    expired: { a: 1, c: 1 },
  },
  {
    name: 'pattern with wildcards in the middle',
    policy: policy(pushedOver(1, patterns('v*.*.*'))),
    images: [img('a', ['v1.2.3'], 5), img('b', ['v10.20.30'], 5), img('c', ['v1.2'], 5), img('d', ['release-v1.2.3'], 5)],
    expired: { a: 1, b: 1 },
  },
  {
    name: 'pattern without a wildcard matches the whole tag exactly',
    policy: policy(pushedOver(1, patterns('latest'))),
    images: [img('a', ['latest'], 5), img('b', ['latest-1'], 5), img('c', ['Latest'], 5), img('d', ['not-latest'], 5)],
    expired: { a: 1 },
  },
  {
    name: 'patterns are case-sensitive',
    policy: policy(pushedOver(1, patterns('PROD*'))),
    images: [img('a', ['prod-1'], 5), img('b', ['PROD-1'], 5)],
    expired: { b: 1 },
  },
  {
    name: 'a lone * selects every tagged image and no untagged one',
    policy: policy(pushedOver(1, patterns('*'))),
    images: [img('a', ['x'], 5), img('b', [], 5)],
    expired: { a: 1 },
  },
  {
    name: 'four wildcards in one pattern',
    policy: policy(pushedOver(1, patterns('*a*b*c*'))),
    images: [img('a', ['xaybzc'], 5), img('b', ['abc'], 5), img('c', ['cba'], 5)],
    expired: { a: 1, b: 1 },
  },
  {
    name: 'literal parts of a pattern may not overlap',
    policy: policy(pushedOver(1, patterns('a*ab'))),
    images: [img('a', ['aab'], 5), img('b', ['ab'], 5), img('c', ['axxab'], 5)],
    expired: { a: 1, c: 1 },
  },
  {
    name: 'several patterns: an image must have a tag for every pattern',
    policy: policy(pushedOver(1, patterns('alpha*', 'beta*'))),
    images: [img('a', ['alpha-1'], 5), img('ab', ['alpha-2', 'beta-2'], 5), img('ba', ['beta-3', 'alpha-3', 'gamma'], 5)],
    expired: { ab: 1, ba: 1 },
  },

  // --- priorities --------------------------------------------------------------------------------
  {
    name: 'a high-count rule protects its images from every later rule',
    policy: policy(keep(9999, patterns('prod*')), pushedOver(30, ANY)),
    images: [img('p', ['prod-1'], 90), img('x', ['dev-1'], 90), img('u', [], 90), img('n', ['dev-2'], 1)],
    expired: { x: 2, u: 2 },
  },
  {
    name: 'images an earlier rule identified still take the places a later count keeps',
    policy: policy(keep(5, prefixes('release')), keep(2, ANY)),
    images: [img('r1', ['release-1'], 1), img('r2', ['release-2'], 2), img('x', ['dev'], 3), img('y', [], 4)],
    expired: { x: 2, y: 2 },
  },
  {
    name: 'an earlier rule expires its own over-count images; the later count sees them too',
    policy: policy(keep(1, prefixes('release')), keep(2, ANY)),
    images: [img('r1', ['release-1'], 5), img('r2', ['release-2'], 4), img('x', ['dev'], 3), img('y', [], 2), img('z', [], 1)],
    expired: { r1: 1, x: 2 },
  },
  {
    name: 'an image that meets an earlier rule but is too young for it is still protected from later rules',
    policy: policy(pushedOver(30, prefixes('prod')), pushedOver(7, ANY)),
    images: [img('p', ['prod-1'], 10), img('d', ['dev-1'], 10), img('old', ['prod-0'], 40)],
    expired: { old: 1, d: 2 },
  },
  {
    name: 'an image both rules would expire is expired once, by the earlier rule',
    policy: policy(pushedOver(5, prefixes('dev')), pushedOver(1, ANY)),
    images: [img('d', ['dev-1'], 10), img('x', ['x'], 10)],
    expired: { d: 1, x: 2 },
  },
  {
    name: 'rules apply by rulePriority, not by their order in the policy text',
    policy: policy([2, keep(1, prefixes('beta'))], [1, keep(1, prefixes('prod'))]),
    images: [img('A', ['beta-1', 'prod-1'], 10), img('B', ['beta-2', 'prod-2'], 9), img('C', ['beta-3'], 8)],
    expired: { A: 1 },
  },
  {
    name: 'rulePriority values need not be sequential; decisions carry them',
    policy: policy([10, pushedOver(1, UNTAGGED)], [20, pushedOver(1, ANY)]),
    images: [img('u', [], 5), img('t', ['x'], 5)],
    expired: { u: 10, t: 20 },
  },
  {
    name: 'untagged images the untagged rule identified are not expired by the any rule',
    policy: policy(pushedOver(30, UNTAGGED), keep(1, ANY)),
    images: [img('u1', [], 3), img('u2', [], 2), img('t1', ['a'], 5), img('t2', ['b'], 4)],
    expired: { t1: 2, t2: 2 },
  },
  {
    name: 'a tagged rule does not protect images whose tags it does not match',
    policy: policy(keep(10, prefixes('prod')), keep(1, prefixes('dev'))),
    images: [img('d1', ['dev-1'], 3), img('d2', ['dev-2'], 2), img('pd', ['prod-1', 'dev-0'], 9)],
    expired: { d1: 2 },
  },

  // --- sinceImagePushed boundaries ---------------------------------------------------------------
  {
    name: 'sinceImagePushed: exactly N days old is kept, a millisecond more expires',
    policy: policy(pushedOver(3, ANY)),
    images: [img('exact', ['a'], 3), img('over', ['b'], 3 + 1 / DAY_MS), img('under', ['c'], 3 - 1 / DAY_MS)],
    expired: { over: 1 },
  },
  {
    name: 'sinceImagePushed: a push time in the future (clock skew) is not old',
    policy: policy(pushedOver(1, ANY)),
    images: [img('future', ['a'], -2)],
    expired: {},
  },
  {
    name: 'sinceImagePushed counts whole 24-hour days',
    policy: policy(pushedOver(1, ANY)),
    images: [img('a', ['a'], 23 / 24), img('b', ['b'], 25 / 24)],
    expired: { b: 1 },
  },

  // --- sinceImagePulled --------------------------------------------------------------------------
  {
    name: 'sinceImagePulled: a recent pull keeps an old image',
    policy: policy(pulledOver(30, ANY)),
    images: [img('a', ['a'], 400, { pulledDaysAgo: 2 })],
    expired: {},
  },
  {
    name: 'sinceImagePulled: an image never pulled is judged by its push time (old: expires)',
    policy: policy(pulledOver(30, ANY)),
    images: [img('a', ['a'], 40)],
    expired: { a: 1 },
  },
  {
    name: 'sinceImagePulled: an image never pulled is judged by its push time (recent: kept)',
    policy: policy(pulledOver(30, ANY)),
    images: [img('a', ['a'], 10)],
    expired: {},
  },
  {
    name: 'sinceImagePulled: a pull longer ago than the limit expires the image',
    policy: policy(pulledOver(30, ANY)),
    images: [img('a', ['a'], 100, { pulledDaysAgo: 31 }), img('b', ['b'], 100, { pulledDaysAgo: 29 })],
    expired: { a: 1 },
  },
  {
    name: 'sinceImagePulled: exactly N days since the pull is kept',
    policy: policy(pulledOver(30, ANY)),
    images: [img('a', ['a'], 100, { pulledDaysAgo: 30 })],
    expired: {},
  },
  {
    name: 'sinceImagePulled: a pull recorded before the (re)push does not make the image older than its push',
    policy: policy(pulledOver(30, ANY)),
    images: [img('a', ['a'], 5, { pulledDaysAgo: 60 })],
    expired: {},
  },
  {
    name: 'sinceImagePulled with a tag pattern and untagged images left alone',
    policy: policy(pulledOver(14, patterns('pr-*'))),
    images: [img('pr', ['pr-12'], 30, { pulledDaysAgo: 20 }), img('main', ['main'], 30, { pulledDaysAgo: 20 }), img('u', [], 30)],
    expired: { pr: 1 },
  },
  {
    name: 'sinceImagePulled: a pull of a platform manifest counts as use of its index',
    policy: policy(pulledOver(30, ANY)),
    images: [img('idx', ['v1'], 100, { children: ['amd'], pulledDaysAgo: 90 }), img('amd', [], 100, { pulledDaysAgo: 1 })],
    expired: {},
  },
  {
    name: 'sinceImagePulled: an index whose children were not pulled either expires with them',
    policy: policy(pulledOver(30, ANY)),
    images: [img('idx', ['v1'], 100, { children: ['amd'], pulledDaysAgo: 90 }), img('amd', [], 100, { pulledDaysAgo: 60 })],
    expired: { idx: 1 },
    dependents: { idx: ['amd'] },
  },

  // --- multi-arch indexes ------------------------------------------------------------------------
  {
    name: 'an expired index takes its children with it',
    policy: policy(keep(1, prefixes('v'))),
    images: [
      img('i1', ['v1'], 10, { children: ['i1-amd', 'i1-arm'] }),
      img('i1-amd', [], 10),
      img('i1-arm', [], 10),
      img('i2', ['v2'], 1, { children: ['i2-amd'] }),
      img('i2-amd', [], 1),
    ],
    expired: { i1: 1 },
    dependents: { i1: ['i1-amd', 'i1-arm'] },
  },
  {
    name: 'children of a kept index are never judged on their own, however old and untagged',
    policy: policy(pushedOver(1, UNTAGGED), keep(5, ANY)),
    images: [img('idx', ['v1'], 30, { children: ['c1', 'c2'] }), img('c1', [], 30), img('c2', [], 30), img('loose', [], 30)],
    expired: { loose: 1 },
  },
  {
    name: 'a child shared with a kept index stays',
    policy: policy(keep(1, prefixes('v'))),
    images: [
      img('old', ['v1'], 10, { children: ['shared', 'only-old'] }),
      img('new', ['v2'], 1, { children: ['shared', 'only-new'] }),
      img('shared', [], 10),
      img('only-old', [], 10),
      img('only-new', [], 1),
    ],
    expired: { old: 1 },
    dependents: { old: ['only-old'] },
  },
  {
    name: 'a child shared by two expired indexes is listed once, with the first decision',
    policy: policy(keep(1, prefixes('v'))),
    images: [
      img('i1', ['v1'], 10, { children: ['shared'] }),
      img('i2', ['v2'], 9, { children: ['shared'] }),
      img('i3', ['v3'], 1),
      img('shared', [], 10),
    ],
    expired: { i1: 1, i2: 1 },
    dependents: { i1: ['shared'] },
  },
  {
    name: 'nested indexes: dependents are collected recursively',
    policy: policy(pushedOver(5, ANY)),
    images: [img('outer', ['v1'], 10, { children: ['inner'] }), img('inner', [], 10, { children: ['leaf'] }), img('leaf', [], 10)],
    expired: { outer: 1 },
    dependents: { outer: ['inner', 'leaf'] },
  },
  {
    name: 'a child missing from the repository is ignored',
    policy: policy(pushedOver(5, ANY)),
    images: [img('idx', ['v1'], 10, { children: ['gone', 'here'] }), img('here', [], 10)],
    expired: { idx: 1 },
    dependents: { idx: ['here'] },
  },
  {
    name: 'children do not count towards an untagged imageCountMoreThan',
    policy: policy(keep(1, UNTAGGED)),
    images: [
      img('idx', ['v1'], 1, { children: ['c1', 'c2', 'c3'] }),
      img('c1', [], 1),
      img('c2', [], 1),
      img('c3', [], 1),
      img('m1', [], 5),
      img('m2', [], 4),
    ],
    expired: { m1: 1 },
  },
  {
    name: 'a tagged platform manifest inside a kept index goes with the index, not with its own tag',
    policy: policy(pushedOver(1, prefixes('arch'))),
    images: [img('idx', ['v1'], 30, { children: ['amd'] }), img('amd', ['arch-amd64'], 30)],
    expired: {},
  },

  // --- referrers ---------------------------------------------------------------------------------
  {
    name: 'a signature goes with the image it signs',
    policy: policy(keep(1, prefixes('v'))),
    images: [img('v1', ['v1'], 10), img('sig', [], 10, { subject: 'v1' }), img('v2', ['v2'], 1)],
    expired: { v1: 1 },
    dependents: { v1: ['sig'] },
  },
  {
    name: 'a referrer of a kept image stays, however old and untagged',
    policy: policy(pushedOver(1, UNTAGGED)),
    images: [img('v1', ['v1'], 1), img('sbom', [], 30, { subject: 'v1' })],
    expired: {},
  },
  {
    name: 'a referrer whose subject is gone is judged like any other image',
    policy: policy(pushedOver(1, UNTAGGED)),
    images: [img('sbom', [], 30, { subject: 'deleted' }), img('fresh', [], 0.5, { subject: 'deleted' })],
    expired: { sbom: 1 },
  },
  {
    name: 'referrers of an expired index and of its children all go with it',
    policy: policy(pushedOver(5, ANY)),
    images: [
      img('idx', ['v1'], 10, { children: ['amd'] }),
      img('amd', [], 10),
      img('idx-sig', [], 10, { subject: 'idx' }),
      img('amd-attest', [], 10, { subject: 'amd' }),
    ],
    expired: { idx: 1 },
    dependents: { idx: ['amd', 'amd-attest', 'idx-sig'] },
  },
  {
    name: 'a referrer of a referrer (signed SBOM) goes with the subject',
    policy: policy(pushedOver(5, ANY)),
    images: [img('app', ['v1'], 10), img('sbom', [], 10, { subject: 'app' }), img('sbom-sig', [], 10, { subject: 'sbom' })],
    expired: { app: 1 },
    dependents: { app: ['sbom', 'sbom-sig'] },
  },
  {
    name: 'a referrer of a child shared with a kept index stays with the child',
    policy: policy(keep(1, prefixes('v'))),
    images: [
      img('old', ['v1'], 10, { children: ['shared'] }),
      img('new', ['v2'], 1, { children: ['shared'] }),
      img('shared', [], 10),
      img('shared-sig', [], 10, { subject: 'shared' }),
      img('old-sig', [], 10, { subject: 'old' }),
    ],
    expired: { old: 1 },
    dependents: { old: ['old-sig'] },
  },
  {
    name: 'referrers do not count towards the count of the rule that judges their subject',
    policy: policy(keep(2, ANY)),
    images: [img('a', ['a'], 3), img('b', ['b'], 2), img('a-sig', [], 1, { subject: 'a' }), img('b-sig', [], 1, { subject: 'b' })],
    expired: {},
  },

  // --- ties --------------------------------------------------------------------------------------
  {
    name: 'imageCountMoreThan with equal push times: the lower digest counts as newer',
    policy: policy(keep(1, ANY)),
    images: [img('sha256:bbb', ['b'], 2), img('sha256:aaa', ['a'], 2)],
    expired: { 'sha256:bbb': 1 },
  },
];

/**
 * "Examples of lifecycle policies in Amazon ECR" (ECR User Guide). The guide's wording is kept
 * in the names; the older edition of a page used tagPrefixList where the current one uses
 * tagPatternList, and both are here.
 */
const docExamples: Case[] = [
  {
    name: 'Filtering on image age (current edition): tagged prod* older than 14 days',
    policy: parseLifecyclePolicy(`{
      "rules": [
        {
          "rulePriority": 1,
          "description": "Expire images older than 14 days",
          "selection": { "tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14 },
          "action": { "type": "expire" }
        }
      ]
    }`),
    images: [img('old-prod', ['prod-1'], 15), img('new-prod', ['prod-2'], 13), img('old-dev', ['dev-1'], 30), img('old-untagged', [], 30)],
    expired: { 'old-prod': 1 },
  },
  {
    name: 'Filtering on image age (earlier edition): untagged images older than 14 days',
    policy: parseLifecyclePolicy(`{
      "rules": [
        {
          "rulePriority": 1,
          "description": "Expire images older than 14 days",
          "selection": { "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14 },
          "action": { "type": "expire" }
        }
      ]
    }`),
    images: [img('old', [], 15), img('new', [], 13), img('tagged', ['v1'], 30)],
    expired: { old: 1 },
  },
  {
    name: 'Filtering on image count: keep only one untagged image, expire all others',
    policy: parseLifecyclePolicy(`{
      "rules": [
        {
          "rulePriority": 1,
          "description": "Keep only one untagged image, expire all others",
          "selection": { "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1 },
          "action": { "type": "expire" }
        }
      ]
    }`),
    images: [img('u1', [], 3), img('u2', [], 2), img('u3', [], 1), img('t', ['v1'], 9)],
    expired: { u1: 1, u2: 1 },
  },
  ...(['tagPatternList', 'tagPrefixList'] as const).flatMap((list): Case[] => {
    const tags = (tag: string) => (list === 'tagPatternList' ? [`${tag}*`] : [tag]);
    const rule = (rulePriority: number, tag: string) => ({
      rulePriority,
      description: `Rule ${rulePriority}`,
      selection: { tagStatus: 'tagged', [list]: tags(tag), countType: 'imageCountMoreThan', countNumber: 1 },
      action: { type: 'expire' },
    });
    const repository = [img('A', ['beta-1', 'prod-1'], 10), img('B', ['beta-2', 'prod-2'], 9), img('C', ['beta-3'], 8)];
    return [
      {
        name: `Filtering on multiple rules, Example A (${list}): prod then beta expires Image A`,
        policy: parseLifecyclePolicy(JSON.stringify({ rules: [rule(1, 'prod'), rule(2, 'beta')] })),
        images: repository,
        expired: { A: 1 },
      },
      {
        name: `Filtering on multiple rules, Example B (${list}): beta then prod expires Images A and B`,
        policy: parseLifecyclePolicy(JSON.stringify({ rules: [rule(1, 'beta'), rule(2, 'prod')] })),
        images: repository,
        expired: { A: 1, B: 1 },
      },
    ];
  }),
  ...(['tagPatternList', 'tagPrefixList'] as const).flatMap((list): Case[] => {
    const alphaBeta = list === 'tagPatternList' ? ['alpha*', 'beta*'] : ['alpha', 'beta'];
    return [
      {
        name: `Filtering on multiple tags in a single rule, Example A (${list}): images must match all listed tags`,
        policy: parseLifecyclePolicy(
          JSON.stringify({
            rules: [
              {
                rulePriority: 1,
                description: 'Rule 1',
                selection: { tagStatus: 'tagged', [list]: alphaBeta, countType: 'sinceImagePushed', countNumber: 5, countUnit: 'days' },
                action: { type: 'expire' },
              },
            ],
          }),
        ),
        images: [
          img('A', ['alpha-1'], 12),
          img('B', ['beta-1'], 11),
          img('C', ['alpha-2', 'beta-2'], 10),
          img('D', ['alpha-3'], 4),
          img('E', ['beta-3'], 3),
          img('F', ['alpha-4', 'beta-4'], 2),
        ],
        expired: { C: 1 },
      },
      {
        name: `Filtering on multiple tags in a single rule, Example B (${list}): tags are not exclusive`,
        policy: parseLifecyclePolicy(
          JSON.stringify({
            rules: [
              {
                rulePriority: 1,
                description: 'Rule 1',
                selection: { tagStatus: 'tagged', [list]: alphaBeta, countType: 'imageCountMoreThan', countNumber: 1 },
                action: { type: 'expire' },
              },
            ],
          }),
        ),
        images: [img('A', ['alpha-1', 'beta-1', 'gamma-1'], 10), img('B', ['alpha-2', 'beta-2'], 9), img('C', ['alpha-3', 'beta-3', 'gamma-2'], 8)],
        expired: { A: 1, B: 1 },
      },
    ];
  }),
  {
    name: 'Filtering on all images, Example A: keep only the newest image',
    policy: parseLifecyclePolicy(`{
      "rules": [
        {
          "rulePriority": 1,
          "description": "Rule 1",
          "selection": { "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1 },
          "action": { "type": "expire" }
        }
      ]
    }`),
    images: [img('A', ['alpha-1'], 4), img('B', ['beta-1'], 3), img('C', [], 2), img('D', ['alpha-2'], 1)],
    expired: { A: 1, B: 1, C: 1 },
  },
  ...(['tagPatternList', 'tagPrefixList'] as const).map(
    (list): Case => ({
      // D and E are both "pushed 1 day ago"; the guide's result (D expired, E kept by rule 3's
      // count) needs E to be the newer, so E is pushed a minute after D.
      name: `Filtering on all images, Example B (${list}): all rule types combined expire Images A, B and D`,
      policy: parseLifecyclePolicy(
        JSON.stringify({
          rules: [
            {
              rulePriority: 1,
              description: 'Rule 1',
              selection: { tagStatus: 'tagged', [list]: [list === 'tagPatternList' ? 'alpha*' : 'alpha'], countType: 'imageCountMoreThan', countNumber: 1 },
              action: { type: 'expire' },
            },
            {
              rulePriority: 2,
              description: 'Rule 2',
              selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 },
              action: { type: 'expire' },
            },
            {
              rulePriority: 3,
              description: 'Rule 3',
              selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 },
              action: { type: 'expire' },
            },
          ],
        }),
      ),
      images: [
        img('A', ['alpha-1', 'beta-1'], 4),
        img('B', [], 3),
        img('C', ['alpha-2'], 2),
        img('D', ['git hash'], 1),
        img('E', [], 1 - 1 / (24 * 60)),
      ],
      expired: { A: 1, B: 2, D: 3 },
    }),
  ),
  {
    // ECR pairs sinceImagePulled with transition to archive; Berth has no archive, so it expires.
    name: 'Filtering on last pulled time, with expire instead of transition: images not pulled in 90 days',
    policy: parseLifecyclePolicy(`{
      "rules": [
        {
          "rulePriority": 1,
          "description": "Expire images not pulled in 90 days",
          "selection": { "tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90 },
          "action": { "type": "expire" }
        }
      ]
    }`),
    images: [img('used', ['a'], 400, { pulledDaysAgo: 10 }), img('unused', ['b'], 400, { pulledDaysAgo: 100 }), img('never', [], 91), img('recent', [], 89)],
    expired: { unused: 1, never: 1 },
  },
];

describe('evaluateLifecycle', () => {
  for (const c of cases) test(c.name, () => check(c));
});

describe('evaluateLifecycle on the examples in the ECR User Guide', () => {
  for (const c of docExamples) test(c.name, () => check(c));
});

test('the case tables are as large as the brief asks', () => {
  assert.ok(cases.length + docExamples.length >= 60, `${cases.length + docExamples.length} cases`);
});

test('decisions are ordered by rulePriority, then push time (oldest first), then digest', () => {
  const p = policy(pushedOver(1, UNTAGGED), pushedOver(1, ANY));
  const images = [img('t-new', ['x'], 2), img('u-new', [], 2), img('t-b', ['y'], 5), img('t-a', ['z'], 5), img('u-old', [], 9)];
  const order = evaluateLifecycle(p, images, NOW).map((d) => `${d.rulePriority}:${d.digest}`);
  assert.deepEqual(order, ['1:u-old', '1:u-new', '2:t-a', '2:t-b', '2:t-new']);
});

test('the result does not depend on the order of the images', () => {
  const p = policy(keep(1, prefixes('v')), pushedOver(3, UNTAGGED), keep(2, ANY));
  const images = [
    img('v1', ['v1'], 10, { children: ['c1', 'c2'] }),
    img('c1', [], 10),
    img('c2', [], 10),
    img('v2', ['v2'], 5, { children: ['c2'] }),
    img('sig', [], 4, { subject: 'v1' }),
    img('u1', [], 6),
    img('u2', [], 2),
    img('x1', ['x'], 3),
    img('x2', ['y'], 3),
  ];
  const expected = evaluateLifecycle(p, images, NOW);
  assert.ok(expected.length > 0);
  for (let seed = 1; seed <= 20; seed++) {
    const shuffled = [...images].sort((a, b) => ((hash(a.digest) * seed) % 97) - ((hash(b.digest) * seed) % 97));
    assert.deepEqual(evaluateLifecycle(p, shuffled, NOW), expected);
  }
});

function hash(text: string): number {
  let h = 7;
  for (const char of text) h = (h * 31 + char.charCodeAt(0)) % 1_000_003;
  return h;
}

test('a digest listed twice is refused', () => {
  assert.throws(() => evaluateLifecycle(policy(keep(1, ANY)), [img('a', [], 1), img('a', ['x'], 2)], NOW), /image a is listed twice/);
});

test('a cycle of children and subjects does not hang; its members are never judged', () => {
  const images = [img('a', [], 10, { children: ['b'] }), img('b', [], 10, { children: ['a'] }), img('c', [], 10, { subject: 'c' })];
  assert.deepEqual(
    evaluateLifecycle(policy(pushedOver(1, UNTAGGED)), images, NOW).map((d) => d.digest),
    ['c'],
    'an image that is its own subject is top-level',
  );
});

test('the input images are not modified', () => {
  const images = [img('idx', ['v1'], 10, { children: ['c'] }), img('c', [], 10)];
  const before = structuredClone(images);
  const [decision] = evaluateLifecycle(policy(pushedOver(1, ANY)), images, NOW);
  decision!.tags.push('mutated');
  assert.deepEqual(images, before);
});

test('previewSummary counts expiring images and, apart, the dependents that go with them', () => {
  const images = [
    img('i1', ['v1'], 10, { children: ['c1', 'c2'] }),
    img('c1', [], 10),
    img('c2', [], 10),
    img('s', [], 10, { subject: 'i1' }),
    img('u', [], 10),
    img('keep', ['v2'], 0),
  ];
  const decisions = evaluateLifecycle(policy(pushedOver(1, ANY)), images, NOW);
  assert.deepEqual(previewSummary(decisions), { expiringImageTotalCount: 2, dependentImageTotalCount: 3 });
  assert.deepEqual(previewSummary([]), { expiringImageTotalCount: 0, dependentImageTotalCount: 0 });
});

test('matchesTagPattern: * is any run of characters, everything else is literal', () => {
  const yes: [string, string][] = [
    ['prod*', 'prod'],
    ['*', ''],
    ['**', 'x'],
    ['a*b*c', 'abc'],
    ['a*b*c', 'a-b-b-c'],
    ['*.*', '1.0'],
    ['v?.[0]', 'v?.[0]'],
    ['a*a', 'aa'],
    ['*test*1*2*3', 'my-test-1-2-3'],
  ];
  const no: [string, string][] = [
    ['prod*', 'pro'],
    ['a*a', 'a'],
    ['a*b*c', 'acb'],
    ['v?.[0]', 'v1.0'],
    ['*.*', '10'],
    ['test*1*2*3*', 'test-1-2'],
  ];
  for (const [pattern, tag] of yes) assert.equal(matchesTagPattern(pattern, tag), true, `${pattern} should match ${tag}`);
  for (const [pattern, tag] of no) assert.equal(matchesTagPattern(pattern, tag), false, `${pattern} should not match ${tag}`);
});

test('two evaluations 13 hours apart: an image crosses sinceImagePushed on the later one', () => {
  const p = policy(pushedOver(7, ANY));
  const images = [img('a', ['a'], 6.5)];
  assert.equal(evaluateLifecycle(p, images, NOW).length, 0);
  assert.equal(evaluateLifecycle(p, images, NOW + 12 * HOUR_MS).length, 0, 'exactly 7 days old is not older than 7 days');
  assert.equal(evaluateLifecycle(p, images, NOW + 13 * HOUR_MS).length, 1);
});
