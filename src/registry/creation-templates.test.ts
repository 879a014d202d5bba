import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RepositoryTemplate } from '../store/meta/meta-store.ts';
import { initFromTemplate, prefixCovers, templateForPush } from './creation-templates.ts';

function template(prefix: string, appliedFor: string[] = ['CREATE_ON_PUSH'], fields: Record<string, unknown> = {}): RepositoryTemplate {
  return { prefix, template: { appliedFor, ...fields }, createdAtMs: 0, updatedAtMs: 0 };
}

test('a prefix covers the names under it as a namespace (an assumed / at its end); ROOT covers every name', () => {
  assert.equal(prefixCovers('prod', 'prod/app'), true);
  assert.equal(prefixCovers('prod', 'prod/team/app'), true);
  assert.equal(prefixCovers('prod/', 'prod/app'), true);
  assert.equal(prefixCovers('prod', 'prod'), false);
  assert.equal(prefixCovers('prod', 'production/app'), false);
  assert.equal(prefixCovers('prod/team', 'prod/app'), false);
  assert.equal(prefixCovers('ROOT', 'anything'), true);
});

test('the longest covering CREATE_ON_PUSH prefix wins; ROOT only when nothing else covers the name', () => {
  const templates = [template('ROOT'), template('team'), template('team/x'), template('team/x/y', ['REPLICATION'])];
  assert.equal(templateForPush(templates, 'team/x/y/app')?.prefix, 'team/x', 'a template not applied for CREATE_ON_PUSH is skipped');
  assert.equal(templateForPush(templates, 'team/x/app')?.prefix, 'team/x');
  assert.equal(templateForPush(templates, 'team/app')?.prefix, 'team');
  assert.equal(templateForPush(templates, 'other/app')?.prefix, 'ROOT');
  assert.equal(templateForPush([template('ROOT'), template('team')].reverse(), 'team/app')?.prefix, 'team', 'order does not matter');
  assert.equal(templateForPush([template('team', ['PULL_THROUGH_CACHE'])], 'team/app'), undefined);
  assert.equal(templateForPush([], 'team/app'), undefined);
});

test('a template gives new repositories its mutability, encryption, tags, lifecycle policy and repository policy', () => {
  const policy = '{"Version":"2012-10-17","Statement":[]}';
  const init = initFromTemplate(
    template('team', ['CREATE_ON_PUSH'], {
      imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
      imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'dev-*' }],
      encryptionConfiguration: { encryptionType: 'KMS', kmsKey: 'arn:aws:kms:us-east-1:111122223333:key/abc' },
      resourceTags: [{ Key: 'team', Value: 'x' }],
      lifecyclePolicy: '{"rules":[]}',
      repositoryPolicy: policy,
    }),
  );
  assert.deepEqual(init, {
    settings: {
      imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
      imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'dev-*' }],
      encryptionType: 'KMS',
      kmsKey: 'arn:aws:kms:us-east-1:111122223333:key/abc',
      tags: [{ Key: 'team', Value: 'x' }],
      lifecyclePolicy: '{"rules":[]}',
    },
    repositoryPolicy: policy,
  });
  assert.deepEqual(initFromTemplate(template('team')), {
    settings: { imageTagMutability: 'MUTABLE', imageTagMutabilityExclusionFilters: [], encryptionType: 'AES256', kmsKey: null, tags: [], lifecyclePolicy: null },
    repositoryPolicy: null,
  });
});
