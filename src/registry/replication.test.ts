import assert from 'node:assert/strict';
import { test } from 'node:test';
import { destinationsFor, ruleCovers, type ReplicationConfiguration } from './replication.ts';

test('a rule covers every repository without filters, else those starting with any PREFIX_MATCH filter', () => {
  assert.equal(ruleCovers({ destinations: [] }, 'anything'), true);
  const rule = { destinations: [], repositoryFilters: [{ filter: 'prod', filterType: 'PREFIX_MATCH' as const }, { filter: 'team-a/', filterType: 'PREFIX_MATCH' as const }] };
  assert.equal(ruleCovers(rule, 'prod/app'), true);
  assert.equal(ruleCovers(rule, 'production'), true, 'a prefix, not a namespace, as ECR matches');
  assert.equal(ruleCovers(rule, 'team-a/x'), true);
  assert.equal(ruleCovers(rule, 'team-b/x'), false);
});

test('destinations: the union of the covering rules, each destination once', () => {
  const config: ReplicationConfiguration = {
    rules: [
      { destinations: [{ region: 'us-west-2', registryId: '111122223333' }] },
      { destinations: [{ region: 'us-west-2', registryId: '111122223333' }, { region: 'eu-west-1', registryId: '444455556666' }], repositoryFilters: [{ filter: 'prod/', filterType: 'PREFIX_MATCH' }] },
    ],
    startSeqs: {},
    updatedAtMs: 0,
  };
  assert.deepEqual(destinationsFor(config, 'dev/app'), ['us-west-2/111122223333']);
  assert.deepEqual(destinationsFor(config, 'prod/app'), ['us-west-2/111122223333', 'eu-west-1/444455556666']);
  assert.deepEqual(destinationsFor({ rules: [], startSeqs: {}, updatedAtMs: 0 }, 'prod/app'), []);
});
