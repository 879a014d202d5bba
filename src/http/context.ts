import type { Principal } from '../registry/access.ts';

/** What the pipeline learns about a request as it goes; logged in its completion line. */
export interface RequestContext {
  principal: Principal;
  plane: 'oci' | 'health' | 'other';
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
