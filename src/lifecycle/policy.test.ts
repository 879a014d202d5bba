import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LifecyclePolicyError, parseLifecyclePolicy } from './policy.ts';

const PREFIX = "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ";

type Json = Record<string, unknown>;

/** A valid rule; `selection` and `rest` replace or add fields (undefined removes one). */
function rule(rulePriority: unknown, selection: Json = {}, rest: Json = {}): Json {
  const base: Json = {
    rulePriority,
    description: `Rule ${String(rulePriority)}`,
    selection: withoutUndefined({ tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1, ...selection }),
    action: { type: 'expire' },
  };
  return withoutUndefined({ ...base, ...rest });
}

function withoutUndefined(object: Json): Json {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

function text(document: unknown): string {
  return JSON.stringify(document, null, 2);
}

const tagged = (list: Json): Json => ({ tagStatus: 'tagged', ...list });

interface Invalid {
  name: string;
  text: string;
  /** Fragment the message must contain after ECR's prefix. */
  fragment: string;
  /** The rulePriority the error names, when it is about one rule. */
  rulePriority?: number;
}

const invalid: Invalid[] = [
  // --- the text ----------------------------------------------------------------------------------
  {
    name: 'not JSON',
    text: `{"rules": [${text(rule(1))}`,
    fragment: 'Could not map policyString into LifecyclePolicy: the text is not valid JSON (',
  },
  {
    name: 'a JSON array instead of an object',
    text: text([rule(1)]),
    fragment: 'the policy must be a JSON object with a "rules" array',
  },
  {
    name: 'no rules property',
    text: `{${' '.repeat(120)}}`,
    fragment: 'the policy is missing the required property "rules".',
  },
  {
    name: 'a property besides rules',
    text: text({ rules: [rule(1)], version: '1' }),
    fragment: 'the policy has properties which are not allowed: ["version"]',
  },
  {
    name: 'rules is an object',
    text: text({ rules: rule(1) }),
    fragment: '"rules" must be an array of rules, but it is {',
  },
  {
    name: 'no rules at all',
    text: text({ rules: [] }) + ' '.repeat(100),
    fragment: '"rules" must contain at least one rule.',
  },
  {
    name: 'more than 50 rules',
    text: JSON.stringify({ rules: Array.from({ length: 51 }, (_, i) => rule(i + 1, tagged({ tagPrefixList: [`p${i}`] }))) }),
    fragment: 'the policy has 51 rules, but a lifecycle policy may have at most 50.',
  },
  // --- a rule ------------------------------------------------------------------------------------
  {
    name: 'a rule that is not an object',
    text: text({ rules: [rule(1), 'rule two'] }),
    fragment: 'rules[1] must be a JSON object, but it is "rule two".',
  },
  {
    name: 'a rule without rulePriority',
    text: text({ rules: [rule(undefined)] }),
    fragment: 'rules[0] is missing the required property "rulePriority".',
  },
  {
    name: 'rulePriority 0',
    text: text({ rules: [rule(0)] }),
    fragment: 'rules[0]: rulePriority must be an integer greater than or equal to 1, but it is 0.',
  },
  {
    name: 'rulePriority is not a whole number',
    text: text({ rules: [rule(1.5)] }),
    fragment: 'rules[0]: rulePriority must be an integer greater than or equal to 1, but it is 1.5.',
  },
  {
    name: 'rulePriority is a string',
    text: text({ rules: [rule('1')] }),
    fragment: 'rules[0]: rulePriority must be an integer greater than or equal to 1, but it is "1".',
  },
  {
    name: 'two rules with the same rulePriority',
    text: text({ rules: [rule(1), rule(2, tagged({ tagPrefixList: ['a'] })), rule(1, tagged({ tagPrefixList: ['b'] }))] }),
    fragment: 'rules[0] and rules[2] both have rulePriority 1; each rule must have a unique rulePriority.',
    rulePriority: 1,
  },
  {
    name: 'a rule property ECR does not know',
    text: text({ rules: [rule(3, {}, { name: 'cleanup' })] }),
    fragment: 'rule with rulePriority 3 has properties which are not allowed: ["name"]',
    rulePriority: 3,
  },
  {
    name: 'a rule without selection',
    text: text({ rules: [rule(2, {}, { selection: undefined })] }),
    fragment: 'rule with rulePriority 2 is missing the required property "selection".',
    rulePriority: 2,
  },
  {
    name: 'a rule without action',
    text: text({ rules: [rule(2, {}, { action: undefined })] }),
    fragment: 'rule with rulePriority 2 is missing the required property "action".',
    rulePriority: 2,
  },
  {
    name: 'a description that is not a string',
    text: text({ rules: [rule(4, {}, { description: 42 })] }),
    fragment: 'rule with rulePriority 4: description must be a string, but it is 42.',
    rulePriority: 4,
  },
  // --- selection ---------------------------------------------------------------------------------
  {
    name: 'selection is not an object',
    text: text({ rules: [rule(1, {}, { selection: 'untagged' })] }),
    fragment: 'rule with rulePriority 1: selection must be a JSON object, but it is "untagged".',
    rulePriority: 1,
  },
  {
    name: 'a selection property ECR does not know',
    text: text({ rules: [rule(1, tagged({ tagPrefix: ['prod'], tagPrefixList: ['prod'] }))] }),
    fragment: 'rule with rulePriority 1: selection has properties which are not allowed: ["tagPrefix"]',
    rulePriority: 1,
  },
  {
    name: 'selection without countNumber and countType',
    text: text({ rules: [rule(5, { countNumber: undefined, countType: undefined }), rule(6, tagged({ tagPrefixList: ['x'] }))] }),
    fragment: 'rule with rulePriority 5: selection is missing the required properties "countType" and "countNumber".',
    rulePriority: 5,
  },
  {
    name: 'tagStatus in capitals',
    text: text({ rules: [rule(1, { tagStatus: 'TAGGED' })] }),
    fragment: 'rule with rulePriority 1: selection.tagStatus must be one of tagged, untagged or any, but it is "TAGGED".',
    rulePriority: 1,
  },
  {
    name: 'a countType ECR does not have',
    text: text({ rules: [rule(1, { countType: 'imageCountLessThan' })] }),
    fragment: 'selection.countType must be one of imageCountMoreThan, sinceImagePushed or sinceImagePulled, but it is "imageCountLessThan".',
    rulePriority: 1,
  },
  {
    name: 'countType sinceImageTransitioned (needs the archive storage class)',
    text: text({ rules: [rule(1, { tagStatus: 'any', storageClass: 'archive', countType: 'sinceImageTransitioned', countUnit: 'days', countNumber: 365 })] }),
    fragment: 'rule with rulePriority 1: countType sinceImageTransitioned selects images by time in the archive storage class, and Berth has no archive storage class.',
    rulePriority: 1,
  },
  {
    name: 'storageClass archive',
    text: text({ rules: [rule(2, { storageClass: 'archive' })] }),
    fragment: 'rule with rulePriority 2: selection.storageClass archive is not supported because Berth has no archive storage class',
    rulePriority: 2,
  },
  {
    name: 'a storageClass ECR does not have',
    text: text({ rules: [rule(2, { storageClass: 'STANDARD' })] }),
    fragment: 'rule with rulePriority 2: selection.storageClass must be "standard", but it is "STANDARD".',
    rulePriority: 2,
  },
  {
    name: 'countUnit with imageCountMoreThan',
    text: text({ rules: [rule(1, { countUnit: 'days' })] }),
    fragment: 'rule with rulePriority 1: selection.countUnit must not be specified when countType is imageCountMoreThan',
    rulePriority: 1,
  },
  {
    name: 'sinceImagePushed without countUnit',
    text: text({ rules: [rule(7, { countType: 'sinceImagePushed', countNumber: 14 })] }),
    fragment: 'rule with rulePriority 7: selection.countUnit is required when countType is sinceImagePushed; the only supported value is "days".',
    rulePriority: 7,
  },
  {
    name: 'sinceImagePulled without countUnit',
    text: text({ rules: [rule(7, { countType: 'sinceImagePulled', countNumber: 14 })] }),
    fragment: 'rule with rulePriority 7: selection.countUnit is required when countType is sinceImagePulled',
    rulePriority: 7,
  },
  {
    name: 'countUnit in hours',
    text: text({ rules: [rule(1, { countType: 'sinceImagePushed', countUnit: 'hours', countNumber: 14 })] }),
    fragment: 'rule with rulePriority 1: selection.countUnit must be "days", but it is "hours".',
    rulePriority: 1,
  },
  {
    name: 'countNumber 0 ("0 is not an accepted value")',
    text: text({ rules: [rule(1, { countNumber: 0 })] }),
    fragment: 'rule with rulePriority 1: selection.countNumber must be an integer greater than or equal to 1, but it is 0.',
    rulePriority: 1,
  },
  {
    name: 'countNumber negative',
    text: text({ rules: [rule(1, { countNumber: -3 })] }),
    fragment: 'selection.countNumber must be an integer greater than or equal to 1, but it is -3.',
    rulePriority: 1,
  },
  {
    name: 'countNumber with a fraction',
    text: text({ rules: [rule(1, { countType: 'sinceImagePushed', countUnit: 'days', countNumber: 2.5 })] }),
    fragment: 'selection.countNumber must be an integer greater than or equal to 1, but it is 2.5.',
    rulePriority: 1,
  },
  {
    name: 'countNumber as a string',
    text: text({ rules: [rule(1, { countNumber: '5' })] }),
    fragment: 'selection.countNumber must be an integer greater than or equal to 1, but it is "5".',
    rulePriority: 1,
  },
  {
    name: 'tagged without tagPrefixList or tagPatternList',
    text: text({ rules: [rule(3, { tagStatus: 'tagged' })] }),
    fragment: 'rule with rulePriority 3: tagStatus is tagged, so selection needs a tagPrefixList or a tagPatternList.',
    rulePriority: 3,
  },
  {
    name: 'tagged with both tagPrefixList and tagPatternList',
    text: text({ rules: [rule(3, tagged({ tagPrefixList: ['prod'], tagPatternList: ['prod*'] }))] }),
    fragment: 'rule with rulePriority 3: selection specifies both tagPrefixList and tagPatternList; a rule may use only one of them.',
    rulePriority: 3,
  },
  {
    name: 'untagged with tagPrefixList',
    text: text({ rules: [rule(2, { tagPrefixList: ['prod'] })] }),
    fragment: 'rule with rulePriority 2: tagPrefixList may only be used when tagStatus is tagged, but tagStatus is untagged.',
    rulePriority: 2,
  },
  {
    name: 'any with tagPatternList',
    text: text({ rules: [rule(2, { tagStatus: 'any', tagPatternList: ['prod*'] })] }),
    fragment: 'rule with rulePriority 2: tagPatternList may only be used when tagStatus is tagged, but tagStatus is any.',
    rulePriority: 2,
  },
  {
    name: 'an empty tagPrefixList',
    text: text({ rules: [rule(1, tagged({ tagPrefixList: [] }))] }),
    fragment: 'rule with rulePriority 1: selection.tagPrefixList must contain at least one entry.',
    rulePriority: 1,
  },
  {
    name: 'a tagPrefixList of numbers',
    text: text({ rules: [rule(1, tagged({ tagPrefixList: [1, 2] }))] }),
    fragment: 'rule with rulePriority 1: selection.tagPrefixList must be an array of strings, but it is [1,2].',
    rulePriority: 1,
  },
  {
    name: 'tagPatternList null',
    text: text({ rules: [rule(1, tagged({ tagPatternList: null, tagPrefixList: ['x'] }))] }),
    fragment: 'rule with rulePriority 1: selection.tagPatternList must be an array of strings, but it is null.',
    rulePriority: 1,
  },
  {
    name: 'a pattern with more than four wildcards (the guide\'s "test*1*2*3*4*5*6")',
    text: text({ rules: [rule(8, tagged({ tagPatternList: ['ok*', 'test*1*2*3*4*5*6'] }))] }),
    fragment: 'rule with rulePriority 8: tagPatternList entry "test*1*2*3*4*5*6" has 6 wildcards (*); at most 4 are allowed in each pattern.',
    rulePriority: 8,
  },
  {
    name: 'a pattern with five wildcards, one over the limit',
    text: text({ rules: [rule(8, tagged({ tagPatternList: ['*a*b*c*d*'] }))] }),
    fragment: 'rule with rulePriority 8: tagPatternList entry "*a*b*c*d*" has 5 wildcards (*); at most 4 are allowed in each pattern.',
    rulePriority: 8,
  },
  // --- action ------------------------------------------------------------------------------------
  {
    name: 'action is a string',
    text: text({ rules: [rule(1, {}, { action: 'expire' })] }),
    fragment: 'rule with rulePriority 1: action must be a JSON object, but it is "expire".',
    rulePriority: 1,
  },
  {
    name: 'action without type',
    text: text({ rules: [rule(1, {}, { action: {} })] }),
    fragment: 'rule with rulePriority 1: action is missing the required property "type".',
    rulePriority: 1,
  },
  {
    name: 'an action type ECR does not have',
    text: text({ rules: [rule(1, {}, { action: { type: 'delete' } })] }),
    fragment: 'rule with rulePriority 1: action.type must be "expire", but it is "delete".',
    rulePriority: 1,
  },
  {
    name: 'action transition to archive (Berth has no archive storage class)',
    text: text({ rules: [rule(1, { tagStatus: 'any', countType: 'sinceImagePulled', countUnit: 'days', countNumber: 90 }, { action: { type: 'transition', targetStorageClass: 'archive' } })] }),
    fragment: 'rule with rulePriority 1: action type transition moves images to the archive storage class, and Berth has no archive storage class; use "expire".',
    rulePriority: 1,
  },
  {
    name: 'targetStorageClass with expire',
    text: text({ rules: [rule(1, {}, { action: { type: 'expire', targetStorageClass: 'archive' } })] }),
    fragment: 'rule with rulePriority 1: action.targetStorageClass may only be used with action type transition.',
    rulePriority: 1,
  },
  {
    name: 'an action property ECR does not know',
    text: text({ rules: [rule(1, {}, { action: { type: 'expire', dryRun: true } })] }),
    fragment: 'rule with rulePriority 1: action has properties which are not allowed: ["dryRun"]',
    rulePriority: 1,
  },
  // --- across rules ------------------------------------------------------------------------------
  {
    name: 'an any rule that is not evaluated last',
    text: text({ rules: [rule(1, { tagStatus: 'any' }), rule(2, tagged({ tagPrefixList: ['prod'] }))] }),
    fragment: 'rule with rulePriority 1 has tagStatus any, so it must have the highest rulePriority and be evaluated last, but rule with rulePriority 2 comes after it.',
    rulePriority: 1,
  },
  {
    name: 'two any rules',
    text: text({ rules: [rule(9, { tagStatus: 'any' }), rule(4, { tagStatus: 'any', countNumber: 3 })] }),
    fragment: 'rule with rulePriority 4 has tagStatus any, so it must have the highest rulePriority and be evaluated last, but rule with rulePriority 9 comes after it.',
    rulePriority: 4,
  },
  {
    name: 'two rules selecting untagged images',
    text: text({ rules: [rule(3), rule(1, { countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 })] }),
    fragment: 'rules with rulePriority 1 and 3 both select untagged images; only one rule may select untagged images.',
    rulePriority: 3,
  },
  {
    name: 'two rules with the same tagPrefixList',
    text: text({ rules: [rule(1, tagged({ tagPrefixList: ['prod', 'web'] })), rule(2, tagged({ tagPrefixList: ['web', 'prod'], countNumber: 5 }))] }),
    fragment: 'rules with rulePriority 1 and 2 have the same tagPrefixList ["prod","web"]; each tagged rule must select a unique set of tags',
    rulePriority: 2,
  },
  {
    name: 'two rules with the same tagPatternList',
    text: text({ rules: [rule(5, tagged({ tagPatternList: ['v*'] })), rule(2, tagged({ tagPatternList: ['v*', 'v*'] }))] }),
    fragment: 'rules with rulePriority 2 and 5 have the same tagPatternList ["v*"]',
    rulePriority: 5,
  },
];

describe('parseLifecyclePolicy refuses what ECR refuses, naming the rule', () => {
  for (const c of invalid) {
    test(c.name, () => {
      assert.throws(
        () => parseLifecyclePolicy(c.text),
        (err: unknown) => {
          assert.ok(err instanceof LifecyclePolicyError);
          assert.equal(err.name, 'LifecyclePolicyError');
          assert.ok(err.message.startsWith(PREFIX), err.message);
          assert.ok(err.message.endsWith("'"), err.message);
          assert.ok(err.message.includes(c.fragment), `expected ${JSON.stringify(c.fragment)} in\n${err.message}`);
          assert.equal(err.rulePriority, c.rulePriority);
          return true;
        },
      );
    });
  }
});

test('the validation table is as large as the brief asks', () => {
  assert.ok(invalid.length >= 30, `${invalid.length} cases`);
});

test('policy text longer than 30720 characters or shorter than 100 is refused like other member constraints', () => {
  const long = text({ rules: [rule(1, {}, { description: 'x'.repeat(30_720) })] });
  assert.throws(() => parseLifecyclePolicy(long), {
    name: 'LifecyclePolicyError',
    message: "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length less than or equal to 30720'",
  });
  assert.throws(() => parseLifecyclePolicy('{"rules":[]}'), {
    name: 'LifecyclePolicyError',
    message: "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length greater than or equal to 100'",
  });
  const justFits = JSON.stringify({ rules: [rule(1)] });
  const padded = justFits.slice(0, -1) + ' '.repeat(30_720 - justFits.length) + '}';
  assert.equal(padded.length, 30_720);
  assert.equal(parseLifecyclePolicy(padded).rules.length, 1);
});

test('a valid policy parses to its rules, in the order written, with only the properties given', () => {
  const parsed = parseLifecyclePolicy(
    text({
      rules: [
        {
          rulePriority: 20,
          selection: { tagStatus: 'any', countType: 'sinceImagePulled', countUnit: 'days', countNumber: 90, storageClass: 'standard' },
          action: { type: 'expire' },
        },
        {
          rulePriority: 10,
          description: 'keep releases',
          selection: { tagStatus: 'tagged', tagPatternList: ['v*.*.*'], countType: 'imageCountMoreThan', countNumber: 100 },
          action: { type: 'expire' },
        },
      ],
    }),
  );
  assert.deepEqual(parsed, {
    rules: [
      {
        rulePriority: 20,
        selection: { tagStatus: 'any', countType: 'sinceImagePulled', countUnit: 'days', countNumber: 90, storageClass: 'standard' },
        action: { type: 'expire' },
      },
      {
        rulePriority: 10,
        description: 'keep releases',
        selection: { tagStatus: 'tagged', tagPatternList: ['v*.*.*'], countType: 'imageCountMoreThan', countNumber: 100 },
        action: { type: 'expire' },
      },
    ],
  });
});

test('valid edge cases are accepted', () => {
  const accept = (name: string, rules: Json[]): void => {
    assert.doesNotThrow(() => parseLifecyclePolicy(text({ rules })), name);
  };
  accept('four wildcards per pattern (the guide\'s valid example)', [rule(1, tagged({ tagPatternList: ['*test*1*2*3', 'test*1*2*3*'] }))]);
  accept('50 rules', Array.from({ length: 50 }, (_, i) => rule(i + 1, tagged({ tagPrefixList: [`p${i}`] }))));
  accept('untagged and any rules together (the guide\'s "Filtering on all images, Example B")', [
    rule(1, tagged({ tagPatternList: ['alpha*'] })),
    rule(2, { countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 }),
    rule(3, { tagStatus: 'any' }),
  ]);
  accept('the same strings as prefixes in one rule and as patterns in another', [
    rule(1, tagged({ tagPrefixList: ['prod'] })),
    rule(2, tagged({ tagPatternList: ['prod'] })),
  ]);
  accept('overlapping but different prefix sets', [rule(1, tagged({ tagPrefixList: ['prod'] })), rule(2, tagged({ tagPrefixList: ['prod', 'web'] }))]);
  accept('sinceImagePulled with expire (ECR allows it only with transition)', [
    rule(1, { tagStatus: 'any', countType: 'sinceImagePulled', countUnit: 'days', countNumber: 90 }),
  ]);
  accept('storageClass standard', [rule(1, { storageClass: 'standard' })]);
  accept('a rule without a description', [rule(1, {}, { description: undefined })]);
  accept('huge rulePriority values, not sequential', [rule(1000, tagged({ tagPrefixList: ['a'] })), rule(2_000_000, { tagStatus: 'any' })]);
});
