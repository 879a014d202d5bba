import { LRUCache } from 'lru-cache';
import { RegistryError } from '../errors/catalogue.ts';
import { registryPolicyChanged, repositoryCreated, repositoryDeleted, repositoryPolicyChanged, type RepositoryPolicyType } from '../events/envelope.ts';
import type { LifecyclePolicyRecord, LifecyclePreview, LifecycleRepository } from '../store/meta/lifecycle-store.ts';
import type { MetaStore, Page, Repository, RepositorySettings, RepositoryTemplate } from '../store/meta/meta-store.ts';
import type { Caller } from './access.ts';
import type { RegistryContext } from './context.ts';
import { initFromTemplate, templateFor, templateForPush, type RepositoryInit } from './creation-templates.ts';
import { eventContext, recordEvents } from './event-log.ts';
import { assertRepositoryName, isValidRepositoryName, type RepoRef } from './names.ts';

function cacheKey(repo: RepoRef): string {
  return `${repo.account}/${repo.name}`;
}

/** What deleteRepository did. */
export type RepositoryDeletion = 'deleted' | 'missing' | 'not-empty';

/**
 * Repositories and what hangs off them: settings, repository policies, lifecycle policies and
 * their previews, creation templates, and the account settings that govern them. One part of
 * the Registry (registry.ts), which is the door every caller uses.
 */
export class Repositories {
  private readonly ctx: RegistryContext;
  private readonly cache: LRUCache<string, Repository>;

  constructor(ctx: RegistryContext) {
    this.ctx = ctx;
    this.cache = new LRUCache({ max: 10_000, ttl: Math.max(1, ctx.options.cacheTtlMs) });
  }

  /** The one explicit step that makes a repository exist. Idempotent: `init` applies only when it creates. */
  async create(repo: RepoRef, init: RepositoryInit = {}): Promise<{ repository: Repository; created: boolean }> {
    assertRepositoryName(repo.name);
    const now = this.ctx.now();
    const result = await this.ctx.meta.transaction(async (tx) => {
      const created = await tx.createRepository(repo.account, repo.name, now, init.settings);
      if (created.created && init.repositoryPolicy) await tx.setRepositoryPolicy(created.repository.id, init.repositoryPolicy);
      // A template's lifecycle policy is the repository's lifecycle policy, where lifecycle runs and GetLifecyclePolicy read it.
      if (created.created && init.settings?.lifecyclePolicy) await tx.lifecycle.putPolicy(created.repository.id, init.settings.lifecyclePolicy, now);
      if (created.created) await recordEvents(tx, now, [repositoryCreated({ ...eventContext(repo.account, this.ctx.region, now), repositoryName: repo.name })]);
      return created;
    });
    if (result.created) {
      this.ctx.log.info({ account: repo.account, repository: repo.name }, 'repository created');
      if (init.repositoryPolicy) this.ctx.options.onPolicyChange?.();
    }
    this.cache.set(cacheKey(repo), result.repository);
    return result;
  }

  /** The repository, or undefined; only existing repositories are cached. */
  async find(repo: RepoRef): Promise<Repository | undefined> {
    const key = cacheKey(repo);
    const cached = this.cache.get(key);
    if (cached) return cached;
    const repository = await this.ctx.meta.getRepository(repo.account, repo.name);
    if (repository) this.cache.set(key, repository);
    return repository;
  }

  /** Drops what this process remembers of a repository (after its deletion or a policy change). */
  forget(repo: RepoRef): void {
    this.cache.delete(cacheKey(repo));
  }

  /** The repository, or NameUnknown. */
  async get(repo: RepoRef): Promise<Repository> {
    assertRepositoryName(repo.name);
    const repository = await this.find(repo);
    if (!repository) throw new RegistryError('NameUnknown', { name: repo.name }, { message: `Repository ${repo.name} does not exist.` });
    return repository;
  }

  /**
   * Deletes the repository with its images, tags, policies and settings. Without `force`, one
   * that still holds a manifest is kept ('not-empty'). The freed blobs are left to garbage
   * collection, which this schedules.
   */
  async delete(repository: Repository, options: { force: boolean }): Promise<RepositoryDeletion> {
    const now = this.ctx.now();
    const outcome = await this.ctx.meta.transaction(async (tx): Promise<RepositoryDeletion> => {
      if (!options.force && (await tx.countManifests(repository.id)) > 0) return 'not-empty';
      if (!(await tx.deleteRepository(repository.id))) return 'missing';
      await recordEvents(tx, now, [repositoryDeleted({ ...eventContext(repository.accountId, this.ctx.region, now), repositoryName: repository.name })]);
      return 'deleted';
    });
    if (outcome === 'deleted') {
      this.forget({ account: repository.accountId, name: repository.name });
      this.ctx.garbageMade();
    }
    return outcome;
  }

  /**
   * Whether a push to this repository, when it is missing, creates it: with repositories.createOnPush,
   * or when a CREATE_ON_PUSH creation template covers its name. A push that creates is also asked
   * as ecr:CreateRepository (by the plane, before it writes).
   */
  async createsOnPush(repo: RepoRef): Promise<boolean> {
    return this.ctx.options.createOnPush || (await this.pushTemplate(repo)) !== undefined;
  }

  private async pushTemplate(repo: RepoRef) {
    return templateForPush(await this.ctx.meta.listRepositoryTemplates(repo.account), repo.name);
  }

  /**
   * The repository a replication writes into (`REPLICATION`) or a pull-through cache rule brings
   * images into (`PULL_THROUGH_CACHE`), created when missing as ECR creates such repositories:
   * with the settings of the creation template for that use that covers its name, or the
   * defaults when none does. The caller has checked ecr:CreateRepository.
   */
  async forTemplateUse(repo: RepoRef, use: 'REPLICATION' | 'PULL_THROUGH_CACHE'): Promise<{ repository: Repository; created: boolean }> {
    assertRepositoryName(repo.name);
    const existing = await this.find(repo);
    if (existing) return { repository: existing, created: false };
    const template = templateFor(await this.ctx.meta.listRepositoryTemplates(repo.account), repo.name, use);
    return this.create(repo, template ? initFromTemplate(template) : {});
  }

  /** The repository a push writes into, created first (with its template's settings) when createsOnPush says so. */
  async forPush(repo: RepoRef): Promise<Repository> {
    assertRepositoryName(repo.name);
    const existing = await this.find(repo);
    if (existing) return existing;
    const template = await this.pushTemplate(repo);
    if (!template && !this.ctx.options.createOnPush) {
      throw new RegistryError('NameUnknown', { name: repo.name }, {
        message: `Repository ${repo.name} does not exist in the registry with id '${repo.account}'; create it first (aws ecr create-repository --repository-name ${repo.name}), or add a repository creation template for CREATE_ON_PUSH that covers it.`,
      });
    }
    return (await this.create(repo, template ? initFromTemplate(template) : {})).repository;
  }

  /**
   * The account's repository names the caller may describe, in lexical order. A caller that may
   * describe no repository of the account at all is refused (Denied, naming
   * ecr:DescribeRepositories on `repository/*`), as ECR refuses such a caller rather than answer
   * an empty list: tools tell "no access" from "no repositories" by it. A caller allowed on
   * `repository/*` gets an empty list when there is nothing; one allowed on some repositories
   * only gets those. Only the first page (no `after`) can be refused.
   */
  async list(caller: Caller, account: string, page: Page): Promise<{ names: string[]; more: boolean }> {
    const action = 'ecr:DescribeRepositories';
    const everything: RepoRef = { account, name: '*' };
    const mayListAll = page.after !== undefined || (await this.ctx.authorizer.isAllowed(caller, action, everything));
    const names: string[] = [];
    let after = page.after;
    // Over-fetch by one to know whether another page follows; filter by what the caller may see.
    for (;;) {
      const batch = await this.ctx.meta.listRepositories(account, { after, limit: page.limit + 1 });
      for (const name of batch) {
        if (names.length === page.limit) return { names, more: true };
        if (await this.ctx.authorizer.isAllowed(caller, action, { account, name })) names.push(name);
      }
      if (batch.length < page.limit + 1) break;
      after = batch[batch.length - 1];
    }
    // Asked again so that the refusal is audited and worded as every other denial.
    if (names.length === 0 && !mayListAll) await this.ctx.authorizer.authorize(caller, action, everything);
    return { names, more: false };
  }

  // --- settings and policies ----------------------------------------------------------------

  /** The repository's settings; NameUnknown when it went meanwhile. */
  async settings(repository: Repository): Promise<RepositorySettings> {
    const settings = await this.ctx.meta.getRepositorySettings(repository.id);
    if (!settings) throw new RegistryError('NameUnknown', { name: repository.name }, { message: `Repository ${repository.name} does not exist.` });
    return settings;
  }

  /** Changes some settings; false when the repository does not exist (any more). */
  async updateSettings(repositoryId: number, patch: Partial<RepositorySettings>): Promise<boolean> {
    return this.ctx.meta.updateRepositorySettings(repositoryId, patch);
  }

  /** The repository policy's text, or undefined when there is none. */
  async policy(repositoryId: number): Promise<string | undefined> {
    return this.ctx.meta.getRepositoryPolicy(repositoryId);
  }

  /** Sets (or with null, removes) the repository policy; the caller validated the text. */
  async setPolicy(repository: Repository, text: string | null): Promise<boolean> {
    const changed = await this.ctx.meta.transaction(async (tx) => {
      if (!(await tx.setRepositoryPolicy(repository.id, text))) return false;
      await this.policyChanged(tx, repository, 'REPOSITORY_POLICY', text === null);
      return true;
    });
    this.ctx.options.onPolicyChange?.();
    return changed;
  }

  /**
   * Sets (or with null, removes) the account's registry policy, with its event; the caller
   * validated the text. Resolves whether there was one before.
   */
  async setRegistryPolicy(accountId: string, text: string | null): Promise<boolean> {
    const now = this.ctx.now();
    const had = await this.ctx.meta.transaction(async (tx) => {
      const before = await tx.identity.getRegistryPolicy(accountId);
      if (text === null && before === undefined) return false;
      await tx.identity.setRegistryPolicy(accountId, text, now);
      await recordEvents(tx, now, [registryPolicyChanged({ ...eventContext(accountId, this.ctx.region, now), changeType: text === null ? 'DELETE' : 'PUT' })]);
      return before !== undefined;
    });
    this.ctx.options.onPolicyChange?.();
    return had;
  }

  private async policyChanged(tx: MetaStore, repository: Repository, policyType: RepositoryPolicyType, isDeleted: boolean): Promise<void> {
    const now = this.ctx.now();
    await recordEvents(tx, now, [
      repositoryPolicyChanged({ ...eventContext(repository.accountId, this.ctx.region, now), repositoryName: repository.name, policyType, changeType: isDeleted ? 'DELETE' : 'PUT' }),
    ]);
  }

  // --- lifecycle policies ---------------------------------------------------------------------

  async lifecyclePolicy(repositoryId: number): Promise<LifecyclePolicyRecord | undefined> {
    return this.ctx.meta.lifecycle.getPolicy(repositoryId);
  }

  /** Creates or replaces the policy (the caller validated it); false when the repository is gone. */
  async putLifecyclePolicy(repository: Repository, text: string): Promise<boolean> {
    return this.ctx.meta.transaction(async (tx) => {
      if (!(await tx.lifecycle.putPolicy(repository.id, text, this.ctx.now()))) return false;
      await this.policyChanged(tx, repository, 'LIFECYCLE_POLICY', false);
      return true;
    });
  }

  async deleteLifecyclePolicy(repository: Repository): Promise<boolean> {
    return this.ctx.meta.transaction(async (tx) => {
      if (!(await tx.lifecycle.deletePolicy(repository.id))) return false;
      await this.policyChanged(tx, repository, 'LIFECYCLE_POLICY', true);
      return true;
    });
  }

  async markLifecycleEvaluated(repositoryId: number, atMs: number): Promise<boolean> {
    return this.ctx.meta.lifecycle.markEvaluated(repositoryId, atMs);
  }

  async repositoriesWithLifecyclePolicy(): Promise<LifecycleRepository[]> {
    return this.ctx.meta.lifecycle.listRepositoriesWithPolicy();
  }

  async lifecyclePreview(repositoryId: number): Promise<LifecyclePreview | undefined> {
    return this.ctx.meta.lifecycle.getPreview(repositoryId);
  }

  async putLifecyclePreview(repositoryId: number, preview: LifecyclePreview): Promise<boolean> {
    return this.ctx.meta.lifecycle.putPreview(repositoryId, preview);
  }

  // --- creation templates and account settings ------------------------------------------------

  /** The account's creation templates, by prefix. */
  async templates(accountId: string): Promise<RepositoryTemplate[]> {
    return this.ctx.meta.listRepositoryTemplates(accountId);
  }

  async template(accountId: string, prefix: string): Promise<RepositoryTemplate | undefined> {
    return (await this.templates(accountId)).find((t) => t.prefix === prefix);
  }

  /** Creates or replaces the template with that prefix. */
  async putTemplate(accountId: string, template: RepositoryTemplate): Promise<void> {
    await this.ctx.meta.putRepositoryTemplate(accountId, template);
  }

  async deleteTemplate(accountId: string, prefix: string): Promise<boolean> {
    return this.ctx.meta.deleteRepositoryTemplate(accountId, prefix);
  }

  /** An account setting's stored value; undefined when it was never put. */
  async accountSetting(accountId: string, name: string): Promise<string | undefined> {
    return this.ctx.meta.getAccountSetting(accountId, name);
  }

  async putAccountSetting(accountId: string, name: string, value: string): Promise<void> {
    await this.ctx.meta.putAccountSetting(accountId, name, value);
  }

  /** Repositories of the account that hold the blob (mount sources), at most `limit`. */
  async withBlob(accountId: string, digest: string, limit: number): Promise<Repository[]> {
    return this.ctx.meta.findRepositoriesWithBlob(accountId, digest, limit);
  }

  /** A valid name's repository without caching it (a mount source named by `from`). */
  async findUncached(repo: RepoRef): Promise<Repository | undefined> {
    if (!isValidRepositoryName(repo.name)) return undefined;
    return this.ctx.meta.getRepository(repo.account, repo.name);
  }
}
