import { runTool } from './proc.ts';

export const CURL_BIN = 'curl';

export interface CurlPullOptions {
  /**
   * Redirects every transfer must follow (curl --location, which drops Authorization on the way
   * to another host), counted in its time and checked; default 0, when a redirect is an error.
   */
  redirects?: number;
  /** The local address to connect from (curl --interface), e.g. 127.0.0.2 to look like another client. */
  sourceAddress?: string;
}

/**
 * GETs every URL at once with one curl process (--parallel), discarding the bodies, and checks
 * each status and size. A second client for the pull figures: Node's HTTP client tops out near
 * the speed nginx serves at, so the node:http figures understate how far ahead nginx is.
 * `headers` go with every transfer (e.g. Berth's Authorization).
 */
export async function curlPull(urls: string[], expectedBytes: number[], headers: Record<string, string> = {}, options: CurlPullOptions = {}): Promise<number> {
  const args = ['-s', '--parallel', '--parallel-immediate', '--parallel-max', String(urls.length), '-w', '%{http_code} %{size_download} %{num_redirects}\\n'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (options.redirects !== undefined && options.redirects > 0) args.push('--location', '--max-redirs', String(options.redirects));
  if (options.sourceAddress !== undefined) args.push('--interface', options.sourceAddress);
  for (const url of urls) args.push('-o', '/dev/null', url);
  const out = await runTool(CURL_BIN, args);
  const lines = out.trim().split('\n');
  if (lines.length !== urls.length) throw new Error(`curl reported ${lines.length} transfers, wanted ${urls.length}`);
  // --parallel reports transfers in completion order; compare as multisets.
  const got = lines.map((l) => l.split(' ')).map(([status, size, redirects]) => ({ status: Number(status), size: Number(size), redirects: Number(redirects) }));
  const bad = got.find((g) => g.status !== 200);
  if (bad) throw new Error(`curl: a transfer answered ${bad.status}`);
  const wantedRedirects = options.redirects ?? 0;
  const strayed = got.find((g) => g.redirects !== wantedRedirects);
  if (strayed) throw new Error(`curl: a transfer followed ${strayed.redirects} redirects, wanted ${wantedRedirects}`);
  const sizes = got.map((g) => g.size).sort((a, b) => a - b);
  const wanted = [...expectedBytes].sort((a, b) => a - b);
  if (sizes.some((s, i) => s !== wanted[i])) throw new Error(`curl: sizes ${sizes.join(',')} differ from ${wanted.join(',')}`);
  return sizes.reduce((a, b) => a + b, 0);
}
