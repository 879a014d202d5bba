/**
 * A policy document that IAM would refuse (MalformedPolicyDocument). The message is written for
 * the person who wrote the policy: it names the statement (1-based, with its Sid when it has one)
 * and the problem, e.g.
 * `Statement 2 (Sid "PullOnly"): Effect must be "Allow" or "Deny", not "Permit".`
 */
export class PolicyError extends Error {
  override name = 'PolicyError';
}
