import type { ActionHandler } from '../plane.ts';
import { consoleListActions } from './console-lists.ts';
import { eventSubscriptionActions } from './event-subscriptions.ts';
import { imageActions } from './images.ts';
import { layerActions } from './layers.ts';
import { lifecycleActions } from './lifecycle.ts';
import { permissionActions } from './permissions.ts';
import { policyActions } from './policies.ts';
import { pullThroughCacheActions } from './pull-through-cache.ts';
import { registryActions } from './registry.ts';
import { replicationActions } from './replication.ts';
import { repositoryActions } from './repositories.ts';
import { scanningActions } from './scanning.ts';
import { templateActions } from './templates.ts';

/** Every ECR operation Berth implements, by name (docs/ecr-api.md lists them all with their status). */
export const ecrActions: Record<string, ActionHandler> = {
  ...policyActions,
  ...imageActions,
  ...layerActions,
  ...lifecycleActions,
  ...repositoryActions,
  ...templateActions,
  ...registryActions,
  ...scanningActions,
  ...replicationActions,
  ...pullThroughCacheActions,
  ...consoleListActions,
  ...permissionActions,
  ...eventSubscriptionActions,
};
