import {
  SecretsManagerError,
  type AuthorizeSecret,
  type CreateSecretInput,
  type DeleteSecretInput,
  type GetSecretValueInput,
  type ListSecretsInput,
  type PutSecretValueInput,
  type UpdateSecretInput,
} from '../secrets/secrets-manager.ts';
import { AwsError } from './aws-error.ts';
import type { ActionContext, ActionHandler } from './plane.ts';

/**
 * The Secrets Manager API subset (docs/secrets-manager.md): each action asks IAM about the secret's
 * ARN (`secretsmanager:<Action>`) and leaves the rest to src/secrets/. Values never reach a log:
 * the request log has no bodies, and the audit trail records the action and the ARN only.
 */

/** IAM's question for the secret an operation found: the account is the ARN's. */
function authorizer(ctx: ActionContext, action: string): AuthorizeSecret {
  return (arn) => ctx.authorize(`secretsmanager:${action}`, arn, { resourceAccountId: arn.split(':')[4] ?? ctx.principal.accountId });
}

function handler(action: string, run: (ctx: ActionContext, input: Record<string, any>, authorize: AuthorizeSecret) => Promise<Record<string, unknown>>): ActionHandler {
  return async (ctx, input) => {
    try {
      return await run(ctx, input, authorizer(ctx, action));
    } catch (err) {
      if (err instanceof SecretsManagerError) throw new AwsError(err.code, err.message, 400);
      throw err;
    }
  };
}

const account = (ctx: ActionContext) => ctx.principal.accountId;

// The inputs were checked against the service model (src/aws/json.ts), so their types hold.

export const secretsManagerActions: Record<string, ActionHandler> = {
  CreateSecret: handler('CreateSecret', (ctx, input, authorize) => ctx.deps.secretsManager.createSecret(account(ctx), input as CreateSecretInput, authorize)),
  GetSecretValue: handler('GetSecretValue', (ctx, input, authorize) => ctx.deps.secretsManager.getSecretValue(account(ctx), input as GetSecretValueInput, authorize)),
  PutSecretValue: handler('PutSecretValue', (ctx, input, authorize) => ctx.deps.secretsManager.putSecretValue(account(ctx), input as PutSecretValueInput, authorize)),
  UpdateSecret: handler('UpdateSecret', (ctx, input, authorize) => ctx.deps.secretsManager.updateSecret(account(ctx), input as UpdateSecretInput, authorize)),
  DescribeSecret: handler('DescribeSecret', (ctx, input, authorize) => ctx.deps.secretsManager.describeSecret(account(ctx), input as { SecretId: string }, authorize)),
  DeleteSecret: handler('DeleteSecret', (ctx, input, authorize) => ctx.deps.secretsManager.deleteSecret(account(ctx), input as DeleteSecretInput, authorize)),
  RestoreSecret: handler('RestoreSecret', (ctx, input, authorize) => ctx.deps.secretsManager.restoreSecret(account(ctx), input as { SecretId: string }, authorize)),
  // ListSecrets has no resource in IAM: only a policy statement with Resource "*" grants it.
  ListSecrets: handler('ListSecrets', async (ctx, input) => {
    await ctx.authorize('secretsmanager:ListSecrets', '*');
    return ctx.deps.secretsManager.listSecrets(account(ctx), input as ListSecretsInput);
  }),
};
