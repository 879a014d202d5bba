import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ruleFromForm, withRule } from './lifecycle.ts';

const form = (fields: Record<string, string>) => new URLSearchParams(fields);

test('ruleFromForm: untagged images, keep the newest N', () => {
  assert.deepEqual(ruleFromForm(form({ priority: '1', tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: '3', description: '  old builds  ' })), {
    rulePriority: 1,
    description: 'old builds',
    selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 3 },
    action: { type: 'expire' },
  });
});

test('ruleFromForm: tagged images matching patterns, by age in days', () => {
  assert.deepEqual(ruleFromForm(form({ priority: '7', tagStatus: 'tagged', tagPatterns: 'release-*, v*\n  rc-?* ,', countType: 'sinceImagePushed', countNumber: '30' })), {
    rulePriority: 7,
    selection: { tagStatus: 'tagged', tagPatternList: ['release-*', 'v*', 'rc-?*'], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 30 },
    action: { type: 'expire' },
  });
});

test('ruleFromForm: patterns are ignored unless the rule selects tagged images; an unknown count type keeps the newest N', () => {
  const rule = ruleFromForm(form({ priority: '2', tagStatus: 'any', tagPatterns: 'x*', countType: 'bogus', countNumber: '5' }));
  assert.deepEqual(rule, { rulePriority: 2, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 5 }, action: { type: 'expire' } });
  // No tagStatus at all: untagged, the builder's default.
  assert.deepEqual(ruleFromForm(form({ priority: '1', countNumber: '1' })), { rulePriority: 1, selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } });
});

test('ruleFromForm: a hostile description is kept verbatim (escaping is the renderer’s job)', () => {
  const description = '</textarea><script>window.__pwned=1</script>';
  const rule = ruleFromForm(form({ priority: '1', countNumber: '1', description }));
  assert.ok(typeof rule !== 'string');
  assert.equal(rule.description, description);
});

test('ruleFromForm: what does not describe a rule is refused with a sentence', () => {
  const base = { priority: '1', tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: '1' };
  for (const priority of ['', '0', '-1', '1.5', 'one']) assert.match(String(ruleFromForm(form({ ...base, priority }))), /priority must be a whole number of 1 or more/, `priority ${JSON.stringify(priority)}`);
  for (const countNumber of ['', '0', '2.5', 'ten']) assert.match(String(ruleFromForm(form({ ...base, countNumber }))), /number of images to keep must be a whole number/, `countNumber ${JSON.stringify(countNumber)}`);
  assert.match(String(ruleFromForm(form({ ...base, countType: 'sinceImagePushed', countNumber: '0' }))), /age must be a whole number of days/);
  assert.match(String(ruleFromForm(form({ ...base, tagStatus: 'TAGGED' }))), /Choose which images/);
  assert.match(String(ruleFromForm(form({ ...base, tagStatus: 'tagged' }))), /needs at least one tag pattern/);
  assert.match(String(ruleFromForm(form({ ...base, tagStatus: 'tagged', tagPatterns: ' , ' }))), /needs at least one tag pattern/);
});

const rule = (rulePriority: number, description?: string) => ({
  rulePriority,
  ...(description ? { description } : {}),
  selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 },
  action: { type: 'expire' as const },
});

test('withRule: an empty editor becomes a policy of that one rule, pretty-printed', () => {
  const out = withRule('', rule(1, 'a'));
  assert.equal(typeof out, 'string');
  assert.deepEqual(JSON.parse(out as string), { rules: [rule(1, 'a')] });
  assert.equal(out, JSON.stringify({ rules: [rule(1, 'a')] }, null, 2));
  assert.deepEqual(JSON.parse(withRule('  \n ', rule(3)) as string), { rules: [rule(3)] });
});

test('withRule: rules stay sorted by priority; a rule of the same priority is replaced; other keys are kept', () => {
  const text = JSON.stringify({ rules: [rule(3, 'three'), rule(1, 'one')], note: 'kept' });
  assert.deepEqual(JSON.parse(withRule(text, rule(2, 'two')) as string), { rules: [rule(1, 'one'), rule(2, 'two'), rule(3, 'three')], note: 'kept' });
  assert.deepEqual(JSON.parse(withRule(text, rule(3, 'new three')) as string), { rules: [rule(1, 'one'), rule(3, 'new three')], note: 'kept' });
  // A "rules" that is not a list is replaced by the new rule's list.
  assert.deepEqual(JSON.parse(withRule('{"rules":{"x":1}}', rule(1)) as string), { rules: [rule(1)] });
});

test('withRule: an editor that does not hold a JSON object is refused, not crashed on', () => {
  for (const text of ['{"rules": [', 'not json', 'null', '[]', '[{"rulePriority":1}]', '42', '"text"', 'true']) {
    const out = withRule(text, rule(1));
    assert.equal(typeof out, 'object', `${JSON.stringify(text)} gave ${JSON.stringify(out)}`);
    assert.match((out as { error: string }).error, /not (valid JSON|a JSON object)/);
  }
});
