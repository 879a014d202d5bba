/**
 * The administrator every test server is bootstrapped with (startServer passes these as the
 * BERTH_BOOTSTRAP_* variables), and clients that send its credentials. The data plane takes an
 * access key as HTTP Basic credentials directly (`<access key id>:<secret>`), as a robot account.
 *
 * Every helper here sends the admin's Authorization header unless the caller sets one. To send a
 * request with no credentials at all, set `authorization: ''`: an empty value means "none", and
 * the header is dropped before the request goes out.
 */

export const ADMIN = {
  accountId: '111122223333',
  accessKeyId: 'AKIABERTHTESTADMIN01',
  secretAccessKey: 'berth-test-admin-secret-do-not-use-0001',
} as const;

/** The BERTH_BOOTSTRAP_* variables that make a fresh store's administrator the ADMIN above. */
export const ADMIN_BOOTSTRAP_ENV: Readonly<Record<string, string>> = {
  BERTH_BOOTSTRAP_ACCOUNT_ID: ADMIN.accountId,
  BERTH_BOOTSTRAP_ACCESS_KEY_ID: ADMIN.accessKeyId,
  BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: ADMIN.secretAccessKey,
};

/** `Basic base64(user:password)`, the value of an Authorization header. */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export const adminAuthorization = basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey);

/**
 * `headers` with the admin's Authorization added when none is set (in any casing), and with an
 * empty one removed. For fetch: takes any form of init.headers (Headers, pairs, plain object).
 */
export function withAdminAuthorization(headers: RequestInit['headers']): Headers {
  const result = new Headers(headers);
  if (!result.has('authorization')) result.set('authorization', adminAuthorization);
  else if (result.get('authorization') === '') result.delete('authorization');
  return result;
}

/** The same for node:http and raw-socket header objects; returns a new object. */
export function withAdminAuthorizationRaw<V extends string | number | readonly string[]>(headers: Readonly<Record<string, V>> = {}): Record<string, V | string> {
  const result: Record<string, V | string> = { ...headers };
  const key = Object.keys(result).find((k) => k.toLowerCase() === 'authorization');
  if (key === undefined) result['authorization'] = adminAuthorization;
  else if (result[key] === '') delete result[key];
  return result;
}

/**
 * Global fetch that authenticates as the admin unless the request already carries an
 * Authorization header (`authorization: ''` sends none; see above).
 */
export function authedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  // Headers given in init replace a Request's own, so start from the Request's when init has none.
  const base = init?.headers ?? (input instanceof Request ? input.headers : undefined);
  return fetch(input, { ...init, headers: withAdminAuthorization(base) });
}
