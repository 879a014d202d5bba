/**
 * An error of the AWS APIs (ECR JSON, IAM and STS Query), spelt as the service spells it: `code`
 * is the `__type` (JSON) or `<Code>` (Query), and `status` the HTTP status the service uses.
 */
export class AwsError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 400) {
    super(message);
    this.name = 'AwsError';
    this.code = code;
    this.status = status;
  }
}
