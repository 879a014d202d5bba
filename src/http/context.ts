import type { Principal } from '../registry/access.ts';

/** What the pipeline learns about a request as it goes; logged in its completion line. */
export interface RequestContext {
  principal: Principal;
  /** The account the request addresses (from the host name on the data plane). */
  account: string | undefined;
  plane: 'oci' | 'ecr' | 'iam' | 'sts' | 'secretsmanager' | 'cloudtrail' | 'console' | 'health' | 'other';
  /** The operation, spelt as the IAM action that governs it (e.g. `ecr:BatchGetImage`). */
  operation: string | undefined;
  repository: string | undefined;
  errorCode: string | undefined;
  bytesIn: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    berth: RequestContext;
  }
}
