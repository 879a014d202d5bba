import type { ActionHandler } from '../plane.ts';
import { policyActions } from './policies.ts';

/** Every ECR operation Berth implements, by name (docs/ecr-api.md lists them all with their status). */
export const ecrActions: Record<string, ActionHandler> = {
  ...policyActions,
};
